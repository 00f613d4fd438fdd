#include <memory>
#include <optional>

#include "base/fs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "report/drill.h"
#include "report/html.h"
#include "report/report.h"
#include "report/swebench.h"
#include "report/trend.h"

namespace crucible::cli {

namespace {

// The drill-down views (docs/reports.md, "Listing runs and drilling down"):
// --by task in every format, and CSV of --by agent and --by attempt. Returns
// nullopt when `format` and `by` are neither.
std::optional<int> DrillDown(const report::RunView& view, const std::string& format,
                             const std::string& by) {
  const v1::Run& run = view.run;
  if (format == "csv") {
    if (by == "agent") {
      std::fputs(
          report::RenderAgentsCsv(run, report::Summarize(run, view.attempts, view.contained_files))
              .c_str(),
          stdout);
    } else {
      std::fputs(report::RenderAttemptsCsv(run, view.attempts, by == "task").c_str(), stdout);
    }
    return 0;
  }
  if (by != "task") return std::nullopt;
  if (format == "json") {
    std::fputs(report::RenderTaskMatrixJson(run, view.attempts).c_str(), stdout);
    return 0;
  }
  const std::string progress =
      report::DescribeProgress(run, report::Summarize(run, view.attempts, view.contained_files));
  std::printf("run %s  suite %s\n%s\n%s", run.id().c_str(), run.suite().c_str(),
              progress.empty() ? "" : (progress + "\n").c_str(),
              report::RenderTaskMatrix(run, view.attempts).c_str());
  return 0;
}

int Report(const std::string& db, const std::string& run_id, const std::string& format,
           const std::string& by) {
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto view = report::LoadRun(**store, run_id);
  if (!view) return ReportError(view.error());
  if (auto done = DrillDown(*view, format, by)) return *done;
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
    const std::string progress = report::DescribeProgress(run, rows);
    std::printf("run %s  suite %s\n%s\n%s", run.id().c_str(), run.suite().c_str(),
                progress.empty() ? "" : (progress + "\n").c_str(),
                report::RenderTable(rows).c_str());
    if (std::string note = report::DescribeMismatched(run); !note.empty()) {
      std::printf("\n%s\n", note.c_str());
    }
  }
  return 0;
}

// `crucible report RUN --format swebench [--out DIR]`: SWE-bench's run
// summary per agent. One agent: on stdout; several: DIR/<model>.<run>.json
// each with --out (the paths printed), else one JSON object keyed by agent.
int ReportSwebench(const std::string& db, const std::string& run_id, const std::string& out_dir) {
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto reports = report::SwebenchReports(**store, run_id);
  if (!reports) return ReportError(reports.error());
  for (const auto& r : *reports) {
    for (const auto& d : r.differences)
      std::fprintf(stderr, "%s: %s\n", r.agent.c_str(), d.c_str());
  }
  if (!out_dir.empty()) {
    if (auto made = MakeDirs(out_dir); !made) return ReportError(made.error());
    for (const auto& r : *reports) {
      const std::string path = out_dir + "/" + r.file_name;
      if (auto wrote = WriteFile(path, r.json); !wrote) return ReportError(wrote.error());
      std::printf("%s\n", path.c_str());
    }
    return 0;
  }
  if (reports->size() == 1) {
    std::fputs(reports->front().json.c_str(), stdout);
    return 0;
  }
  std::fputs(report::SwebenchReportsByAgent(*reports).c_str(), stdout);
  return 0;
}

// `crucible report RUN --html FILE`: writes the page and prints its path.
int WriteRunHtml(const std::string& db, const std::string& run_id, const std::string& file) {
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto html = report::RenderRunHtml(**store, run_id);
  if (!html) return ReportError(html.error());
  return WriteHtmlPage(file, *html);
}

struct TrendFlags {
  std::string suite;
  bool trend = false;
  std::string agent;
  int last = 0;
};

// Whether the command line asks for a trend (or for nothing, which
// ReportTrend explains).
bool WantsTrend(const std::string& run, const TrendFlags& flags) {
  return run.empty() || flags.trend || !flags.suite.empty() || !flags.agent.empty() ||
         flags.last != 0;
}

// `report --suite S --trend`: the suite's runs, oldest first.
int ReportTrend(const std::string& db, const std::string& run, const TrendFlags& flags,
                const std::string& format) {
  if (!run.empty()) {
    return ReportError(Error(Code::kInvalidArgument, "give a RUN, or --suite S --trend, not both"));
  }
  if (!flags.trend || flags.suite.empty()) {
    return ReportError(Error(Code::kInvalidArgument,
                             "give a RUN, or --suite S --trend (--agent and --last go with "
                             "--trend)"));
  }
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto trend = report::LoadTrend(**store, flags.suite, {.agent = flags.agent, .last = flags.last});
  if (!trend) return ReportError(trend.error());
  std::fputs((format == "json"  ? report::RenderTrendJson(*trend)
              : format == "csv" ? report::RenderTrendCsv(*trend)
                                : report::RenderTrendTable(*trend))
                 .c_str(),
             stdout);
  return 0;
}

// `report --suite S --trend --html FILE`: the trend's page.
int WriteTrendHtml(const std::string& db, const std::string& run, const TrendFlags& flags,
                   const std::string& file) {
  if (!run.empty() || !flags.trend || flags.suite.empty()) {
    return ReportError(
        Error(Code::kInvalidArgument, "--html writes the page of a RUN, or of --suite S --trend"));
  }
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto trend = report::LoadTrend(**store, flags.suite, {.agent = flags.agent, .last = flags.last});
  if (!trend) return ReportError(trend.error());
  return WriteHtmlPage(file, report::RenderTrendHtml(*trend));
}

void AddTrendOptions(CLI::App* cmd, const std::shared_ptr<TrendFlags>& flags) {
  cmd->add_option("--suite", flags->suite, "with --trend: the suite whose runs to follow");
  cmd->add_flag("--trend", flags->trend,
                "each agent's headline metrics per run of --suite, oldest first");
  cmd->add_option("--agent", flags->agent, "with --trend: only this agent");
  cmd->add_option("--last", flags->last, "with --trend: only the last N runs")
      ->check(CLI::PositiveNumber);
}

}  // namespace

