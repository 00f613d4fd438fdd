// Grading SWE-bench predictions end to end: the sample repository's mined
// suite written out in SWE-bench's own format (tests/e2e/swebench_fixture.py),
// imported with `pytest -rA {test_files}` and the pytest log preset, its
// environment checked (one task cannot be reproduced and is left out), then
// three predictions files (right, wrong, empty) and one full of bad input
// graded in one run, and the official-style report read back per agent.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <string>

#include "base/fs.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using nlohmann::json;
using testing::Crucible;
using ::testing::HasSubstr;
using testing::Quote;
using testing::Sh;

constexpr char kMineCmd[] = "python3 -m pytest -q -p no:cacheprovider --junitxml={junit}";
constexpr char kSweCmd[] = "python3 -m pytest -rA -p no:cacheprovider {test_files}";

std::set<std::string> Ids(const json& list) {
  std::set<std::string> out;
  for (const auto& id : list) out.insert(id.get<std::string>());
  return out;
}

class SwebenchEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    auto dir = TempDir::Create("crucible-swebench-e2e-");
    ASSERT_TRUE(dir);
    dir_ = new TempDir(std::move(*dir));
    const std::string& d = dir_->path();
    repo_ = d + "/repo";
    db_ = " --db " + Quote(d + "/db");
    auto made = testing::MakeSampleRepo(repo_);
    ASSERT_EQ(made.status, 0) << made.text;
    auto mined = Crucible("mine --repo " + Quote(repo_) + " --suite sample --test-cmd " +
                          Quote(kMineCmd) + db_);
    ASSERT_EQ(mined.status, 0) << mined.text;
    auto exported = Crucible("suite export sample -o " + Quote(d + "/export.jsonl") + db_);
    ASSERT_EQ(exported.status, 0) << exported.text;
    auto fixture = Sh("/usr/bin/python3 " +
                      Quote(std::string(CRUCIBLE_SOURCE_DIR) + "/tests/e2e/swebench_fixture.py") +
                      " " + Quote(d + "/export.jsonl") + " " + Quote(d));
    ASSERT_EQ(fixture.status, 0) << fixture.text;
    auto expected = ReadFile(d + "/expected.json");
    ASSERT_TRUE(expected);
    expected_ = new json(json::parse(*expected));

    auto imported =
        Crucible("suite import " + Quote(d + "/tasks.jsonl") + " --repo " + Quote(repo_) +
                 " --suite swe --test-cmd " + Quote(kSweCmd) + " --results pytest" + db_);
    ASSERT_EQ(imported.status, 0) << imported.text;
    environment_ = new testing::CommandOutput(
        Crucible("calibrate --suite swe --environment --runners 2" + db_));

    std::string agents;
    for (const char* name : {"right", "wrong", "empty", "bad"}) {
      std::string file = d + "/" + name + (name == std::string("wrong") ? ".json" : ".jsonl");
      agents += " --agent " + Quote(std::string(name) + "=predictions:" + file);
    }
    run_ = new testing::CommandOutput(Crucible("run --suite swe --runners 2" + agents + db_));
    ASSERT_EQ(run_->status, 0) << run_->text;
    auto pos = run_->text.find("run r");
    ASSERT_NE(pos, std::string::npos) << run_->text;
    run_id_ = run_->text.substr(pos + 4, run_->text.find(':', pos + 4) - pos - 4);
  }
  static void TearDownTestSuite() {
    delete environment_;
    delete run_;
    delete expected_;
    delete dir_;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    ASSERT_FALSE(run_id_.empty()) << "the suite could not be built, imported or run";
  }

  // The official-style report of `agent` (its model is "sample/AGENT"), as
  // `crucible report --format swebench --out DIR` writes it.
  static json Report(const std::string& agent) {
    const std::string out = dir_->path() + "/reports";
    auto written = Crucible("report " + run_id_ + " --format swebench --out " + Quote(out) + db_);
    EXPECT_EQ(written.status, 0) << written.text;
    const std::string path = out + "/sample__" + agent + "." + run_id_ + ".json";
    auto text = ReadFile(path);
    EXPECT_TRUE(text) << path << " was not written:\n" << written.text;
    return text ? json::parse(*text) : json();
  }

  static void TheEnvironmentCheckFindsTheTaskTheGoldPatchCannotResolve();
  static void RightWrongAndEmptyPredictionsGetTheOfficialVerdicts();
  static void BadPredictionsAreNamedAndTheRestIsGraded();

  static inline TempDir* dir_ = nullptr;
  static inline std::string repo_, db_, run_id_;
  static inline json* expected_ = nullptr;
  static inline testing::CommandOutput* environment_ = nullptr;
  static inline testing::CommandOutput* run_ = nullptr;
};

