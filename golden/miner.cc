#include "golden/miner.h"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <variant>

#include "base/fs.h"
#include "golden/commit_diff.h"
#include "golden/log_results.h"
#include "golden/test_run.h"
#include "golden/utf8.h"
#include "sandbox/policy.h"
#include "vcs/repo.h"

namespace crucible::golden {

namespace {

using v1::TestOutcome;

constexpr size_t kIdHexDigits = 8;
constexpr size_t kMaxListedFailures = 5;

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
  std::string category;
};

Verdict Skip(std::string reason, std::string category = "filter") {
  return Verdict{std::nullopt, std::move(reason), std::move(category)};
}

// Checks out `commit` into a fresh directory, applies `patch` and runs `cmd`
// `repeat` times in that one workspace, or fewer when `more` (given the runs
// so far) says the next one cannot matter. The workspace is removed before
// returning. A string: why there are no runs (infra); `patch_name` names the
// patch there ("test patch does not apply at the base commit: ...").
Result<std::variant<std::vector<v1::TestRun>, std::string>> TestAt(
    const TestCommand& cmd, int repeat, const std::string& repo, const std::string& commit,
    const std::string& patch, std::string_view patch_name,
    const std::function<bool(const std::vector<v1::TestRun>&)>& more = nullptr) {
  CRUCIBLE_ASSIGN_OR_RETURN(TempDir tmp, TempDir::Create("crucible-mine-"));
  auto ws = vcs::Workspace::Create(repo, commit, tmp.path() + "/w", tmp.path() + "/w.git");
  if (!ws) return fmt::format("cannot check out {}: {}", commit, ws.error().message());
  if (auto applied = (*ws)->Apply(patch); !applied) {
    return fmt::format("{}: {}", patch_name, applied.error().message());
  }
  std::vector<v1::TestRun> runs;
  for (int i = 0; i < repeat && (i == 0 || !more || more(runs)); ++i) {
    CRUCIBLE_ASSIGN_OR_RETURN(v1::TestRun run, RunTests((*ws)->workdir(), cmd));
    runs.push_back(std::move(run));
  }
  return runs;
}

// The regression search's scope: {test_files} the regression patch's files,
// {test_ids} nothing (the search is for tests no list names yet).
TestScope RegressionSearchScope(const std::string& regression_patch) {
  auto paths = vcs::PatchPaths(regression_patch);
  return {.files = paths ? TestFilesToRun(std::move(*paths)) : std::vector<std::string>{},
          .ids = {}};
}

// The validation runs of mining: options' command, `repeat` times. Its
// {test_files} stand for the change's test files; {test_ids} for nothing
// (FAIL_TO_PASS and PASS_TO_PASS are what these runs find out), so the
// runner's own selection applies.
Result<std::variant<std::vector<v1::TestRun>, std::string>> TestAt(const MineOptions& options,
                                                                   const v1::GoldenTask& task,
                                                                   const std::string& repo,
                                                                   const std::string& commit,
                                                                   const std::string& patch) {
  const TestScope scope{
      .files = TestFilesToRun({task.test_files().begin(), task.test_files().end()}), .ids = {}};
  TestCommand cmd{.command = ExpandTestScope(options.test_cmd, scope),
                  .timeout = options.test_timeout,
                  .format = options.results,
                  .setup = options.setup_cmd,
                  .setup_timeout = options.setup_timeout,
                  .sandbox_policy = options.sandbox_policy,
                  .log_results = options.log_results};
  return TestAt(cmd, options.repeat, repo, commit, patch,
                "test patch does not apply at the base commit");
}

// Outcomes of each test over the repetitions of one side. A test absent from
// a run counts as UNKNOWN in that run.
struct Side {
  std::map<std::string, std::vector<TestOutcome::Status>> by_id;
  size_t runs = 0;