void AddReportCommand(CLI::App& app, int* exit_code) {
  auto db = std::make_shared<std::string>();
  auto run = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  auto by = std::make_shared<std::string>("agent");
  auto* cmd = app.add_subcommand(
      "report", "Summarize a run: one row per agent (or, with --by attempt, per attempt).");
  cmd->add_option("run", *run, "run id (printed by `crucible run`)");
  cmd->add_option("--format", *format,
                  "table, json, csv or swebench (SWE-bench's run summary per agent: "
                  "docs/swebench.md)")
      ->check(CLI::IsMember({"table", "json", "csv", "swebench"}))
      ->capture_default_str();
  cmd->add_option("--by", *by,
                  "agent (the metrics per agent), attempt (one line each) or task (the agent x "
                  "task matrix)")
      ->check(CLI::IsMember({"agent", "attempt", "task"}))
      ->capture_default_str();
  auto out = std::make_shared<std::string>();
  cmd->add_option("--out", *out,
                  "with --format swebench: write DIR/<model>.<run>.json per agent (the "
                  "harness's file names)");
  auto html = std::make_shared<std::string>();
  cmd->add_option("--html", *html,
                  "write the HTML page of the run (or of --suite S --trend) to this file "
                  "(self-contained) and print its path");
  cmd->add_option("--db", *db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  auto trend = std::make_shared<TrendFlags>();
  AddTrendOptions(cmd, trend);
  cmd->callback([=] {
    if (WantsTrend(*run, *trend)) {
      *exit_code = html->empty() ? ReportTrend(*db, *run, *trend, *format)
                                 : WriteTrendHtml(*db, *run, *trend, *html);
      return;
    }
    if (*format == "swebench" || !out->empty()) {
      if (*format != "swebench") {
        *exit_code =
            ReportError(Error(Code::kInvalidArgument, "--out goes with --format swebench"));
        return;
      }
      *exit_code = ReportSwebench(*db, *run, *out);
      return;
    }
    *exit_code = html->empty() ? Report(*db, *run, *format, *by) : WriteRunHtml(*db, *run, *html);
  });
}

}  // namespace crucible::cli
