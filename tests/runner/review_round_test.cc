// Review rounds (docs/review-loop.md) on a real git repository, real
// workspaces and the real sandbox: CI on the visible tests, the scoped
// review, the feedback an agent reads, and what the loop stores.
#include "agent-runner/review_round.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent-runner/attempt.h"
#include "base/fs.h"
#include "scoring/score.h"
#include "tests/runner/value_tests.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::runner {
namespace {

using crucible::testing::GitRepo;
using crucible::testing::Shell;
using crucible::testing::ShellQuote;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// The hidden test's name: it must never reach the agent.
constexpr char kHiddenTest[] = "hidden_marker_q7";

// value.txt must become 2 (the golden patch); tests/test_lib.sh is a visible
// test that passes as long as lib.txt says "helper"; the hidden test patch
// adds tests/test_hidden_marker_q7.sh.
v1::GoldenTask RoundsTask(GitRepo& repo) {
  repo.Write("run_tests.sh", kRunShellTests);
  repo.Write("value.txt", "1\n");
  repo.Write("lib.txt", "helper\n");
  repo.Write("README.md", "# fixture\n");
  repo.Write("tests/test_lib.sh", "grep -qx helper lib.txt\n");
  v1::GoldenTask task;
  task.set_suite("s");
  task.set_id("t-1");
  task.set_repo_path(repo.path());
  task.set_base_commit(repo.Commit("base"));
  task.set_intent("Set the value to 2.");
  task.set_source_patch(
      "diff --git a/value.txt b/value.txt\n--- a/value.txt\n+++ b/value.txt\n"
      "@@ -1 +1 @@\n-1\n+2\n");
  task.set_test_patch(
      "diff --git a/tests/test_hidden_marker_q7.sh b/tests/test_hidden_marker_q7.sh\n"
      "new file mode 100644\n--- /dev/null\n+++ b/tests/test_hidden_marker_q7.sh\n"
      "@@ -0,0 +1 @@\n+grep -qx 2 value.txt\n");
  task.add_fail_to_pass(std::string("tests::") + kHiddenTest);
  task.add_pass_to_pass("tests::lib");
  task.set_test_cmd("sh run_tests.sh {junit}");
  task.set_test_timeout_s(30);
  return task;
}

// The round the agent is in, read from its task file.
constexpr char kRound[] = "r=$(sed -n 's/^  \"round\": \\([0-9]*\\),$/\\1/p' \"$CRUCIBLE_TASK\"); ";

class ReviewRoundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    task_ = RoundsTask(repo_);
    auto dir = TempDir::Create("crucible-rounds-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  Result<v1::Evidence> Perform(const std::string& command, int rounds,
                               std::vector<v1::ReviewerSpec> reviewers = {}) {
    v1::AgentSpec agent;
    agent.set_name("a");
    agent.set_command(command);
    agent.set_timeout_s(60);
    agent.set_rounds(rounds);
    AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt-" + std::to_string(++n_);
    ctx.emit = [this](v1::TraceEvent ev) { events_.push_back(std::move(ev)); };
    ctx.reviewers = std::move(reviewers);
    last_workdir_ = ctx.workdir;
    return PerformAttempt(task_, agent, ctx);
  }

  v1::Score Score(const v1::Evidence& e) { return scoring::ScoreAttempt(task_, e); }

  std::vector<std::string> RunnerEvents() {
    std::vector<std::string> names;
    for (const auto& e : events_) {
      if (e.source() == "runner" &&
          (e.name().starts_with("round_") || e.name() == "ci" || e.name() == "review"))
        names.push_back(e.name());
    }
    return names;
  }

  static v1::ReviewerSpec Reviewer(const std::string& name, const std::string& command,
                                   int timeout_s = 30) {
    v1::ReviewerSpec r;
    r.set_name(name);
    r.set_command(command);
    r.set_timeout_s(timeout_s);
    return r;
  }

  GitRepo repo_;
  v1::GoldenTask task_;
  std::unique_ptr<TempDir> dir_;
  std::vector<v1::TraceEvent> events_;
  std::string last_workdir_;
  int n_ = 0;
};

