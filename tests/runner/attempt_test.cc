// PerformAttempt on a real git repository, a real workspace and the real
// sandbox, with agents that behave well and agents that do not.
#include "agent-runner/attempt.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "golden/test_infra.h"
#include "tests/runner/value_tests.h"
#include "tests/vcs/git_fixture.h"
#include "vcs/repo.h"

namespace crucible::runner {
namespace {

using crucible::testing::GitRepo;

class AttemptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    task_ = ValueTask(repo_);
    base_ = task_.base_commit();
    auto dir = TempDir::Create("crucible-attempt-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  Result<v1::Evidence> Perform(const std::string& command, int timeout_s = 60,
                               uint64_t workspace_quota_bytes = 0) {
    v1::AgentSpec agent;
    agent.set_name("a");
    agent.set_command(command);
    agent.set_timeout_s(timeout_s);
    return Perform(agent, workspace_quota_bytes);
  }

  Result<v1::Evidence> Perform(const v1::AgentSpec& agent, uint64_t workspace_quota_bytes = 0) {
    AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt-" + std::to_string(++n_);
    ctx.emit = [this](v1::TraceEvent ev) { events_.push_back(std::move(ev)); };
    ctx.workspace_quota_bytes = workspace_quota_bytes;
    return PerformAttempt(task_, agent, ctx);
  }

  bool TestPassed(const v1::Evidence& e) {
    for (const auto& t : e.tests().tests()) {
      if (t.id() == "tests.check::test_value") return t.status() == v1::TestOutcome::PASSED;
    }
    return false;
  }

  std::vector<std::string> RunnerEventNames() {
    std::vector<std::string> names;
    for (const auto& e : events_) {
      if (e.source() == "runner") names.push_back(e.name());
    }
    return names;
  }

  GitRepo repo_;
  std::string base_;
  v1::GoldenTask task_;
  std::unique_ptr<TempDir> dir_;
  std::vector<v1::TraceEvent> events_;
  int n_ = 0;
};

TEST_F(AttemptTest, OracleSolvesAndNoopDoesNot) {
  auto oracle = Perform("builtin:oracle");
  ASSERT_TRUE(oracle) << oracle.error().ToString();
  EXPECT_TRUE(TestPassed(*oracle)) << oracle->tests().output_tail();
  EXPECT_EQ(
      std::vector<std::string>(oracle->files_touched().begin(), oracle->files_touched().end()),
      std::vector<std::string>{"value.txt"});
  auto noop = Perform("builtin:noop");
  ASSERT_TRUE(noop);
  EXPECT_FALSE(TestPassed(*noop));
  EXPECT_EQ(noop->files_touched_size(), 0);
  EXPECT_TRUE(noop->final_diff().empty());
}

TEST_F(AttemptTest, ExternalAgentSeesTaskAndWorkspaceButNotHistory) {
  auto e = Perform(
      "test ! -e .git || exit 9; "
      "grep -q 'Set the value' \"$CRUCIBLE_TASK\" || exit 8; "
      "echo 2 > value.txt; "
      "echo '{\"kind\":\"TOOL\",\"name\":\"edit_file\",\"attrs\":{\"path\":\"value.txt\"}}' "
      ">> \"$CRUCIBLE_TRACE\"");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->agent_exit().exit_code(), 0) << e->agent_output_tail();
  EXPECT_TRUE(TestPassed(*e));
  EXPECT_EQ(e->trace_events(), 1u);
  EXPECT_NE(e->final_diff().find("+2"), std::string::npos);
  bool saw_edit = false;
  for (const auto& ev : events_) {
    if (ev.source() == "agent" && ev.name() == "edit_file") {
      saw_edit = true;
      EXPECT_EQ(nlohmann::json::parse(ev.attrs_json())["path"], "value.txt");
    }
  }
  EXPECT_TRUE(saw_edit);
}

TEST_F(AttemptTest, WorkspaceQuotaStopsAnAgentFillingTheDisk) {
  // Many files, each under the per-file size limit: only the quota stops them.
  auto e = Perform(
      "echo 2 > value.txt; i=0; "
      "while [ $i -lt 64 ]; do head -c 1048576 /dev/zero > fill.$i 2>/dev/null || break; "
      "i=$((i+1)); done; echo wrote $i; [ $i -lt 64 ] && rm -f fill.*",
      60, uint64_t{8} << 20);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->agent_exit().exit_code(), 0) << e->agent_output_tail();
  auto wrote = e->agent_output_tail().find("wrote ");
  ASSERT_NE(wrote, std::string::npos) << e->agent_output_tail();
  EXPECT_LT(std::stoi(e->agent_output_tail().substr(wrote + 6)), 8) << e->agent_output_tail();
  EXPECT_TRUE(TestPassed(*e));  // the attempt goes on after the quota was hit
  // The tmpfs is gone when the attempt ends: nothing is mounted there.
  std::string mounts = ReadFile("/proc/self/mountinfo").value_or("");
  EXPECT_EQ(mounts.find(dir_->path()), std::string::npos) << mounts;
}

