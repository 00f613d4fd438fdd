#include "agent-runner/attempt.h"

#include <sys/stat.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent-runner/trace.h"
#include "base/fs.h"
#include "golden/test_run.h"
#include "sandbox/quota.h"
#include "sandbox/sandbox.h"
#include "vcs/repo.h"

namespace crucible::runner {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// An event the runner itself observed.
v1::TraceEvent RunnerEvent(std::string name, const json& attrs) {
  v1::TraceEvent ev;
  ev.set_ts_ns(NowNs());
  ev.set_kind("RUNNER");
  ev.set_name(std::move(name));
  ev.set_source("runner");
  ev.set_attrs_json(attrs.dump());
  return ev;
}

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

bool IsBlank(const std::string& s) { return s.find_first_not_of(" \t\r") == std::string::npos; }

// Host files the agent command names by absolute path (its script, say) are
// bound read-only at the same path, unless a system directory already shows them.
std::vector<sandbox::Bind> CommandFileBinds(const std::string& command) {
  std::vector<sandbox::Bind> binds;
  std::istringstream words(command);
  std::string w;
  while (words >> w) {
    if (w.empty() || w[0] != '/') continue;
    struct stat st;
    if (sandbox::IsSystemPath(w) || ::stat(w.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    binds.push_back(sandbox::Bind{.host_path = w, .sandbox_path = w, .writable = false});
  }
  return binds;
}

struct TraceForwarder {
  TraceTailer tailer;
  const AttemptContext& ctx;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t line_no = 0;

  void Pump(bool final) {
    for (auto& line : tailer.ReadNewLines(final)) {
      ++line_no;
      if (IsBlank(line)) continue;
      auto ev = ParseTraceLine(line, NowNs());
      if (ev) {
        ++accepted;
        ctx.emit(std::move(*ev));
        continue;
      }
      // Every rejection is reported, up to a point: an agent that writes
      // garbage must not flood the trace with our complaints either.
      if (++rejected <= 20) {
        ctx.emit(
            RunnerEvent("trace_rejected", {{"line", line_no}, {"error", ev.error().message()}}));
      }
    }
  }
};

Status RunExternalAgent(const v1::GoldenTask& task, const v1::AgentSpec& agent,
                        const std::string& workspace, const AttemptContext& ctx,
                        v1::Evidence* evidence) {
  std::string io_dir = ctx.workdir + "/io";
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(io_dir));
  json task_json = {{"intent", task.intent()},
                    {"repo", !ctx.repo_name.empty()
                                 ? ctx.repo_name
                                 : task.repo_path().substr(task.repo_path().find_last_of('/') + 1)},
                    {"task_id", task.id()},
                    {"suite", task.suite()},
                    {"round", 1},
                    {"feedback", nullptr}};
  CRUCIBLE_RETURN_IF_ERROR(WriteFile(io_dir + "/task.json", task_json.dump(2)));
  CRUCIBLE_RETURN_IF_ERROR(WriteFile(io_dir + "/trace.jsonl", ""));

  sandbox::Spec spec;
  spec.argv = {"/bin/sh", "-c", agent.command()};
  spec.workspace = workspace;
  spec.binds = CommandFileBinds(agent.command());
  spec.binds.push_back({.host_path = io_dir, .sandbox_path = "/crucible", .writable = true});
  spec.env = {"CRUCIBLE_TASK=/crucible/task.json", "CRUCIBLE_TRACE=/crucible/trace.jsonl",
              "PYTHONDONTWRITEBYTECODE=1"};
  spec.timeout = std::chrono::seconds(agent.timeout_s() > 0 ? agent.timeout_s()
                                                            : ctx.default_agent_timeout.count());
  spec.capture_output = true;
  spec.output_cap = 256 * 1024;

  TraceForwarder trace{TraceTailer(io_dir + "/trace.jsonl"), ctx};
  ctx.emit(RunnerEvent("agent_start", {{"agent", agent.name()}, {"command", agent.command()}}));
  auto report = sandbox::Run(spec, [&] {
    trace.Pump(false);
    if (ctx.tick) ctx.tick();
  });
  trace.Pump(true);
  if (!report) return Fail(report.error().Wrap("agent sandbox"));

  auto* exit = evidence->mutable_agent_exit();
  exit->set_exit_code(report->exit_code);
  exit->set_signal(report->signal);
  exit->set_timed_out(report->timed_out);
  exit->set_wall_ms(report->wall_ms);
  exit->set_oom_killed(report->oom_killed);
  exit->set_memory_peak_bytes(report->memory_peak_bytes);
  exit->set_cpu_ms(report->cpu_ms);
  exit->set_pids_limit_hit(report->pids_limit_hit);
  exit->set_output_truncated(report->output_truncated);
  for (const auto& v : report->seccomp_violations) {
    auto* sc = exit->add_seccomp_violations();
    sc->set_syscall(v.syscall);
    sc->set_count(v.count);
    // A refused call is evidence about the agent, so it is in the trace too.
    ctx.emit(RunnerEvent("policy_violation", {{"syscall", v.syscall}, {"count", v.count}}));
  }
  for (const auto& w : report->warnings) {
    exit->add_warnings(w);
    ctx.emit(RunnerEvent("sandbox_warning", {{"message", w}}));
  }
  evidence->set_agent_output_tail(Tail(report->stdout_data, 2048) +
                                  Tail(report->stderr_data, 2048));
  evidence->set_trace_events(trace.accepted);
  evidence->set_trace_rejected(trace.rejected);
  ctx.emit(RunnerEvent("agent_exit", {{"exit_code", report->exit_code},
                                      {"signal", report->signal},
                                      {"timed_out", report->timed_out},
                                      {"wall_ms", report->wall_ms},
                                      {"cpu_ms", report->cpu_ms},
                                      {"memory_peak_bytes", report->memory_peak_bytes},
                                      {"oom_killed", report->oom_killed},
                                      {"trace_events", trace.accepted},
                                      {"trace_rejected", trace.rejected}}));
  return {};
}

}  // namespace

Result<v1::Evidence> PerformAttempt(const v1::GoldenTask& task, const v1::AgentSpec& agent,
                                    const AttemptContext& ctx) {
  auto start = Clock::now();
  v1::Evidence evidence;
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(ctx.workdir));
  std::string ws_dir = ctx.workdir + "/workspace";
  std::optional<sandbox::QuotaDir> quota;  // unmounted when the attempt ends
  if (ctx.workspace_quota_bytes > 0) {
    CRUCIBLE_RETURN_IF_ERROR(MakeDirs(ws_dir));
    auto q = sandbox::QuotaDir::Mount(ws_dir, ctx.workspace_quota_bytes);
    if (!q) return Fail(q.error().Wrap("workspace quota"));
    quota.emplace(std::move(*q));
  }
  const std::string& repo = ctx.repo.empty() ? task.repo_path() : ctx.repo;
  CRUCIBLE_ASSIGN_OR_RETURN(
      auto ws, vcs::Workspace::Create(repo, task.base_commit(), ws_dir, ctx.workdir + "/git"));
  ctx.emit(RunnerEvent("workspace_ready", {{"base_commit", task.base_commit()}}));