TEST_F(ReviewRoundTest, AnAgentThatBreaksAVisibleTestAndFixesItWhenToldNeedsTwoRounds) {
  // Round 1 breaks tests::lib; round 2 puts it back when the feedback names it.
  auto e = Perform(std::string(kRound) +
                       "echo 2 > value.txt; "
                       "if [ \"$r\" = 1 ]; then echo broken > lib.txt; "
                       "elif grep -q '\"test\": \"tests::lib\"' \"$CRUCIBLE_TASK\"; then "
                       "echo helper > lib.txt; fi",
                   3);
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->rounds_size(), 2);
  EXPECT_EQ(e->rounds_allowed(), 3);
  const auto& r1 = e->rounds(0);
  EXPECT_EQ(r1.number(), 1);
  EXPECT_FALSE(r1.ci_passed());
  EXPECT_THAT(std::vector<std::string>(r1.ci_failing().begin(), r1.ci_failing().end()),
              ::testing::ElementsAre("tests::lib"));
  EXPECT_FALSE(r1.merge_ready());
  EXPECT_THAT(r1.feedback_text(), HasSubstr("tests::lib"));
  EXPECT_THAT(r1.diff(), HasSubstr("+broken"));
  const auto& r2 = e->rounds(1);
  EXPECT_TRUE(r2.ci_passed()) << r2.ci_error();
  EXPECT_TRUE(r2.merge_ready());
  EXPECT_TRUE(r2.feedback_text().empty());  // nothing followed
  // The hidden tests ran once, on the final change.
  v1::Score s = Score(*e);
  EXPECT_TRUE(s.completed()) << s.reason();
  EXPECT_EQ(s.rounds(), 2);
  EXPECT_EQ(s.rounds_allowed(), 3);
  EXPECT_EQ(s.merge_ready_round(), 2);
  EXPECT_FALSE(s.strict_completed());  // strict needs round 1
  EXPECT_EQ(RunnerEvents(), (std::vector<std::string>{"round_start", "ci", "review", "round_end",
                                                      "round_start", "ci", "review", "round_end"}));
}

TEST_F(ReviewRoundTest, AnAgentThatIgnoresFeedbackIsNeverMergeReadyWithinThreeRounds) {
  auto e = Perform("echo 2 > value.txt; echo broken > lib.txt", 3);
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->rounds_size(), 3);
  for (const auto& r : e->rounds()) EXPECT_FALSE(r.merge_ready());
  EXPECT_FALSE(e->rounds(0).feedback_text().empty());
  EXPECT_FALSE(e->rounds(1).feedback_text().empty());
  EXPECT_TRUE(e->rounds(2).feedback_text().empty());  // the last round gets none
  v1::Score s = Score(*e);
  EXPECT_EQ(s.merge_ready_round(), 0);
  EXPECT_EQ(s.rounds(), 3);
  EXPECT_FALSE(s.completed());  // tests::lib, a PASS_TO_PASS test, is broken
}

TEST_F(ReviewRoundTest, MergeReadyInRoundOneStopsTheLoopAndIsStrict) {
  auto e = Perform("echo 2 > value.txt", 3);
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->rounds_size(), 1);
  EXPECT_TRUE(e->rounds(0).merge_ready());
  v1::Score s = Score(*e);
  EXPECT_EQ(s.merge_ready_round(), 1);
  EXPECT_TRUE(s.strict_completed());
}

TEST_F(ReviewRoundTest, OneRoundIsTodaysAttemptAndBuiltinsHaveNoRounds) {
  auto e = Perform("echo 2 > value.txt; echo broken > lib.txt", 1);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->rounds_size(), 0);
  EXPECT_TRUE(RunnerEvents().empty());
  auto oracle = Perform("builtin:oracle", 3);
  ASSERT_TRUE(oracle) << oracle.error().ToString();
  EXPECT_EQ(oracle->rounds_size(), 0);
  EXPECT_EQ(Score(*oracle).merge_ready_round(), 1);
}

TEST_F(ReviewRoundTest, TheReviewNamesAnOutOfScopeFileAndTheAgentRevertsIt) {
  auto e = Perform(std::string(kRound) +
                       "echo 2 > value.txt; "
                       "if [ \"$r\" = 1 ]; then echo tidied >> README.md; "
                       "elif grep -q '\"kind\": \"out_of_scope\"' \"$CRUCIBLE_TASK\"; then "
                       "printf '# fixture\\n' > README.md; fi",
                   3);
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->rounds_size(), 2);
  const auto& r1 = e->rounds(0);
  EXPECT_TRUE(r1.ci_passed());
  ASSERT_EQ(r1.review_size(), 1);
  EXPECT_EQ(r1.review(0).kind(), "out_of_scope");
  EXPECT_EQ(r1.review(0).file(), "README.md");
  EXPECT_EQ(r1.review(0).reviewer(), "crucible");
  // What the agent is told names nothing of the golden patch.
  EXPECT_THAT(r1.review(0).sentence(), Not(HasSubstr("value.txt")));
  EXPECT_THAT(r1.feedback_text(), Not(HasSubstr("golden")));
  EXPECT_TRUE(e->rounds(1).merge_ready());
  EXPECT_EQ(Score(*e).merge_ready_round(), 2);
}

