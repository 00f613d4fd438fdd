#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "base/fs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "golden/interchange.h"
#include "golden/miner.h"
#include "golden/rules.h"
#include "protocol/golden_task.h"

namespace crucible::cli {

namespace {

int List(const std::string& db) {
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto suites = (*store)->ListSuites();
  if (!suites) return ReportError(suites.error());
  std::printf("%-20s %6s  %s\n", "suite", "tasks", "repository");
  for (const auto& s : *suites) {
    // Tasks whose environment check found a mismatch, which runs leave out.
    std::string note;
    if (auto tasks = (*store)->ListTasks(s.name()); tasks) {
      const auto n = std::count_if(tasks->begin(), tasks->end(), v1::IsEnvironmentMismatch);
      if (n > 0) note = fmt::format("  ({} environment mismatch)", n);
    }
    std::printf("%-20s %6d  %s%s\n", s.name().c_str(), s.task_count(), s.repo_path().c_str(),
                note.c_str());
  }
  return 0;
}

// "environment: ok (run R)" or "environment: MISMATCH (run R): detail" with
// the failing tests, one per line; "environment: not checked (run R): why"
// when the check could not decide; nothing when it never ran.
std::string EnvironmentLines(const v1::GoldenTask& t) {
  if (!t.has_environment()) return "";
  const auto& e = t.environment();
  const std::string status = e.status() == "mismatch" ? "MISMATCH, left out of runs"
                             : e.status().empty()     ? "not checked"
                                                      : e.status();
  std::string out = fmt::format("    environment: {} (run {})", status, e.run_id());
  if (!e.detail().empty()) out += ": " + e.detail();
  out += "\n";
  for (const auto& f : e.failing()) out += "      " + f + "\n";
  return out;
}

// "calibration: STATUS (run R)": the task's last `crucible calibrate`, with
// what escaped or was flagged and the mutants that do not apply; nothing
// when it was never calibrated.
std::string CalibrationLine(const v1::GoldenTask& t) {
  if (!t.has_calibration() || t.calibration().status().empty()) return "";
  const auto& c = t.calibration();
  std::vector<std::string> problems, not_applicable;
  for (const auto& e : c.entries()) {
    if (e.outcome() == "escaped" || e.outcome() == "flagged" || e.outcome() == "failed") {
      problems.push_back(e.detail().empty() ? e.agent() + " " + e.outcome() : e.detail());
    } else if (e.outcome() == "n/a") {
      std::string kind = e.agent().starts_with("mutant-") ? e.agent().substr(7) : e.agent();
      not_applicable.push_back(fmt::format("{} ({})", kind, e.detail()));
    }
  }
  std::string line = fmt::format("    calibration: {} (run {})", c.status(), c.run_id());
  if (!problems.empty()) line += fmt::format(": {}", fmt::join(problems, "; "));
  if (!not_applicable.empty()) {
    line += fmt::format("; n/a: {}", fmt::join(not_applicable, "; "));
  }
  return line + "\n";
}

int Show(const std::string& db, const std::string& name) {
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto suite = (*store)->GetSuite(name);
  if (!suite) return ReportError(suite.error());
  auto tasks = (*store)->ListTasks(name);
  if (!tasks) return ReportError(tasks.error());
  size_t held_out = 0, untestable = 0, mismatched = 0;
  for (const auto& t : *tasks) {
    held_out += t.held_out() ? 1 : 0;
    untestable += v1::IsUntestable(t) ? 1 : 0;
    mismatched += v1::IsEnvironmentMismatch(t) ? 1 : 0;
  }
  std::printf("suite %s\n  repository  %s\n  test command  %s\n", suite->name().c_str(),
              suite->repo_path().c_str(), suite->test_cmd().c_str());
  if (!suite->setup_cmd().empty()) {
    std::printf("  setup command  %s\n", suite->setup_cmd().c_str());
  }
  if (!suite->log_results().preset().empty()) {
    std::printf("  results  %s (log preset %s)\n", suite->results().c_str(),
                suite->log_results().preset().c_str());
  } else if (!suite->results().empty() && suite->results() != "junit") {
    std::printf("  results  %s\n", suite->results().c_str());
  }
  if (suite->repeat() > 0) std::printf("  repetitions  %d\n", suite->repeat());
  if (suite->regression_tests() == "none") std::printf("  regression tests  none\n");
  if (suite->banned_patterns_size() > 0) {
    std::printf("  banned patterns  %s\n",
                fmt::format("{}", fmt::join(suite->banned_patterns(), ", ")).c_str());
  }
  if (!suite->sandbox_policy().empty()) {
    std::printf("  sandbox policy\n");
    std::string_view policy = suite->sandbox_policy();
    while (!policy.empty()) {
      size_t nl = policy.find('\n');
      std::string_view line = policy.substr(0, nl);
      if (!line.empty()) std::printf("    %.*s\n", static_cast<int>(line.size()), line.data());
      policy.remove_prefix(nl == std::string_view::npos ? policy.size() : nl + 1);
    }
  }
  std::string untestable_note =
      untestable > 0 ? fmt::format("; {} untestable, left out of runs", untestable) : "";
  if (mismatched > 0) {
    untestable_note += fmt::format("; {} environment mismatch, left out of runs", mismatched);
  }
  std::printf("  tasks  %zu (%zu dev, %zu held out%s)\n\n", tasks->size(), tasks->size() - held_out,
              held_out, untestable_note.c_str());
  for (const auto& t : *tasks) {
    std::string title = t.intent().substr(0, t.intent().find('\n'));
    std::printf("%s  base %.10s  merged %.10s  %s\n", t.id().c_str(), t.base_commit().c_str(),
                t.merged_commit().c_str(), title.c_str());
    std::printf("    kind: %s  split: %s\n", t.kind().empty() ? "-" : t.kind().c_str(),
                t.held_out() ? "held-out" : "dev");
    if (t.failure_modes_size() > 0) {
      std::printf("    failure modes: %s\n",
                  fmt::format("{}", fmt::join(t.failure_modes(), ", ")).c_str());
    }
    std::printf("    source files: %s\n",
                fmt::format("{}", fmt::join(t.source_files(), ", ")).c_str());
    std::printf("    FAIL_TO_PASS (%d): %s\n", t.fail_to_pass_size(),
                fmt::format("{}", fmt::join(t.fail_to_pass(), ", ")).c_str());
    std::printf("    PASS_TO_PASS: %d tests\n", t.pass_to_pass_size());
    if (t.regression_tests_size() > 0) {
      std::printf("    regression tests (%d, from %.10s): %s\n", t.regression_tests_size(),
                  t.regression_commit().c_str(),
                  fmt::format("{}", fmt::join(t.regression_tests(), ", ")).c_str());
    }
    std::printf("%s", CalibrationLine(t).c_str());
    std::printf("%s", EnvironmentLines(t).c_str());
    if (v1::IsUntestable(t)) {
      std::printf(
          "    untestable: no FAIL_TO_PASS test (doing nothing completes it); runs leave it out "
          "unless --include-untestable\n");
    }
    if (t.flaky_size() > 0) {
      std::printf("    flaky (excluded): %s\n",
                  fmt::format("{}", fmt::join(t.flaky(), ", ")).c_str());
    }
    if (t.excluded_tests_size() > 0) {
      std::printf("    excluded tests (%d):\n", t.excluded_tests_size());
      for (const auto& e : t.excluded_tests()) {
        std::printf("      %s: %s\n", e.id().c_str(), e.reason().c_str());
      }
    }
  }
  if (suite->skipped_size() > 0) {
    std::printf("\nskipped %d changes:\n", suite->skipped_size());
    for (const auto& s : suite->skipped()) {
      std::string summary = s.summary();
      if (summary.size() > 50) summary = summary.substr(0, 47) + "...";
      std::printf("  %.10s  %-6s  %-50s  %s\n", s.commit().c_str(), s.category().c_str(),
                  summary.c_str(), s.reason().c_str());
    }
  }
  return 0;
}

int Export(const std::string& db, const std::string& name, const std::string& format,
           const std::string& out) {
  if (format != "jsonl") {
    return ReportError(Error(Code::kInvalidArgument,
                             fmt::format("unknown export format '{}' (only jsonl)", format)));
  }
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto suite = (*store)->GetSuite(name);
  if (!suite) return ReportError(suite.error());
  auto tasks = (*store)->ListTasks(name);
  if (!tasks) return ReportError(tasks.error());
  std::string text = golden::ExportJsonl(*suite, *tasks);
  if (out.empty() || out == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  if (auto st = WriteFile(out, text); !st) return ReportError(st.error());
  std::fprintf(stderr, "exported %zu tasks of suite %s to %s\n", tasks->size(), name.c_str(),
               out.c_str());
  return 0;
}

int Import(const std::string& db, const std::string& file, const golden::ImportOptions& options) {
  auto text = ReadFile(file);
  if (!text) return ReportError(text.error().Wrap("cannot read " + file));
  auto imported = golden::ImportJsonl(*text, file, options);
  if (!imported) return ReportError(imported.error());
  auto store = OpenDb(db, /*create=*/true);
  if (!store) return ReportError(store.error());
  if (auto st = (*store)->PutSuite(imported->suite, imported->tasks); !st) {
    return ReportError(st.error());
  }
  std::printf("suite %s: %zu tasks imported from %s\n", options.suite.c_str(),
              imported->tasks.size(), file.c_str());
  return 0;
}

int Split(const std::string& db, const std::string& name, double held_out, uint64_t seed) {
  auto store = OpenDb(db, /*create=*/false);
  if (!store) return ReportError(store.error());
  auto suite = (*store)->GetSuite(name);
  if (!suite) return ReportError(suite.error());
  auto tasks = (*store)->ListTasks(name);
  if (!tasks) return ReportError(tasks.error());
  if (auto st = golden::SplitHeldOut(*tasks, held_out, seed); !st) return ReportError(st.error());
  suite->mutable_split()->set_held_out(held_out);
  suite->mutable_split()->set_seed(seed);
  if (auto st = (*store)->PutSuite(*suite, *tasks); !st) return ReportError(st.error());
  size_t held = 0;
  for (const auto& t : *tasks) held += t.held_out() ? 1 : 0;
  std::printf("suite %s: %zu dev, %zu held out (seed %llu)\n", name.c_str(), tasks->size() - held,
              held, static_cast<unsigned long long>(seed));
  return 0;
}

struct RefreshArgs {
  std::string repo;
  int jobs = 1;
  int size = 0;
  std::string prs;
};

// Task ids of `suite` that an unfinished run uses, with the run's id.
Result<std::map<std::string, std::string>> TasksInUse(storage::Store& store,
                                                      const std::string& suite) {
  std::map<std::string, std::string> in_use;
  CRUCIBLE_ASSIGN_OR_RETURN(auto runs, store.ListRuns());
  for (const auto& run : runs) {
    if (run.suite() != suite || run.state() != v1::Run::RUNNING) continue;
    CRUCIBLE_ASSIGN_OR_RETURN(auto attempts, store.ListAttempts(run.id()));
    for (const auto& a : attempts) in_use.emplace(a.task_id(), run.id());
  }
  return in_use;
}

int Refresh(const std::string& db, const std::string& name, const RefreshArgs& args) {
  // Validation runs mount a size-capped tmpfs for each test report.
  EnterPrivateMountNamespace("suite refresh");
  auto store = OpenDb(db, /*create=*/false);
  if (!store) return ReportError(store.error());
  auto suite = (*store)->GetSuite(name);
  if (!suite) return ReportError(suite.error());
  auto tasks = (*store)->ListTasks(name);
  if (!tasks) return ReportError(tasks.error());
  if (suite->mined_head().empty()) {
    return ReportError(Error(Code::kFailedPrecondition,
                             fmt::format("suite {} records no mined history (imported, or mined "
                                         "by an older crucible): mine it again to refresh it",
                                         name)));
  }
  if (args.jobs < 1) {
    return ReportError(
        Error(Code::kInvalidArgument, fmt::format("--jobs must be at least 1, not {}", args.jobs)));
  }
  if (args.size < 0) {
    return ReportError(
        Error(Code::kInvalidArgument, fmt::format("--size must be at least 0, not {}", args.size)));
  }
  golden::MineOptions o;
  o.repo_path = args.repo.empty()
                    ? suite->repo_path()
                    : std::filesystem::absolute(args.repo).lexically_normal().string();
  o.suite = name;
  o.test_cmd = suite->test_cmd();
  o.ref = suite->mined_ref().empty() ? "HEAD" : suite->mined_ref();
  o.after_commit = suite->mined_head();
  o.test_timeout =
      std::chrono::seconds(suite->test_timeout_s() > 0 ? suite->test_timeout_s() : 600);
  auto format = golden::ParseResultFormat(suite->results());
  if (!format) return ReportError(format.error());
  o.results = *format;
  o.log_results = suite->log_results();
  o.setup_cmd = suite->setup_cmd();
  o.setup_timeout =
      std::chrono::seconds(suite->setup_timeout_s() > 0 ? suite->setup_timeout_s() : 600);
  o.test_patterns.assign(suite->test_patterns().begin(), suite->test_patterns().end());
  if (suite->has_mining()) {
    const auto& m = suite->mining();
    o.skip.generated.assign(m.generated().begin(), m.generated().end());
    o.skip.docs.assign(m.docs().begin(), m.docs().end());
    o.skip.version_files.assign(m.version_files().begin(), m.version_files().end());
    o.skip.max_changed_lines = static_cast<size_t>(m.max_changed_lines());
    o.require_f2p = m.require_f2p();
  }
  o.repeat = suite->repeat() > 0 ? suite->repeat() : 2;
  o.jobs = args.jobs;
  o.banned_patterns.assign(suite->banned_patterns().begin(), suite->banned_patterns().end());
  o.sandbox_policy = suite->sandbox_policy();
  o.test_infrastructure.assign(suite->test_infrastructure().begin(),
                               suite->test_infrastructure().end());
  if (!args.prs.empty()) {
    auto intents = golden::LoadPullRequests(args.prs);
    if (!intents) return ReportError(intents.error());
    o.intents = std::move(*intents);
  }
  for (const auto& t : *tasks) o.reserved_ids.insert(t.id());
  auto start = std::chrono::steady_clock::now();
  o.progress = [&](size_t done, size_t total, const std::string& label) {
    auto secs =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
            .count();
    PrintProgress(fmt::format("[{}/{}] validated {} (elapsed {}s)", done, total, label, secs),
                  done == total);
  };
  // Regression tests are computed below, for the new tasks and the old ones
  // that lack them at once, against the newest commit mined.
  const bool regression = suite->regression_tests() != "none";
  o.regression_tests = false;
  o.regression_progress = [&](size_t done, size_t total, const std::string& label) {
    auto secs =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
            .count();
    PrintProgress(
        fmt::format("[{}/{}] regression tests of {} (elapsed {}s)", done, total, label, secs),
        done == total);
  };
  auto regression_tests = [&](const std::string& newest,
                              std::vector<v1::GoldenTask>& of) -> Result<bool> {
    if (!regression || std::none_of(of.begin(), of.end(), [](const v1::GoldenTask& t) {
          return t.regression_commit().empty();
        })) {
      return false;
    }
    CRUCIBLE_ASSIGN_OR_RETURN(auto summary, golden::ComputeRegressionTests(o, newest, of));
    std::printf("regression tests: %zu tasks, %zu tests, %zu runs, %.1f s (%zu tasks without)\n",
                summary.tasks, summary.tests, summary.runs, summary.seconds, summary.none);
    return true;
  };
  auto mined = golden::Mine(o);
  if (!mined) return ReportError(mined.error());
  if (mined->tasks.empty() && mined->skipped.empty()) {
    std::printf("suite %s is up to date: nothing merged on %s since %.10s\n", name.c_str(),
                o.ref.c_str(), o.after_commit.c_str());
    std::vector<v1::GoldenTask> all = *tasks;
    auto computed = regression_tests(suite->mined_head(), all);
    if (!computed) return ReportError(computed.error());
    if (*computed) {
      if (auto st = (*store)->PutSuite(*suite, all); !st) return ReportError(st.error());
    }
    return 0;
  }

  // Existing tasks oldest first, then the new ones (newer by history); the
  // oldest go until the suite is back at its size.
  const int32_t target = args.size > 0 ? args.size : suite->target_size();
  std::vector<v1::GoldenTask> existing = *tasks;
  std::stable_sort(existing.begin(), existing.end(), [](const auto& a, const auto& b) {
    return a.merged_at_ms() != b.merged_at_ms() ? a.merged_at_ms() < b.merged_at_ms()
                                                : a.id() < b.id();
  });
  const bool split = suite->has_split();
  for (auto& t : mined->tasks) {
    t.set_held_out(split &&
                   golden::IsHeldOut(t.id(), suite->split().held_out(), suite->split().seed()));
  }
  std::vector<v1::GoldenTask> all = std::move(existing);
  const size_t old_count = all.size();
  for (auto& t : mined->tasks) all.push_back(t);
  size_t drop = 0;
  if (target > 0 && all.size() > static_cast<size_t>(target)) {
    drop = all.size() - static_cast<size_t>(target);
  }
  auto in_use = TasksInUse(**store, name);
  if (!in_use) return ReportError(in_use.error());
  for (size_t i = 0; i < drop && i < old_count; ++i) {
    if (auto it = in_use->find(all[i].id()); it != in_use->end()) {
      return ReportError(Error(
          Code::kFailedPrecondition,
          fmt::format("refresh would drop task {}, which run {} (still running) uses; let the "
                      "run finish (crucible wait {} or crucible run --resume {}) or cancel it, "
                      "then refresh again; nothing was changed",
                      all[i].id(), it->second, it->second, it->second)));
    }
  }
  std::vector<v1::GoldenTask> dropped(all.begin(), all.begin() + static_cast<long>(drop));
  std::vector<v1::GoldenTask> kept(all.begin() + static_cast<long>(drop), all.end());

  if (auto computed = regression_tests(mined->suite.mined_head(), kept); !computed) {
    return ReportError(computed.error());
  }

  v1::Suite updated = *suite;
  updated.set_repo_path(o.repo_path);
  updated.set_mined_head(mined->suite.mined_head());
  updated.set_target_size(target);
  for (const auto& s : mined->suite.skipped()) *updated.add_skipped() = s;
  updated.set_task_count(static_cast<int32_t>(kept.size()));
  if (auto st = (*store)->PutSuite(updated, kept); !st) return ReportError(st.error());

  std::set<std::string> dropped_ids;
  for (const auto& t : dropped) dropped_ids.insert(t.id());
  size_t promoted = 0;
  for (const auto& t : mined->tasks) promoted += dropped_ids.contains(t.id()) ? 0 : 1;
  std::printf(
      "suite %s refreshed from %.10s to %.10s: %zu promoted, %zu skipped, %zu dropped, "
      "%zu tasks\n",
      name.c_str(), o.after_commit.c_str(), updated.mined_head().c_str(), promoted,
      mined->skipped.size(), dropped.size(), kept.size());
  for (const auto& t : mined->tasks) {
    if (dropped_ids.contains(t.id())) continue;
    std::string title = t.intent().substr(0, t.intent().find('\n'));
    if (title.size() > 50) title = title.substr(0, 47) + "...";
    std::printf("  promoted %-14s %-18s %-8s F2P %-3d %s\n", t.id().c_str(), t.kind().c_str(),
                t.held_out() ? "held-out" : "dev", t.fail_to_pass_size(), title.c_str());
  }
  for (const auto& s : mined->skipped) {
    std::printf("  skipped  %.10s  %-6s  %s\n", s.commit.c_str(), s.category.c_str(),
                s.reason.c_str());
  }
  for (const auto& t : dropped) {
    std::printf("  dropped  %-14s (merged %s, oldest)\n", t.id().c_str(),
                golden::FormatDate(t.merged_at_ms()).c_str());
  }
  return 0;
}

Result<std::string> OneOf(const std::string& what, const std::string& value,
                          const std::vector<std::string>& valid) {
  if (std::find(valid.begin(), valid.end(), value) != valid.end()) return value;
  return Fail(Code::kInvalidArgument,
              fmt::format("unknown {} '{}' (valid: {})", what, value, fmt::join(valid, ", ")));
}

int Tag(const std::string& db, const std::string& name, const std::string& task_id,
        const std::vector<std::string>& add, const std::vector<std::string>& remove,
        const std::string& kind) {
  for (const auto& m : add) {
    if (auto r = OneOf("failure mode", m, golden::FailureModes()); !r)
      return ReportError(r.error());
  }
  for (const auto& m : remove) {
    if (auto r = OneOf("failure mode", m, golden::FailureModes()); !r)
      return ReportError(r.error());
  }
  if (!kind.empty()) {
    if (auto r = OneOf("kind", kind, golden::TaskKinds()); !r) return ReportError(r.error());
  }
  auto store = OpenDb(db, /*create=*/false);
  if (!store) return ReportError(store.error());
  auto suite = (*store)->GetSuite(name);
  if (!suite) return ReportError(suite.error());
  auto tasks = (*store)->ListTasks(name);
  if (!tasks) return ReportError(tasks.error());
  auto it = std::find_if(tasks->begin(), tasks->end(),
                         [&](const v1::GoldenTask& t) { return t.id() == task_id; });
  if (it == tasks->end()) {
    return ReportError(
        Error(Code::kNotFound, fmt::format("suite {} has no task '{}'", name, task_id)));
  }
  std::vector<std::string> modes(it->failure_modes().begin(), it->failure_modes().end());
  for (const auto& m : add) {
    if (std::find(modes.begin(), modes.end(), m) == modes.end()) modes.push_back(m);
  }
  std::erase_if(modes, [&](const std::string& m) {
    return std::find(remove.begin(), remove.end(), m) != remove.end();
  });
  // In vocabulary order, so the same tags always read the same.
  std::vector<std::string> ordered;
  for (const auto& m : golden::FailureModes()) {
    if (std::find(modes.begin(), modes.end(), m) != modes.end()) ordered.push_back(m);
  }
  it->clear_failure_modes();
  for (const auto& m : ordered) it->add_failure_modes(m);
  if (!kind.empty()) it->set_kind(kind);
  if (auto st = (*store)->PutSuite(*suite, *tasks); !st) return ReportError(st.error());
  std::printf("%s: kind %s, failure modes: %s\n", task_id.c_str(), it->kind().c_str(),
              ordered.empty() ? "-" : fmt::format("{}", fmt::join(ordered, ", ")).c_str());
  return 0;
}

}  // namespace

void AddSuiteCommand(CLI::App& app, int* exit_code) {
  auto db = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("suite", "List, inspect, export, import and split golden suites.");
  cmd->require_subcommand(1);
  const char* kDbHelp = "database directory (default $CRUCIBLE_DB or ./.crucible)";
  auto* list = cmd->add_subcommand("list", "List the suites in the database.");
  list->add_option("--db", *db, kDbHelp);
  list->callback([db, exit_code] { *exit_code = List(*db); });
  auto* show = cmd->add_subcommand("show", "Show a suite's tasks and skipped changes.");
  show->add_option("name", *name, "suite name")->required();
  show->add_option("--db", *db, kDbHelp);
  show->callback([db, name, exit_code] { *exit_code = Show(*db, *name); });

  auto format = std::make_shared<std::string>("jsonl");
  auto out = std::make_shared<std::string>();
  auto* exp = cmd->add_subcommand(
      "export", "Write a suite as JSONL with SWE-bench's field names (one task a line).");
  exp->add_option("name", *name, "suite name")->required();
  exp->add_option("--format", *format, "output format")->capture_default_str();
  exp->add_option("--output,-o", *out, "file to write (default: standard output)");
  exp->add_option("--db", *db, kDbHelp);
  exp->callback(
      [db, name, format, out, exit_code] { *exit_code = Export(*db, *name, *format, *out); });

  auto file = std::make_shared<std::string>();
  auto import_options = std::make_shared<golden::ImportOptions>();
  auto* imp = cmd->add_subcommand(
      "import", "Create a suite from a SWE-bench-style JSONL file and a local clone of its repo.");
  imp->add_option("file", *file, "JSONL file")->required();
  imp->add_option("--repo", import_options->repo_path, "local clone with every base_commit")
      ->required();
  imp->add_option("--suite", import_options->suite,
                  "suite name (default: the file's name without extension)");
  imp->add_option("--test-cmd", import_options->test_cmd,
                  "test command for lines without crucible.test_cmd");
  imp->add_option("--results", import_options->results,
                  "how the test command reports, for every line: junit, tap, exit-code or a log "
                  "preset read from its output (cargo, django, go, jest, pytest, sympy)");
  imp->add_option("--db", *db, kDbHelp);
  imp->callback([db, file, import_options, exit_code] {
    golden::ImportOptions o = *import_options;
    if (o.suite.empty()) o.suite = std::filesystem::path(*file).stem().string();
    *exit_code = Import(*db, *file, o);
  });

  auto held_out = std::make_shared<double>(0.3);
  auto seed = std::make_shared<uint64_t>(0);
  auto* split = cmd->add_subcommand(
      "split", "Mark a deterministic fraction of a suite's tasks held out (the rest: dev).");
  split->add_option("name", *name, "suite name")->required();
  split->add_option("--held-out", *held_out, "fraction of tasks held out")->capture_default_str();
  split->add_option("--seed", *seed, "seed of the split")->capture_default_str();
  split->add_option("--db", *db, kDbHelp);
  split->callback(
      [db, name, held_out, seed, exit_code] { *exit_code = Split(*db, *name, *held_out, *seed); });

  auto refresh_args = std::make_shared<RefreshArgs>();
  refresh_args->jobs = std::max(1u, std::thread::hardware_concurrency() / 2);
  auto* refresh = cmd->add_subcommand(
      "refresh",
      "Mine the changes merged since the suite was last mined (same rules and validation), "
      "add them as tasks and drop the oldest to keep the suite's size.");
  refresh->add_option("name", *name, "suite name")->required();
  refresh->add_option("--repo", refresh_args->repo,
                      "repository to mine (default: the suite's repository)");
  refresh->add_option("--jobs", refresh_args->jobs, "changes validated in parallel")
      ->capture_default_str();
  refresh->add_option("--size", refresh_args->size,
                      "tasks to keep from now on (default: the suite's size when mined)");
  refresh->add_option("--prs", refresh_args->prs,
                      "pull requests as JSON or JSONL, as for crucible mine");
  refresh->add_option("--db", *db, kDbHelp);
  refresh->callback(
      [db, name, refresh_args, exit_code] { *exit_code = Refresh(*db, *name, *refresh_args); });

  auto task_id = std::make_shared<std::string>();
  auto add_modes = std::make_shared<std::vector<std::string>>();
  auto remove_modes = std::make_shared<std::vector<std::string>>();
  auto kind = std::make_shared<std::string>();
  auto* tag = cmd->add_subcommand(
      "tag", "Set a task's failure-mode tags and kind (shown by suite show, exported in JSONL).");
  tag->add_option("name", *name, "suite name")->required();
  tag->add_option("task", *task_id, "task id")->required();
  tag->add_option(
         "--add", *add_modes,
         "failure mode to add: " + fmt::format("{}", fmt::join(golden::FailureModes(), ", ")))
      ->expected(1, -1);
  tag->add_option("--remove", *remove_modes, "failure mode to remove")->expected(1, -1);
  tag->add_option("--kind", *kind,
                  "task kind: " + fmt::format("{}", fmt::join(golden::TaskKinds(), ", ")));
  tag->add_option("--db", *db, kDbHelp);
  tag->callback([db, name, task_id, add_modes, remove_modes, kind, exit_code] {
    *exit_code = Tag(*db, *name, *task_id, *add_modes, *remove_modes, *kind);
  });
}

}  // namespace crucible::cli
