// The scores end to end: the sample repository's config and rename tasks
// (PR #4 and #5), mined with the sandbox, replayed by external agents that
// each write a correct solution plus exactly one fault (tests/e2e/
// fault_agent.py), and the report naming exactly that fault.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>

#include "base/fs.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using nlohmann::json;
using ::testing::Contains;
using testing::Crucible;
using ::testing::HasSubstr;
using testing::Quote;
using testing::Sh;

constexpr char kTestCmd[] = "python3 -m pytest -q -p no:cacheprovider --junitxml={junit}";
const char* const kFaults[] = {"clean", "scope", "reformat", "secret", "stale", "pileon", "blind"};

class FaultAgents : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    auto dir = TempDir::Create("crucible-scores-e2e-");
    ASSERT_TRUE(dir);
    dir_ = new TempDir(std::move(*dir));
    const std::string repo = dir_->path() + "/sample-repo";
    db_ = dir_->path() + "/db";
    auto made = testing::MakeSampleRepo(repo);
    ASSERT_EQ(made.status, 0) << made.text;
    // The history up to PR #5: its two newest changes are PR #5 and PR #4.
    auto pr5 = Sh("git -C " + Quote(repo) +
                  " log --first-parent --format=%H --grep='Merge pull request #5 ' main");
    ASSERT_EQ(pr5.status, 0) << pr5.text;
    const std::string ref = pr5.text.substr(0, 40);
    auto mined = Crucible("mine --repo " + Quote(repo) + " --suite faults --ref " + ref +
                          " --last 2 --test-cmd " + Quote(kTestCmd) + " --db " + Quote(db_));
    ASSERT_EQ(mined.status, 0) << mined.text;

    const std::string agent = std::string(CRUCIBLE_SOURCE_DIR) + "/tests/e2e/fault_agent.py";
    std::string args;
    for (const char* f : kFaults) {
      args += " --agent " + Quote(std::string(f) + "=python3 " + agent + " " + f);
    }
    auto run = Crucible("run --suite faults" + args + " --runners 2 --db " + Quote(db_));
    ASSERT_EQ(run.status, 0) << run.text;
    run_text_ = new std::string(run.text);
    auto pos = run.text.find("run r");
    ASSERT_NE(pos, std::string::npos) << run.text;
    run_id_ = new std::string(run.text.substr(pos + 4, run.text.find(':', pos + 4) - pos - 4));
  }
  static void TearDownTestSuite() {
    delete run_text_;
    delete run_id_;
    delete dir_;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    ASSERT_NE(run_id_, nullptr) << "the suite could not be mined or run";
  }

  // The attempts of `agent`, by task intent keyword: "config" (PR #4) or
  // "rename" (PR #5).
  static std::map<std::string, json> Attempts(const std::string& agent) {
    auto out = Crucible("report " + *run_id_ + " --by attempt --format json --db " + Quote(db_));
    EXPECT_EQ(out.status, 0) << out.text;
    std::map<std::string, json> by_task;
    for (const auto& a : json::parse(out.text)) {
      if (a["agent"] != agent) continue;
      by_task[a["task_id"].get<std::string>()] = a;
    }
    return by_task;
  }

  static std::set<std::string> Kinds(const json& attempt) {
    std::set<std::string> kinds;
    for (const auto& v : attempt["violations"]) kinds.insert(v["kind"].get<std::string>());
    return kinds;
  }

  static json Agent(const std::string& name) {
    auto out = Crucible("report " + *run_id_ + " --format json --db " + Quote(db_));
    EXPECT_EQ(out.status, 0) << out.text;
    for (const auto& row : json::parse(out.text)) {
      if (row["agent"] == name) return row;
    }
    return nullptr;
  }

  static void TheCleanAgentIsAStrictCompletionOnBothTasks();
  static void AnUnrelatedFileIsOutOfScopeAndNothingElse();
  static void WhitespaceChurnIsAReformat();
  static void APlantedKeyIsAScannerFindingMasked();
  static void ARenameWithoutItsCallSitesIsAStaleReference();
  static void EditsPiledOnAFailingRunArePileOn();
  static void AnEditAfterTheLastTestRunFailsToolCallCorrectness();
  static void TheTableShowsStrictBesideLooseCompletion();

  static inline TempDir* dir_ = nullptr;
  static inline std::string db_;
  static inline std::string* run_id_ = nullptr;
  static inline std::string* run_text_ = nullptr;
};