  explicit Side(const std::vector<v1::TestRun>& all) : runs(all.size()) {
    for (size_t i = 0; i < all.size(); ++i) {
      for (const auto& [id, status] : StatusById(all[i])) {
        auto& v = by_id[id];
        v.resize(all.size(), TestOutcome::UNKNOWN);
        v[i] = status;
      }
    }
  }
  // The test's one status in every run; nullopt when it differs (flaky).
  // Failed and errored count as the same outcome.
  std::optional<TestOutcome::Status> Stable(const std::string& id) const {
    auto it = by_id.find(id);
    if (it == by_id.end()) return TestOutcome::UNKNOWN;
    auto norm = [](TestOutcome::Status s) {
      return s == TestOutcome::ERROR ? TestOutcome::FAILED : s;
    };
    TestOutcome::Status first = norm(it->second[0]);
    for (auto s : it->second) {
      if (norm(s) != first) return std::nullopt;
    }
    return it->second[0];
  }
};

bool Failing(TestOutcome::Status s) { return s == TestOutcome::FAILED || s == TestOutcome::ERROR; }

// The checks and the split that need no test run: a task with its patches and
// files, or why the change is skipped.
Verdict Prepare(const MineOptions& options, const std::string& repo, internal::CommitDiffer& differ,
                const vcs::Change& change) {
  if (change.parent.empty()) return Skip("root commit");
  auto files = differ.Diff(change.parent, change.commit);
  if (!files) {
    std::error_code ec;
    if (std::filesystem::exists(repo + "/.git/shallow", ec) ||
        std::filesystem::exists(repo + "/shallow", ec)) {
      return Skip(fmt::format("parent {} is not in this shallow clone (deepen it: git fetch "
                              "--deepen=N or --unshallow)",
                              change.parent.substr(0, 10)),
                  "infra");
    }
    return Skip("cannot diff: " + files.error().message());
  }
  if (std::string why = PreSkipReason(*files, options.skip); !why.empty()) return Skip(why);
  std::vector<vcs::FilePatch> source, tests;
  for (auto& f : *files) {
    bool is_test = options.test_patterns.empty() ? IsTestPath(f.path)
                                                 : AnyMatches(options.test_patterns, f.path);
    (is_test ? tests : source).push_back(std::move(f));
  }
  auto not_code = [&](const vcs::FilePatch& f) {
    return AnyMatches(options.skip.docs, f.path) || AnyMatches(options.skip.generated, f.path) ||
           HasGeneratedMarker(f.patch);
  };
  if (source.empty() || std::all_of(source.begin(), source.end(), not_code)) {
    return Skip("no source change");
  }
  if (tests.empty() && options.require_f2p) return Skip("no test change");

  v1::GoldenTask task;
  task.set_source_patch(vcs::JoinPatches(source));
  task.set_test_patch(vcs::JoinPatches(tests));
  if (!internal::IsValidUtf8(task.source_patch()) || !internal::IsValidUtf8(task.test_patch())) {
    return Skip("patch is not valid UTF-8");
  }
  for (const auto& f : source) task.add_source_files(f.path);
  for (const auto& f : tests) task.add_test_files(f.path);
  auto pr = options.intents.find(change.commit);
  task.set_intent(pr != options.intents.end() ? internal::ToValidUtf8(pr->second) : Intent(change));
  task.set_kind(ClassifyKind(task.intent(), source, tests, change.summary));
  return Verdict{std::move(task), "", ""};
}

// Validates a prepared candidate (Prepare gave it a task).
Result<Verdict> Judge(const MineOptions& options, const std::string& repo,
                      const vcs::Change& change, v1::GoldenTask task) {
  // The merged commit first: when its own tests fail there is no need to run
  // the base.
  CRUCIBLE_ASSIGN_OR_RETURN(auto after_or, TestAt(options, task, repo, change.commit, ""));
  if (auto* why = std::get_if<std::string>(&after_or)) return Skip(*why, "infra");
  const auto& after_runs = std::get<std::vector<v1::TestRun>>(after_or);
  for (const auto& run : after_runs) {
    if (std::string why = Unusable(run, "at the merged commit"); !why.empty()) {
      return Skip(why, why.starts_with("tests wrote no report") ? "tests" : "infra");
    }
  }
  const Side after(after_runs);
  // Tests that failed in a run at the merged commit (or came and went) cannot
  // say whether the change is done: they leave both lists, each with why.
  std::map<std::string, std::string> excluded;
  std::set<std::string> flaky;
  std::vector<std::string> failing;  // failed in every run at the merged commit
  bool any_passing = false;          // passed in every run at the merged commit
  for (const auto& [id, statuses] : after.by_id) {
    const size_t failed =
        static_cast<size_t>(std::count_if(statuses.begin(), statuses.end(), Failing));
    auto stable = after.Stable(id);
    if (!stable) flaky.insert(id);
    if (failed == after.runs) {
      failing.push_back(id);
      excluded[id] = after.runs == 1 ? "fails at the merged commit"
                                     : fmt::format("fails at the merged commit ({} of {} runs)",
                                                   failed, after.runs);
    } else if (failed > 0) {
      excluded[id] = fmt::format("failed {} of {} runs at the merged commit", failed, after.runs);
    } else if (!stable) {
      excluded[id] =
          fmt::format("outcome differed between the {} runs at the merged commit", after.runs);
    } else if (*stable == TestOutcome::PASSED) {
      any_passing = true;
    }
  }
  const size_t excluded_at_merged = excluded.size();
  // Why the change has no task when no reliable FAIL_TO_PASS test is left
  // because of the tests above; "" when none was excluded.
  auto unreliable = [&]() -> std::string {
    if (excluded.empty()) return "";
    if (failing.size() == excluded_at_merged) {
      v1::TestRun failed;
      for (const auto& id : failing) {
        auto* t = failed.add_tests();
        t->set_id(id);
        t->set_status(TestOutcome::FAILED);
      }
      return "merged commit fails its own tests: " + FailingTests(failed);
    }
    std::string out = "no reliable FAIL_TO_PASS test: ";
    size_t n = 0;
    for (const auto& [id, why] : excluded) {
      if (why.find("at the merged commit") == std::string::npos) continue;
      if (n == kMaxListedFailures) {
        out += fmt::format(" and {} more", excluded_at_merged - n);
        break;
      }
      out += fmt::format("{}{} {}", n > 0 ? ", " : "", id, why);
      ++n;
    }
    return out;
  };
  // Nothing passes reliably at the merged commit: no need to run the base.
  if (!any_passing && !excluded.empty()) return Skip(unreliable(), "tests");

  CRUCIBLE_ASSIGN_OR_RETURN(auto before_or,
                            TestAt(options, task, repo, change.parent, task.test_patch()));
  if (auto* why = std::get_if<std::string>(&before_or)) return Skip(*why, "infra");
  const auto& before_runs = std::get<std::vector<v1::TestRun>>(before_or);
  for (const auto& run : before_runs) {
    if (std::string why = Unusable(run, "at the base commit"); !why.empty()) {
      return Skip(why, why.starts_with("tests wrote no report") ? "tests" : "infra");
    }
  }
  const Side before(before_runs);
  for (const auto& [id, statuses] : before.by_id) {
    if (before.Stable(id)) continue;
    flaky.insert(id);
    if (after.Stable(id) == TestOutcome::PASSED) {
      excluded.emplace(
          id, fmt::format("outcome differed between the {} runs at the base commit", before.runs));
    }
  }

  for (const auto& [id, statuses] : after.by_id) {  // sorted by id
    if (flaky.contains(id) || excluded.contains(id)) continue;
    if (after.Stable(id) != TestOutcome::PASSED) continue;
    auto b = before.Stable(id);
    if (*b == TestOutcome::UNKNOWN || Failing(*b)) {
      task.add_fail_to_pass(id);
    } else if (*b == TestOutcome::PASSED) {
      task.add_pass_to_pass(id);
    }
  }
  for (const auto& id : flaky) task.add_flaky(id);
  for (const auto& [id, why] : excluded) {
    auto* e = task.add_excluded_tests();
    e->set_id(id);
    e->set_reason(why);
  }
  if (task.fail_to_pass().empty()) {
    if (excluded_at_merged > 0) return Skip(unreliable(), "tests");
    if (options.require_f2p) return Skip("no test fails before the change", "tests");
    if (task.pass_to_pass().empty()) return Skip("no test passes reliably", "tests");
    task.set_kind("no-test-delta");
    task.set_untestable(true);
  }
  return Verdict{std::move(task), "", ""};
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

Status Validate(const MineOptions& o, bool scan_only = false) {
  if (o.repo_path.empty()) return Fail(Code::kInvalidArgument, "repo_path is empty");
  if (o.suite.empty()) return Fail(Code::kInvalidArgument, "suite name is empty");
  if (o.ref.empty()) return Fail(Code::kInvalidArgument, "ref is empty");
  if (scan_only) return {};
  if (o.test_cmd.empty()) return Fail(Code::kInvalidArgument, "test_cmd is empty");
  if (o.results == ResultFormat::kJunit && o.test_cmd.find("{junit}") == std::string::npos) {
    return Fail(Code::kInvalidArgument,
                "test_cmd has no {junit} placeholder for its JUnit report: " + o.test_cmd);
  }
  if (o.results == ResultFormat::kRegex) {
    if (auto st = ValidateLogResults(o.log_results); !st) {
      return Fail(st.error().Wrap("results regex"));
    }
  }
  if (o.test_timeout.count() <= 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("test_timeout must be positive, not {}s", o.test_timeout.count()));
  }
  if (!o.setup_cmd.empty() && o.setup_timeout.count() <= 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("setup_timeout must be positive, not {}s", o.setup_timeout.count()));
  }
  if (o.repeat < 1) {
    return Fail(Code::kInvalidArgument, fmt::format("repeat must be at least 1, not {}", o.repeat));
  }
  if (o.jobs < 1) {
    return Fail(Code::kInvalidArgument, fmt::format("jobs must be at least 1, not {}", o.jobs));
  }
  if (!o.sandbox_policy.empty()) {
    CRUCIBLE_RETURN_IF_ERROR(sandbox::ParsePolicy(o.sandbox_policy, "the suite's sandbox policy"));
  }
  return {};
}

