// crucible rescore: recomputes the scores of a run from what is stored.
#include <chrono>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "report/rescore.h"

namespace crucible::cli {

namespace {

int Rescore(const std::string& db, const std::string& run_id, bool dry_run) {
  auto store = dry_run ? OpenDbForReading(db) : OpenDb(db, /*create=*/false);
  if (!store) return ReportError(store.error());
  // Progress at most once a second, so short runs print none.
  using Clock = std::chrono::steady_clock;
  auto next = Clock::now() + std::chrono::seconds(1);
  bool shown = false;
  report::RescoreOptions options{
      .dry_run = dry_run, .progress = [&](size_t done, size_t total) {
        const bool final = done == total;
        if (Clock::now() < next && !(final && shown)) return;
        next = Clock::now() + std::chrono::seconds(1);
        shown = true;
        PrintProgress(fmt::format("rescoring run {}: [{}/{}]", run_id, done, total), final);
      }};
  auto summary = report::RescoreRun(**store, run_id, options);
  if (!summary) return ReportError(summary.error());
  std::fputs(report::RenderRescore(*summary).c_str(), stdout);
  for (const auto& s : summary->skipped) {
    if (s.error) return 1;  // a record that cannot be read; named above
  }
  return 0;
}

}  // namespace

void AddRescoreCommand(CLI::App& app, int* exit_code) {
  auto db = std::make_shared<std::string>();
  auto run = std::make_shared<std::string>();
  auto dry_run = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "rescore",
      "Recompute every score of a run from its stored evidence with the current scoring "
      "rules, store them and say what changed.");
  cmd->add_option("run", *run, "run id (printed by `crucible run`)")->required();
  cmd->add_flag("--dry-run", *dry_run, "say what would change; store nothing");
  cmd->add_option("--db", *db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->callback([=] { *exit_code = Rescore(*db, *run, *dry_run); });
}

}  // namespace crucible::cli
