#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent-runner/adapters.h"
#include "agent-runner/repo_cache.h"
#include "agent-runner/runner.h"
#include "cli/agent_file.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "report/report.h"
#include "sandbox/policy.h"
#include "sandbox/sandbox.h"
#include "scoring/score.h"

namespace crucible::cli {

namespace {

struct RunArgs {
  std::string suite;
  std::vector<std::string> agents;
  int samples = 1;
  int runners = 2;
  std::string db;
  std::string coordinator;
  bool detach = false;
  bool held_out = false;
  bool include_untestable = false;
  bool include_mismatched = false;
  std::string resume;
  std::vector<std::string> require;        // --require KEY=VALUE
  std::vector<std::string> judges;         // --judge NAME=COMMAND
  std::vector<std::string> agent_files;    // --agents FILE
  std::string prices;                      // --prices FILE
  std::vector<std::string> trace_formats;  // --trace-format F or NAME=F
  std::vector<std::string> egress;         // --egress NAME=HOST:PORT
  int rounds = -1;                         // --rounds N; -1: the agent file's or the suite's
  std::vector<std::string> reviewers;      // --reviewer NAME=COMMAND
};

// Adds each --egress NAME=HOST:PORT to the agent named NAME.
Status ApplyEgressFlags(const std::vector<std::string>& flags, std::vector<v1::AgentSpec>& agents) {
  for (const auto& flag : flags) {
    size_t eq = flag.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("--egress '{}': expected NAME=HOST:PORT (NAME an --agent)", flag));
    }
    std::string name = flag.substr(0, eq);
    std::string target = flag.substr(eq + 1);
    if (auto ok = sandbox::CheckEgressEntry(target); !ok) {
      return Fail(ok.error().Wrap(fmt::format("--egress '{}'", flag)));
    }
    auto it = std::find_if(agents.begin(), agents.end(),
                           [&](const v1::AgentSpec& a) { return a.name() == name; });
    if (it == agents.end()) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("--egress '{}': no --agent is named '{}'", flag, name));
    }
    it->add_egress(target);
  }
  return {};
}

// The run's agents: the --agent ones, then those of each --agents file, with
// --trace-format and --prices applied. Errors name the flag or file.
Result<std::vector<v1::AgentSpec>> CollectAgents(const RunArgs& args) {
  std::vector<v1::AgentSpec> cli_agents, file_agents;
  for (const auto& text : args.agents) {
    CRUCIBLE_ASSIGN_OR_RETURN(v1::AgentSpec spec, ParseAgentSpec(text));
    cli_agents.push_back(std::move(spec));
  }
  for (const auto& file : args.agent_files) {
    CRUCIBLE_ASSIGN_OR_RETURN(auto agents, LoadAgentFile(file));
    for (auto& a : agents) file_agents.push_back(std::move(a));
  }
  CRUCIBLE_RETURN_IF_ERROR(ApplyTraceFormats(args.trace_formats, cli_agents, file_agents));
  std::vector<v1::AgentSpec> all = std::move(cli_agents);
  for (auto& a : file_agents) all.push_back(std::move(a));
  std::set<std::string> names;
  for (const auto& a : all) {
    if (!names.insert(a.name()).second) {
      return Fail(
          Code::kInvalidArgument,
          fmt::format("agent name '{}' given twice (by --agent or --agents files)", a.name()));
    }
  }
  if (!args.prices.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(auto prices, LoadPriceFile(args.prices));
    AddPrices(prices, all);
  }
  // --rounds for every agent whose file did not say; an agent file's own wins.
  if (args.rounds > 0) {
    for (auto& a : all) {
      if (a.rounds() <= 0) a.set_rounds(args.rounds);
    }
  }
  return all;
}

