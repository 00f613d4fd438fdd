// `crucible demo`: the main job end to end on the embedded default.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "base/fs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "examples/embedded.h"
#include "golden/miner.h"
#include "report/html.h"
#include "report/report.h"

namespace crucible::cli {

namespace {

// The sample repository's tests need Debian's python3 with pytest, which is
// what the sandbox shows; the host's first python3 on PATH may be another.
constexpr char kTestCommand[] = "python3 -m pytest -q -p no:cacheprovider --junitxml={junit}";

struct DemoArgs {
  int runners = 2;
  bool keep = false;
  std::string db;
  std::string html = "crucible-demo-report.html";
};

// Writes the run's HTML report (docs/reports.md) to `path` and returns the
// path as the user can open it: absolute.
Result<std::string> WriteHtmlReport(storage::Store& store, const std::string& run_id,
                                    const std::string& path) {
  CRUCIBLE_ASSIGN_OR_RETURN(std::string page, report::RenderRunHtml(store, run_id));
  CRUCIBLE_RETURN_IF_ERROR(WriteFile(path, page));
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.lexically_normal().string();
}

int Demo(const DemoArgs& args) {
  auto dir = TempDir::Create("crucible-demo-");
  if (!dir) return ReportError(dir.error());
  std::string root = args.keep ? dir->Release() : dir->path();

  std::printf("== 1/4 building the sample repository in %s/sample-repo\n", root.c_str());
  std::fflush(stdout);
  std::string script = root + "/make_sample_repo.py";
  if (auto st = WriteFile(script, examples::sample_repo_script()); !st)
    return ReportError(st.error());
  std::string python = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  auto rc = RunProgram({python, script, root + "/sample-repo"});
  if (!rc) return ReportError(rc.error());
  if (*rc != 0) {
    return ReportError(
        Error(Code::kInternal, fmt::format("the sample repository generator exited {}", *rc)));
  }

  std::string agent = root + "/agents/rule_agent.py";
  if (auto st = MakeDirs(root + "/agents"); !st) return ReportError(st.error());
  if (auto st = WriteFile(agent, examples::example_agent_script(), 0755); !st)
    return ReportError(st.error());

  std::string db_dir = args.db.empty() ? root + "/db" : args.db;
  auto store = OpenDb(db_dir, /*create=*/true);
  if (!store) return ReportError(store.error());

  std::printf(
      "== 2/4 mining golden tasks (tests run in the sandbox before and after each change)\n");
  std::fflush(stdout);
  golden::MineOptions mine;
  mine.repo_path = root + "/sample-repo";
  mine.suite = "sample";
  mine.test_cmd = kTestCommand;
  mine.test_timeout = std::chrono::seconds(120);
  mine.progress = [](size_t done, size_t total, const std::string& label) {
    PrintProgress(fmt::format("[{}/{}] {}", done, total, label), done == total);
  };
  auto mined = golden::Mine(mine);
  if (!mined) return ReportError(mined.error());
  if (auto st = (*store)->PutSuite(mined->suite, mined->tasks); !st) return ReportError(st.error());
  std::printf("suite sample: %zu tasks, %zu changes skipped\n", mined->tasks.size(),
              mined->skipped.size());

  std::printf("== 3/4 running oracle, noop and rule-agent (up to 3 review rounds) on every task\n");
  std::fflush(stdout);
  EmbeddedRunOptions run{.suite = "sample",
                         .agents = {},
                         .samples = 1,
                         .runners = args.runners,
                         .held_out = false,
                         .quiet = false};
  for (std::string spec :
       {std::string("builtin:oracle"), std::string("builtin:noop"), "rule-agent=" + agent}) {
    auto parsed = ParseAgentSpec(spec);
    if (!parsed) return ReportError(parsed.error());
    // The example agent learns from CI and review feedback
    // (docs/review-loop.md): the report shows which tasks take it 1, 2 or
    // more rounds.
    if (parsed->name() == "rule-agent") parsed->set_rounds(3);
    run.agents.push_back(*parsed);
  }
  auto run_id = RunEmbedded(**store, run);
  if (!run_id) return ReportError(run_id.error());

  std::printf("== 4/4 report\n\n");
  auto rows = report::SummarizeRun(**store, *run_id);
  if (!rows) return ReportError(rows.error());
  std::printf("%s\n", report::RenderTable(*rows).c_str());
  if (args.keep) {
    std::printf("kept %s; `crucible report %s --db %s` shows the run again\n", root.c_str(),
                run_id->c_str(), db_dir.c_str());
  }
  auto html = WriteHtmlReport(**store, *run_id, args.html);
  if (!html) return ReportError(html.error());
  std::printf("HTML report: %s\n", html->c_str());
  return 0;
}

}  // namespace

void AddDemoCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<DemoArgs>();
  auto* cmd = app.add_subcommand(
      "demo",
      "Build the sample repository in a temporary directory, mine it, run the oracle, noop and "
      "example agents on it, print the report and write it as an HTML page.");
  cmd->add_option("--runners", args->runners, "local runner processes")->capture_default_str();
  cmd->add_flag("--keep", args->keep, "keep the temporary directory (repository, database)");
  cmd->add_option("--db", args->db, "database directory (default: inside the temporary directory)");
  cmd->add_option("--html", args->html, "where to write the run's HTML report")
      ->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = Demo(*args); });
}

}  // namespace crucible::cli
