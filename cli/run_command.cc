#include <unistd.h>

#include <memory>

#include <fmt/format.h>

#include "agent-runner/runner.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "report/report.h"

namespace crucible::cli {

namespace {

struct RunArgs {
  std::string suite;
  std::vector<std::string> agents;
  int samples = 1;
  int runners = 2;
  std::string db;
};

int Run(const RunArgs& args) {
  EmbeddedRunOptions options{
      .suite = args.suite, .agents = {}, .samples = args.samples, .runners = args.runners};
  for (const auto& text : args.agents) {
    auto spec = ParseAgentSpec(text);
    if (!spec) return ReportError(spec.error());
    options.agents.push_back(*spec);
  }
  auto store = OpenDb(args.db, /*create=*/false);
  if (!store) return ReportError(store.error());
  auto run_id = RunEmbedded(**store, options);
  if (!run_id) return ReportError(run_id.error());
  auto rows = report::SummarizeRun(**store, *run_id);
  if (!rows) return ReportError(rows.error());
  std::printf("\n%s", report::RenderTable(*rows).c_str());
  std::printf("\nrun %s finished; `crucible report %s` shows it again\n", run_id->c_str(),
              run_id->c_str());
  return 0;
}

struct RunnerArgs {
  runner::RunnerOptions options;
};

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run",
      "Run agents on every task of a suite. Without a coordinator address this starts a "
      "coordinator and local runner processes (the embedded default).");
  cmd->add_option("--suite", args->suite, "suite to run")->required();
  cmd->add_option("--agent", args->agents,
                  "NAME=COMMAND, builtin:oracle (applies the golden patch) or builtin:noop "
                  "(changes nothing); repeat for several agents")
      ->required();
  cmd->add_option("--samples", args->samples, "attempts per task and agent")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--runners", args->runners, "local runner processes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--db", args->db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
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
  cmd->add_option("--slots", args->options.slots, "attempts at once")->capture_default_str();
  cmd->callback([args, exit_code] {
    auto st = runner::RunRunner(args->options);
    *exit_code = st ? 0 : ReportError(st.error());
  });
}

}  // namespace crucible::cli
