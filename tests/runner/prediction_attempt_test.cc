// A predictions agent (command "predictions:FILE") on a real git repository,
// a real workspace and the real sandbox: its patch is the change, applied as
// SWE-bench's harness applies it.
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent-runner/attempt.h"
#include "base/fs.h"
#include "tests/runner/value_tests.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::runner {
namespace {

using ::testing::HasSubstr;

class PredictionAttempt : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    task_ = ValueTask(repo_);
    auto dir = TempDir::Create("crucible-prediction-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  Result<v1::Evidence> Perform(const std::string& patch) {
    v1::AgentSpec agent;
    agent.set_name("preds");
    agent.set_command("predictions:/nonexistent/preds.jsonl");  // never read by the runner
    agent.set_timeout_s(60);
    AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt-" + std::to_string(++n_);
    ctx.emit = [this](v1::TraceEvent ev) { events_.push_back(std::move(ev)); };
    ctx.prediction = patch;
    events_.clear();
    return PerformAttempt(task_, agent, ctx);
  }

  bool TestPassed(const v1::Evidence& e) {
    for (const auto& t : e.tests().tests()) {
      if (t.id() == "tests.check::test_value") return t.status() == v1::TestOutcome::PASSED;
    }
    return false;
  }

  // The attrs of the runner event `name`; null when there is none.
  nlohmann::json Event(const std::string& name) {
    for (const auto& e : events_) {
      if (e.source() == "runner" && e.name() == name) return nlohmann::json::parse(e.attrs_json());
    }
    return nullptr;
  }

  crucible::testing::GitRepo repo_;
  v1::GoldenTask task_;
  std::unique_ptr<TempDir> dir_;
  std::vector<v1::TraceEvent> events_;
  int n_ = 0;
};

const char kRight[] =
    "diff --git a/value.txt b/value.txt\n--- a/value.txt\n+++ b/value.txt\n@@ -1 +1 @@\n-1\n+2\n";
const char kWrong[] =
    "diff --git a/value.txt b/value.txt\n--- a/value.txt\n+++ b/value.txt\n@@ -1 +1 @@\n-1\n+3\n";

TEST_F(PredictionAttempt, ARightPatchIsAppliedAndTested) {
  auto e = Perform(kRight);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_TRUE(e->diff_error().empty()) << e->diff_error();
  EXPECT_FALSE(e->no_submission());
  EXPECT_TRUE(TestPassed(*e)) << e->tests().output_tail();
  EXPECT_NE(e->final_diff().find("+2"), std::string::npos);
  EXPECT_EQ(Event("prediction")["submitted"], true);
  EXPECT_EQ(Event("prediction")["applied"], "git apply");
  // Nothing ran as the agent: no trace beyond the runner's events.
  for (const auto& ev : events_) EXPECT_EQ(ev.source(), "runner") << ev.name();
  EXPECT_EQ(e->trace_events(), 0u);
}

TEST_F(PredictionAttempt, AWrongPatchIsTestedAndFails) {
  auto e = Perform(kWrong);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_TRUE(e->diff_error().empty()) << e->diff_error();
  EXPECT_FALSE(e->no_submission());
  ASSERT_GT(e->tests().tests_size(), 0);
  EXPECT_FALSE(TestPassed(*e));
}

TEST_F(PredictionAttempt, AnEmptyPatchIsNoSubmissionAndNothingIsTested) {
  for (const std::string& patch : {std::string(), std::string(" \n\t\n")}) {
    auto e = Perform(patch);
    ASSERT_TRUE(e) << e.error().ToString();
    EXPECT_TRUE(e->no_submission());
    EXPECT_TRUE(e->diff_error().empty());
    EXPECT_EQ(e->tests().tests_size(), 0);
    EXPECT_TRUE(e->final_diff().empty());
    EXPECT_EQ(Event("prediction")["submitted"], false);
    EXPECT_TRUE(Event("run_tests").is_null());
  }
}

TEST_F(PredictionAttempt, APatchThatDoesNotApplyIsTheAgentsFailureWithGitsReason) {
  auto e = Perform(
      "diff --git a/value.txt b/value.txt\n--- a/value.txt\n+++ b/value.txt\n@@ -1 +1 @@\n"
      "-7\n+2\n");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_FALSE(e->no_submission());
  EXPECT_THAT(e->diff_error(), HasSubstr("the prediction does not apply: "));
  EXPECT_THAT(e->diff_error(), HasSubstr("value.txt"));
  EXPECT_EQ(e->tests().tests_size(), 0);
  EXPECT_EQ(Event("prediction")["applied"], "");

  auto prose = Perform("I changed value.txt to hold 2.");
  ASSERT_TRUE(prose) << prose.error().ToString();
  EXPECT_THAT(prose->diff_error(),
              HasSubstr("the prediction does not apply: the patch has no unified diff header"));
}

// SWE-bench's harness falls back on `patch --batch --fuzz=5 -p1`: a patch
// whose context only matches with fuzz resolves there, so it does here.
TEST_F(PredictionAttempt, APatchThatAppliesOnlyWithFuzzIsAppliedAsTheHarnessDoes) {
  auto e = Perform(
      "diff --git a/value.txt b/value.txt\n--- a/value.txt\n+++ b/value.txt\n@@ -1,2 +1,2 @@\n"
      "-1\n+2\n not in the file\n");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_TRUE(e->diff_error().empty()) << e->diff_error();
  EXPECT_EQ(Event("prediction")["applied"], "patch --fuzz=5");
  EXPECT_TRUE(TestPassed(*e)) << e->tests().output_tail();
  // Only the change reaches the diff: no backup or reject files.
  EXPECT_EQ(std::vector<std::string>(e->files_touched().begin(), e->files_touched().end()),
            std::vector<std::string>{"value.txt"});
}

}  // namespace
}  // namespace crucible::runner
