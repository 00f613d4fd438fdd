#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "golden/interchange.h"
#include "golden/log_results.h"
#include "golden/miner.h"
#include "golden/suite_config.h"

namespace crucible::cli {

namespace {

struct MineArgs {
  std::string repo;
  std::string suite;
  std::string test_cmd;
  std::string ref = "HEAD";
  size_t last = 0;
  std::string since;
  std::string prs;
  std::string config;
  int test_timeout_s = 600;
  std::string setup_cmd;
  int setup_timeout_s = 600;
  std::string results = "junit";
  std::vector<std::string> test_patterns;
  size_t max_changed_lines = 2000;
  int repeat = 2;
  int jobs = 1;
  bool require_f2p = false;
  std::string db;
  // Which options were given on the command line (they override the file).
  std::function<bool(const char*)> given;
};

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The options from the configuration file, then the flags given.
Result<golden::MineOptions> Resolve(const MineArgs& args) {
  golden::SuiteConfig config;
  if (!args.config.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(config, golden::LoadSuiteConfig(args.config));
  }
  auto flag = [&](const char* name) { return args.given(name); };
  golden::MineOptions o;
  o.repo_path = std::filesystem::absolute(args.repo).lexically_normal().string();
  o.suite = args.suite;
  o.test_cmd = flag("--test-cmd") ? args.test_cmd : config.test_cmd.value_or("");
  if (o.test_cmd.empty()) {
    return Fail(Code::kInvalidArgument,
                args.config.empty()
                    ? "no test command: pass --test-cmd or --config with a test_cmd"
                    : fmt::format("no test command: {} has no test_cmd and --test-cmd is not "
                                  "given",
                                  args.config));
  }
  o.ref = args.ref;
  o.last = args.last;
  if (!args.since.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(o.since_ms, golden::ParseDateMs(args.since));
  }
  if (!args.prs.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(o.intents, golden::LoadPullRequests(args.prs));
  }
  o.test_timeout = std::chrono::seconds(
      flag("--test-timeout") ? args.test_timeout_s : config.test_timeout_s.value_or(600));
  o.setup_cmd = flag("--setup-cmd") ? args.setup_cmd : config.setup_cmd.value_or("");
  o.setup_timeout = std::chrono::seconds(
      flag("--setup-timeout") ? args.setup_timeout_s : config.setup_timeout_s.value_or(600));
  if (flag("--results")) {
    CRUCIBLE_ASSIGN_OR_RETURN(golden::NamedResults named, golden::ResultsByName(args.results));
    o.results = named.format;
    o.log_results = std::move(named.log);
  } else {
    CRUCIBLE_ASSIGN_OR_RETURN(o.results,
                              golden::ParseResultFormat(config.results.value_or("junit")));
    if (config.log_results) o.log_results = *config.log_results;
  }
  o.test_patterns = flag("--test-pattern") ? args.test_patterns
                                           : config.test_files.value_or(std::vector<std::string>{});
  if (!config.skip_defaults.value_or(true)) {
    o.skip.generated.clear();
    o.skip.docs.clear();
    o.skip.version_files.clear();
  }
  o.skip.generated = Concat(o.skip.generated, config.skip_generated);
  o.skip.docs = Concat(o.skip.docs, config.skip_docs);
  o.skip.version_files = Concat(o.skip.version_files, config.skip_version_files);
  o.skip.max_changed_lines = flag("--max-changed-lines")
                                 ? args.max_changed_lines
                                 : config.max_changed_lines.value_or(args.max_changed_lines);
  o.repeat = flag("--repeat") ? args.repeat : config.repeat.value_or(2);
  o.jobs = flag("--jobs") ? args.jobs : config.jobs.value_or(args.jobs);
  o.require_f2p = flag("--require-f2p") ? args.require_f2p : config.require_f2p.value_or(false);
  o.banned_patterns = config.banned_patterns;
  o.sandbox_policy = config.sandbox_policy.value_or("");
  o.test_infrastructure = config.test_infrastructure.value_or(std::vector<std::string>{});
  o.regression_tests = config.regression_tests.value_or(true);
  if (config.review) o.review = *config.review;
  return o;
}

int Mine(const MineArgs& args) {
  // Validation runs mount a size-capped tmpfs for each test report.
  EnterPrivateMountNamespace("mine");
  auto resolved = Resolve(args);
  if (!resolved) return ReportError(resolved.error());
  golden::MineOptions& options = *resolved;
  auto store = OpenDb(args.db, /*create=*/true);
  if (!store) return ReportError(store.error());
  auto start = std::chrono::steady_clock::now();
  // The changes the skip rules drop are done at once; the time left is
  // estimated from the validations since then.
  auto validating_since = start;
  size_t skipped_first = 0;
  bool rules_done = false;
  options.prepared = [&](size_t skipped, size_t) {
    validating_since = std::chrono::steady_clock::now();
    skipped_first = skipped;
    rules_done = true;
  };
  options.progress = [&](size_t done, size_t total, const std::string& label) {
    auto now = std::chrono::steady_clock::now();
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
    auto validating =
        std::chrono::duration_cast<std::chrono::seconds>(now - validating_since).count();
    const size_t validated = done > skipped_first ? done - skipped_first : 0;
    std::string eta = rules_done && validated > 0 && done < total
                          ? fmt::format("{}s", validating * static_cast<long>(total - done) /
                                                   static_cast<long>(validated))
                          : "-";
    PrintProgress(
        fmt::format("[{}/{}] validated {} (elapsed {}s, eta {})", done, total, label, secs, eta),
        done == total);
  };
  options.regression_progress = [&](size_t done, size_t total, const std::string& label) {
    auto now = std::chrono::steady_clock::now();
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
    PrintProgress(
        fmt::format("[{}/{}] regression tests of {} (elapsed {}s)", done, total, label, secs),
        done == total);
  };
  auto mined = golden::Mine(options);
  if (!mined) return ReportError(mined.error());
  const double mining_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
    if (title.size() > 50) title = title.substr(0, 47) + "...";
    std::string flaky =
        t.excluded_tests_size() > 0
            ? fmt::format(" ({} tests excluded, see suite show)", t.excluded_tests_size())
            : (t.flaky_size() > 0 ? fmt::format(" ({} flaky)", t.flaky_size()) : "");
    std::printf("  %-14s %-18s F2P %-3d P2P %-3d %s%s\n", t.id().c_str(), t.kind().c_str(),
                t.fail_to_pass_size(), t.pass_to_pass_size(), title.c_str(), flaky.c_str());
  }
  const auto untestable = std::count_if(mined->tasks.begin(), mined->tasks.end(),
                                        [](const v1::GoldenTask& t) { return t.untestable(); });
  if (untestable > 0) {
    std::printf(
        "%td of the tasks have no FAIL_TO_PASS test (kind no-test-delta): doing nothing "
        "completes them, so runs leave them out unless --include-untestable\n",
        untestable);
  }
  if (options.regression_tests) {
    const auto& r = mined->regression;
    std::printf(
        "regression tests: %zu tasks, %zu tests, %zu runs, %.1f s (%.0f%% of mining's %.1f s)\n",
        r.tasks, r.tests, r.runs, r.seconds, mining_s > 0 ? 100.0 * r.seconds / mining_s : 0.0,
        mining_s);
  }
  if (!mined->skipped.empty()) {
    std::printf("skipped %zu changes:\n", mined->skipped.size());
    for (const auto& s : mined->skipped) {
      std::printf("  %.10s  %-6s  %s\n", s.commit.c_str(), s.category.c_str(), s.reason.c_str());
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
                  "the path the JUnit XML report must be written to (or set test_cmd in --config)");
  cmd->add_option("--config", args->config,
                  "suite configuration file (YAML, see docs/suites.md); flags override it");
  cmd->add_option("--ref,--branch", args->ref, "branch or commit whose history is mined")
      ->capture_default_str();
  cmd->add_option("--last", args->last, "mine only the newest N changes (0: all)");
  cmd->add_option("--since", args->since,
                  "mine only changes committed on or after DATE (YYYY-MM-DD or RFC 3339)");
  cmd->add_option("--prs", args->prs,
                  "pull requests as JSON or JSONL (gh pr list --state merged --json "
                  "number,title,body,mergeCommit): the intent is the PR's title and body");
  cmd->add_option("--test-timeout", args->test_timeout_s, "seconds per test run")
      ->capture_default_str();
  cmd->add_option("--setup-cmd", args->setup_cmd,
                  "command run in the sandbox before each test run (e.g. installs)");
  cmd->add_option("--setup-timeout", args->setup_timeout_s, "seconds for the setup command")
      ->capture_default_str();
  cmd->add_option("--results", args->results,
                  "how the tests report: junit, tap (TAP on stdout or in {junit}), exit-code "
                  "(the whole suite is one test) or a log preset read from the output (cargo, "
                  "django, go, jest, pytest, sympy)")
      ->capture_default_str();
  cmd->add_option("--test-pattern", args->test_patterns,
                  "test-file pattern (repeatable; replaces the per-language defaults)");
  cmd->add_option("--max-changed-lines", args->max_changed_lines,
                  "skip changes with more added+removed lines (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--repeat", args->repeat,
                  "test runs per side of each change; outcomes that differ are flaky")
      ->capture_default_str();
  args->jobs = std::max(1u, std::thread::hardware_concurrency() / 2);
  cmd->add_option("--jobs", args->jobs, "changes validated in parallel")->capture_default_str();
  cmd->add_flag("--require-f2p", args->require_f2p,
                "drop changes without a FAIL_TO_PASS test instead of keeping them as "
                "no-test-delta tasks");
  cmd->add_option("--db", args->db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  args->given = [cmd](const char* name) { return cmd->count(name) > 0; };
  cmd->callback([args, exit_code] { *exit_code = Mine(*args); });
}

}  // namespace crucible::cli
