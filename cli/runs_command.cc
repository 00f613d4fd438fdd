// `crucible runs`: past runs, newest first, with their headline numbers.
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "report/drill.h"

namespace crucible::cli {

namespace {

int Runs(const std::string& db, const std::string& suite, size_t limit, const std::string& format) {
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  if (!suite.empty()) {
    auto known = (*store)->GetSuite(suite);
    if (!known) return ReportError(known.error());
  }
  auto runs = report::ListRunListings(**store, suite, limit);
  if (!runs) return ReportError(runs.error());
  if (format == "json") {
    std::fputs(report::RenderRunsJson(*runs).c_str(), stdout);
  } else if (format == "csv") {
    std::fputs(report::RenderRunsCsv(*runs).c_str(), stdout);
  } else {
    const std::string empty =
        suite.empty()
            ? "no runs in the database (start one with `crucible run`)"
            : fmt::format("no runs of suite '{}' (start one with `crucible run --suite {}`)", suite,
                          suite);
    std::fputs(report::RenderRunsTable(*runs, empty).c_str(), stdout);
  }
  return 0;
}

}  // namespace

void AddRunsCommand(CLI::App& app, int* exit_code) {
  auto db = std::make_shared<std::string>();
  auto suite = std::make_shared<std::string>();
  auto limit = std::make_shared<size_t>(20);
  auto format = std::make_shared<std::string>("table");
  auto* cmd = app.add_subcommand(
      "runs",
      "List past runs, newest first: time, suite, agents, state, strict and loose completion.");
  cmd->add_option("--suite", *suite, "only the runs of this suite");
  cmd->add_option("--limit", *limit, "at most this many runs (0: all)")->capture_default_str();
  cmd->add_option("--format", *format, "table, json or csv")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->capture_default_str();
  cmd->add_option("--db", *db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->callback([=] { *exit_code = Runs(*db, *suite, *limit, *format); });
}

}  // namespace crucible::cli