// `crucible run --coordinator EP`: the run is the daemon's; this only submits
// and follows it.
int RunRemote(const RunArgs& args, const std::vector<v1::AgentSpec>& agents,
              const std::vector<v1::JudgeSpec>& judges,
              const std::vector<v1::ReviewerSpec>& reviewers) {
  v1::SubmitRun submit;
  submit.set_suite(args.suite);
  for (const auto& a : agents) *submit.add_agents() = a;
  submit.set_samples(args.samples);
  submit.set_held_out(args.held_out);
  submit.set_include_untestable(args.include_untestable);
  submit.set_include_mismatched(args.include_mismatched);
  submit.set_run_id(args.resume);
  for (const auto& r : args.require) submit.add_require(r);
  for (const auto& j : judges) *submit.add_judges() = j;
  for (const auto& r : reviewers) *submit.add_reviewers() = r;
  auto remote = SubmitAndFollow(args.coordinator, submit, /*follow=*/!args.detach);
  if (!remote) return ReportError(remote.error());
  const v1::Run& run = remote->run;
  if (args.detach) {
    std::printf("%s\n", run.id().c_str());
    return 0;
  }
  bool finished = remote->status.run().state() == v1::Run::FINISHED;
  std::printf(
      "\nrun %s %s: done %d, infra-failed %d of %d; `crucible report %s` on the "
      "coordinator's database shows it\n",
      run.id().c_str(), finished ? "finished" : "was cancelled", remote->status.done(),
      remote->status.failed(), run.attempt_count(), run.id().c_str());
  return finished ? 0 : 1;
}

int Run(const RunArgs& args) {
  EmbeddedRunOptions options{.suite = args.suite,
                             .agents = {},
                             .samples = args.samples,
                             .runners = args.runners,
                             .held_out = args.held_out,
                             .include_untestable = args.include_untestable,
                             .quiet = false,
                             .resume = args.resume};
  if (args.resume.empty() &&
      (args.suite.empty() || (args.agents.empty() && args.agent_files.empty()))) {
    return ReportError(Error(Code::kInvalidArgument,
                             "--suite and --agent or --agents are required (unless --resume RUN)"));
  }
  auto agents = CollectAgents(args);
  if (!agents) return ReportError(agents.error());
  options.agents = std::move(*agents);
  options.include_mismatched = args.include_mismatched;
  // What reading the predictions files found, before the run starts.
  {
    v1::Run read;
    for (const auto& a : options.agents) *read.add_agents() = a;
    PrintPredictionWarnings(read, {});
  }
  if (auto ok = ApplyEgressFlags(args.egress, options.agents); !ok) {
    return ReportError(ok.error());
  }
  for (const auto& text : args.judges) {
    auto judge = ParseJudgeSpec(text);
    if (!judge) return ReportError(judge.error());
    options.judges.push_back(*judge);
  }
  for (const auto& text : args.reviewers) {
    auto reviewer = ParseReviewerSpec(text);
    if (!reviewer) return ReportError(reviewer.error());
    options.reviewers.push_back(*reviewer);
  }
  if (args.rounds != -1 && (args.rounds < 1 || args.rounds > scoring::kMaxReviewRounds)) {
    return ReportError(Error(
        Code::kInvalidArgument,
        fmt::format("--rounds {}: between 1 and {}", args.rounds, scoring::kMaxReviewRounds)));
  }
  for (const auto& r : args.require) {
    if (r.find('=') == std::string::npos || r.front() == '=') {
      return ReportError(
          Error(Code::kInvalidArgument, "--require '" + r + "': expected KEY=VALUE"));
    }
  }
  if (!args.coordinator.empty())
    return RunRemote(args, options.agents, options.judges, options.reviewers);
  if (!args.require.empty()) {
    return ReportError(
        Error(Code::kInvalidArgument,
              "--require needs --coordinator (the embedded runners have no labels)"));
  }
  if (args.detach) {
    return ReportError(Error(Code::kInvalidArgument, "--detach needs --coordinator"));
  }
  auto store = OpenDb(args.db, /*create=*/false);
  if (!store) return ReportError(store.error());
  auto run_id = RunEmbedded(**store, options);
  if (!run_id) return ReportError(run_id.error());
  auto rows = report::SummarizeRun(**store, *run_id);
  if (!rows) return ReportError(rows.error());
  std::printf("\n%s", report::RenderTable(*rows).c_str());
  if (auto run = (*store)->GetRun(*run_id); run) {
    if (std::string note = report::DescribeUntestable(*run); !note.empty()) {
      std::printf("\n%s\n", note.c_str());
    }
    if (std::string note = report::DescribeMismatched(*run); !note.empty()) {
      std::printf("\n%s\n", note.c_str());
    }
  }
  std::printf("\nrun %s finished; `crucible report %s` shows it again\n", run_id->c_str(),
              run_id->c_str());
  return 0;
}

std::atomic<bool> g_runner_stop{false};

struct RunnerArgs {
  runner::RunnerOptions options;
  std::vector<std::string> repo_urls;    // --repo-url ID_OR_SUITE=URL
  std::string curve_secret;              // --curve-secret
  std::string coordinator_key;           // --coordinator-key
  std::string workspace_quota = "auto";  // --workspace-quota
};

}  // namespace

