// The coordinator's group commit thread, against a real RocksDB: a requested
// sync is reported through the wake socket, one at a time, and what it covered
// survives a kill -9 of the process right after the report.
#include "coordinator/background_sync.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/support/timed_wait.h"

namespace crucible::coordinator {
namespace {

v1::Run MakeRun(const std::string& id) {
  v1::Run r;
  r.set_id(id);
  r.set_suite("s");
  return r;
}

// Waits up to 10 s for the thread's report.
std::optional<Status> WaitForResult(BackgroundSync& sync) {
  for (int i = 0; i < 100; ++i) {
    zmq::pollitem_t item{sync.wake_socket().handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    if (auto st = sync.TakeResult()) return st;
  }
  return std::nullopt;
}

TEST(BackgroundSync, ReportsEachRequestedSyncOnce) {
  auto dir = TempDir::Create("crucible-bgsync-");
  ASSERT_TRUE(dir);
  auto store = storage::Store::Open(dir->path() + "/db");
  ASSERT_TRUE(store) << store.error().ToString();
  (*store)->SetGroupCommit(true);
  zmq::context_t ctx;
  BackgroundSync sync(**store, ctx, std::chrono::milliseconds(50));
  EXPECT_FALSE(sync.busy());
  EXPECT_FALSE(sync.TakeResult().has_value()) << "nothing was requested";
  ASSERT_TRUE((*store)->PutRun(MakeRun("r1")));
  ASSERT_TRUE(sync.Request());
  EXPECT_TRUE(sync.busy());
  EXPECT_FALSE(sync.Request()) << "one sync at a time";
  auto st = WaitForResult(sync);
  ASSERT_TRUE(st.has_value()) << "no report within 10 s";
  EXPECT_TRUE(*st) << st->error().ToString();
  EXPECT_FALSE(sync.busy());
  EXPECT_FALSE(sync.TakeResult().has_value()) << "reported twice";
  // Nothing written since: a sync still reports.
  ASSERT_TRUE(sync.Request());
  st = WaitForResult(sync);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(*st);
}

TEST(BackgroundSync, WhatASyncReportedSurvivesAKill) {
  auto dir = TempDir::Create("crucible-bgsync-");
  ASSERT_TRUE(dir);
  const std::string db = dir->path() + "/db";
  ASSERT_TRUE(storage::Store::Open(db));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto store = storage::Store::Open(db);
    if (!store) ::_exit(2);
    (*store)->SetGroupCommit(true);
    zmq::context_t ctx;
    // A long idle period: only the requested sync can have written the log.
    BackgroundSync sync(**store, ctx, std::chrono::milliseconds(60'000));
    if (!(*store)->PutRun(MakeRun("acknowledged"))) ::_exit(3);
    if (!sync.Request()) ::_exit(4);
    auto st = WaitForResult(sync);
    if (!st || !*st) ::_exit(5);
    ::raise(SIGKILL);
  }
  int status = 0;
  ASSERT_TRUE(crucible::testing::WaitPid(pid, &status)) << "the child did not end; killed";
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  auto store = storage::Store::Open(db);
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_TRUE((*store)->GetRun("acknowledged").has_value());
}

}  // namespace
}  // namespace crucible::coordinator
