#include <cstdint>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "base/fs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "golden/interchange.h"

namespace crucible::cli {

namespace {

int List(const std::string& db) {
  auto store = OpenDbForReading(db);
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
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto suite = (*store)->GetSuite(name);
  if (!suite) return ReportError(suite.error());
  auto tasks = (*store)->ListTasks(name);
  if (!tasks) return ReportError(tasks.error());
  size_t held_out = 0;
  for (const auto& t : *tasks) held_out += t.held_out() ? 1 : 0;
  std::printf("suite %s\n  repository  %s\n  test command  %s\n", suite->name().c_str(),
              suite->repo_path().c_str(), suite->test_cmd().c_str());
  if (!suite->setup_cmd().empty()) {
    std::printf("  setup command  %s\n", suite->setup_cmd().c_str());
  }
  if (!suite->results().empty() && suite->results() != "junit") {
    std::printf("  results  %s\n", suite->results().c_str());
  }
  if (suite->repeat() > 0) std::printf("  repetitions  %d\n", suite->repeat());
  if (suite->banned_patterns_size() > 0) {
    std::printf("  banned patterns  %s\n",
                fmt::format("{}", fmt::join(suite->banned_patterns(), ", ")).c_str());
  }
  std::printf("  tasks  %zu (%zu dev, %zu held out)\n\n", tasks->size(), tasks->size() - held_out,
              held_out);
  for (const auto& t : *tasks) {
    std::string title = t.intent().substr(0, t.intent().find('\n'));
    std::printf("%s  base %.10s  merged %.10s  %s\n", t.id().c_str(), t.base_commit().c_str(),
                t.merged_commit().c_str(), title.c_str());
    std::printf("    kind: %s  split: %s\n", t.kind().empty() ? "-" : t.kind().c_str(),
                t.held_out() ? "held-out" : "dev");
    std::printf("    source files: %s\n",
                fmt::format("{}", fmt::join(t.source_files(), ", ")).c_str());
    std::printf("    FAIL_TO_PASS (%d): %s\n", t.fail_to_pass_size(),
                fmt::format("{}", fmt::join(t.fail_to_pass(), ", ")).c_str());
    std::printf("    PASS_TO_PASS: %d tests\n", t.pass_to_pass_size());
    if (t.flaky_size() > 0) {
      std::printf("    flaky (excluded): %s\n",
                  fmt::format("{}", fmt::join(t.flaky(), ", ")).c_str());
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
  if (auto st = (*store)->PutSuite(*suite, *tasks); !st) return ReportError(st.error());
  size_t held = 0;
  for (const auto& t : *tasks) held += t.held_out() ? 1 : 0;
  std::printf("suite %s: %zu dev, %zu held out (seed %llu)\n", name.c_str(), tasks->size() - held,
              held, static_cast<unsigned long long>(seed));
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
}

}  // namespace crucible::cli
