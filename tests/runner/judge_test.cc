// Judges (`crucible run --judge NAME=COMMAND`) on a real attempt: a real git
// repository, workspace and sandbox.
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent-runner/attempt.h"
#include "base/fs.h"
#include "tests/runner/value_tests.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::runner {
namespace {

using crucible::testing::GitRepo;

class JudgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    task_ = ValueTask(repo_);
    auto dir = TempDir::Create("crucible-judge-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  Result<v1::Evidence> Perform(const std::string& agent_command,
                               const std::vector<v1::JudgeSpec>& judges) {
    v1::AgentSpec agent;
    agent.set_name("a");
    agent.set_command(agent_command);
    agent.set_timeout_s(60);
    AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt";
    ctx.emit = [this](v1::TraceEvent ev) { events_.push_back(std::move(ev)); };
    ctx.judges = judges;
    return PerformAttempt(task_, agent, ctx);
  }

  static v1::JudgeSpec Judge(const std::string& name, const std::string& command) {
    v1::JudgeSpec j;
    j.set_name(name);
    j.set_command(command);
    j.set_timeout_s(30);
    return j;
  }

  nlohmann::json JudgeEvent(const std::string& name) {
    for (const auto& e : events_) {
      if (e.source() != "runner" || e.name() != "judge") continue;
      auto attrs = nlohmann::json::parse(e.attrs_json());
      if (attrs["judge"] == name) return attrs;
    }
    return nullptr;
  }

  GitRepo repo_;
  v1::GoldenTask task_;
  std::unique_ptr<TempDir> dir_;
  std::vector<v1::TraceEvent> events_;
};

TEST_F(JudgeTest, ScoresAreKeptAndGarbageIsCountedNotFatal) {
  // The judge reads its input, checks what it was told and prints one good
  // line, then lines that must be refused.
  const std::string script =
      "python3 -c 'import json,os; j=json.load(open(os.environ[\"CRUCIBLE_JUDGE_INPUT\"])); "
      "ok = j[\"intent\"] == \"Set the value to 2.\" and \"+2\" in j[\"agent_diff\"] and "
      "\"+2\" in j[\"golden_diff\"] and j[\"tests\"][\"passed\"] >= 1 and "
      "j[\"trace_summary\"][\"agent_events\"].get(\"plan\") == 1 and "
      "j[\"trace_summary\"][\"plan\"][\"files\"] == [\"value.txt\"]; "
      "print(json.dumps({\"dimension\": \"replay\", \"score\": 0.75 if ok else 0.0, "
      "\"reason\": \"input as expected\" if ok else json.dumps(j)})); "
      "print(\"not json\"); print(json.dumps({\"dimension\": \"plan\", \"score\": 7})); "
      "print(json.dumps({\"score\": 0.5}))'";
  auto e = Perform(
      "echo '{\"kind\":\"AGENT\",\"name\":\"plan\",\"attrs\":{\"files\":[\"value.txt\"]}}' "
      ">> \"$CRUCIBLE_TRACE\"; echo 2 > value.txt",
      {Judge("reviewer", script)});
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->judge_scores_size(), 1) << e->DebugString();
  EXPECT_EQ(e->judge_scores(0).judge(), "reviewer");
  EXPECT_EQ(e->judge_scores(0).dimension(), "replay");
  EXPECT_DOUBLE_EQ(e->judge_scores(0).score(), 0.75) << e->judge_scores(0).reason();
  EXPECT_EQ(e->judge_scores(0).reason(), "input as expected");
  auto ev = JudgeEvent("reviewer");
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["scores"], 1);
  EXPECT_EQ(ev["rejected"], 3);
  EXPECT_EQ(ev["first_rejected"], "not a JSON object");
}

TEST_F(JudgeTest, AFailingOrHangingJudgeCostsTheAttemptNothing) {
  auto hang = Judge("slow", "sleep 600");
  hang.set_timeout_s(1);
  auto e =
      Perform("echo 2 > value.txt", {Judge("crash", "exit 3"), hang,
                                     Judge("fine", "echo '{\"dimension\":\"plan\",\"score\":1}'")});
  ASSERT_TRUE(e) << e.error().ToString();
  bool passed = false;
  for (const auto& t : e->tests().tests()) passed |= t.status() == v1::TestOutcome::PASSED;
  EXPECT_TRUE(passed) << "the tests ran as without judges";
  ASSERT_EQ(e->judge_scores_size(), 1);
  EXPECT_EQ(e->judge_scores(0).judge(), "fine");
  EXPECT_EQ(JudgeEvent("crash")["exit_code"], 3);
  EXPECT_EQ(JudgeEvent("slow")["timed_out"], true);
}

TEST_F(JudgeTest, AJudgeCannotWriteItsInput) {
  auto e = Perform("echo 2 > value.txt", {Judge("w",
                                                "echo x > /crucible/judge.json && "
                                                "echo '{\"dimension\":\"plan\",\"score\":0}'; "
                                                "echo '{\"dimension\":\"replay\",\"score\":1}'")});
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->judge_scores_size(), 1);
  EXPECT_EQ(e->judge_scores(0).dimension(), "replay");
}

}  // namespace
}  // namespace crucible::runner