TEST_F(AttemptTest, GarbageTraceIsCountedAndReportedNotFatal) {
  auto e = Perform(
      "echo 'this is not json' >> \"$CRUCIBLE_TRACE\"; "
      "echo '{\"kind\":\"PLAN\",\"name\":\"x\"}' >> \"$CRUCIBLE_TRACE\"; "
      "echo '{\"kind\":\"AGENT\",\"name\":\"plan\"}' >> \"$CRUCIBLE_TRACE\"; "
      "head -c 200000 /dev/zero | tr '\\0' x >> \"$CRUCIBLE_TRACE\"; "
      "exit 3");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->agent_exit().exit_code(), 3);
  EXPECT_EQ(e->trace_events(), 1u);
  EXPECT_EQ(e->trace_rejected(), 3u);
  std::vector<std::string> reasons;
  for (const auto& ev : events_) {
    if (ev.name() == "trace_rejected") {
      reasons.push_back(nlohmann::json::parse(ev.attrs_json())["error"]);
    }
  }
  ASSERT_EQ(reasons.size(), 3u);
  EXPECT_EQ(reasons[0], "not JSON");
  EXPECT_NE(reasons[1].find("PLAN"), std::string::npos);
  EXPECT_NE(reasons[2].find("longer than"), std::string::npos);
  // The tests still ran: a crashing agent is evidence, not an infrastructure error.
  EXPECT_TRUE(e->tests().report_found());
}

// A sandboxed agent that really does what its Claude Code stream-json
// transcript on stdout says: reads value.txt, edits it, runs the tests.
constexpr char kClaudeLikeAgent[] = R"(#!/bin/sh
say() { printf '%s\n' "$1"; }
say '{"type":"system","subtype":"init","cwd":"/workspace","tools":["Read","Edit","Bash"],"model":"claude-test-1"}'
say '{"type":"assistant","message":{"id":"m1","model":"claude-test-1","content":[{"type":"text","text":"Set value.txt to 2, then run the tests."}],"usage":{"input_tokens":1000,"cache_read_input_tokens":3000,"output_tokens":100}}}'
say '{"type":"assistant","message":{"id":"m1","model":"claude-test-1","content":[{"type":"tool_use","id":"t1","name":"Read","input":{"file_path":"/workspace/value.txt"}}],"usage":{"input_tokens":1000,"cache_read_input_tokens":3000,"output_tokens":100}}}'
v=$(cat value.txt)
say "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"$v\"}]}}"
say '{"type":"assistant","message":{"id":"m2","model":"claude-test-1","content":[{"type":"tool_use","id":"t2","name":"Edit","input":{"file_path":"/workspace/value.txt","old_string":"1","new_string":"2"}}],"usage":{"input_tokens":2000,"output_tokens":50}}}'
echo 2 > value.txt
say '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t2","content":"updated"}]}}'
say '{"type":"assistant","message":{"id":"m3","model":"claude-test-1","content":[{"type":"tool_use","id":"t3","name":"Bash","input":{"command":"sh run_tests.sh /tmp/report.xml"}}],"usage":{"input_tokens":3000,"output_tokens":10}}}'
sh run_tests.sh /tmp/report.xml; rc=$?
say "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t3\",\"content\":\"Exit code $rc\",\"is_error\":$([ $rc = 0 ] && echo false || echo true)}]}}"
printf '{"type":"assistant","message":{"id":"m4","model":"claude-test-1","content":[{"type":"text","text":"Done."}],"usage":{"input_tokens":100,"output_tokens":5}}}'
)";

