// crucible calibrate: the oracle, the noop and every mutant on a suite, and
// the matrix of which score caught which (report/calibrate.h).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "protocol/golden_task.h"
#include "report/calibrate.h"

namespace crucible::cli {

namespace {

struct CalibrateArgs {
  std::string suite;
  int tasks = 0;  // 0: every testable task of the split
  bool tasks_given = false;
  bool held_out = false;
  std::string format = "table";
  int runners = 2;
  std::string db;
  std::string coordinator;
  std::string run;
  std::vector<std::string> switch_off;
  bool environment = false;  // only the oracle and the noop: the environment check
};

// The first `n` testable tasks of the split, in id order (all with n 0).
Result<std::vector<std::string>> PickTasks(storage::Store& store, const CalibrateArgs& args) {
  CRUCIBLE_ASSIGN_OR_RETURN(v1::Suite suite, store.GetSuite(args.suite));
  CRUCIBLE_ASSIGN_OR_RETURN(auto tasks, store.ListTasks(args.suite));
  std::vector<std::string> ids;
  for (const auto& t : tasks) {
    if (t.held_out() == args.held_out && !v1::IsUntestable(t)) ids.push_back(t.id());
  }
  std::sort(ids.begin(), ids.end());
  if (ids.empty()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("suite {} has no testable task in its {} split (a task needs a "
                            "FAIL_TO_PASS test to be calibrated)",
                            suite.name(), args.held_out ? "held-out" : "dev"));
  }
  if (args.tasks > 0 && static_cast<size_t>(args.tasks) < ids.size()) ids.resize(args.tasks);
  return ids;
}

// With --format json stdout is the JSON alone: while the agents run, what
// `crucible run` prints on stdout goes to stderr.
class StdoutToStderr {
 public:
  explicit StdoutToStderr(bool on) {
    if (!on) return;
    std::fflush(stdout);
    saved_ = ::dup(STDOUT_FILENO);
    if (saved_ >= 0) ::dup2(STDERR_FILENO, STDOUT_FILENO);
  }
  ~StdoutToStderr() {
    if (saved_ < 0) return;
    std::fflush(stdout);
    ::dup2(saved_, STDOUT_FILENO);
    ::close(saved_);
  }
  StdoutToStderr(const StdoutToStderr&) = delete;
  StdoutToStderr& operator=(const StdoutToStderr&) = delete;

