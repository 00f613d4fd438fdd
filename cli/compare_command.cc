#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "report/compare.h"
#include "report/html.h"

namespace crucible::cli {

namespace {

// Exit status when a --fail-if-worse gate fails (1 is bad input).
constexpr int kWorse = 3;

int Compare(const std::string& db, const std::vector<std::string>& side_texts,
            const std::string& format, const std::vector<std::string>& gate_texts,
            const std::string& html) {
  std::vector<report::Side> sides;
  for (const auto& text : side_texts) {
    auto side = report::ParseSide(text);
    if (!side) return ReportError(side.error());
    sides.push_back(std::move(*side));
  }
  std::vector<report::WorseGate> gates;
  for (const auto& text : gate_texts) {
    auto gate = report::ParseWorseGate(text);
    if (!gate) return ReportError(gate.error());
    gates.push_back(std::move(*gate));
  }
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto comparison = report::Compare(**store, sides);
  if (!comparison) return ReportError(comparison.error());
  if (!html.empty()) {
    if (int written = WriteHtmlPage(html, report::RenderComparisonHtml(*comparison));
        written != 0) {
      return written;
    }
  } else if (format == "json") {
    std::fputs(report::RenderComparisonJson(*comparison).c_str(), stdout);
  } else if (format == "csv") {
    std::fputs(report::RenderComparisonCsv(*comparison).c_str(), stdout);
  } else {
    std::fputs(report::RenderComparisonTable(*comparison).c_str(), stdout);
  }
  const auto failed = report::FailedGates(*comparison, gates);
  for (const auto& line : failed) std::fprintf(stderr, "crucible: worse: %s\n", line.c_str());
  return failed.empty() ? 0 : kWorse;
}

}  // namespace

void AddCompareCommand(CLI::App& app, int* exit_code) {
  auto db = std::make_shared<std::string>();
  auto sides = std::make_shared<std::vector<std::string>>();
  auto format = std::make_shared<std::string>("table");
  auto gates = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand(
      "compare",
      "Compare agents paired by task and sample: the first side is the baseline A; each other "
      "side is compared with it.");
  cmd->add_option("sides", *sides,
                  "RUN:AGENT, or RUN for every agent of the run (one run with several agents "
                  "compares its agents)")
      ->required();
  cmd->add_option("--format", *format, "table, json or csv")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->capture_default_str();
  cmd->add_option("--fail-if-worse", *gates,
                  "METRIC:POINTS (repeatable): exit 3 when a side is significantly worse than A "
                  "on METRIC by more than POINTS over its whole 95% interval");
  auto html = std::make_shared<std::string>();
  cmd->add_option("--html", *html,
                  "write the comparison as a self-contained HTML page to this file (instead of "
                  "the table) and print its path");
  cmd->add_option("--db", *db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->callback([=] { *exit_code = Compare(*db, *sides, *format, *gates, *html); });
}

}  // namespace crucible::cli