TEST_F(AttemptTest, ClaudeStreamJsonOnStdoutIsTheTraceAndPricedFromTheTable) {
  std::string script = dir_->path() + "/claude-like-agent.sh";
  ASSERT_TRUE(WriteFile(script, kClaudeLikeAgent));
  v1::AgentSpec agent;
  agent.set_name("claude-like");
  agent.set_command("sh " + script);
  agent.set_timeout_s(60);
  agent.set_trace_format("claude-stream-json");
  auto* price = agent.add_prices();
  price->set_model("claude-test-*");
  price->set_input_per_mtok(3);
  price->set_output_per_mtok(15);
  price->set_cache_read_per_mtok(0.3);
  auto e = Perform(agent);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->agent_exit().exit_code(), 0) << e->agent_output_tail();
  EXPECT_TRUE(TestPassed(*e));
  EXPECT_EQ(e->trace_format(), "claude-stream-json");
  EXPECT_EQ(e->trace_rejected(), 0u);
  std::vector<std::string> names;
  std::map<std::string, nlohmann::json> attrs;
  for (const auto& ev : events_) {
    if (ev.source() != "agent") continue;
    names.push_back(ev.name());
    attrs[ev.name()] = nlohmann::json::parse(ev.attrs_json());
  }
  EXPECT_THAT(names, ::testing::ElementsAre("llm_call", "read_file", "llm_call", "plan",
                                            "edit_file", "llm_call", "run_tests", "llm_call"));
  EXPECT_EQ(e->trace_events(), names.size());
  EXPECT_EQ(attrs["read_file"]["path"], "value.txt");
  EXPECT_EQ(attrs["edit_file"]["path"], "value.txt");
  EXPECT_EQ(attrs["run_tests"]["command"], "sh run_tests.sh /tmp/report.xml");
  EXPECT_EQ(attrs["run_tests"]["ok"], true);
  const v1::Usage& u = e->usage();
  EXPECT_EQ(u.cost_source(), "price_table");
  EXPECT_EQ(u.llm_calls(), 4u);
  EXPECT_EQ(u.tokens_in(), 4000u + 2000 + 3000 + 100);
  EXPECT_EQ(u.tokens_cached(), 3000u);
  EXPECT_EQ(u.tokens_out(), 165u);
  EXPECT_NEAR(u.cost_usd(), (6100 * 3 + 3000 * 0.3 + 165 * 15) / 1e6, 1e-12);
  // The runner's own usage event comes before agent_exit.
  auto names_runner = RunnerEventNames();
  auto usage = std::find(names_runner.begin(), names_runner.end(), "usage");
  ASSERT_NE(usage, names_runner.end());
  EXPECT_EQ(*(usage + 1), "agent_exit");
}

TEST_F(AttemptTest, BinaryOnStdoutIsRejectedAndTheAttemptGoesOn) {
  v1::AgentSpec agent;
  agent.set_name("noisy");
  agent.set_command(
      "head -c 300000 /dev/urandom | tr -d '\\n'; echo; echo '{\"type\":\"turn.started\"}'; echo 2 "
      "> value.txt; "
      "printf '{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":7'");
  agent.set_timeout_s(60);
  agent.set_trace_format("codex-json");
  agent.set_model("gpt-test");
  auto e = Perform(agent);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_TRUE(TestPassed(*e));
  EXPECT_EQ(e->trace_rejected(), 2u);
  std::string last_error;
  for (const auto& ev : events_)
    if (ev.name() == "trace_rejected") last_error = nlohmann::json::parse(ev.attrs_json())["error"];
  EXPECT_EQ(last_error, "stream ended mid-line");
  EXPECT_EQ(e->usage().cost_source(), "");
  EXPECT_EQ(e->usage().llm_calls(), 0u);
}

TEST_F(AttemptTest, UnknownTraceFormatIsAnInfrastructureErrorNamingTheKnownOnes) {
  v1::AgentSpec agent;
  agent.set_name("x");
  agent.set_command("true");
  agent.set_trace_format("aider-log");
  auto e = Perform(agent);
  ASSERT_FALSE(e);
  EXPECT_THAT(e.error().ToString(), ::testing::HasSubstr("aider-log"));
  EXPECT_THAT(e.error().ToString(), ::testing::HasSubstr("claude-stream-json"));
}

TEST_F(AttemptTest, TraceSymlinkToAHostFileIsNotRead) {
  std::string secret = dir_->path() + "/host-secret.jsonl";
  ASSERT_TRUE(WriteFile(secret, "{\"kind\":\"TOOL\",\"name\":\"leaked\"}\n"));
  // The agent cannot see the host file, but it can plant a link to its path.
  auto e = Perform("rm -f \"$CRUCIBLE_TRACE\"; ln -s " + secret + " \"$CRUCIBLE_TRACE\"");
  ASSERT_TRUE(e) << e.error().ToString();
  for (const auto& ev : events_) EXPECT_NE(ev.name(), "leaked");
  EXPECT_EQ(e->trace_events(), 0u);
}

// The last trace_rejected error of the attempt's trace.
std::string LastRejection(const std::vector<v1::TraceEvent>& events) {
  std::string last;
  for (const auto& ev : events)
    if (ev.name() == "trace_rejected") last = nlohmann::json::parse(ev.attrs_json())["error"];
  return last;
}

TEST_F(AttemptTest, ASymlinkedTraceFileIsAStatedRejection) {
  std::string secret = dir_->path() + "/host-secret.jsonl";
  ASSERT_TRUE(WriteFile(secret, "{\"kind\":\"TOOL\",\"name\":\"leaked\"}\n"));
  auto e = Perform("rm -f \"$CRUCIBLE_TRACE\"; ln -s " + secret + " \"$CRUCIBLE_TRACE\"");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->trace_rejected(), 1u);
  EXPECT_EQ(LastRejection(events_), "the trace file is a symbolic link: not read");
}