const char* ResultFormatName(ResultFormat f) {
  switch (f) {
    case ResultFormat::kTap:
      return "tap";
    case ResultFormat::kExitCode:
      return "exit-code";
    case ResultFormat::kRegex:
      return "regex";
    case ResultFormat::kJunit:
      break;
  }
  return "junit";
}

}  // namespace

bool IsTestPath(std::string_view path) { return AnyMatches(DefaultTestPatterns(), path); }

namespace {

// The history to mine, oldest first; `repo` is set to the absolute path.
Result<std::vector<vcs::Change>> History(const MineOptions& options, std::string& repo) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(options.repo_path, ec);
  if (!ec) abs = std::filesystem::weakly_canonical(abs, ec);
  repo = ec ? options.repo_path : abs.string();

  const size_t limit = options.after_commit.empty() ? options.last : 0;
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<vcs::Change> history,
                            vcs::FirstParentHistory(repo, options.ref, limit));
  if (!options.after_commit.empty()) {
    auto it = std::find_if(history.begin(), history.end(),
                           [&](const vcs::Change& c) { return c.commit == options.after_commit; });
    if (it == history.end()) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("commit {} (the newest change mined) is not in the first-parent "
                              "history of {} in {}: was the branch rewritten? Mine the suite "
                              "again",
                              options.after_commit.substr(0, 10), options.ref, repo));
    }
    history.erase(it, history.end());
    if (options.last > 0 && history.size() > options.last) history.resize(options.last);
  }
  if (options.since_ms > 0) {
    std::erase_if(history, [&](const vcs::Change& c) { return c.time_ms < options.since_ms; });
  }
  std::reverse(history.begin(), history.end());  // oldest first
  // A shallow clone ends at its boundary: the oldest change of the window
  // has a parent the clone lacks, so the change cannot be diffed and the
  // history asked for is cut short. Say so instead of mining a part.
  if (!history.empty() && !history.front().parent.empty()) {
    const vcs::Change& oldest = history.front();
    auto parent = vcs::FirstParentHistory(repo, oldest.parent, 1);
    if (!parent && parent.error().code() == Code::kNotFound) {
      std::error_code ec;
      bool shallow = std::filesystem::exists(repo + "/.git/shallow", ec) ||
                     std::filesystem::exists(repo + "/shallow", ec);
      return Fail(Code::kFailedPrecondition,
                  fmt::format("{} {}: commit {} ({}) needs its parent {}, which is not in the "
                              "repository, so only {} change(s) of the history asked for can be "
                              "mined; deepen the clone (git fetch --deepen=N, or --unshallow) or "
                              "mine fewer changes (--last N)",
                              repo, shallow ? "is a shallow clone" : "is missing history",
                              oldest.commit.substr(0, 10), oldest.summary,
                              oldest.parent.substr(0, 10), history.size() - 1));
    }
  }
  return history;
}

