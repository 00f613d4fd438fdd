#include "agent-runner/attempt.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent-runner/adapters.h"
#include "agent-runner/agent_sandbox.h"
#include "agent-runner/mutants.h"
#include "agent-runner/review_round.h"
#include "agent-runner/trace.h"
#include "base/fs.h"
#include "golden/predictions.h"
#include "golden/test_infra.h"
#include "golden/test_run.h"
#include "golden/utf8.h"
#include "protocol/golden_task.h"
#include "sandbox/quota.h"
#include "sandbox/sandbox.h"
#include "scoring/claims.h"
#include "scoring/score.h"
#include "scoring/static_check.h"
#include "vcs/repo.h"

namespace crucible::runner {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// Stored diffs have a size limit; a larger change is not measured.
constexpr size_t kMaxDiffBytes = size_t{10} << 20;
// File names kept in Evidence.files_touched.
constexpr size_t kMaxFilesListed = 10000;

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
  // Values may carry bytes of the agent's choosing (file names): never throw.
  ev.set_attrs_json(attrs.dump(-1, ' ', false, json::error_handler_t::replace));
  return ev;
}

// The attempt's LLM usage, as the runner's `usage` event.
v1::TraceEvent UsageEvent(const v1::Usage& u) {
  return RunnerEvent(
      "usage", {{"tokens_in", u.tokens_in()},
                {"tokens_out", u.tokens_out()},
                {"tokens_cached", u.tokens_cached()},
                {"tokens_cache_write", u.tokens_cache_write()},
                {"cost_usd", u.cost_usd()},
                {"cost_source", u.cost_source()},
                {"models", std::vector<std::string>(u.models().begin(), u.models().end())},
                {"llm_calls", u.llm_calls()},
                {"llm_latency_ms", u.llm_latency_ms()},
                {"warnings", std::vector<std::string>(u.warnings().begin(), u.warnings().end())}});
}

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

bool IsBlank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

// Reads the agent's telemetry through its format's adapter (a trace file, a
// span file or its stdout) and forwards the events; lines the adapter rejects
// are counted and the first 20 reported.
struct TraceForwarder {
  const AttemptContext& ctx;
  std::unique_ptr<TraceAdapter> adapter;
  TraceSource source = TraceSource::kTraceFile;
  std::optional<TraceTailer> tailer;     // trace and span files
  std::optional<LineSplitter> splitter;  // stdout
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t line_no = 0;
  std::vector<v1::TraceEvent> events;     // the adapter's output, forwarded as it comes
  std::vector<v1::TraceEvent> llm_calls;  // kept for ComputeUsage

  TraceForwarder(const AttemptContext& c, std::unique_ptr<TraceAdapter> a, TraceSource s,
                 const std::string& file)
      : ctx(c), adapter(std::move(a)), source(s) {
    if (source == TraceSource::kStdout) {
      splitter.emplace(LineSplitter::Callbacks{
          .line = [this](std::string_view line, bool cut_off) { Line(line, cut_off); },
          .too_long =
              [this](uint64_t bytes) {
                ++line_no;
                Reject(fmt::format("line of {} bytes is over the {} MiB limit", bytes,
                                   kMaxAdapterLineBytes >> 20));
              }});
    } else {
      tailer.emplace(file);
    }
  }

  void Reject(const std::string& error) {
    // Every rejection is reported, up to a point: an agent that writes
    // garbage must not flood the trace with our complaints either.
    if (++rejected <= 20) {
      ctx.emit(RunnerEvent("trace_rejected", {{"line", line_no}, {"error", error}}));
    }
  }

  void Forward() {
    for (auto& ev : events) {
      ++accepted;
      if (ev.name() == "llm_call") {
        llm_calls.push_back(ev);
        // However many calls the agent claims, they take bounded memory.
        if (llm_calls.size() >= 4096) FoldLlmCalls(llm_calls);
      }
      ctx.emit(std::move(ev));
    }
    events.clear();
  }

  void Line(std::string_view line, bool cut_off) {
    ++line_no;
    if (IsBlank(line)) return;
    auto st = adapter->Line(line, NowNs(), events);
    if (!st) Reject(cut_off ? std::string("stream ended mid-line") : st.error().message());
    Forward();
  }

  // Stdout as it arrives.
  void Stdout(std::string_view chunk) {
    if (splitter) splitter->Feed(chunk);
  }

  void Pump(bool final) {
    if (tailer) tailer->ReadNewLines(final, [this](std::string_view line) { Line(line, false); });
    if (!final) return;
    // A trace or span file the agent replaced by a symlink or a FIFO is not
    // read (it could point at host files or block the runner): say so.
    if (tailer && !tailer->problem().empty()) {
      Reject(fmt::format("{} {}: not read",
                         source == TraceSource::kSpanFile ? "the span file" : "the trace file",
                         tailer->problem()));
    }
    if (splitter) splitter->Finish();
    adapter->Finish(NowNs(), events);
    Forward();
  }
};

// What the harness itself sees the agent do in its sandbox (the sandbox's
// observation of execs and workspace writes), whatever the agent claims: runner
// events "exec" and "file_write" at the time they were seen, and the counts and
// warnings in the Evidence.
class AgentObserver {
 public:
  explicit AgentObserver(const AttemptContext& ctx) : ctx_(ctx) {}
  AgentObserver(const AgentObserver&) = delete;
  AgentObserver& operator=(const AgentObserver&) = delete;