TEST_F(AttemptTest, ASpanFileThatIsAFifoOrASymlinkIsAStatedRejectionNotAHang) {
  for (const std::string& plant : std::vector<std::string>{
           "mkfifo \"$CRUCIBLE_SPANS\"", "ln -s /etc/passwd \"$CRUCIBLE_SPANS\""}) {
    SCOPED_TRACE(plant);
    events_.clear();
    v1::AgentSpec agent;
    agent.set_name("spans");
    agent.set_trace_format("openinference");
    agent.set_command("rm -f \"$CRUCIBLE_SPANS\"; " + plant + "; echo 2 > value.txt");
    agent.set_timeout_s(60);
    auto e = Perform(agent);
    ASSERT_TRUE(e) << e.error().ToString();
    EXPECT_TRUE(TestPassed(*e)) << "the attempt goes on";
    EXPECT_EQ(e->trace_events(), 0u);
    EXPECT_EQ(e->trace_rejected(), 1u);
    EXPECT_THAT(LastRejection(events_),
                ::testing::MatchesRegex("the span file is a (FIFO|symbolic link): not read"));
  }
}

TEST_F(AttemptTest, AgentTimeoutKillsItAndTheAttemptStillEnds) {
  auto e = Perform("sleep 600", /*timeout_s=*/1);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_TRUE(e->agent_exit().timed_out());
  EXPECT_FALSE(TestPassed(*e));
  auto names = RunnerEventNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "agent_exit"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "run_tests"), names.end());
}

TEST_F(AttemptTest, AgentThatEditsTheHiddenTestFilesCannotBreakTheirApplication) {
  auto e = Perform("mkdir -p tests && echo 1 > tests/expected.txt && echo 2 > value.txt");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_TRUE(e->test_patch_error().empty()) << e->test_patch_error();
  EXPECT_TRUE(TestPassed(*e));
}

TEST_F(AttemptTest, AgentEgressReachesItsSandboxAndItsConnectionsTheTrace) {
  v1::AgentSpec agent;
  agent.set_name("a");
  // Asks the proxy for a destination that is not the listed one.
  agent.set_command(
      "curl -sS --max-time 20 -o /dev/null -w 'code %{http_code}\n' http://127.0.0.3:9/; "
      "echo 2 > value.txt");
  agent.set_timeout_s(60);
  agent.add_egress("gateway.invalid:443");
  AttemptContext ctx;
  ctx.workdir = dir_->path() + "/attempt-egress";
  ctx.emit = [this](v1::TraceEvent ev) { events_.push_back(std::move(ev)); };
  auto e = PerformAttempt(task_, agent, ctx);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_NE(e->agent_output_tail().find("code 403"), std::string::npos) << e->agent_output_tail();
  std::vector<nlohmann::json> egress;
  for (const auto& ev : events_) {
    if (ev.source() == "runner" && ev.name() == "egress") {
      egress.push_back(nlohmann::json::parse(ev.attrs_json()));
    }
  }
  ASSERT_EQ(egress.size(), 1u);
  EXPECT_EQ(egress[0]["host"], "127.0.0.3");
  EXPECT_EQ(egress[0]["port"], 9);
  EXPECT_EQ(egress[0]["allowed"], false);
  EXPECT_TRUE(TestPassed(*e));
}

TEST_F(AttemptTest, RefusedSyscallsAreEvidenceAndTrace) {
  // unshare(1) asks for new namespaces, which the seccomp policy refuses.
  auto e = Perform("unshare --mount true; echo 2 > value.txt");
  ASSERT_TRUE(e) << e.error().ToString();
  bool recorded = false;
  for (const auto& v : e->agent_exit().seccomp_violations()) {
    if (v.syscall() == "unshare" && v.count() >= 1) recorded = true;
  }
  EXPECT_TRUE(recorded) << e->agent_exit().DebugString();
  bool traced = false;
  for (const auto& ev : events_) {
    if (ev.name() == "policy_violation" &&
        nlohmann::json::parse(ev.attrs_json())["syscall"] == "unshare") {
      traced = true;
    }
  }
  EXPECT_TRUE(traced);
  EXPECT_TRUE(TestPassed(*e));  // refused, not killed: the agent went on
}