 private:
  int saved_ = -1;
};

// Reads the run's environment check, prints it, and stores each task's
// environment when `store_status`. 0 every task ok, 3 a mismatch.
int ShowEnvironment(storage::Store& store, const std::string& run_id, const CalibrateArgs& args,
                    bool store_status) {
  auto check = report::CheckEnvironment(store, run_id);
  if (!check) return ReportError(check.error());
  if (args.format == "json") {
    std::printf("%s", report::RenderEnvironmentJson(*check).c_str());
  } else {
    std::printf("%s", report::RenderEnvironmentTable(*check).c_str());
  }
  if (store_status) {
    if (auto st = report::StoreTaskEnvironment(store, *check); !st) {
      return ReportError(st.error().Wrap("storing the tasks' environment status"));
    }
  }
  std::fflush(stdout);
  return check->ok() ? 0 : 3;
}

// Reads the run's matrix, prints it, and stores each task's status when
// `store_status` (never for a --switch-off what-if). 0 passed, 3 failed.
// The run's environment check is stored with it (the table shows it after
// the matrix; JSON keeps the matrix alone).
int Show(storage::Store& store, const std::string& run_id, const CalibrateArgs& args,
         bool store_status) {
  if (args.environment) return ShowEnvironment(store, run_id, args, store_status);
  auto cal = report::Calibrate(store, run_id, {.switch_off = args.switch_off});
  if (!cal) return ReportError(cal.error());
  if (args.format == "json") {
    std::printf("%s", report::RenderCalibrationJson(*cal).c_str());
  } else {
    std::printf("%s", report::RenderCalibrationTable(*cal).c_str());
  }
  if (store_status && args.switch_off.empty()) {
    if (auto st = report::StoreTaskCalibration(store, *cal); !st) {
      return ReportError(st.error().Wrap("storing the tasks' calibration status"));
    }
    auto check = report::CheckEnvironment(store, run_id);
    if (!check) return ReportError(check.error());
    if (args.format != "json") {
      std::printf("\n%s", report::RenderEnvironmentTable(*check).c_str());
    }
    if (auto st = report::StoreTaskEnvironment(store, *check); !st) {
      return ReportError(st.error().Wrap("storing the tasks' environment status"));
    }
    if (!check->ok() && cal->ok()) return 3;
  }
  std::fflush(stdout);
  return cal->ok() ? 0 : 3;
}

// Shows stored run `run_id` of --db, storing the tasks' status unless another
// process (a coordinator daemon) holds the database. With `absent_ok`, a run
// not in it is a pointer to the coordinator's database instead of an error.
int ShowStored(const CalibrateArgs& args, const std::string& run_id, bool absent_ok) {
  auto store = OpenDb(args.db, /*create=*/false);
  const bool writable = static_cast<bool>(store);
  if (!store && store.error().code() == Code::kUnavailable) store = OpenDbForReading(args.db);
  if (!store || (absent_ok && !(*store)->GetRun(run_id))) {
    if (!absent_ok) return ReportError(store.error());
    std::printf(
        "\nrun %s finished; `crucible calibrate --run %s` on the coordinator's database shows "
        "the matrix\n",
        run_id.c_str(), run_id.c_str());
    return 0;
  }
  if (!writable && args.switch_off.empty()) {
    std::fprintf(stderr,
                 "crucible: note: the database is held by another process; the tasks' "
                 "calibration status is not stored\n");
  }
  if (absent_ok && args.format != "json") std::printf("\n");
  return Show(**store, run_id, args, /*store_status=*/writable);
}

std::vector<v1::AgentSpec> Agents(const CalibrateArgs& args) {
  return args.environment ? report::EnvironmentAgents() : report::CalibrationAgents();
}

int Calibrate(const CalibrateArgs& args) {
  if (args.environment && !args.switch_off.empty()) {
    return ReportError(Error(Code::kInvalidArgument,
                             "--switch-off reads the calibration matrix; --environment has none"));
  }
  if (!args.run.empty()) return ShowStored(args, args.run, /*absent_ok=*/false);
  if (args.suite.empty()) {
    return ReportError(Error(Code::kInvalidArgument, "--suite (or --run RUN) is required"));
  }
  if (args.tasks < 0 || (args.tasks == 0 && args.tasks_given)) {
    return ReportError(
        Error(Code::kInvalidArgument, fmt::format("--tasks {}: at least 1", args.tasks)));
  }
  if (!args.coordinator.empty()) {
    v1::SubmitRun submit;
    submit.set_suite(args.suite);
    for (const auto& a : Agents(args)) *submit.add_agents() = a;
    // The check must see the tasks an earlier check found mismatched.
    submit.set_include_mismatched(true);
    submit.set_samples(1);
    submit.set_held_out(args.held_out);
    if (args.tasks > 0) {
      // The tasks are picked from the local copy of the suite.
      auto store = OpenDbForReading(args.db);
      if (!store) return ReportError(store.error().Wrap("--tasks with --coordinator"));
      auto ids = PickTasks(**store, args);
      if (!ids) return ReportError(ids.error());
      for (const auto& id : *ids) submit.add_tasks(id);
    }
    Result<RemoteRun> remote = [&] {
      StdoutToStderr quiet_stdout(args.format == "json");
      return SubmitAndFollow(args.coordinator, submit, /*follow=*/true);
    }();
    if (!remote) return ReportError(remote.error());
    const std::string& run_id = remote->run.id();
    if (remote->status.run().state() != v1::Run::FINISHED) {
      return ReportError(
          Error(Code::kFailedPrecondition, fmt::format("run {} was cancelled", run_id)));
    }
    return ShowStored(args, run_id, /*absent_ok=*/true);
  }
  auto store = OpenDb(args.db, /*create=*/false);
  if (!store) return ReportError(store.error());
  auto ids = PickTasks(**store, args);
  if (!ids) return ReportError(ids.error());
  EmbeddedRunOptions options{.suite = args.suite,
                             .agents = Agents(args),
                             .samples = 1,
                             .runners = args.runners,
                             .held_out = args.held_out,
                             .include_untestable = false,
                             .quiet = false};
  options.only_tasks = *ids;
  options.include_mismatched = true;
  Result<std::string> run_id = [&] {
    StdoutToStderr quiet_stdout(args.format == "json");
    return RunEmbedded(**store, options);
  }();
  if (!run_id) return ReportError(run_id.error());
  if (args.format != "json") std::printf("\n");
  return Show(**store, *run_id, args, /*store_status=*/true);
}

}  // namespace

void AddCalibrateCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<CalibrateArgs>();
  auto* cmd = app.add_subcommand(
      "calibrate",
      "Run the oracle, the noop and the calibration mutants on a suite and show which score "
      "caught which fault (docs/scoring.md \"Calibration\"). Exit status 0: calibrated; 3: a "
      "mutant escaped a score meant for it, the oracle was flagged, the noop completed a task "
      "or an attempt did not finish; 1: an error.");
  cmd->add_option("--suite", args->suite, "suite to calibrate");
  auto* tasks = cmd->add_option("--tasks", args->tasks,
                                "N: only the first N testable tasks of the split, in id order "
                                "(default: all)");
  cmd->add_flag("--held-out", args->held_out,
                "the suite's held-out tasks instead of its dev tasks");
  cmd->add_option("--format", args->format, "table or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "json"}));
  cmd->add_option("--runners", args->runners, "local runner processes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--db", args->db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->add_option("--coordinator", args->coordinator,
                  "submit the calibration run to this coordinator daemon (tcp://HOST:PORT) and "
                  "follow it, instead of running it here");
  AddClientCurveOptions(cmd);
  cmd->add_option("--run", args->run,
                  "RUN: read a stored calibration run instead of running the agents");
  cmd->add_option("--switch-off", args->switch_off,
                  "CHECK: read the scores as if this check were off (a violation kind or a "
                  "dimension; repeatable), to see calibration notice a broken scorer; the "
                  "tasks' status is then not stored");
  cmd->add_flag("--environment", args->environment,
                "only the environment check (docs/swebench.md \"Environment check\"): run "
                "builtin:oracle and builtin:noop and mark each task whose gold patch does not "
                "resolve it, or whose FAIL_TO_PASS tests pass without it, as an environment "
                "mismatch (runs then leave it out); exit status 0: every task ok, 3: a mismatch");
  cmd->callback([args, tasks, exit_code] {
    args->tasks_given = tasks->count() > 0;
    *exit_code = Calibrate(*args);
  });
}

}  // namespace crucible::cli