  void Enable(sandbox::Spec& spec) {
    spec.observe_exec = true;
    spec.observe_writes = true;
    spec.on_observation = [this](const sandbox::Observation& o) { Emit(o); };
  }

  // Adds one sandbox's observations (one per review round) to the evidence.
  void Finish(const sandbox::Report& report, v1::Evidence* evidence) {
    evidence->set_observed_execs(evidence->observed_execs() + report.observed_execs);
    evidence->set_observed_writes(evidence->observed_writes() + report.observed_writes);
    for (const auto& w : report.observation_warnings) {
      if (std::find(evidence->observation_warnings().begin(),
                    evidence->observation_warnings().end(),
                    w) == evidence->observation_warnings().end())
        evidence->add_observation_warnings(w);
      ctx_.emit(RunnerEvent("sandbox_warning", {{"message", w}}));
    }
  }

 private:
  void Emit(const sandbox::Observation& o) {
    v1::TraceEvent ev;
    if (o.kind == sandbox::Observation::Kind::kExec) {
      ev = RunnerEvent(
          "exec", {{"argv", o.argv}, {"path", o.path}, {"pid", o.pid}, {"argv_cut", o.argv_cut}});
    } else {
      ev = RunnerEvent("file_write", {{"path", o.path}});
    }
    ev.set_ts_ns(
        std::chrono::duration_cast<std::chrono::nanoseconds>(o.time.time_since_epoch()).count());
    ctx_.emit(std::move(ev));
  }

  const AttemptContext& ctx_;
};
// Every connection the agent made to its egress proxy (AgentSpec.egress), as
// `egress` events: where to, allowed or refused (and why), bytes each way.
void EmitEgress(const sandbox::Report& report, const AttemptContext& ctx) {
  for (const auto& e : report.egress) {
    ctx.emit(RunnerEvent("egress", {{"host", e.host},
                                    {"port", e.port},
                                    {"method", e.method},
                                    {"allowed", e.allowed},
                                    {"reason", e.reason},
                                    {"bytes_out", e.bytes_out},
                                    {"bytes_in", e.bytes_in}}));
  }
}

// Adds the usage of one round to the attempt's.
void AddUsage(const v1::Usage& round, v1::Usage& total) {
  if (total.cost_source().empty() && total.llm_calls() == 0) {
    total = round;
    return;
  }
  total.set_tokens_in(total.tokens_in() + round.tokens_in());
  total.set_tokens_out(total.tokens_out() + round.tokens_out());
  total.set_tokens_cached(total.tokens_cached() + round.tokens_cached());
  total.set_tokens_cache_write(total.tokens_cache_write() + round.tokens_cache_write());
  total.set_cost_usd(total.cost_usd() + round.cost_usd());
  total.set_llm_calls(total.llm_calls() + round.llm_calls());
  total.set_llm_latency_ms(total.llm_latency_ms() + round.llm_latency_ms());
  if (!round.cost_source().empty() && round.cost_source() != total.cost_source())
    total.set_cost_source(total.cost_source().empty() ? round.cost_source() : "partial");
  for (const auto& m : round.models()) {
    if (std::find(total.models().begin(), total.models().end(), m) == total.models().end())
      total.add_models(m);
  }
  for (const auto& w : round.warnings()) {
    if (std::find(total.warnings().begin(), total.warnings().end(), w) == total.warnings().end())
      total.add_warnings(w);
  }
}