void FaultAgents::TheCleanAgentIsAStrictCompletionOnBothTasks() {
  auto attempts = Attempts("clean");
  ASSERT_EQ(attempts.size(), 2u);
  for (const auto& [task, a] : attempts) {
    EXPECT_EQ(a["tests_passed"], true) << a.dump(2);
    EXPECT_EQ(a["strict_completed"], true) << a.dump(2);
    EXPECT_TRUE(a["violations"].empty()) << a.dump(2);
    EXPECT_TRUE(a["failure_modes"].empty()) << a.dump(2);
    EXPECT_EQ(a["dimensions"]["replay"], 1.0) << a.dump(2);
    EXPECT_EQ(a["dimensions"]["tool_calls"], 1.0) << a.dump(2);
    EXPECT_EQ(a["dimensions"]["plan"], 1.0) << a.dump(2);
    EXPECT_EQ(a["dimensions"]["coherence"], 1.0) << a.dump(2);
    EXPECT_TRUE(a["dimensions"]["rollback"].is_null()) << "the tests never failed";
  }
  auto row = Agent("clean");
  EXPECT_EQ(row["strict_completion_rate"], 1.0) << row.dump(2);
  EXPECT_EQ(row["completion_rate"], 1.0) << row.dump(2);
}

void FaultAgents::AnUnrelatedFileIsOutOfScopeAndNothingElse() {
  for (const auto& [task, a] : Attempts("scope")) {
    EXPECT_EQ(a["tests_passed"], true) << a.dump(2);
    EXPECT_EQ(a["strict_completed"], false) << a.dump(2);
    EXPECT_EQ(Kinds(a), std::set<std::string>{"out_of_scope"}) << a.dump(2);
    EXPECT_EQ(a["violations"][0]["file"], "inventory/utils.py") << a.dump(2);
    EXPECT_THAT(a["failure_modes"], Contains("scope-creep")) << a.dump(2);
    EXPECT_GE(a["blast_radius"]["files"].get<int>(), 2) << a.dump(2);
  }
  auto row = Agent("scope");
  EXPECT_EQ(row["completion_rate"], 1.0) << "the tests pass: loose completion";
  EXPECT_EQ(row["strict_completion_rate"], 0.0) << "a reviewer would not merge it";
  EXPECT_EQ(row["violations"]["out_of_scope"], 2) << row.dump(2);
}

void FaultAgents::WhitespaceChurnIsAReformat() {
  bool seen = false;
  for (const auto& [task, a] : Attempts("reformat")) {
    if (Kinds(a).empty()) continue;  // the churn is on the config task only
    seen = true;
    EXPECT_EQ(Kinds(a), std::set<std::string>{"reformat"}) << a.dump(2);
    EXPECT_EQ(a["violations"][0]["file"], "inventory/config.py") << a.dump(2);
    EXPECT_EQ(a["violations"][0]["line"], 19) << a.dump(2);
    EXPECT_DOUBLE_EQ(a["dimensions"]["replay"].get<double>(), 0.7) << a.dump(2);
    EXPECT_EQ(a["strict_completed"], false);
  }
  EXPECT_TRUE(seen) << "no attempt had a reformat violation";
}

void FaultAgents::APlantedKeyIsAScannerFindingMasked() {
  for (const auto& [task, a] : Attempts("secret")) {
    EXPECT_EQ(Kinds(a), std::set<std::string>{"scanner"}) << a.dump(2);
    ASSERT_FALSE(a["findings"].empty()) << a.dump(2);
    bool aws = false;
    for (const auto& f : a["findings"]) {
      EXPECT_THAT(f["match"].get<std::string>(), ::testing::Not(HasSubstr("Z7Q4M2XK9P3LT6WB")))
          << "the secret is masked";
      aws |=
          f["rule"].get<std::string>().find("aws") != std::string::npos && f["severity"] == "error";
    }
    EXPECT_TRUE(aws) << a.dump(2);
  }
}