TEST_F(AttemptTest, TheHarnessSeesTheAgentsExecsAndWrites) {
  // The agent claims nothing: what it ran and wrote is in the trace anyway.
  auto e = Perform(
      "echo 2 > value.txt; echo scratch > /tmp/notes.txt; "
      "pytest -q -p no:cacheprovider --collect-only >/dev/null 2>&1; true");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_TRUE(TestPassed(*e));
  bool pytest_seen = false, write_seen = false;
  int64_t exec_ts = 0;
  for (const auto& ev : events_) {
    if (ev.source() != "runner" || ev.kind() != "RUNNER") continue;
    auto attrs = nlohmann::json::parse(ev.attrs_json());
    if (ev.name() == "exec") {
      EXPECT_GT(attrs["pid"].get<int>(), 0);
      std::vector<std::string> argv = attrs["argv"];
      if (argv ==
          std::vector<std::string>{"pytest", "-q", "-p", "no:cacheprovider", "--collect-only"}) {
        pytest_seen = true;
        exec_ts = ev.ts_ns();
      }
    }
    if (ev.name() == "file_write") {
      EXPECT_NE(attrs["path"], "notes.txt");  // /tmp is not the workspace
      if (attrs["path"] == "value.txt") write_seen = true;
    }
  }
  EXPECT_TRUE(pytest_seen);
  EXPECT_TRUE(write_seen);
  EXPECT_GT(exec_ts, 0);
  EXPECT_GE(e->observed_execs(), 2u);  // sh, pytest (and pytest's python)
  EXPECT_GE(e->observed_writes(), 1u);
  EXPECT_EQ(e->observation_warnings_size(), 0) << e->DebugString();
}

TEST_F(AttemptTest, WritesToCrucibleDirCountAgainstTheQuota) {
  // /crucible (task and trace) is as writable as the workspace: it is on the
  // same size-capped tmpfs.
  auto e = Perform(
      "echo 2 > value.txt; i=0; "
      "while [ $i -lt 64 ]; do head -c 1048576 /dev/zero > /crucible/fill.$i 2>/dev/null || break; "
      "i=$((i+1)); done; echo wrote $i",
      60, uint64_t{8} << 20);
  ASSERT_TRUE(e) << e.error().ToString();
  auto wrote = e->agent_output_tail().find("wrote ");
  ASSERT_NE(wrote, std::string::npos) << e->agent_output_tail();
  EXPECT_LT(std::stoi(e->agent_output_tail().substr(wrote + 6)), 8) << e->agent_output_tail();
  EXPECT_TRUE(TestPassed(*e));
}

TEST_F(AttemptTest, TestReportDirCountsAgainstTheQuota) {
  // The code under test writes into /crucible/out (where its report goes).
  task_.set_test_cmd(
      "i=0; while [ $i -lt 64 ]; do head -c 1048576 /dev/zero > /crucible/out/fill.$i "
      "2>/dev/null || break; i=$((i+1)); done; echo wrote $i; sh run_tests.sh {junit}");
  auto e = Perform("builtin:oracle", 60, uint64_t{8} << 20);
  ASSERT_TRUE(e) << e.error().ToString();
  auto wrote = e->tests().output_tail().find("wrote ");
  ASSERT_NE(wrote, std::string::npos) << e->tests().output_tail();
  EXPECT_LT(std::stoi(e->tests().output_tail().substr(wrote + 6)), 8) << e->tests().output_tail();
}

TEST_F(AttemptTest, DeeplyNestedDirectoriesAreTheAgentsResult) {
  // 2,000 nested directories: whatever the agent leaves behind is its own
  // result, never an infrastructure failure to retry.
  auto e = Perform(
      "echo 2 > value.txt; python3 -c \"import os\n"
      "for i in range(2000): os.mkdir('d'); os.chdir('d')\n"
      "open('leaf.txt', 'w').write('deep')\"");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->agent_exit().exit_code(), 0) << e->agent_output_tail();
  // Either the change was taken and tested, or it is the agent's stated fault.
  if (e->diff_error().empty()) {
    EXPECT_TRUE(TestPassed(*e)) << e->tests().output_tail();
  } else {
    EXPECT_FALSE(TestPassed(*e));
  }
}