// One round of an external agent in its sandbox (round 1 of 1 without review
// rounds). `feedback` is the task file's "feedback" (null in round 1).
// evidence.agent_exit is this round's; trace counts, usage and observations
// add up over the rounds.
Status RunExternalAgent(const v1::GoldenTask& task, const v1::AgentSpec& agent,
                        const std::string& workspace, const std::string& io_dir,
                        const AttemptContext& ctx, int round, int rounds, const json& feedback,
                        v1::Evidence* evidence) {
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(io_dir));
  json task_json = {{"intent", task.intent()},
                    {"repo", !ctx.repo_name.empty()
                                 ? ctx.repo_name
                                 : task.repo_path().substr(task.repo_path().find_last_of('/') + 1)},
                    {"task_id", task.id()},
                    {"suite", task.suite()},
                    {"round", round},
                    {"rounds", rounds},
                    {"feedback", feedback}};
  CRUCIBLE_RETURN_IF_ERROR(WriteFile(
      io_dir + "/task.json", task_json.dump(2, ' ', false, json::error_handler_t::replace)));
  // Each round's trace starts empty (the runner has read the last one).
  CRUCIBLE_RETURN_IF_ERROR(WriteFile(io_dir + "/trace.jsonl", ""));
  const TraceSource trace_source = SourceOf(agent.trace_format());
  auto adapter =
      MakeTraceAdapter(agent.trace_format(), {.test_cmd = task.test_cmd(), .model = agent.model()});
  if (!adapter) return Fail(adapter.error().Wrap("agent " + agent.name()));
  if (trace_source == TraceSource::kSpanFile)
    CRUCIBLE_RETURN_IF_ERROR(WriteFile(io_dir + "/spans.jsonl", ""));

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
  CRUCIBLE_RETURN_IF_ERROR(ApplyAgentSpec(agent, io_dir, ctx.emit, spec));
  AgentObserver observer(ctx);
  observer.Enable(spec);
  spec.egress.assign(agent.egress().begin(), agent.egress().end());

  TraceForwarder trace(
      ctx, std::move(*adapter), trace_source,
      io_dir + (trace_source == TraceSource::kSpanFile ? "/spans.jsonl" : "/trace.jsonl"));
  if (trace_source == TraceSource::kSpanFile)
    spec.env.push_back("CRUCIBLE_SPANS=/crucible/spans.jsonl");
  if (trace_source == TraceSource::kStdout)
    spec.on_stdout = [&trace](std::string_view chunk) { trace.Stdout(chunk); };
  ctx.emit(RunnerEvent("agent_start", {{"agent", agent.name()}, {"command", agent.command()}}));
  auto report = sandbox::Run(spec, [&] {
    trace.Pump(false);
    if (ctx.tick) ctx.tick();
  });
  trace.Pump(true);
  if (!report) return Fail(report.error().Wrap("agent sandbox"));
  observer.Finish(*report, evidence);
  EmitEgress(*report, ctx);

  evidence->clear_agent_exit();
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
  evidence->set_trace_events(evidence->trace_events() + trace.accepted);
  evidence->set_trace_rejected(evidence->trace_rejected() + trace.rejected);
  evidence->set_trace_format(agent.trace_format().empty() ? "crucible" : agent.trace_format());
  const std::vector<v1::ModelPrice> prices(agent.prices().begin(), agent.prices().end());
  const v1::Usage usage =
      ComputeUsage(trace.llm_calls, trace.adapter->reported_usage(), prices, agent.model());
  if (usage.llm_calls() > 0 || !usage.cost_source().empty()) ctx.emit(UsageEvent(usage));
  AddUsage(usage, *evidence->mutable_usage());
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

// Takes the agent's change from its workspace into `evidence`: the diff and
// the files it touches (file names are data: bytes that are not UTF-8 are
// escaped). Whatever the agent left behind is its own result, so a change
// that cannot be read or is too large is evidence (diff_error), not an
// infrastructure failure. Returns the touched paths as they are on disk.
std::vector<std::string> TakeChange(vcs::Workspace& ws, v1::Evidence& evidence) {
  auto change = ws.DiffAndFiles();
  if (!change) {
    evidence.set_diff_error(golden::internal::ToValidUtf8(
        "the agent's workspace could not be read as a change: " + change.error().message()));
    return {};
  }
  std::string& diff = change->diff;
  std::vector<std::string>& files = change->files;
  evidence.set_diff_bytes(diff.size());
  for (size_t i = 0; i < files.size() && i < kMaxFilesListed; ++i) {
    evidence.add_files_touched(golden::internal::EscapeInvalidUtf8(files[i]));
  }
  if (diff.size() > kMaxDiffBytes) {
    evidence.set_diff_error(fmt::format(
        "the agent's diff is {} bytes, more than the limit of {}: not stored, not tested",
        diff.size(), kMaxDiffBytes));
    return {};
  }
  std::string parse_error;
  for (auto& c : scoring::DescribeChanges(diff, &parse_error))
    *evidence.add_changes() = std::move(c);
  evidence.set_final_diff(std::move(diff));
  return std::move(files);
}

// The static checks (stale references, broken imports) of the agent's diff
// against `tree_dir`, the base commit with that diff applied and nothing else.
void CheckStaticFacts(const std::string& tree_dir, v1::Evidence& evidence) {
  v1::StaticFacts* facts = evidence.mutable_static_facts();
  auto files = vcs::ParseDiff(evidence.final_diff());
  if (!files) {
    facts->set_error(golden::internal::ToValidUtf8("the agent's diff does not parse: " +
                                                   files.error().message()));
    return;
  }
  *facts = scoring::CheckStatic(*files, scoring::DirectoryTree(tree_dir));
}

// Builds the tree the hidden tests run in, from evidence only: the base
// commit, the agent's stored diff, the base versions of the hidden test
// files and of any test infrastructure the agent changed (outside the golden
// source change), then the hidden test patch. Nothing else of the agent's
// workspace (caches, ignored files) reaches it. Returns the error to record
// as the agent's when its diff does not apply.
Status RebuildForScoring(const v1::GoldenTask& task, vcs::Workspace& tree,
                         const std::vector<std::string>& touched, v1::Evidence& evidence,
                         bool* agent_fault) {
  *agent_fault = false;
  if (auto applied = tree.Apply(evidence.final_diff()); !applied) {
    *agent_fault = true;
    return Fail(Code::kInvalidArgument,
                "the agent's diff does not apply to a clean checkout of the base commit: " +
                    applied.error().message());
  }
  CheckStaticFacts(tree.workdir(), evidence);
  std::vector<std::string> restore = TamperedInfrastructure(task, touched);
  for (const auto& path : restore)
    evidence.add_test_tampering(golden::internal::EscapeInvalidUtf8(path));
  CRUCIBLE_ASSIGN_OR_RETURN(auto test_paths, vcs::PatchPaths(task.test_patch()));
  restore.insert(restore.end(), test_paths.begin(), test_paths.end());
  // The hidden tests go in over the base versions of their files, whatever the
  // agent did to them (SWE-bench does the same), so an agent that edited or
  // added the same test files cannot make the patch fail to apply.
  if (auto restored = tree.Restore(restore); !restored) {
    *agent_fault = true;  // the paths come from the agent's diff
    return restored;
  }
  auto applied = tree.Apply(task.test_patch());
  if (!applied) evidence.set_test_patch_error(applied.error().message());
  return {};
}

