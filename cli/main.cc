// crucible: the single binary. Every subcommand is registered here; their
// bodies live in cli/*_command.cc.
#include <cstdio>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "crucible: replay your merged pull requests against coding agents in sandboxes and "
      "measure how well they do on your code."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "crucible 0.1.0");
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "log debug details to stderr");

  int exit_code = 0;
  crucible::cli::AddSandboxCommand(app, &exit_code);
  crucible::cli::AddMineCommand(app, &exit_code);
  crucible::cli::AddSuiteCommand(app, &exit_code);
  crucible::cli::AddRunCommand(app, &exit_code);
  crucible::cli::AddRunnerCommand(app, &exit_code);
  crucible::cli::AddReportCommand(app, &exit_code);
  crucible::cli::AddCompareCommand(app, &exit_code);
  crucible::cli::AddRunsCommand(app, &exit_code);
  crucible::cli::AddShowCommand(app, &exit_code);
  crucible::cli::AddRescoreCommand(app, &exit_code);
  crucible::cli::AddCalibrateCommand(app, &exit_code);
  crucible::cli::AddTraceCommand(app, &exit_code);
  crucible::cli::AddReviewCommand(app, &exit_code);
  crucible::cli::AddDemoCommand(app, &exit_code);
  crucible::cli::AddCoordinatorCommand(app, &exit_code);
  crucible::cli::AddStatusCommand(app, &exit_code);
  crucible::cli::AddCancelCommand(app, &exit_code);
  crucible::cli::AddWaitCommand(app, &exit_code);
  crucible::cli::AddKeygenCommand(app, &exit_code);

  auto logger = spdlog::stderr_color_mt("crucible");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^%l%$ %v");
  app.parse_complete_callback(
      [&] { spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::warn); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