TEST_F(ReviewRoundTest, AnEmptyChangeIsNeverMergeReady) {
  auto e = Perform("true", 2);
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->rounds_size(), 2);
  ASSERT_EQ(e->rounds(0).review_size(), 1);
  EXPECT_EQ(e->rounds(0).review(0).kind(), "empty_change");
  EXPECT_EQ(Score(*e).merge_ready_round(), 0);
}

TEST_F(ReviewRoundTest, HiddenTestsAreNeverVisibleInCiOutputFeedbackOrWorkspace) {
  // Each round the agent keeps its task file and a listing of everything it
  // can see (outside the workspace, so its diff stays the same), and fails
  // loudly if the hidden test's name is anywhere it can read.
  auto e = Perform(std::string(kRound) +
                       "cat \"$CRUCIBLE_TASK\" >> /crucible/seen-tasks.txt; "
                       "ls -laR /workspace /crucible >> /crucible/seen-files.txt; "
                       "if grep -rq " +
                       kHiddenTest +
                       " /workspace /crucible/task.json; then exit 42; fi; "
                       "echo 2 > value.txt; echo broken > lib.txt",
                   3);
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->rounds_size(), 3);
  for (const auto& r : e->rounds()) {
    EXPECT_EQ(r.agent_exit().exit_code(), 0) << "round " << r.number() << " saw the hidden test";
    EXPECT_THAT(r.feedback_text(), Not(HasSubstr(kHiddenTest)));
    EXPECT_THAT(r.ci().output_tail(), Not(HasSubstr(kHiddenTest)));
    for (const auto& t : r.ci().tests()) EXPECT_THAT(t.id(), Not(HasSubstr(kHiddenTest)));
    for (const auto& id : r.ci_failing()) EXPECT_THAT(id, Not(HasSubstr(kHiddenTest)));
  }
  const std::string io = last_workdir_ + "/agent/io";
  const std::string tasks = ReadFile(io + "/seen-tasks.txt").value_or("");
  EXPECT_THAT(tasks, HasSubstr("\"round\": 3"));  // every round's task file was kept
  EXPECT_THAT(tasks, HasSubstr("tests::lib"));    // the feedback is in it
  EXPECT_THAT(tasks, Not(HasSubstr(kHiddenTest)));
  EXPECT_EQ(Shell("grep -rl " + std::string(kHiddenTest) + " " + ShellQuote(io) + " " +
                  ShellQuote(last_workdir_ + "/agent/workspace") + " || true"),
            "");
  // ... yet the hidden test did run, once, after the last round.
  bool hidden_ran = false;
  for (const auto& t : e->tests().tests())
    hidden_ran |= t.id().find(kHiddenTest) != std::string::npos;
  EXPECT_TRUE(hidden_ran);
}

TEST_F(ReviewRoundTest, AReviewersCommentsJoinTheFeedback) {
  const std::string reviewer =
      "if grep -q '\"round\": 1' \"$CRUCIBLE_REVIEW_INPUT\"; then "
      "echo '{\"comment\": \"Say why in a comment.\", \"file\": \"value.txt\", \"line\": 1}'; fi";
  auto e = Perform(std::string(kRound) +
                       "echo 2 > value.txt; "
                       "[ \"$r\" = 2 ] && grep -q 'Say why in a comment' \"$CRUCIBLE_TASK\" && "
                       "echo reviewed > /crucible/got-it; true",
                   3, {Reviewer("style", reviewer)});
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->rounds_size(), 2);
  const auto& r1 = e->rounds(0);
  EXPECT_TRUE(r1.ci_passed());
  ASSERT_EQ(r1.review_size(), 1);
  EXPECT_EQ(r1.review(0).reviewer(), "style");
  EXPECT_EQ(r1.review(0).kind(), "comment");
  EXPECT_EQ(r1.review(0).file(), "value.txt");
  EXPECT_EQ(r1.review(0).line(), 1);
  EXPECT_THAT(r1.feedback_text(), HasSubstr("Say why in a comment."));
  EXPECT_EQ(::access((last_workdir_ + "/agent/io/got-it").c_str(), F_OK), 0);
  EXPECT_TRUE(e->rounds(1).merge_ready());
  EXPECT_EQ(Score(*e).merge_ready_round(), 2);
}