TEST_F(AttemptTest, FileNamesThatAreNotUtf8AreStoredEscaped) {
  auto e = Perform("echo 2 > value.txt; echo x > \"$(printf 'bad\\377name.txt')\"");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_TRUE(TestPassed(*e)) << e->diff_error() << e->tests().output_tail();
  std::vector<std::string> files(e->files_touched().begin(), e->files_touched().end());
  EXPECT_NE(std::find(files.begin(), files.end(), "bad\\xffname.txt"), files.end())
      << e->DebugString();
  // The evidence travels and is stored as a protobuf message: it must parse.
  v1::Evidence copy;
  EXPECT_TRUE(copy.ParseFromString(e->SerializeAsString()));
  for (const auto& ev : events_) EXPECT_TRUE(nlohmann::json::accept(ev.attrs_json()));
}

// The peak resident memory of this process since the last reset.
int64_t PeakRssKiB() {
  auto status = ReadFile("/proc/self/status").value_or("");
  auto at = status.find("VmHWM:");
  return at == std::string::npos ? -1 : std::stoll(status.substr(at + 6));
}

TEST_F(AttemptTest, TraceOfEmptyLinesKeepsMemoryBounded) {
  // 32 MiB of empty lines: 32 million lines, each once kept in memory.
  {
    std::ofstream reset("/proc/self/clear_refs");  // "5" resets VmHWM
    reset << "5";
  }
  const int64_t before = PeakRssKiB();
  auto e = Perform(
      "head -c 33554432 /dev/zero | tr '\\0' '\\n' >> \"$CRUCIBLE_TRACE\"; "
      "echo '{\"kind\":\"TOOL\",\"name\":\"edit_file\"}' >> \"$CRUCIBLE_TRACE\"; echo 2 > "
      "value.txt");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->trace_events(), 1u);
  EXPECT_TRUE(TestPassed(*e));
  const int64_t grew = PeakRssKiB() - before;
  EXPECT_LT(grew, 128 * 1024) << "peak memory grew by " << grew << " KiB";
}

TEST_F(AttemptTest, DiffOverTheLimitIsNotStoredOrTestedAndSaysWhy) {
  // 12 MiB of text: over the 10 MiB limit on stored diffs.
  auto e = Perform(
      "echo 2 > value.txt; head -c 12582912 /dev/zero | tr '\\0' 'a' | fold -w 100 > big.txt");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_NE(e->diff_error().find("more than the limit"), std::string::npos) << e->diff_error();
  EXPECT_TRUE(e->final_diff().empty());
  EXPECT_GT(e->diff_bytes(), uint64_t{10} << 20);
  EXPECT_FALSE(TestPassed(*e));
  EXPECT_EQ(e->files_touched_size(), 2);
}

TEST(FitEvidence, DropsWhatIsLargestLastAndSaysWhat) {
  v1::Evidence e;
  e.set_final_diff(std::string(100000, 'x'));
  e.add_files_touched("a.txt");
  for (int i = 0; i < 1000; ++i) {
    auto* t = e.mutable_tests()->add_tests();
    t->set_id("t" + std::to_string(i));
    t->set_status(v1::TestOutcome::PASSED);
    t->set_message(std::string(1000, 'm'));
  }
  v1::Evidence small = e;
  EXPECT_TRUE(FitEvidence(small, 4 << 20));  // fits: untouched
  EXPECT_TRUE(small.truncated().empty());
  EXPECT_EQ(small.final_diff().size(), 100000u);
  EXPECT_FALSE(FitEvidence(small, 10));  // nothing left to drop

  v1::Evidence cut = e;
  ASSERT_TRUE(FitEvidence(cut, 50000));
  EXPECT_LE(cut.ByteSizeLong(), 50000u);
  EXPECT_TRUE(cut.final_diff().empty());
  EXPECT_EQ(cut.tests().tests_size(), 1000);  // the outcomes were kept
  EXPECT_NE(cut.truncated().find("the final diff"), std::string::npos) << cut.truncated();
  EXPECT_EQ(cut.files_touched_size(), 1);

  v1::Evidence tiny = e;
  ASSERT_TRUE(FitEvidence(tiny, 2000));
  EXPECT_LE(tiny.ByteSizeLong(), 2000u);
  EXPECT_EQ(tiny.tests().tests_size(), 0);
  EXPECT_NE(tiny.truncated().find("every test outcome"), std::string::npos);
}

TEST_F(AttemptTest, TestInfrastructureTheSuiteNamesIsPutBackAndNamed) {
  // The fixture's test runner is a script in the repository: a suite names it
  // as test infrastructure, and an agent's rewrite of it is not what runs.
  task_.add_test_infrastructure("run_tests.sh");
  auto e = Perform(R"(cat > run_tests.sh <<'END'
printf '<testsuite tests="1"><testcase classname="tests.check" name="test_value"/></testsuite>' > "$1"
END
)");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_FALSE(TestPassed(*e)) << e->final_diff();
  EXPECT_EQ(std::vector<std::string>(e->test_tampering().begin(), e->test_tampering().end()),
            std::vector<std::string>{"run_tests.sh"});
  EXPECT_NE(e->final_diff().find("run_tests.sh"), std::string::npos);
}