void DescribeSuite(const MineOptions& options, const std::string& repo, const std::string& head,
                   v1::Suite& suite) {
  suite.set_name(options.suite);
  suite.set_repo_path(repo);
  suite.set_test_cmd(options.test_cmd);
  suite.set_test_timeout_s(static_cast<int32_t>(options.test_timeout.count()));
  suite.set_setup_cmd(options.setup_cmd);
  if (!options.setup_cmd.empty()) {
    suite.set_setup_timeout_s(static_cast<int32_t>(options.setup_timeout.count()));
  }
  suite.set_results(ResultFormatName(options.results));
  if (options.results == ResultFormat::kRegex) *suite.mutable_log_results() = options.log_results;
  suite.set_repeat(options.repeat);
  for (const auto& p : options.banned_patterns) suite.add_banned_patterns(p);
  suite.set_sandbox_policy(options.sandbox_policy);
  for (const auto& p : options.test_infrastructure) suite.add_test_infrastructure(p);
  for (const auto& p : options.test_patterns) suite.add_test_patterns(p);
  suite.set_regression_tests(options.regression_tests ? "newest" : "none");
  *suite.mutable_review() = options.review;
  suite.set_created_at_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
  suite.set_mined_ref(options.ref);
  suite.set_mined_head(head);
  v1::MiningRules* rules = suite.mutable_mining();
  for (const auto& p : options.skip.generated) rules->add_generated(p);
  for (const auto& p : options.skip.docs) rules->add_docs(p);
  for (const auto& p : options.skip.version_files) rules->add_version_files(p);
  rules->set_max_changed_lines(static_cast<int64_t>(options.skip.max_changed_lines));
  rules->set_require_f2p(options.require_f2p);
}