void FaultAgents::ARenameWithoutItsCallSitesIsAStaleReference() {
  bool seen = false;
  for (const auto& [task, a] : Attempts("stale")) {
    if (Kinds(a).empty()) continue;  // the config task is solved cleanly
    seen = true;
    EXPECT_EQ(Kinds(a), std::set<std::string>{"stale_reference"}) << a.dump(2);
    for (const auto& v : a["violations"]) {
      EXPECT_EQ(v["file"], "inventory/cli.py") << a.dump(2);
      EXPECT_THAT(v["detail"].get<std::string>(), HasSubstr("calc_total")) << a.dump(2);
    }
    EXPECT_THAT(a["failure_modes"], Contains("context-blindness")) << a.dump(2);
    EXPECT_LT(a["dimensions"]["coherence"].get<double>(), 1.0) << a.dump(2);
    EXPECT_EQ(a["strict_completed"], false);
  }
  EXPECT_TRUE(seen) << "no attempt had a stale reference";
}

void FaultAgents::EditsPiledOnAFailingRunArePileOn() {
  for (const auto& [task, a] : Attempts("pileon")) {
    EXPECT_TRUE(a["violations"].empty()) << "the diff is clean: " << a.dump(2);
    EXPECT_EQ(a["strict_completed"], true) << a.dump(2);
    EXPECT_EQ(a["rollback"]["pile_on"], true) << a.dump(2);
    EXPECT_GT(a["rollback"]["edits_per_failure"].get<double>(), 2.0) << a.dump(2);
    EXPECT_EQ(a["rollback"]["revert_ratio"], 0.0) << a.dump(2);
    EXPECT_LT(a["dimensions"]["rollback"].get<double>(), 1.0) << a.dump(2);
  }
  // Only this agent's tests ever failed.
  for (const char* other : {"clean", "scope", "blind"}) {
    for (const auto& [task, a] : Attempts(other)) {
      EXPECT_TRUE(a["dimensions"]["rollback"].is_null()) << other << ": " << a.dump(2);
    }
  }
}

void FaultAgents::AnEditAfterTheLastTestRunFailsToolCallCorrectness() {
  for (const auto& [task, a] : Attempts("blind")) {
    EXPECT_TRUE(a["violations"].empty()) << a.dump(2);
    EXPECT_LT(a["dimensions"]["tool_calls"].get<double>(), 1.0) << a.dump(2);
  }
  for (const auto& [task, a] : Attempts("clean")) {
    EXPECT_EQ(a["dimensions"]["tool_calls"], 1.0) << a.dump(2);
  }
}

void FaultAgents::TheTableShowsStrictBesideLooseCompletion() {
  EXPECT_THAT(*run_text_, HasSubstr("strict")) << *run_text_;
  auto table = Crucible("report " + *run_id_ + " --db " + Quote(db_));
  ASSERT_EQ(table.status, 0) << table.text;
  for (const char* f : kFaults) EXPECT_THAT(table.text, HasSubstr(f));
  EXPECT_THAT(table.text, HasSubstr("replay")) << table.text;
}

// One test, so the suite is mined and run once (each ctest test is a process
// of its own); each check names itself when it fails.
TEST_F(FaultAgents, EachFaultIsNamedAndNothingElse) {
  {
    SCOPED_TRACE("TheCleanAgentIsAStrictCompletionOnBothTasks");
    TheCleanAgentIsAStrictCompletionOnBothTasks();
  }
  {
    SCOPED_TRACE("AnUnrelatedFileIsOutOfScopeAndNothingElse");
    AnUnrelatedFileIsOutOfScopeAndNothingElse();
  }
  {
    SCOPED_TRACE("WhitespaceChurnIsAReformat");
    WhitespaceChurnIsAReformat();
  }
  {
    SCOPED_TRACE("APlantedKeyIsAScannerFindingMasked");
    APlantedKeyIsAScannerFindingMasked();
  }
  {
    SCOPED_TRACE("ARenameWithoutItsCallSitesIsAStaleReference");
    ARenameWithoutItsCallSitesIsAStaleReference();
  }
  {
    SCOPED_TRACE("EditsPiledOnAFailingRunArePileOn");
    EditsPiledOnAFailingRunArePileOn();
  }
  {
    SCOPED_TRACE("AnEditAfterTheLastTestRunFailsToolCallCorrectness");
    AnEditAfterTheLastTestRunFailsToolCallCorrectness();
  }
  {
    SCOPED_TRACE("TheTableShowsStrictBesideLooseCompletion");
    TheTableShowsStrictBesideLooseCompletion();
  }
}

}  // namespace
}  // namespace crucible