void SwebenchEndToEnd::TheEnvironmentCheckFindsTheTaskTheGoldPatchCannotResolve() {
  const std::string mismatched = (*expected_)["mismatched"][0];
  // Exit 3: a mismatch was found; it is named with the test that decided it.
  EXPECT_EQ(environment_->status, 3) << environment_->text;
  EXPECT_THAT(environment_->text, HasSubstr(mismatched));
  EXPECT_THAT(environment_->text, HasSubstr("test_the_harness_never_sees"));
  auto show = Crucible("suite show swe" + db_);
  ASSERT_EQ(show.status, 0) << show.text;
  EXPECT_THAT(show.text, HasSubstr("mismatch"));
  // The run left it out and says so.
  auto attempts = Crucible("report " + run_id_ + " --by attempt --format json" + db_);
  ASSERT_EQ(attempts.status, 0) << attempts.text;
  size_t n = 0;
  for (const auto& a : json::parse(attempts.text)) {
    EXPECT_NE(a["task_id"], mismatched);
    ++n;
  }
  EXPECT_EQ(n, 4 * ((*expected_)["right"]["resolved"].size()));
  auto report = Crucible("report " + run_id_ + db_);
  ASSERT_EQ(report.status, 0) << report.text;
  EXPECT_THAT(report.text, HasSubstr("environment"));
  EXPECT_THAT(report.text, HasSubstr(mismatched));
}

void SwebenchEndToEnd::RightWrongAndEmptyPredictionsGetTheOfficialVerdicts() {
  for (const char* agent : {"right", "wrong", "empty"}) {
    SCOPED_TRACE(agent);
    const json& want = (*expected_)[agent];
    json got = Report(agent);
    ASSERT_TRUE(got.is_object()) << got.dump();
    EXPECT_EQ(Ids(got["resolved_ids"]), Ids(want["resolved"]));
    EXPECT_EQ(Ids(got["unresolved_ids"]), Ids(want["unresolved"]));
    EXPECT_EQ(Ids(got["empty_patch_ids"]), Ids(want["empty"]));
    EXPECT_EQ(got["error_ids"].size(), 0u) << got.dump();
    EXPECT_EQ(got["resolved_instances"], want["resolved"].size());
    EXPECT_EQ(got["total_instances"],
              want["resolved"].size() + want["unresolved"].size() + want["empty"].size());
  }
}

void SwebenchEndToEnd::BadPredictionsAreNamedAndTheRestIsGraded() {
  const std::string bad = dir_->path() + "/bad.jsonl";
  const json& want = (*expected_)["bad"];
  for (const auto& [line, what] : want["warnings"].items()) {
    EXPECT_THAT(run_->text, HasSubstr(bad + ":" + line + ": instance "))
        << "line " << line << " (" << what << ")";
    EXPECT_THAT(run_->text, HasSubstr(what.get<std::string>()));
  }
  json got = Report("bad");
  ASSERT_TRUE(got.is_object());
  EXPECT_EQ(Ids(got["resolved_ids"]), Ids(want["resolved"]));
  EXPECT_EQ(Ids(got["empty_patch_ids"]), std::set<std::string>{});
  // Tasks the file does not name: no submission, "incomplete" as the
  // official report calls them.
  EXPECT_EQ(Ids(got["incomplete_ids"]), Ids(want["incomplete"]));
  // Not a diff, binary hunks, a patch that does not apply: none resolves,
  // each is the agent's (unresolved or error, as the official harness
  // counts a patch it cannot apply), none is "empty".
  std::set<std::string> not_resolved = Ids(got["unresolved_ids"]);
  for (const auto& id : got["error_ids"]) not_resolved.insert(id.get<std::string>());
  EXPECT_EQ(not_resolved, Ids(want["not_resolved"]));
  // The reason of the patch that does not apply is kept for people.
  auto shown = Crucible("report " + run_id_ + " --by attempt --format json" + db_);
  ASSERT_EQ(shown.status, 0) << shown.text;
  bool named = false;
  for (const auto& a : json::parse(shown.text)) {
    if (a["agent"] == "bad" && a["task_id"] == want["not_resolved"][0]) {
      named = a.dump().find("does not apply") != std::string::npos;
    }
  }
  EXPECT_TRUE(named) << shown.text;
}

// One test: the set-up (mining, import, the environment check and the run of
// four predictions files) is most of the time, and ctest runs each test in a
// process of its own.
TEST_F(SwebenchEndToEnd, GradesPredictionsFilesOverTheSampleRepository) {
  {
    SCOPED_TRACE("TheEnvironmentCheckFindsTheTaskTheGoldPatchCannotResolve");
    TheEnvironmentCheckFindsTheTaskTheGoldPatchCannotResolve();
  }
  {
    SCOPED_TRACE("RightWrongAndEmptyPredictionsGetTheOfficialVerdicts");
    RightWrongAndEmptyPredictionsGetTheOfficialVerdicts();
  }
  {
    SCOPED_TRACE("BadPredictionsAreNamedAndTheRestIsGraded");
    BadPredictionsAreNamedAndTheRestIsGraded();
  }
}

}  // namespace
}  // namespace crucible