TEST_F(ReviewRoundTest, AReviewerThatHangsOrPrintsGarbageIsAStageErrorNotTheAgents) {
  auto e = Perform("echo 2 > value.txt", 2,
                   {Reviewer("slow", "sleep 60", 1),
                    Reviewer("noisy",
                             "echo 'this is not json'; echo '{\"comment\": 3}'; "
                             "echo '{\"comment\": \"fine\"}'; exit 2")});
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_GE(e->rounds_size(), 1);
  const auto& r1 = e->rounds(0);
  std::string errors;
  for (const auto& s : r1.stage_errors()) errors += s + "\n";
  EXPECT_THAT(errors, HasSubstr("stage 2, reviewer slow: timed out after 1 s"));
  EXPECT_THAT(errors, HasSubstr("stage 2, reviewer noisy: 2 of its output lines ignored"));
  EXPECT_THAT(errors, HasSubstr("line 1: not a JSON object"));
  EXPECT_THAT(errors, HasSubstr("stage 2, reviewer noisy: exited 2"));
  // The good line is kept; it is what keeps round 1 from being merge-ready.
  ASSERT_EQ(r1.review_size(), 1);
  EXPECT_EQ(r1.review(0).sentence(), "fine");
  EXPECT_THAT(r1.feedback_text(), Not(HasSubstr("stage 2")));  // not the agent's business
}

TEST_F(ReviewRoundTest, AnAgentThatDeletesTheWorkspaceBetweenRoundsIsItsOwnFailure) {
  auto e = Perform(std::string(kRound) +
                       "if [ \"$r\" = 1 ]; then echo 2 > value.txt; echo broken > lib.txt; "
                       "else rm -rf /workspace/* /workspace/.[!.]* 2>/dev/null; fi; true",
                   2);
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->rounds_size(), 2);
  EXPECT_FALSE(e->rounds(1).ci_passed());
  // `sh run_tests.sh` finds no script: no report, and CI says so.
  EXPECT_THAT(e->rounds(1).ci_error(), HasSubstr("exited 2 without writing a report"));
  v1::Score s = Score(*e);
  EXPECT_FALSE(s.completed());
  EXPECT_EQ(s.merge_ready_round(), 0);
}

TEST(ReviewFeedbackTest, FeedbackLargerThanTheLimitIsCutAndSaysSo) {
  v1::ReviewRound round;
  round.set_number(1);
  for (int i = 0; i < 5000; ++i) {
    std::string id = "tests.test_many::test_" + std::to_string(i);
    round.add_ci_failing(id);
    auto* t = round.mutable_ci()->add_tests();
    t->set_id(id);
    t->set_status(v1::TestOutcome::FAILED);
    t->set_message(std::string(10000, 'x'));
  }
  round.mutable_ci()->set_output_tail(std::string(4096, 'y'));
  for (int i = 0; i < 3000; ++i) {
    auto* c = round.add_review();
    c->set_reviewer("crucible");
    c->set_kind("reformat");
    c->set_file("f" + std::to_string(i) + ".py");
    c->set_sentence(std::string(3000, 'z'));
  }
  json fb = MakeFeedback(round);
  EXPECT_LE(fb.dump().size(), kMaxFeedbackBytes);
  EXPECT_THAT(round.feedback_truncated(), HasSubstr("cut to stay under"));
  EXPECT_EQ(fb["truncated"], round.feedback_truncated());
  EXPECT_GT(fb["ci"]["failing_not_listed"].get<int>(), 0);
  EXPECT_GT(fb["review_not_listed"].get<int>(), 0);
  EXPECT_THAT(round.feedback_text(), HasSubstr("tests.test_many::test_0"));
  // Invalid UTF-8 in a message does not break the JSON.
  v1::ReviewRound bad;
  bad.set_number(2);
  bad.add_ci_failing("t");
  auto* t = bad.mutable_ci()->add_tests();
  t->set_id("t");
  t->set_status(v1::TestOutcome::FAILED);
  t->set_message("\xff\xfe broken");
  EXPECT_NO_THROW(MakeFeedback(bad).dump());
}

}  // namespace
}  // namespace crucible::runner
