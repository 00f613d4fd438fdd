#include "golden/miner.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <variant>

#include "base/fs.h"
#include "golden/test_run.h"
#include "golden/utf8.h"
#include "vcs/repo.h"

namespace crucible::golden {

namespace {

using v1::TestOutcome;

constexpr size_t kIdHexDigits = 8;
constexpr size_t kMaxListedFailures = 5;

bool EndsWith(std::string_view s, std::string_view suffix) { return s.ends_with(suffix); }

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// What the agent is asked to do: the PR's title and body. A merge commit's
// first line is "Merge pull request #N from ..." and says nothing.
std::string Intent(const vcs::Change& change) {
  std::string_view message = Trim(change.message);
  if (change.is_merge) {
    size_t nl = message.find('\n');
    if (nl != std::string_view::npos) {
      std::string_view rest = Trim(message.substr(nl + 1));
      if (!rest.empty()) message = rest;
    }
  }
  return internal::ToValidUtf8(message);
}

std::map<std::string, TestOutcome::Status> StatusById(const v1::TestRun& run) {
  std::map<std::string, TestOutcome::Status> out;
  for (const auto& t : run.tests()) out[t.id()] = t.status();
  return out;
}

std::string FailingTests(const v1::TestRun& run) {
  std::vector<std::string> ids;
  for (const auto& t : run.tests()) {
    if (t.status() == TestOutcome::FAILED || t.status() == TestOutcome::ERROR)
      ids.push_back(t.id());
  }
  if (ids.empty()) return "";
  std::sort(ids.begin(), ids.end());
  std::string out;
  for (size_t i = 0; i < ids.size() && i < kMaxListedFailures; ++i) {
    if (i > 0) out += ", ";
    out += ids[i];
  }
  if (ids.size() > kMaxListedFailures) {
    out += fmt::format(" and {} more", ids.size() - kMaxListedFailures);
  }
  return out;
}

// Why a run cannot serve as evidence, or "" when it can. `where` is "at the
// merged commit" or "at the base commit".
std::string Unusable(const v1::TestRun& run, std::string_view where) {
  if (!run.infra_error().empty())
    return fmt::format("test run failed {}: {}", where, run.infra_error());
  if (run.timed_out()) return fmt::format("tests timed out {}", where);
  if (!run.report_found()) {
    return fmt::format("tests wrote no report {} (exit {})", where, run.exit_code());
  }
  return "";
}

// The outcome of one candidate: a task, or why there is none.
struct Verdict {
  std::optional<v1::GoldenTask> task;
  std::string skip_reason;
};

Verdict Skip(std::string reason) { return Verdict{std::nullopt, std::move(reason)}; }

// Checks out `commit` into a fresh directory under `tmp`, applies `patch` and
// runs the tests. The workspace is removed before returning.
Result<std::variant<v1::TestRun, std::string>> TestAt(const MineOptions& options,
                                                      const std::string& repo,
                                                      const std::string& commit,
                                                      const std::string& patch,
                                                      const std::string& name) {
  CRUCIBLE_ASSIGN_OR_RETURN(TempDir tmp, TempDir::Create("crucible-mine-"));
  auto ws = vcs::Workspace::Create(repo, commit, tmp.path() + "/" + name,
                                   tmp.path() + "/" + name + ".git");
  if (!ws) return fmt::format("cannot check out {}: {}", commit, ws.error().message());
  if (auto applied = (*ws)->Apply(patch); !applied) {
    return fmt::format("test patch does not apply at the base commit: {}",
                       applied.error().message());
  }
  TestCommand cmd{.command = options.test_cmd, .timeout = options.test_timeout};
  CRUCIBLE_ASSIGN_OR_RETURN(v1::TestRun run, RunTests((*ws)->workdir(), cmd));
  return run;
}

Result<Verdict> Judge(const MineOptions& options, const std::string& repo,
                      const vcs::Change& change) {
  if (change.parent.empty()) return Skip("root commit");
  auto files = vcs::DiffCommits(repo, change.parent, change.commit);
  if (!files) return Skip("cannot diff: " + files.error().message());
  if (files->empty()) return Skip("empty change");
  if (std::all_of(files->begin(), files->end(), [](const auto& f) { return f.binary; })) {
    return Skip("binary-only change");
  }
  std::vector<vcs::FilePatch> source, tests;
  for (auto& f : *files) (IsTestPath(f.path) ? tests : source).push_back(std::move(f));
  if (source.empty()) return Skip("no source change");
  if (tests.empty()) return Skip("no test change");

  v1::GoldenTask task;
  task.set_source_patch(vcs::JoinPatches(source));
  task.set_test_patch(vcs::JoinPatches(tests));
  if (!internal::IsValidUtf8(task.source_patch()) || !internal::IsValidUtf8(task.test_patch())) {
    return Skip("patch is not valid UTF-8");
  }
  for (const auto& f : source) task.add_source_files(f.path);
  for (const auto& f : tests) task.add_test_files(f.path);

  // The merged commit first: when its own tests fail there is no need to run
  // the base.
  CRUCIBLE_ASSIGN_OR_RETURN(auto after_or, TestAt(options, repo, change.commit, "", "merged"));
  if (auto* why = std::get_if<std::string>(&after_or)) return Skip(*why);
  const v1::TestRun& after = std::get<v1::TestRun>(after_or);
  if (std::string why = Unusable(after, "at the merged commit"); !why.empty()) return Skip(why);
  if (std::string failing = FailingTests(after); !failing.empty()) {
    return Skip("merged commit fails its own tests: " + failing);
  }

  CRUCIBLE_ASSIGN_OR_RETURN(auto before_or,
                            TestAt(options, repo, change.parent, task.test_patch(), "base"));
  if (auto* why = std::get_if<std::string>(&before_or)) return Skip(*why);
  const v1::TestRun& before = std::get<v1::TestRun>(before_or);
  if (std::string why = Unusable(before, "at the base commit"); !why.empty()) return Skip(why);

  const auto before_status = StatusById(before);
  for (const auto& [id, status] : StatusById(after)) {  // sorted by id
    if (status != TestOutcome::PASSED) continue;
    auto it = before_status.find(id);
    if (it == before_status.end() || it->second == TestOutcome::FAILED ||
        it->second == TestOutcome::ERROR) {
      task.add_fail_to_pass(id);
    } else if (it->second == TestOutcome::PASSED) {
      task.add_pass_to_pass(id);
    }
  }
  if (task.fail_to_pass().empty()) return Skip("no test fails before the change");
  return Verdict{std::move(task), ""};
}

// "t-" and the first hex digits of the merged commit; longer when two tasks of
// one suite would share an id.
std::string TaskId(const std::string& commit, const std::set<std::string>& taken) {
  for (size_t digits = kIdHexDigits; digits < commit.size(); digits += 4) {
    std::string id = "t-" + commit.substr(0, digits);
    if (!taken.contains(id)) return id;
  }
  return "t-" + commit;
}

Status Validate(const MineOptions& o) {
  if (o.repo_path.empty()) return Fail(Code::kInvalidArgument, "repo_path is empty");
  if (o.suite.empty()) return Fail(Code::kInvalidArgument, "suite name is empty");
  if (o.test_cmd.empty()) return Fail(Code::kInvalidArgument, "test_cmd is empty");
  if (o.test_cmd.find("{junit}") == std::string::npos) {
    return Fail(Code::kInvalidArgument,
                "test_cmd has no {junit} placeholder for its JUnit report: " + o.test_cmd);
  }
  if (o.test_timeout.count() <= 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("test_timeout must be positive, not {}s", o.test_timeout.count()));
  }
  if (o.ref.empty()) return Fail(Code::kInvalidArgument, "ref is empty");
  return {};
}

}  // namespace

