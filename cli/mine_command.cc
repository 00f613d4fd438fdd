#include <chrono>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "golden/miner.h"

namespace crucible::cli {

namespace {

struct MineArgs {
  std::string repo;
  std::string suite;
  std::string test_cmd;
  std::string ref = "HEAD";
  size_t last = 0;
  int test_timeout_s = 600;
  std::string db;
};

int Mine(const MineArgs& args) {
  auto store = OpenDb(args.db, /*create=*/true);
  if (!store) return ReportError(store.error());
  golden::MineOptions options;
  options.repo_path = std::filesystem::absolute(args.repo).lexically_normal().string();
  options.suite = args.suite;
  options.test_cmd = args.test_cmd;
  options.ref = args.ref;
  options.last = args.last;
  options.test_timeout = std::chrono::seconds(args.test_timeout_s);
  auto start = std::chrono::steady_clock::now();
  options.progress = [&](size_t done, size_t total, const std::string& label) {
    auto secs =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
            .count();
    std::string eta =
        done > 0 && done < total
            ? fmt::format("{}s", secs * static_cast<long>(total - done) / static_cast<long>(done))
            : "-";
    PrintProgress(
        fmt::format("[{}/{}] validated {} (elapsed {}s, eta {})", done, total, label, secs, eta),
        done == total);
  };
  auto mined = golden::Mine(options);
  if (!mined) return ReportError(mined.error());
  if (mined->tasks.empty()) {
    std::string why = mined->skipped.empty() ? "the history has no change"
                                             : "first skip: " + mined->skipped.front().reason;
    return ReportError(Error(Code::kFailedPrecondition,
                             fmt::format("no change of {} became a task ({} skipped; {}); the "
                                         "suite was not stored",
                                         options.repo_path, mined->skipped.size(), why)));
  }
  auto stored = (*store)->PutSuite(mined->suite, mined->tasks);
  if (!stored) return ReportError(stored.error());

  std::printf("suite %s: %zu tasks from %s\n", mined->suite.name().c_str(), mined->tasks.size(),
              options.repo_path.c_str());
  for (const auto& t : mined->tasks) {
    std::string title = t.intent().substr(0, t.intent().find('\n'));
    if (title.size() > 60) title = title.substr(0, 57) + "...";
    std::printf("  %-14s F2P %-3d P2P %-3d %s\n", t.id().c_str(), t.fail_to_pass_size(),
                t.pass_to_pass_size(), title.c_str());
  }
  if (!mined->skipped.empty()) {
    std::printf("skipped %zu changes:\n", mined->skipped.size());
    for (const auto& s : mined->skipped) {
      std::printf("  %.10s  %s\n", s.commit.c_str(), s.reason.c_str());
    }
  }
  return 0;
}

}  // namespace

void AddMineCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MineArgs>();
  auto* cmd = app.add_subcommand(
      "mine",
      "Mine golden tasks from a repository's first-parent history: one task per merged change, "
      "validated by running the tests before and after in the sandbox.");
  cmd->add_option("--repo", args->repo, "path of the git repository")->required();
  cmd->add_option("--suite", args->suite, "name of the suite to create or replace")->required();
  cmd->add_option("--test-cmd", args->test_cmd,
                  "test command, run by /bin/sh in the repository root; {junit} is replaced by "
                  "the path the JUnit XML report must be written to")
      ->required();
  cmd->add_option("--ref", args->ref, "branch or commit whose history is mined")
      ->capture_default_str();
  cmd->add_option("--last", args->last, "mine only the newest N changes (0: all)");
  cmd->add_option("--test-timeout", args->test_timeout_s, "seconds per test run")
      ->capture_default_str();
  cmd->add_option("--db", args->db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->callback([args, exit_code] { *exit_code = Mine(*args); });
}

}  // namespace crucible::cli