// What the judges are told about the trace: events per name and source, and
// the agent's first plan.
struct TraceSummary {
  std::map<std::string, int> agent_events;
  std::map<std::string, int> runner_events;
  json plan;

  void Add(const v1::TraceEvent& ev) {
    if (ev.source() == "runner") {
      ++runner_events[ev.name()];
      return;
    }
    ++agent_events[ev.name()];
    if (ev.name() == "plan" && plan.is_null()) {
      plan = json::parse(ev.attrs_json(), nullptr, /*allow_exceptions=*/false);
      if (plan.is_discarded()) plan = json::object();
    }
  }
};

constexpr int kMaxJudgeScores = 100;
constexpr std::chrono::seconds kDefaultJudgeTimeout{300};

// Reads one line a judge printed: {"dimension": NAME, "score": 0..1,
// "reason": TEXT}. The reason says why a line is refused.
Result<v1::JudgeScore> ParseJudgeLine(std::string_view line, const std::string& judge) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Fail(Code::kInvalidArgument, "not a JSON object");
  auto dim = j.find("dimension");
  if (dim == j.end() || !dim->is_string() || dim->get<std::string>().empty()) {
    return Fail(Code::kInvalidArgument, "no \"dimension\" string");
  }
  auto score = j.find("score");
  if (score == j.end() || !score->is_number()) {
    return Fail(Code::kInvalidArgument, "no \"score\" number");
  }
  double value = score->get<double>();
  if (!(value >= 0.0 && value <= 1.0)) {
    return Fail(Code::kInvalidArgument, fmt::format("score {} is not between 0 and 1", value));
  }
  v1::JudgeScore out;
  out.set_judge(judge);
  out.set_dimension(golden::internal::ToValidUtf8(dim->get<std::string>().substr(0, 64)));
  out.set_score(value);
  if (auto reason = j.find("reason"); reason != j.end() && reason->is_string()) {
    out.set_reason(golden::internal::ToValidUtf8(reason->get<std::string>().substr(0, 4096)));
  }
  return out;
}

// Runs each judge in the sandbox on the tree the tests ran in, with
// /crucible/judge.json (intent, golden diff, agent diff, test outcome, trace
// summary), and keeps the scores it prints. A judge that fails or prints
// garbage costs the attempt nothing: it is reported in the trace.
void RunJudges(const v1::GoldenTask& task, const std::string& tree_dir,
               const std::string& score_box, const TraceSummary& summary, const AttemptContext& ctx,
               v1::Evidence& evidence) {
  int passed = 0, failed = 0;
  for (const auto& t : evidence.tests().tests()) {
    if (t.status() == v1::TestOutcome::PASSED) ++passed;
    if (t.status() == v1::TestOutcome::FAILED || t.status() == v1::TestOutcome::ERROR) ++failed;
  }
  json files = json::array();
  for (const auto& f : evidence.files_touched()) files.push_back(f);
  json input = {{"task_id", task.id()},
                {"intent", task.intent()},
                {"golden_diff", task.source_patch()},
                {"agent_diff", evidence.final_diff()},
                {"files_touched", files},
                {"tests",
                 {{"passed", passed},
                  {"failed", failed},
                  {"fail_to_pass", task.fail_to_pass()},
                  {"test_patch_error", evidence.test_patch_error()},
                  {"infra_error", evidence.tests().infra_error()}}},
                {"trace_summary",
                 {{"agent_events", summary.agent_events},
                  {"runner_events", summary.runner_events},
                  {"plan", summary.plan}}}};
  const std::string text = input.dump(2, ' ', false, json::error_handler_t::replace);
  for (size_t i = 0; i < ctx.judges.size(); ++i) {
    const v1::JudgeSpec& judge = ctx.judges[i];
    const std::string io_dir = fmt::format("{}/judge-{}", score_box, i);
    json event = {{"judge", judge.name()}};
    auto prepared = MakeDirs(io_dir);
    if (prepared) prepared = WriteFile(io_dir + "/judge.json", text);
    if (!prepared) {
      event["error"] = prepared.error().message();
      ctx.emit(RunnerEvent("judge", event));
      continue;
    }
    sandbox::Spec spec;
    spec.argv = {"/bin/sh", "-c", judge.command()};
    spec.workspace = tree_dir;
    spec.binds = CommandFileBinds(judge.command());
    spec.binds.push_back({.host_path = io_dir, .sandbox_path = "/crucible", .writable = false});
    spec.env = {"CRUCIBLE_JUDGE_INPUT=/crucible/judge.json", "PYTHONDONTWRITEBYTECODE=1"};
    spec.timeout =
        judge.timeout_s() > 0 ? std::chrono::seconds(judge.timeout_s()) : kDefaultJudgeTimeout;
    spec.capture_output = true;
    spec.output_cap = 256 * 1024;
    auto report = sandbox::Run(spec, [&] {
      if (ctx.tick) ctx.tick();
    });
    if (!report) {
      event["error"] = report.error().message();
      ctx.emit(RunnerEvent("judge", event));
      continue;
    }
    int kept = 0, rejected = 0;
    std::string first_error;
    std::string_view out = report->stdout_data;
    while (!out.empty()) {
      size_t nl = out.find('\n');
      std::string_view line = out.substr(0, nl);
      out.remove_prefix(nl == std::string_view::npos ? out.size() : nl + 1);
      if (IsBlank(line)) continue;
      auto score = ParseJudgeLine(line, judge.name());
      if (!score || kept >= kMaxJudgeScores) {
        if (first_error.empty()) {
          first_error =
              score ? fmt::format("more than {} scores", kMaxJudgeScores) : score.error().message();
        }
        ++rejected;
        continue;
      }
      *evidence.add_judge_scores() = std::move(*score);
      ++kept;
    }
    event["scores"] = kept;
    event["rejected"] = rejected;
    if (!first_error.empty()) event["first_rejected"] = first_error;
    event["exit_code"] = report->exit_code;
    event["timed_out"] = report->timed_out;
    ctx.emit(RunnerEvent("judge", event));
  }
}