// Fills in the tasks and skips of `result` from the verdicts, by history
// order.
void Assemble(const MineOptions& options, const std::string& repo,
              const std::vector<vcs::Change>& history,
              std::vector<std::optional<Verdict>>& verdicts, MineResult& result) {
  v1::Suite& suite = result.suite;
  std::set<std::string> ids = options.reserved_ids;
  for (size_t i = 0; i < history.size(); ++i) {
    const vcs::Change& change = history[i];
    Verdict& verdict = *verdicts[i];
    if (verdict.task) {
      v1::GoldenTask& task = *verdict.task;
      task.set_suite(options.suite);
      task.set_id(TaskId(change.commit, ids));
      task.set_repo_path(repo);
      task.set_base_commit(change.parent);
      task.set_merged_commit(change.commit);
      task.set_merged_at_ms(change.time_ms);
      task.set_test_cmd(options.test_cmd);
      task.set_test_timeout_s(suite.test_timeout_s());
      task.set_results(suite.results());
      if (suite.has_log_results()) *task.mutable_log_results() = suite.log_results();
      task.set_setup_cmd(options.setup_cmd);
      task.set_setup_timeout_s(suite.setup_timeout_s());
      task.set_sandbox_policy(options.sandbox_policy);
      for (const auto& p : options.test_infrastructure) task.add_test_infrastructure(p);
      ids.insert(task.id());
      result.tasks.push_back(std::move(task));
    } else {
      Skipped skipped{change.commit, std::move(verdict.skip_reason),
                      internal::ToValidUtf8(change.summary), std::move(verdict.category)};
      auto* s = suite.add_skipped();
      s->set_commit(skipped.commit);
      s->set_summary(skipped.summary);
      s->set_reason(skipped.reason);
      s->set_category(skipped.category);
      result.skipped.push_back(std::move(skipped));
    }
  }
  suite.set_task_count(static_cast<int32_t>(result.tasks.size()));
  suite.set_target_size(static_cast<int32_t>(result.tasks.size()));
}

}  // namespace

