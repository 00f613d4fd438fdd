// `crucible show RUN/N`: one attempt in full (report/show.h renders it).
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "report/show.h"

namespace crucible::cli {

namespace {

// The terminal's width: `flag` when given, else the terminal's, else
// $COLUMNS, else 80.
int Columns(int flag) {
  if (flag > 0) return flag;
  winsize ws{};
  if (::isatty(STDOUT_FILENO) && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    return ws.ws_col;
  }
  if (const char* env = std::getenv("COLUMNS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return 80;
}

int Show(const std::string& db, const std::string& text, const std::string& format, int width,
         int trace_ends) {
  auto ref = ParseAttemptRef(text);
  if (!ref) return ReportError(ref.error());
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto run = (*store)->GetRun(ref->run_id);
  if (!run) return ReportError(run.error());
  auto detail = report::LoadAttemptDetail(**store, ref->run_id, ref->number);
  if (!detail) return ReportError(detail.error());
  if (format == "json") {
    std::fputs(report::RenderShowJson(*run, *detail).c_str(), stdout);
  } else {
    std::fputs(
        report::RenderShow(*run, *detail, {.columns = Columns(width), .trace_ends = trace_ends})
            .c_str(),
        stdout);
  }
  return 0;
}

}  // namespace

void AddShowCommand(CLI::App& app, int* exit_code) {
  auto db = std::make_shared<std::string>();
  auto attempt = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  auto width = std::make_shared<int>(0);
  auto trace_ends = std::make_shared<int>(15);
  auto* cmd = app.add_subcommand(
      "show",
      "Show one attempt: intent, scores, verdict, tests, violations, its diff beside the golden "
      "diff, and its trace timeline.");
  cmd->add_option("attempt", *attempt,
                  "RUN/N (or RUN:N), as `crucible report RUN --by attempt` names it")
      ->required();
  cmd->add_option("--format", *format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  cmd->add_option("--width", *width,
                  "columns (default: the terminal's, or $COLUMNS, or 80); the diffs go side by "
                  "side from 160")
      ->check(CLI::Range(40, 1000));
  cmd->add_option("--trace-ends", *trace_ends, "trace events shown at each end of a longer trace")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--db", *db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->callback([=] { *exit_code = Show(*db, *attempt, *format, *width, *trace_ends); });
}

}  // namespace crucible::cli