// Runs the task's regression tests in `tree` (the scoring tree, after the
// hidden tests ran in it): their test files are put back as the merged
// commit has them (the hidden test patch already did so for its own files),
// then regression_patch goes in and the test command runs again, its
// {test_files} and {test_ids} standing for the regression patch's files and
// the regression ids (golden::RegressionTestScope). Keeps the
// outcomes of the regression ids only (an id the report lacks is an ERROR),
// or says in regression_error why they did not run. The report directory is
// `report_dir` (created, empty).
Status RunRegressionTests(const v1::GoldenTask& task, vcs::Workspace& tree,
                          const std::string& report_dir, const AttemptContext& ctx,
                          v1::Evidence& evidence) {
  const auto start = Clock::now();
  auto fail = [&](std::string why) {
    evidence.set_regression_error(golden::internal::ToValidUtf8(why));
    ctx.emit(RunnerEvent("regression_tests",
                         {{"error", evidence.regression_error()}, {"wall_ms", MsSince(start)}}));
    return Status{};
  };
  auto regression_paths = vcs::PatchPaths(task.regression_patch());
  if (!regression_paths) {
    return fail("the regression patch does not parse: " + regression_paths.error().message());
  }
  std::set<std::string> hidden;
  if (auto test_paths = vcs::PatchPaths(task.test_patch()); test_paths) {
    hidden.insert(test_paths->begin(), test_paths->end());
  }
  std::vector<std::string> restore;
  for (const auto& p : *regression_paths) {
    if (!hidden.contains(p)) restore.push_back(p);
  }
  // The agent's own edits to these files must not stop the patch.
  if (auto restored = tree.Restore(restore); !restored) {
    return fail("the regression tests' files cannot be put back: " + restored.error().message());
  }
  if (auto applied = tree.Apply(task.regression_patch()); !applied) {
    return fail("the regression patch does not apply: " + applied.error().message());
  }
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(report_dir));
  CRUCIBLE_ASSIGN_OR_RETURN(
      v1::TestRun run,
      golden::RunTests(tree.workdir(),
                       golden::TestCommandFor(task, golden::RegressionTestScope(task)),
                       report_dir));
  if (!run.infra_error().empty()) return fail("test run failed: " + run.infra_error());
  if (run.timed_out()) return fail("the regression test run timed out");
  std::map<std::string, v1::TestOutcome> by_id;
  for (auto& t : *run.mutable_tests()) by_id.emplace(t.id(), std::move(t));
  run.clear_tests();
  int passed = 0, failed = 0;
  for (const auto& id : task.regression_tests()) {
    auto it = by_id.find(id);
    v1::TestOutcome* t = run.add_tests();
    if (it != by_id.end()) {
      *t = std::move(it->second);
    } else {
      t->set_id(id);
      t->set_status(v1::TestOutcome::ERROR);
      t->set_message(run.report_found() ? "not in the test report" : "the tests wrote no report");
    }
    if (t->status() == v1::TestOutcome::PASSED) ++passed;
    if (t->status() == v1::TestOutcome::FAILED || t->status() == v1::TestOutcome::ERROR) ++failed;
  }
  ctx.emit(RunnerEvent("regression_tests",
                       {{"passed", passed}, {"failed", failed}, {"wall_ms", run.wall_ms()}}));
  *evidence.mutable_regression_tests() = std::move(run);
  return {};
}

// The agent's claims that what the harness saw can contradict (run_tests,
// edit_file) and the observations (exec, file_write), kept while the agent
// runs; Record checks them once the final diff is known.
struct ClaimsAndObservations {
  static constexpr size_t kMaxKept = 100000;
  static constexpr int kMaxReported = 20;  // runner events "contradiction"
  std::vector<v1::TraceEvent> events;

  void Add(const v1::TraceEvent& ev) {
    if (events.size() >= kMaxKept) return;
    const bool keep = ev.source() == "agent" ? ev.name() == "run_tests" || ev.name() == "edit_file"
                                             : ev.name() == "exec" || ev.name() == "file_write";
    if (keep) events.push_back(ev);
  }

