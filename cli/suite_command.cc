#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"

namespace crucible::cli {

namespace {

int List(const std::string& db) {
  auto store = OpenDb(db, /*create=*/false);
  if (!store) return ReportError(store.error());
  auto suites = (*store)->ListSuites();
  if (!suites) return ReportError(suites.error());
  std::printf("%-20s %6s  %s\n", "suite", "tasks", "repository");
  for (const auto& s : *suites) {
    std::printf("%-20s %6d  %s\n", s.name().c_str(), s.task_count(), s.repo_path().c_str());
  }
  return 0;
}

int Show(const std::string& db, const std::string& name) {
  auto store = OpenDb(db, /*create=*/false);
  if (!store) return ReportError(store.error());
  auto suite = (*store)->GetSuite(name);
  if (!suite) return ReportError(suite.error());
  auto tasks = (*store)->ListTasks(name);
  if (!tasks) return ReportError(tasks.error());
  std::printf("suite %s\n  repository  %s\n  test command  %s\n  tasks  %zu\n\n",
              suite->name().c_str(), suite->repo_path().c_str(), suite->test_cmd().c_str(),
              tasks->size());
  for (const auto& t : *tasks) {
    std::string title = t.intent().substr(0, t.intent().find('\n'));
    std::printf("%s  base %.10s  merged %.10s  %s\n", t.id().c_str(), t.base_commit().c_str(),
                t.merged_commit().c_str(), title.c_str());
    std::printf("    source files: %s\n",
                fmt::format("{}", fmt::join(t.source_files(), ", ")).c_str());
    std::printf("    FAIL_TO_PASS (%d): %s\n", t.fail_to_pass_size(),
                fmt::format("{}", fmt::join(t.fail_to_pass(), ", ")).c_str());
    std::printf("    PASS_TO_PASS: %d tests\n", t.pass_to_pass_size());
  }
  return 0;
}

}  // namespace

void AddSuiteCommand(CLI::App& app, int* exit_code) {
  auto db = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("suite", "List and inspect golden suites.");
  cmd->require_subcommand(1);
  const char* kDbHelp = "database directory (default $CRUCIBLE_DB or ./.crucible)";
  auto* list = cmd->add_subcommand("list", "List the suites in the database.");
  list->add_option("--db", *db, kDbHelp);
  list->callback([db, exit_code] { *exit_code = List(*db); });
  auto* show = cmd->add_subcommand("show", "Show a suite's tasks.");
  show->add_option("name", *name, "suite name")->required();
  show->add_option("--db", *db, kDbHelp);
  show->callback([db, name, exit_code] { *exit_code = Show(*db, *name); });
}

}  // namespace crucible::cli