Result<MineResult> Scan(const MineOptions& options) {
  CRUCIBLE_RETURN_IF_ERROR(Validate(options, /*scan_only=*/true));
  std::string repo;
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<vcs::Change> history, History(options, repo));
  MineResult result;
  DescribeSuite(options, repo, history.empty() ? options.after_commit : history.back().commit,
                result.suite);
  CRUCIBLE_ASSIGN_OR_RETURN(internal::CommitDiffer differ, internal::CommitDiffer::Open(repo));
  std::vector<std::optional<Verdict>> verdicts;
  verdicts.reserve(history.size());
  for (const auto& change : history) verdicts.emplace_back(Prepare(options, repo, differ, change));
  Assemble(options, repo, history, verdicts, result);
  return result;
}

Result<MineResult> Mine(const MineOptions& options) {
  CRUCIBLE_RETURN_IF_ERROR(Validate(options));
  std::string repo;
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<vcs::Change> history, History(options, repo));
  MineResult result;
  DescribeSuite(options, repo, history.empty() ? options.after_commit : history.back().commit,
                result.suite);

  // The cheap checks first, in this thread (the differ is not
  // thread-safe); then validation of the candidates left, `jobs` at a time.
  // Verdicts land by history index.
  std::vector<std::optional<Verdict>> verdicts(history.size());
  std::vector<size_t> candidates;
  size_t done = 0;
  {
    CRUCIBLE_ASSIGN_OR_RETURN(internal::CommitDiffer differ, internal::CommitDiffer::Open(repo));
    for (size_t i = 0; i < history.size(); ++i) {
      verdicts[i] = Prepare(options, repo, differ, history[i]);
      if (verdicts[i]->task) {
        candidates.push_back(i);
      } else {
        ++done;
        if (options.progress) options.progress(done, history.size(), verdicts[i]->skip_reason);
      }
    }
  }
  if (options.prepared) options.prepared(done, candidates.size());
  std::mutex mu;
  std::optional<Error> error;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (error) return;
      }
      size_t c = next.fetch_add(1);
      if (c >= candidates.size()) return;
      const size_t i = candidates[c];
      auto verdict = Judge(options, repo, history[i], std::move(*verdicts[i]->task));
      std::lock_guard lock(mu);
      if (!verdict) {
        if (!error) error = verdict.error();
        return;
      }
      std::string label =
          verdict->task ? "t-" + history[i].commit.substr(0, kIdHexDigits) : verdict->skip_reason;
      verdicts[i] = std::move(*verdict);
      ++done;
      if (options.progress) options.progress(done, history.size(), label);
    }
  };
  const size_t threads = std::min<size_t>(static_cast<size_t>(options.jobs), candidates.size());
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  if (error) return Fail(*error);
  Assemble(options, repo, history, verdicts, result);
  if (options.regression_tests && !result.tasks.empty()) {
    MineOptions resolved = options;
    resolved.repo_path = repo;
    CRUCIBLE_ASSIGN_OR_RETURN(
        result.regression,
        ComputeRegressionTests(resolved, result.suite.mined_head(), result.tasks));
  }
  return result;
}