TEST(TestInfrastructure, NamesMatchAnyComponentPathsMatchWhole) {
  const auto& d = golden::DefaultTestInfrastructure();
  EXPECT_TRUE(golden::IsTestInfrastructure("conftest.py", d));
  EXPECT_TRUE(golden::IsTestInfrastructure("tests/unit/conftest.py", d));
  EXPECT_TRUE(golden::IsTestInfrastructure("pkg/__pycache__/value.cpython-311.pyc", d));
  EXPECT_TRUE(golden::IsTestInfrastructure("_pytest/main.py", d));
  EXPECT_TRUE(golden::IsTestInfrastructure("pytest.py", d));
  EXPECT_FALSE(golden::IsTestInfrastructure("tests/test_conftest_parser.py", d));
  EXPECT_FALSE(golden::IsTestInfrastructure("pkg/value.py", d));
  const std::vector<std::string> own = {"tests/fixtures/*.json"};
  EXPECT_TRUE(golden::IsTestInfrastructure("tests/fixtures/a/b.json", own));
  EXPECT_FALSE(golden::IsTestInfrastructure("other/tests/fixtures/b.json", own));
}

TEST_F(AttemptTest, MissingRepositoryIsAnInfrastructureErrorNamingIt) {
  task_.set_repo_path(dir_->path() + "/gone");
  auto e = Perform("builtin:noop");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("gone"), std::string::npos) << e.error().message();
}

}  // namespace
}  // namespace crucible::runner

namespace crucible::runner {
namespace {

// A task whose later history added a test (tests::other) for behaviour the
// merged commit already had: the regression test that only covers other.txt.
class RegressionAttempt : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    repo_.Write("run_tests.sh", kRunShellTests);
    repo_.Write("value.txt", "1\n");
    repo_.Write("other.txt", "ok\n");
    repo_.Write("tests/test_exists.sh", "test -f value.txt\n");
    const std::string base = repo_.Commit("base");
    repo_.Write("value.txt", "2\n");
    repo_.Write("tests/test_value.sh", "[ \"$(cat value.txt)\" = 2 ]\n");
    const std::string merged = repo_.Commit("set the value to 2");
    repo_.Write("tests/test_other.sh", "[ \"$(cat other.txt)\" = ok ]\n");
    const std::string newest = repo_.Commit("test other.txt");

    task_.set_suite("s");
    task_.set_id("t-r");
    task_.set_repo_path(repo_.path());
    task_.set_base_commit(base);
    task_.set_merged_commit(merged);
    task_.set_intent("Set the value to 2.");
    task_.set_source_patch(Patch(base, merged, "value.txt"));
    task_.set_test_patch(Patch(base, merged, "tests/test_value.sh"));
    task_.add_fail_to_pass("tests::value");
    task_.add_pass_to_pass("tests::exists");
    task_.set_test_cmd("sh run_tests.sh {junit}");
    task_.set_test_timeout_s(30);
    task_.add_regression_tests("tests::other");
    task_.set_regression_patch(Patch(merged, newest, "tests/test_other.sh"));
    task_.set_regression_commit(newest);
    auto dir = TempDir::Create("crucible-regression-attempt-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  std::string Patch(const std::string& from, const std::string& to, const std::string& path) {
    auto files = vcs::DiffCommits(repo_.path(), from, to);
    EXPECT_TRUE(files);
    std::vector<vcs::FilePatch> keep;
    for (const auto& f : *files) {
      if (f.path == path) keep.push_back(f);
    }
    EXPECT_EQ(keep.size(), 1u) << path;
    return vcs::JoinPatches(keep);
  }

  Result<v1::Evidence> Perform(const std::string& command) {
    v1::AgentSpec agent;
    agent.set_name("a");
    agent.set_command(command);
    agent.set_timeout_s(60);
    AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt-" + std::to_string(++n_);
    events_.clear();
    ctx.emit = [this](v1::TraceEvent ev) { events_.push_back(std::move(ev)); };
    return PerformAttempt(task_, agent, ctx);
  }

  static std::map<std::string, v1::TestOutcome::Status> Outcomes(const v1::TestRun& run) {
    std::map<std::string, v1::TestOutcome::Status> out;
    for (const auto& t : run.tests()) out[t.id()] = t.status();
    return out;
  }

