#include <filesystem>
#include <memory>

#include "base/fs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "report/html.h"
#include "report/report.h"

namespace crucible::cli {

namespace {

int Report(const std::string& db, const std::string& run_id, const std::string& format,
           const std::string& by) {
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto view = report::LoadRun(**store, run_id);
  if (!view) return ReportError(view.error());
  const v1::Run& run = view->run;
  if (by == "attempt") {
    if (format == "json") {
      std::fputs(report::RenderAttemptsJson(run, view->attempts).c_str(), stdout);
    } else {
      std::printf("run %s  suite %s\n\n%s", run.id().c_str(), run.suite().c_str(),
                  report::RenderAttemptsTable(run, view->attempts).c_str());
    }
    return 0;
  }
  auto rows = report::Summarize(run, view->attempts, view->contained_files);
  if (format == "json") {
    std::fputs(report::RenderJson(run, rows).c_str(), stdout);
  } else {
    std::printf("run %s  suite %s\n\n%s", run.id().c_str(), run.suite().c_str(),
                report::RenderTable(rows).c_str());
  }
  return 0;
}

// `crucible report RUN --html FILE`: writes the page and prints its path.
int WriteRunHtml(const std::string& db, const std::string& run_id, const std::string& file) {
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto html = report::RenderRunHtml(**store, run_id);
  if (!html) return ReportError(html.error());
  std::error_code ec;
  const std::string path = std::filesystem::absolute(file, ec).lexically_normal().string();
  if (auto st = WriteFile(path, *html); !st) {
    return ReportError(st.error().Wrap("writing the HTML report to " + file));
  }
  std::printf("%s\n", path.c_str());
  return 0;
}

}  // namespace

void AddReportCommand(CLI::App& app, int* exit_code) {
  auto db = std::make_shared<std::string>();
  auto run = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  auto by = std::make_shared<std::string>("agent");
  auto* cmd = app.add_subcommand(
      "report", "Summarize a run: one row per agent (or, with --by attempt, per attempt).");
  cmd->add_option("run", *run, "run id (printed by `crucible run`)")->required();
  cmd->add_option("--format", *format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  cmd->add_option("--by", *by, "agent (the metrics per agent) or attempt (one line each)")
      ->check(CLI::IsMember({"agent", "attempt"}))
      ->capture_default_str();
  auto html = std::make_shared<std::string>();
  cmd->add_option("--html", *html,
                  "write the run's HTML page to this file (self-contained) and print its path");
  cmd->add_option("--db", *db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->callback([=] {
    *exit_code = html->empty() ? Report(*db, *run, *format, *by) : WriteRunHtml(*db, *run, *html);
  });
}

}  // namespace crucible::cli