namespace {

constexpr size_t kMaxRegressionPatchBytes = size_t{10} << 20;

bool IsTestFile(const MineOptions& options, std::string_view path) {
  return options.test_patterns.empty() ? IsTestPath(path) : AnyMatches(options.test_patterns, path);
}

// The test files' part of `files`: a rename only when both names are test
// paths (its source side must not reach the tree); no submodules.
std::string TestPart(const MineOptions& options, const std::vector<vcs::FilePatch>& files) {
  std::vector<vcs::FilePatch> tests;
  for (const auto& f : files) {
    if (f.submodule || !IsTestFile(options, f.path)) continue;
    if (!f.old_path.empty() && f.old_path != f.path && !IsTestFile(options, f.old_path)) continue;
    tests.push_back(f);
  }
  return vcs::JoinPatches(tests);
}

// Runs fn(0) .. fn(count - 1), `jobs` at a time, until the first error.
Status ForEachParallel(size_t count, int jobs, const std::function<Status(size_t)>& fn) {
  std::mutex mu;
  std::optional<Error> error;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (error) return;
      }
      size_t i = next.fetch_add(1);
      if (i >= count) return;
      if (Status st = fn(i); !st) {
        std::lock_guard lock(mu);
        if (!error) error = st.error();
        return;
      }
    }
  };
  const size_t threads = std::min<size_t>(static_cast<size_t>(std::max(jobs, 1)), count);
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  if (error) return Fail(*error);
  return {};
}

}  // namespace