  // The attrs of the runner's "regression_tests" event; null when none.
  nlohmann::json RegressionEvent() {
    nlohmann::json found;
    for (const auto& e : events_) {
      if (e.source() == "runner" && e.name() == "regression_tests") {
        EXPECT_TRUE(found.is_null()) << "two regression_tests events";
        found = nlohmann::json::parse(e.attrs_json());
      }
    }
    return found;
  }

  GitRepo repo_;
  v1::GoldenTask task_;
  std::unique_ptr<TempDir> dir_;
  std::vector<v1::TraceEvent> events_;
  int n_ = 0;
};

using Status = v1::TestOutcome::Status;

TEST_F(RegressionAttempt, AnAgentThatBreaksWhatOnlyARegressionTestCoversIsCaught) {
  // Solves the task and breaks other.txt, which no hidden test covers; it
  // even plants its own always-passing version of the later test.
  auto e = Perform(
      "printf '2\\n' > value.txt && printf 'broken\\n' > other.txt && "
      "printf 'exit 0\\n' > tests/test_other.sh");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(Outcomes(e->tests()),
            (std::map<std::string, Status>{{"tests::exists", v1::TestOutcome::PASSED},
                                           {"tests::other", v1::TestOutcome::PASSED},
                                           {"tests::value", v1::TestOutcome::PASSED}}))
      << e->tests().output_tail();
  EXPECT_TRUE(e->regression_error().empty()) << e->regression_error();
  // Only the regression ids are kept.
  EXPECT_EQ(Outcomes(e->regression_tests()),
            (std::map<std::string, Status>{{"tests::other", v1::TestOutcome::FAILED}}))
      << e->regression_tests().output_tail();
  auto ev = RegressionEvent();
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["passed"], 0);
  EXPECT_EQ(ev["failed"], 1);
  EXPECT_TRUE(ev.contains("wall_ms"));

  auto oracle = Perform("builtin:oracle");
  ASSERT_TRUE(oracle) << oracle.error().ToString();
  EXPECT_EQ(Outcomes(oracle->regression_tests()),
            (std::map<std::string, Status>{{"tests::other", v1::TestOutcome::PASSED}}));
  EXPECT_EQ(RegressionEvent()["passed"], 1);
}

TEST_F(RegressionAttempt, APatchThatDoesNotApplyIsEvidenceNotAFailure) {
  task_.set_regression_patch(
      "diff --git a/value.txt b/value.txt\n--- a/value.txt\n+++ b/value.txt\n"
      "@@ -1 +1 @@\n-7\n+8\n");
  auto e = Perform("builtin:oracle");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(Outcomes(e->tests())["tests::value"], v1::TestOutcome::PASSED);
  EXPECT_FALSE(e->has_regression_tests());
  EXPECT_THAT(e->regression_error(), ::testing::HasSubstr("the regression patch does not apply"));
  EXPECT_EQ(RegressionEvent()["error"], e->regression_error());
}

TEST_F(RegressionAttempt, TasksWithoutRegressionTestsRunAsBefore) {
  task_.clear_regression_tests();
  task_.clear_regression_patch();
  task_.clear_regression_commit();
  auto e = Perform("builtin:oracle");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(Outcomes(e->tests())["tests::value"], v1::TestOutcome::PASSED);
  EXPECT_FALSE(e->has_regression_tests());
  EXPECT_TRUE(e->regression_error().empty());
  EXPECT_TRUE(RegressionEvent().is_null());
}

TEST(FitEvidence, DropsRegressionTestMessagesWithTheOthers) {
  v1::Evidence e;
  for (auto* run : {e.mutable_tests(), e.mutable_regression_tests()}) {
    for (int i = 0; i < 100; ++i) {
      auto* t = run->add_tests();
      t->set_id("t" + std::to_string(i));
      t->set_status(v1::TestOutcome::FAILED);
      t->set_message(std::string(1000, 'm'));
    }
    run->set_output_tail(std::string(4000, 'o'));
  }
  ASSERT_TRUE(FitEvidence(e, 20000));
  EXPECT_EQ(e.regression_tests().tests_size(), 100);
  for (const auto& t : e.regression_tests().tests()) EXPECT_TRUE(t.message().empty());
  EXPECT_TRUE(e.regression_tests().output_tail().empty());

  v1::Evidence without;
  without.mutable_tests()->add_tests()->set_message(std::string(5000, 'm'));
  ASSERT_TRUE(FitEvidence(without, 1000));
  EXPECT_FALSE(without.has_regression_tests());
}

}  // namespace
}  // namespace crucible::runner