bool IsTestPath(std::string_view path) {
  size_t slash = path.rfind('/');
  std::string_view dir = slash == std::string_view::npos ? "" : path.substr(0, slash + 1);
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  for (size_t start = 0; start < dir.size();) {
    size_t end = dir.find('/', start);
    std::string_view part = dir.substr(start, end - start);
    if (part == "test" || part == "tests" || part == "__tests__") return true;
    start = end + 1;
  }
  if (name == "conftest.py") return true;
  if (name.starts_with("test_") && EndsWith(name, ".py")) return true;
  for (std::string_view suffix : {"_test.py", "_test.cc", "_test.cpp", "_test.go"}) {
    if (EndsWith(name, suffix)) return true;
  }
  // "*.test.*" and "*.spec.*": the marker followed by at least one more extension.
  for (std::string_view marker : {".test.", ".spec."}) {
    size_t at = name.find(marker);
    if (at != std::string_view::npos && at > 0 && at + marker.size() < name.size()) return true;
  }
  return false;
}

Result<MineResult> Mine(const MineOptions& options) {
  CRUCIBLE_RETURN_IF_ERROR(Validate(options));
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(options.repo_path, ec);
  if (!ec) abs = std::filesystem::weakly_canonical(abs, ec);
  const std::string repo = ec ? options.repo_path : abs.string();

  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<vcs::Change> history,
                            vcs::FirstParentHistory(repo, options.ref, options.last));
  std::reverse(history.begin(), history.end());  // oldest first

  MineResult result;
  v1::Suite& suite = result.suite;
  suite.set_name(options.suite);
  suite.set_repo_path(repo);
  suite.set_test_cmd(options.test_cmd);
  suite.set_test_timeout_s(static_cast<int32_t>(options.test_timeout.count()));
  suite.set_created_at_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());

  std::set<std::string> ids;
  for (size_t i = 0; i < history.size(); ++i) {
    const vcs::Change& change = history[i];
    CRUCIBLE_ASSIGN_OR_RETURN(Verdict verdict, Judge(options, repo, change));
    std::string label;
    if (verdict.task) {
      v1::GoldenTask& task = *verdict.task;
      task.set_suite(options.suite);
      task.set_id(TaskId(change.commit, ids));
      task.set_repo_path(repo);
      task.set_base_commit(change.parent);
      task.set_merged_commit(change.commit);
      task.set_intent(Intent(change));
      task.set_merged_at_ms(change.time_ms);
      task.set_test_cmd(options.test_cmd);
      task.set_test_timeout_s(suite.test_timeout_s());
      ids.insert(task.id());
      label = task.id();
      result.tasks.push_back(std::move(task));
    } else {
      label = verdict.skip_reason;
      result.skipped.push_back({change.commit, std::move(verdict.skip_reason)});
    }
    if (options.progress) options.progress(i + 1, history.size(), label);
  }
  suite.set_task_count(static_cast<int32_t>(result.tasks.size()));
  return result;
}

}  // namespace crucible::golden