Result<RegressionSummary> ComputeRegressionTests(const MineOptions& options,
                                                 const std::string& newest_commit,
                                                 std::vector<v1::GoldenTask>& tasks) {
  const auto start = std::chrono::steady_clock::now();
  RegressionSummary summary;
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(options.repo_path, ec);
  const std::string repo = ec ? options.repo_path : abs.lexically_normal().string();
  const std::string newest_short = newest_commit.substr(0, 10);
  if (auto head = vcs::FirstParentHistory(repo, newest_commit, 1); !head) return Fail(head.error());

  // The patches first, in this thread (the differ is not thread-safe).
  struct Job {
    size_t task;
    std::string patch;
  };
  std::vector<Job> jobs;
  std::vector<std::pair<size_t, std::string>> early;  // (task, why none) found without a run
  {
    CRUCIBLE_ASSIGN_OR_RETURN(internal::CommitDiffer differ, internal::CommitDiffer::Open(repo));
    for (size_t i = 0; i < tasks.size(); ++i) {
      v1::GoldenTask& task = tasks[i];
      if (!task.regression_commit().empty()) continue;
      auto files = differ.Diff(task.merged_commit(), newest_commit);
      if (!files) {
        early.emplace_back(i, "cannot diff the merged commit against " + newest_short + ": " +
                                  files.error().message());
        continue;
      }
      std::string patch = TestPart(options, *files);
      if (patch.empty()) {
        task.set_regression_commit(newest_commit);
        early.emplace_back(i, "no test file changed between the merged commit and " + newest_short);
      } else if (patch.size() > kMaxRegressionPatchBytes) {
        task.set_regression_commit(newest_commit);
        early.emplace_back(i, fmt::format("the test files' change up to {} is {} bytes, more than "
                                          "the limit of {}",
                                          newest_short, patch.size(), kMaxRegressionPatchBytes));
      } else {
        jobs.push_back(Job{i, std::move(patch)});
      }
    }
  }
  const size_t total = early.size() + jobs.size();
  std::mutex mu;
  size_t done = 0;
  auto report = [&](const v1::GoldenTask& task, const std::string& why, size_t found) {
    std::lock_guard lock(mu);
    if (why.empty()) {
      ++summary.tasks;
      summary.tests += found;
    } else {
      ++summary.none;
      summary.reasons[task.id()] = why;
    }
    ++done;
    if (options.regression_progress) {
      options.regression_progress(done, total,
                                  why.empty() ? fmt::format("{}: {} regression test{}", task.id(),
                                                            found, found == 1 ? "" : "s")
                                              : fmt::format("{}: none, {}", task.id(), why));
    }
  };
  for (const auto& [i, why] : early) report(tasks[i], why, 0);

  const int repeat = std::max(2, options.repeat);
  CRUCIBLE_RETURN_IF_ERROR(ForEachParallel(jobs.size(), options.jobs, [&](size_t k) -> Status {
    v1::GoldenTask& task = tasks[jobs[k].task];
    std::set<std::string> known(task.fail_to_pass().begin(), task.fail_to_pass().end());
    known.insert(task.pass_to_pass().begin(), task.pass_to_pass().end());
    known.insert(task.flaky().begin(), task.flaky().end());
    // The candidates: tests that passed every run so far and are none of the
    // task's own, sorted.
    auto candidates = [&](const std::vector<v1::TestRun>& runs) {
      std::vector<std::string> found;
      for (const auto& [id, statuses] : Side(runs).by_id) {  // sorted by id
        if (known.contains(id)) continue;
        if (std::all_of(statuses.begin(), statuses.end(),
                        [](TestOutcome::Status s) { return s == TestOutcome::PASSED; })) {
          found.push_back(id);
        }
      }
      return found;
    };
    // One more run only while it can still confirm a candidate: the runs so
    // far are usable and some candidate passed them all.
    auto more = [&](const std::vector<v1::TestRun>& runs) {
      return Unusable(runs.back(), "").empty() && !candidates(runs).empty();
    };
    CRUCIBLE_ASSIGN_OR_RETURN(
        auto runs_or, TestAt(TestCommandFor(task, RegressionSearchScope(jobs[k].patch)), repeat,
                             repo, task.merged_commit(), jobs[k].patch,
                             "the regression patch does not apply at the merged commit", more));
    if (auto* why = std::get_if<std::string>(&runs_or)) {
      // A checkout that failed may work next time; a patch that does not
      // apply will not.
      if (!why->starts_with("cannot check out")) task.set_regression_commit(newest_commit);
      report(task, *why, 0);
      return {};
    }
    const auto& runs = std::get<std::vector<v1::TestRun>>(runs_or);
    {
      std::lock_guard lock(mu);
      summary.runs += runs.size();
    }
    for (const auto& run : runs) {
      if (std::string why = Unusable(run, "at the merged commit with the regression patch");
          !why.empty()) {
        report(task, why, 0);  // regression_commit stays empty: refresh tries again
        return {};
      }
    }
    const std::vector<std::string> found = candidates(runs);
    task.set_regression_commit(newest_commit);
    if (found.empty()) {
      report(task,
             fmt::format(
                 "no test of {} other than FAIL_TO_PASS and PASS_TO_PASS passes all {} "
                 "runs at the merged commit{}",
                 newest_short, repeat,
                 runs.size() < static_cast<size_t>(repeat)
                     ? fmt::format(" (stopped after run {}: no candidate had passed every run)",
                                   runs.size())
                     : ""),
             0);
      return {};
    }
    for (const auto& id : found) task.add_regression_tests(id);
    task.set_regression_patch(std::move(jobs[k].patch));
    report(task, "", found.size());
    return {};
  }));
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace crucible::golden
