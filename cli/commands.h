// Registration of the crucible subcommands. Each Add*Command adds one
// subcommand to `app` whose callback stores the process exit status in
// `*exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace crucible::cli {

void AddSandboxCommand(CLI::App& app, int* exit_code);
void AddMineCommand(CLI::App& app, int* exit_code);
void AddSuiteCommand(CLI::App& app, int* exit_code);
void AddRunCommand(CLI::App& app, int* exit_code);
void AddRunnerCommand(CLI::App& app, int* exit_code);
void AddReportCommand(CLI::App& app, int* exit_code);
void AddCompareCommand(CLI::App& app, int* exit_code);
void AddRescoreCommand(CLI::App& app, int* exit_code);
void AddDemoCommand(CLI::App& app, int* exit_code);
void AddCoordinatorCommand(CLI::App& app, int* exit_code);
void AddStatusCommand(CLI::App& app, int* exit_code);
void AddCancelCommand(CLI::App& app, int* exit_code);
void AddWaitCommand(CLI::App& app, int* exit_code);
void AddKeygenCommand(CLI::App& app, int* exit_code);
void AddTraceCommand(CLI::App& app, int* exit_code);
void AddReviewCommand(CLI::App& app, int* exit_code);
void AddRunsCommand(CLI::App& app, int* exit_code);
void AddShowCommand(CLI::App& app, int* exit_code);
void AddCalibrateCommand(CLI::App& app, int* exit_code);

}  // namespace crucible::cli
