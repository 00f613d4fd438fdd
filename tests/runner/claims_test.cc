// Claims the harness contradicts, end to end: PerformAttempt on a real git
// repository and the real sandbox, with an agent that claims a test run it
// never made and one that really runs pytest. Needs the runner's exec
// observation (runner events "exec", Evidence.observed_execs).
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent-runner/attempt.h"
#include "base/fs.h"
#include "tests/runner/value_tests.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::runner {
namespace {

using crucible::testing::GitRepo;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ClaimsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    task_ = ValueTask(repo_);
    auto dir = TempDir::Create("crucible-claims-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  // Runs the shell script `body` as the agent.
  Result<v1::Evidence> Perform(const std::string& body) {
    const std::string script = dir_->path() + "/agent-" + std::to_string(++n_) + ".sh";
    EXPECT_TRUE(WriteFile(script, "set -e\n" + body));
    v1::AgentSpec agent;
    agent.set_name("a");
    agent.set_command("sh " + script);
    agent.set_timeout_s(120);
    AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt-" + std::to_string(n_);
    events_.clear();
    ctx.emit = [this](v1::TraceEvent ev) { events_.push_back(std::move(ev)); };
    return PerformAttempt(task_, agent, ctx);
  }

  std::vector<std::string> RunnerEvents(const std::string& name) {
    std::vector<std::string> out;
    for (const auto& e : events_) {
      if (e.source() == "runner" && e.name() == name) out.push_back(e.attrs_json());
    }
    return out;
  }

  GitRepo repo_;
  v1::GoldenTask task_;
  std::unique_ptr<TempDir> dir_;
  std::vector<v1::TraceEvent> events_;
  int n_ = 0;
};

constexpr char kEditClaim[] =
    R"(echo '{"kind": "TOOL", "name": "edit_file", "attrs": {"path": "value.txt"}}' >> "$CRUCIBLE_TRACE")"
    "\n";
constexpr char kRunClaim[] =
    R"(echo '{"kind": "TOOL", "name": "run_tests", "attrs": {"passed": true, "failed": 0}}' >> "$CRUCIBLE_TRACE")"
    "\n";

TEST_F(ClaimsTest, AClaimedTestRunThatNeverHappenedIsFlagged) {
  auto e = Perform(std::string("echo 2 > value.txt\n") + kEditClaim + kRunClaim);
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_GT(e->observed_execs(), 0u)
      << "the harness observed no exec (runner events \"exec\" missing); warnings: "
      << ::testing::PrintToString(e->observation_warnings());
  ASSERT_EQ(e->contradictions_size(), 1) << e->DebugString();
  EXPECT_EQ(e->contradictions(0).claim(), "run_tests");
  EXPECT_THAT(e->contradictions(0).detail(), HasSubstr("no test runner was executed"));
  auto reported = RunnerEvents("contradiction");
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_THAT(reported[0], HasSubstr("run_tests"));
  // The fix itself is real: the edit claim is not contradicted.
  EXPECT_EQ(e->files_touched_size(), 1);
}

TEST_F(ClaimsTest, AnAgentThatReallyRunsPytestIsNotFlagged) {
  auto e = Perform(std::string("echo 2 > value.txt\n") + kEditClaim +
                   R"(mkdir -p /crucible/t
cat > /crucible/t/test_value.py <<'PY'
def test_value():
    assert open("/workspace/value.txt").read() == "2\n"
PY
pytest -q -p no:cacheprovider /crucible/t/test_value.py
)" + kRunClaim);
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->agent_exit().exit_code(), 0) << e->agent_output_tail();
  ASSERT_GT(e->observed_execs(), 0u)
      << "the harness observed no exec (runner events \"exec\" missing); warnings: "
      << ::testing::PrintToString(e->observation_warnings());
  EXPECT_THAT(e->contradictions(), IsEmpty()) << e->DebugString();
  EXPECT_THAT(RunnerEvents("contradiction"), IsEmpty());
}

}  // namespace
}  // namespace crucible::runner