  if (agent.command() == "builtin:oracle") {
    auto applied = ws->Apply(task.source_patch());
    ctx.emit(RunnerEvent("oracle_apply", {{"ok", applied.has_value()}}));
    if (!applied) return Fail(applied.error().Wrap("oracle could not apply the golden patch"));
  } else if (agent.command() == "builtin:noop") {
    ctx.emit(RunnerEvent("noop", json::object()));
  } else if (agent.command().starts_with("builtin:")) {
    return Fail(Code::kInvalidArgument, "unknown builtin agent '" + agent.command() + "'");
  } else {
    CRUCIBLE_RETURN_IF_ERROR(RunExternalAgent(task, agent, ws_dir, ctx, &evidence));
  }

  CRUCIBLE_ASSIGN_OR_RETURN(std::string diff, ws->Diff());
  CRUCIBLE_ASSIGN_OR_RETURN(auto files, ws->ChangedFiles());
  evidence.set_final_diff(std::move(diff));
  for (auto& f : files) evidence.add_files_touched(f);
  ctx.emit(RunnerEvent("final_diff", {{"files", files}}));

  // The hidden tests go in over the base versions of their files, whatever the
  // agent did to them (SWE-bench does the same), so an agent that edited or
  // added the same test files cannot make the patch fail to apply.
  Status applied = [&]() -> Status {
    CRUCIBLE_ASSIGN_OR_RETURN(auto test_paths, vcs::PatchPaths(task.test_patch()));
    CRUCIBLE_RETURN_IF_ERROR(ws->Restore(test_paths));
    return ws->Apply(task.test_patch());
  }();
  if (!applied) {
    // The agent changed the tests so the hidden ones no longer apply: that is
    // evidence about the agent, not an infrastructure failure.
    evidence.set_test_patch_error(applied.error().message());
    ctx.emit(RunnerEvent("test_patch", {{"ok", false}, {"error", applied.error().message()}}));
  } else {
    ctx.emit(RunnerEvent("test_patch", {{"ok", true}}));
    // The same command, setup and result format that validated the task.
    CRUCIBLE_ASSIGN_OR_RETURN(v1::TestRun tests,
                              golden::RunTests(ws_dir, golden::TestCommandFor(task)));
    int passed = 0, failed = 0;
    for (const auto& t : tests.tests()) {
      if (t.status() == v1::TestOutcome::PASSED) ++passed;
      if (t.status() == v1::TestOutcome::FAILED || t.status() == v1::TestOutcome::ERROR) ++failed;
    }
    ctx.emit(RunnerEvent("run_tests", {{"passed", passed},
                                       {"failed", failed},
                                       {"exit_code", tests.exit_code()},
                                       {"timed_out", tests.timed_out()},
                                       {"infra_error", tests.infra_error()},
                                       {"wall_ms", tests.wall_ms()}}));
    *evidence.mutable_tests() = std::move(tests);
  }
  evidence.set_wall_ms(MsSince(start));
  return evidence;
}

}  // namespace crucible::runner