  void Record(const v1::GoldenTask& task, const AttemptContext& ctx, v1::Evidence& evidence) {
    // The command as the suite wrote it: its scope placeholders say nothing
    // about what an agent's test run looks like.
    auto found = scoring::FindContradictions(events, evidence, task.test_cmd());
    for (size_t i = 0; i < found.size(); ++i) {
      const auto& c = found[i];
      if (i < kMaxReported) {
        ctx.emit(RunnerEvent("contradiction",
                             {{"claim", c.claim()}, {"ts", c.ts_ns()}, {"detail", c.detail()}}));
      }
      *evidence.add_contradictions() = std::move(found[i]);
    }
  }
};

// The agent's rounds: one, or with agent.rounds > 1 the review loop of
// docs/review-loop.md. Each round's agent work, CI and review go to
// evidence.rounds; the trace has round_start / ci / review / round_end
// markers. The loop ends when a round is merge-ready, the rounds run out, or
// the workspace can no longer be taken as a change.
Status RunRounds(const v1::GoldenTask& task, const v1::AgentSpec& agent, const std::string& repo,
                 vcs::Workspace& ws, const std::string& io_dir, const AttemptContext& ctx,
                 v1::Evidence& evidence) {
  const int rounds = std::clamp(agent.rounds(), 1, scoring::kMaxReviewRounds);
  if (rounds == 1) {
    return RunExternalAgent(task, agent, ws.workdir(), io_dir, ctx, 1, 1, nullptr, &evidence);
  }
  evidence.set_rounds_allowed(rounds);
  json feedback = nullptr;
  int64_t agent_wall_ms = 0, agent_cpu_ms = 0;
  for (int number = 1; number <= rounds; ++number) {
    ctx.emit(RunnerEvent("round_start", {{"round", number}, {"rounds", rounds}}));
    CRUCIBLE_RETURN_IF_ERROR(RunExternalAgent(task, agent, ws.workdir(), io_dir, ctx, number,
                                              rounds, feedback, &evidence));
    agent_wall_ms += evidence.agent_exit().wall_ms();
    agent_cpu_ms += evidence.agent_exit().cpu_ms();
    v1::ReviewRound* round = evidence.add_rounds();
    round->set_number(number);
    *round->mutable_agent_exit() = evidence.agent_exit();
    auto end_round = [&] {
      ctx.emit(RunnerEvent("round_end", {{"round", number},
                                         {"merge_ready", round->merge_ready()},
                                         {"ci_passed", round->ci_passed()},
                                         {"ci_failing", round->ci_failing_size()},
                                         {"ci_error", round->ci_error()},
                                         {"review", round->review_size()},
                                         {"stage_errors", round->stage_errors_size()},
                                         {"feedback_bytes", round->feedback_text().size()}}));
    };
    auto change = ws.DiffAndFiles();
    if (!change || change->diff.size() > kMaxDiffBytes) {
      round->set_ci_error(golden::internal::ToValidUtf8(
          change ? fmt::format("stage 1 (CI): the change is {} bytes, more than the limit of {}",
                               change->diff.size(), kMaxDiffBytes)
                 : "stage 1 (CI): the workspace could not be read as a change: " +
                       change.error().message()));
      end_round();
      break;
    }
    round->set_diff_bytes(change->diff.size());
    for (size_t i = 0; i < change->files.size() && i < kMaxFilesListed; ++i)
      round->add_files_touched(golden::internal::EscapeInvalidUtf8(change->files[i]));
    round->set_diff(std::move(change->diff));
    const std::string box = fmt::format("{}/round-{}", ctx.workdir, number);
    RoundContext rc{.task = task,
                    .repo = repo,
                    .rules = ctx.review,
                    .reviewers = ctx.reviewers,
                    .box = box,
                    .quota_bytes = ctx.workspace_quota_bytes,
                    .tick = ctx.tick};
    auto stages = RunReviewStages(rc, *round);
    (void)RemoveAll(box);
    if (!stages) return Fail(stages.error().Wrap(fmt::format("review round {}", number)));
    if (round->diff().size() > kMaxRoundDiffBytes) round->clear_diff();
    json failing = json::array();
    for (const auto& id : round->ci_failing()) failing.push_back(id);
    ctx.emit(RunnerEvent("ci", {{"round", number},
                                {"passed", round->ci_passed()},
                                {"failing", failing},
                                {"error", round->ci_error()},
                                {"wall_ms", round->ci_wall_ms()}}));
    json comments = json::array();
    for (const auto& c : round->review())
      comments.push_back({{"reviewer", c.reviewer()}, {"kind", c.kind()}, {"file", c.file()}});
    json errors = json::array();
    for (const auto& e : round->stage_errors()) errors.push_back(e);
    ctx.emit(RunnerEvent("review", {{"round", number},
                                    {"comments", comments},
                                    {"stage_errors", errors},
                                    {"wall_ms", round->review_wall_ms()}}));
    if (round->merge_ready() || number == rounds) {
      end_round();
      break;
    }
    feedback = MakeFeedback(*round);
    end_round();
  }
  // The attempt's agent time is every round's.
  evidence.mutable_agent_exit()->set_wall_ms(agent_wall_ms);
  evidence.mutable_agent_exit()->set_cpu_ms(agent_cpu_ms);
  return {};
}