Result<RemoteRun> SubmitAndFollow(const std::string& coordinator, const v1::SubmitRun& submit,
                                  bool follow) {
  v1::Envelope req;
  *req.mutable_submit_run() = submit;
  CRUCIBLE_ASSIGN_OR_RETURN(v1::Envelope reply, AskCoordinator(coordinator, req));
  if (!reply.has_run_accepted()) {
    return Fail(Code::kCorruption, "unexpected answer to SubmitRun");
  }
  RemoteRun remote;
  remote.run = reply.run_accepted().run();
  PrintPredictionWarnings(remote.run, {submit.agents().begin(), submit.agents().end()});
  if (!follow) return remote;
  const v1::Run& run = remote.run;
  std::printf("run %s: %d attempts (suite %s, %d agents, %d samples) on coordinator %s\n",
              run.id().c_str(), run.attempt_count(), run.suite().c_str(), run.agents_size(),
              run.samples(), coordinator.c_str());
  if (std::string note = report::DescribeUntestable(run); !note.empty()) {
    std::printf("%s\n", note.c_str());
  }
  if (std::string note = report::DescribeMismatched(run); !note.empty()) {
    std::printf("%s\n", note.c_str());
  }
  std::fflush(stdout);
  CRUCIBLE_ASSIGN_OR_RETURN(remote.status, FollowRun(coordinator, run.id(), /*quiet=*/false));
  return remote;
}

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run",
      "Run agents on every task of a suite. Without a coordinator address this starts a "
      "coordinator and local runner processes (the embedded default).");
  cmd->add_option("--suite", args->suite, "suite to run");
  cmd->add_option("--agent", args->agents,
                  "NAME=COMMAND, builtin:oracle (applies the golden patch), builtin:noop "
                  "(changes nothing) or [NAME=]predictions:FILE (a SWE-bench predictions file: "
                  "each task's model_patch is the change; docs/swebench.md); repeat for several "
                  "agents");
  cmd->add_option("--agents", args->agent_files,
                  "FILE: a YAML agent file (name, command, trace_format, model, prompt_file, env, "
                  "pass_env, limits, require, prices; docs/agents.md \"Agent files\"); "
                  "repeatable, combinable with --agent");
  cmd->add_option("--trace-format", args->trace_formats,
                  "FORMAT (for every --agent) or NAME=FORMAT: how the agent's telemetry is read: " +
                      fmt::format("{}", fmt::join(runner::TraceFormats(), ", ")) +
                      " (default crucible; repeatable)");
  cmd->add_option("--prices", args->prices,
                  "FILE: a YAML price table (MODEL: {input, output, cache_read, cache_write}, USD "
                  "per million tokens) for every agent; an agent file's own prices win");
  cmd->add_option("--judge", args->judges,
                  "NAME=COMMAND: a judge run in the sandbox after every attempt's tests with "
                  "/crucible/judge.json; its stdout lines {\"dimension\", \"score\", "
                  "\"reason\"} are stored beside the deterministic scores (repeatable)");
  cmd->add_option("--rounds", args->rounds,
                  "N: review rounds per attempt (docs/review-loop.md): after each, CI (the "
                  "visible tests) and the scoped review; with something to say, the agent runs "
                  "again with the feedback. Default: the agent file's `rounds`, else the suite's "
                  "`review: rounds`, else 1");
  cmd->add_option("--reviewer", args->reviewers,
                  "NAME=COMMAND: an extra stage-2 reviewer of every review round, run in the "
                  "sandbox with /crucible/review.json; its stdout lines {\"comment\", \"file\", "
                  "\"line\"} join the feedback (repeatable)");
  cmd->add_option("--egress", args->egress,
                  "NAME=HOST:PORT: the agent NAME may reach HOST:PORT (its model gateway) "
                  "through its sandbox's egress proxy ($HTTPS_PROXY); nothing else is "
                  "reachable (repeatable)");
  cmd->add_option("--samples", args->samples, "attempts per task and agent")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--runners", args->runners, "local runner processes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--db", args->db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->add_option("--coordinator", args->coordinator,
                  "submit the run to this coordinator daemon (tcp://HOST:PORT) and follow it, "
                  "instead of running it here");
  AddClientCurveOptions(cmd);
  cmd->add_flag("--held-out", args->held_out,
                "replay the suite's held-out tasks instead of its dev tasks (see `suite split`)");
  cmd->add_flag("--include-untestable", args->include_untestable,
                "also run the tasks without a FAIL_TO_PASS test (doing nothing completes "
                "them); they are reported apart, never in the completion rate");
  cmd->add_flag("--include-mismatched", args->include_mismatched,
                "also run the tasks whose environment check failed (the gold patch does not "
                "resolve them, or their FAIL_TO_PASS tests pass without it; see `crucible "
                "calibrate --environment`)");
  cmd->add_option("--require", args->require,
                  "KEY=VALUE: lease the run's attempts only to runners with this --label "
                  "(repeat for several; needs --coordinator)");
  cmd->add_flag("--detach", args->detach,
                "with --coordinator: print the run id and return at once");
  cmd->add_option("--resume", args->resume,
                  "finish an interrupted run instead of starting one; finished attempts are "
                  "not run again");
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

void AddRunnerCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RunnerArgs>();
  args->options.name = fmt::format("runner-{}", ::getpid());
  auto* cmd = app.add_subcommand(
      "runner", "Runner daemon: take attempts from a coordinator and perform them in sandboxes.");
  cmd->add_option("--coordinator", args->options.coordinator, "coordinator endpoint")->required();
  cmd->add_option("--workdir", args->options.workdir, "scratch directory")->required();
  cmd->add_option("--name", args->options.name, "runner name")->capture_default_str();
  cmd->add_option("--slots", args->options.slots, "attempts at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--label", args->options.labels,
                  "KEY=VALUE shown in status (repeat for several)");
  cmd->add_option("--workspace-quota", args->workspace_quota,
                  "size cap of each attempt's workspace, a tmpfs (e.g. 2G; 0: none; auto: 4G "
                  "when running as root, none otherwise)")
      ->capture_default_str();
  cmd->add_option("--repo-url", args->repo_urls,
                  "REPO_ID_OR_SUITE=URL: fetch that repository from this clone URL into the "
                  "cache instead of asking the coordinator for packs (repeatable)");
  cmd->add_option("--connect-timeout-ms", args->options.connect_timeout_ms,
                  "give up when no coordinator answers for this long (0: keep trying)")
      ->capture_default_str();
  cmd->add_option("--curve-secret", args->curve_secret,
                  "CurveZMQ: the runner's key pair (a .key file from `crucible keygen`)");
  cmd->add_option("--coordinator-key", args->coordinator_key,
                  "CurveZMQ: the coordinator's public key (its .pub file)");
  cmd->callback([args, exit_code] {
    for (const auto& l : args->options.labels) {
      if (l.find('=') == std::string::npos || l.front() == '=') {
        *exit_code =
            ReportError(Error(Code::kInvalidArgument, "--label '" + l + "': expected KEY=VALUE"));
        return;
      }
    }
    auto urls = runner::ParseRepoUrls(args->repo_urls);
    if (!urls) {
      *exit_code = ReportError(urls.error());
      return;
    }
    args->options.repo_urls = *urls;
    auto curve = LoadCurveClientKeys(args->curve_secret, args->coordinator_key);
    if (!curve) {
      *exit_code = ReportError(curve.error());
      return;
    }
    args->options.curve = *curve;
    if (args->workspace_quota == "auto") {
      args->options.workspace_quota_bytes = ::geteuid() == 0 ? uint64_t{4} << 30 : 0;
    } else {
      auto quota = sandbox::ParseSize("--workspace-quota", args->workspace_quota);
      if (!quota) {
        *exit_code = ReportError(quota.error());
        return;
      }
      if (*quota > 0 && ::geteuid() != 0) {
        *exit_code = ReportError(Error(Code::kInvalidArgument,
                                       "--workspace-quota needs root (it mounts a tmpfs); "
                                       "pass --workspace-quota 0 to run without one"));
        return;
      }
      args->options.workspace_quota_bytes = *quota;
    }
    if (args->options.workspace_quota_bytes > 0) {
      // The workspaces' tmpfs mounts: a killed runner leaves none behind.
      EnterPrivateMountNamespace("runner");
    }
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_runner_stop = true; };
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    args->options.stop = &g_runner_stop;
    bool busy = false;
    auto st = runner::RunRunner(args->options, &busy);
    *exit_code = st ? 0 : ReportError(st.error());
    if (busy) {
      // A worker is still inside an attempt (stopped by a signal): leave
      // without unwinding under it. Its lease was handed back.
      std::fflush(nullptr);
      std::_Exit(*exit_code);
    }
  });
}

}  // namespace crucible::cli
