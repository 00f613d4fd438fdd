// What the report tests share: a version-2 score, and a test whose SetUp
// opens a real RocksDB store in a temporary directory.
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "base/fs.h"
#include "protocol/crucible.pb.h"
#include "storage/store.h"

namespace crucible::report::fixture {

// A scoring-version-2 score of one round: the tests pass (`loose`), strict
// (merge-ready in round 1) when `strict`; 1 s of wall time.
inline v1::Score Scored(bool loose, bool strict) {
  v1::Score s;
  s.set_scoring_version(2);
  s.set_completed(loose);
  s.set_strict_completed(strict);
  s.set_rounds(1);
  s.set_merge_ready_round(strict ? 1 : 0);
  s.set_wall_ms(1000);
  return s;
}

// A test with a fresh store at db_ (tmp_/db), closed and removed after it.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("crucible-report-test-");
    ASSERT_TRUE(tmp);
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    db_ = tmp_->path() + "/db";
    auto store = storage::Store::Open(db_);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }

  std::unique_ptr<TempDir> tmp_;
  std::string db_;
  storage::StorePtr store_;
};

}  // namespace crucible::report::fixture