// Applies a predictions agent's patch to the workspace as SWE-bench's
// harness does: as `git apply` would (Workspace::Apply), and when that fails,
// with `patch --batch --fuzz=5 -p1` (run in the sandbox, as the patch is
// untrusted), so a patch that applies there only with fuzz applies here too.
// Returns how it applied ("git apply", "patch --fuzz=5"), or the reason it
// does not (git's first).
Result<std::string> ApplyPrediction(vcs::Workspace& ws, const std::string& patch,
                                    const std::string& scratch) {
  if (std::string problem = golden::PatchProblem(patch); !problem.empty()) {
    return Fail(Code::kInvalidArgument, "the patch has " + problem);
  }
  auto applied = ws.Apply(patch);
  if (applied) return std::string("git apply");
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(scratch));
  CRUCIBLE_RETURN_IF_ERROR(WriteFile(scratch + "/prediction.diff", patch));
  golden::TestCommand cmd;
  cmd.command =
      "patch --batch --fuzz=5 -p1 --no-backup-if-mismatch -i /crucible/out/prediction.diff";
  cmd.format = golden::ResultFormat::kExitCode;
  cmd.timeout = std::chrono::seconds(120);
  auto fuzzed = golden::RunTests(ws.workdir(), cmd, scratch);
  (void)RemoveAll(scratch);
  if (fuzzed && fuzzed->exit_code() == 0 && !fuzzed->timed_out()) {
    return std::string("patch --fuzz=5");
  }
  return Fail(Code::kInvalidArgument, applied.error().message());
}

}  // namespace

Result<v1::Evidence> PerformAttempt(const v1::GoldenTask& task, const v1::AgentSpec& agent,
                                    const AttemptContext& outer_ctx) {
  auto start = Clock::now();
  v1::Evidence evidence;
  // Every event passes through here on its way out, so the judges can be
  // given a summary of the trace.
  TraceSummary summary;
  ClaimsAndObservations claims;
  AttemptContext ctx = outer_ctx;
  ctx.emit = [&summary, &claims, &outer_ctx](v1::TraceEvent ev) {
    summary.Add(ev);
    claims.Add(ev);
    outer_ctx.emit(std::move(ev));
  };
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(ctx.workdir));
  // What the agent can write (its workspace and /crucible) lives in one box,
  // under one quota; the tree the tests run in lives in another.
  const std::string agent_box = ctx.workdir + "/agent";
  CRUCIBLE_ASSIGN_OR_RETURN(auto agent_quota, WritableBox(agent_box, ctx.workspace_quota_bytes));
  const std::string ws_dir = agent_box + "/workspace";
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
  } else if (std::string_view kind = MutantKind(agent.command()); !kind.empty()) {
    MutantContext mc{.task = task,
                     .ws = *ws,
                     .repo = repo,
                     .scratch = ctx.workdir + "/mutant",
                     .quota_bytes = ctx.workspace_quota_bytes,
                     .rules = ctx.review,
                     .emit = ctx.emit,
                     .tick = ctx.tick};
    CRUCIBLE_ASSIGN_OR_RETURN(v1::Mutation mutation, RunMutant(kind, mc));
    (void)RemoveAll(mc.scratch);
    *evidence.mutable_mutation() = std::move(mutation);
  } else if (agent.command().starts_with("builtin:")) {
    return Fail(Code::kInvalidArgument, "unknown builtin agent '" + agent.command() + "'");
  } else if (v1::IsPredictionsAgent(agent)) {
    // The patch was produced elsewhere: nothing runs, only the patch is
    // applied. Without one there is nothing to grade.
    if (ctx.prediction.find_first_not_of(" \t\r\n") == std::string::npos) {
      evidence.set_no_submission(true);
      ctx.emit(RunnerEvent("prediction", {{"submitted", false}}));
      evidence.set_wall_ms(MsSince(start));
      return evidence;
    }
    auto how = ApplyPrediction(*ws, ctx.prediction, ctx.workdir + "/prediction");
    ctx.emit(RunnerEvent("prediction", {{"submitted", true},
                                        {"bytes", ctx.prediction.size()},
                                        {"applied", how ? *how : std::string()},
                                        {"error", how ? std::string() : how.error().message()}}));
    if (!how) {
      evidence.set_diff_error(
          golden::internal::ToValidUtf8("the prediction does not apply: " + how.error().message()));
      evidence.set_wall_ms(MsSince(start));
      return evidence;
    }
  } else {
    CRUCIBLE_RETURN_IF_ERROR(RunRounds(task, agent, repo, *ws, agent_box + "/io", ctx, evidence));
  }

  const std::vector<std::string> touched = TakeChange(*ws, evidence);
  if (!agent.command().starts_with("builtin:") && !v1::IsPredictionsAgent(agent)) {
    claims.Record(task, ctx, evidence);
  }
  {
    std::string parse_error;
    for (auto& c : scoring::DescribeChanges(task.source_patch(), &parse_error)) {
      *evidence.add_golden_changes() = std::move(c);
    }
  }
  ws.reset();
  agent_quota.reset();  // the agent's workspace is not needed any more
  {
    json files = json::array();
    for (const auto& f : evidence.files_touched()) files.push_back(f);
    ctx.emit(RunnerEvent(
        "final_diff",
        {{"files", files}, {"bytes", evidence.diff_bytes()}, {"error", evidence.diff_error()}}));
  }
  if (!evidence.diff_error().empty()) {
    evidence.set_wall_ms(MsSince(start));
    return evidence;
  }

  const std::string score_box = ctx.workdir + "/score";
  CRUCIBLE_ASSIGN_OR_RETURN(auto score_quota, WritableBox(score_box, ctx.workspace_quota_bytes));
  const std::string tree_dir = score_box + "/workspace";
  const std::string report_dir = score_box + "/out";
  CRUCIBLE_ASSIGN_OR_RETURN(auto tree, vcs::Workspace::Create(repo, task.base_commit(), tree_dir,
                                                              ctx.workdir + "/git-score"));
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(report_dir));
  bool agent_fault = false;
  auto rebuilt = RebuildForScoring(task, *tree, touched, evidence, &agent_fault);
  if (evidence.has_static_facts()) {
    const auto& facts = evidence.static_facts();
    ctx.emit(RunnerEvent("static_checks", {{"stale_references", facts.stale_references_size()},
                                           {"broken_imports", facts.broken_imports_size()},
                                           {"not_checked", facts.not_checked_size()},
                                           {"error", facts.error()},
                                           {"wall_us", facts.wall_us()}}));
  }
  if (!rebuilt) {
    if (!agent_fault) return Fail(rebuilt.error().Wrap("rebuilding the tree for the tests"));
    evidence.set_diff_error(golden::internal::ToValidUtf8(rebuilt.error().message()));
    ctx.emit(RunnerEvent("rebuild", {{"ok", false}, {"error", evidence.diff_error()}}));
    evidence.set_wall_ms(MsSince(start));
    return evidence;
  }
  if (!evidence.test_tampering().empty()) {
    json paths = json::array();
    for (const auto& p : evidence.test_tampering()) paths.push_back(p);
    ctx.emit(RunnerEvent("test_tampering", {{"paths", paths}}));
  }
  if (!evidence.test_patch_error().empty()) {
    // The agent changed the tests so the hidden ones no longer apply: that is
    // evidence about the agent, not an infrastructure failure.
    ctx.emit(RunnerEvent("test_patch", {{"ok", false}, {"error", evidence.test_patch_error()}}));
  } else {
    ctx.emit(RunnerEvent("test_patch", {{"ok", true}}));
    // The same command, setup and result format that validated the task.
    CRUCIBLE_ASSIGN_OR_RETURN(v1::TestRun tests,
                              golden::RunTests(tree_dir, golden::TestCommandFor(task), report_dir));
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
    if (task.regression_tests_size() > 0) {
      CRUCIBLE_RETURN_IF_ERROR(
          RunRegressionTests(task, *tree, score_box + "/out-regression", ctx, evidence));
    }
  }
  if (!ctx.judges.empty()) {
    RunJudges(task, tree_dir, score_box, summary, ctx, evidence);
  }
  evidence.set_wall_ms(MsSince(start));
  return evidence;
}

bool FitEvidence(v1::Evidence& evidence, size_t limit) {
  if (limit == 0 || evidence.ByteSizeLong() <= limit) return true;
  const size_t before = evidence.ByteSizeLong();
  std::vector<std::string> dropped;
  auto say = [&] {
    evidence.set_truncated(
        fmt::format("evidence of {} bytes is over the message limit of {}: {} dropped", before,
                    limit, fmt::join(dropped, ", ")));
  };
  // The note itself takes room: it is written before each measurement.
  auto fits = [&] {
    say();
    return evidence.ByteSizeLong() <= limit;
  };
  for (auto& t : *evidence.mutable_tests()->mutable_tests()) t.clear_message();
  evidence.mutable_tests()->clear_output_tail();
  if (evidence.has_regression_tests()) {
    for (auto& t : *evidence.mutable_regression_tests()->mutable_tests()) t.clear_message();
    evidence.mutable_regression_tests()->clear_output_tail();
  }
  for (auto& r : *evidence.mutable_rounds()) {
    for (auto& t : *r.mutable_ci()->mutable_tests()) t.clear_message();
    r.mutable_ci()->clear_output_tail();
  }
  dropped.push_back("test messages and output");
  if (!fits()) {
    for (auto& r : *evidence.mutable_rounds()) {
      r.clear_diff();
      r.clear_feedback_text();
    }
    if (evidence.rounds_size() > 0) dropped.push_back("the review rounds' diffs and feedback");
  }
  if (!fits()) {
    evidence.clear_agent_output_tail();
    dropped.push_back("the agent's output tail");
  }
  if (!fits()) {
    evidence.clear_final_diff();
    dropped.push_back("the final diff");
  }
  if (!fits()) {
    for (auto& c : *evidence.mutable_changes()) c.clear_hunks();
    for (auto& c : *evidence.mutable_golden_changes()) c.clear_hunks();
    dropped.push_back("the hunks of the per-file changes");
  }
  if (!fits()) {
    for (auto& r : *evidence.mutable_rounds()) r.mutable_ci()->clear_tests();
    evidence.mutable_tests()->clear_tests();
    if (evidence.has_regression_tests()) evidence.mutable_regression_tests()->clear_tests();
    dropped.push_back("every test outcome");
  }
  if (!fits()) {
    evidence.clear_files_touched();
    dropped.push_back("the list of files touched");
  }
  return fits();
}

}  // namespace crucible::runner
