// Mining golden tasks from a repository's merged history.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "golden/rules.h"
#include "golden/test_run.h"
#include "protocol/crucible.pb.h"
#include "storage/store.h"

namespace crucible::golden {

// True for paths that belong to the test patch by the default patterns
// (DefaultTestPatterns in golden/rules.h): a "test", "tests" or "__tests__"
// directory component, test_*.py, *_test.py, conftest.py, *_test.cc/.cpp,
// *_test.go, *.test.* and *.spec.* files. Case-sensitive; a file merely named
// "test" is not a test path.
bool IsTestPath(std::string_view path);

struct MineOptions {
  std::string repo_path;
  std::string suite;
  // Must contain the {junit} placeholder when `results` is kJunit.
  std::string test_cmd;
  std::string ref = "HEAD";
  size_t last = 0;       // newest N changes; 0: all
  int64_t since_ms = 0;  // only changes committed at or after this time; 0: all
  std::chrono::seconds test_timeout{600};
  ResultFormat results = ResultFormat::kJunit;
  // With results kRegex: how the output is read (golden/log_results.h);
  // stored in the suite and copied to every task.
  v1::LogResults log_results;
  std::string setup_cmd;  // run in the sandbox before each test run; empty: none
  std::chrono::seconds setup_timeout{600};
  // Test-file patterns (golden/rules.h PathMatches); empty: the defaults.
  std::vector<std::string> test_patterns;
  SkipRules skip;
  // Test runs per side (merged commit, base + test patch); at least 1.
  int repeat = 2;
  // Drop changes whose FAIL_TO_PASS is empty instead of keeping them as kind
  // "no-test-delta".
  bool require_f2p = false;
  int jobs = 1;  // candidates validated at once
  // Intent by merged commit id (from a pull-request export); the commit
  // message otherwise.
  std::map<std::string, std::string> intents;
  std::vector<std::string> banned_patterns;  // stored in the suite for the scanners
  // Called after each candidate is validated, serialized (never two calls at
  // once) but, with jobs > 1, from worker threads and in completion order:
  // (done, total, task id or skip reason). `total` is the number of changes
  // walked, root commit included.
  std::function<void(size_t, size_t, const std::string&)> progress;
  // Called once, before any validation, when the skip rules and the split
  // have run over the whole history (progress has then been called for each
  // change they skipped): (changes skipped so far, candidates to validate).
  // Lets a progress display estimate the time left from validations alone.
  std::function<void(size_t, size_t)> prepared;
  // Only changes after this commit of the first-parent history (exclusive),
  // as `crucible suite refresh` mines; empty: the whole history. Combines
  // with `last` and `since_ms`.
  std::string after_commit;
  // Task ids already used in the suite; new ids do not collide with them.
  std::set<std::string> reserved_ids;
  // Sandbox policy for the validation runs (sandbox/policy.h YAML; see
  // TestCommand::sandbox_policy); stored in suite.sandbox_policy. Empty: the
  // defaults.
  std::string sandbox_policy;
  // Test infrastructure globs given to every task (GoldenTask
  // .test_infrastructure); empty: the built-in list.
  std::vector<std::string> test_infrastructure;
  // Compute each task's regression tests (ComputeRegressionTests) against
  // the newest commit of the history mined; false: none ("regression_tests:
  // none" in the suite configuration). Stored as suite.regression_tests.
  bool regression_tests = true;
  // The review bar's rules (the `review` key of the suite configuration),
  // stored in suite.review.
  v1::ReviewRules review;
  // Called after each task's regression tests are computed, serialized like
  // `progress`: (done, total, task id and what was found, or why none).
  std::function<void(size_t, size_t, const std::string&)> regression_progress;
};

// What computing the regression tests found, for the mining summary.
struct RegressionSummary {
  size_t tasks = 0;    // tasks given regression tests
  size_t tests = 0;    // regression tests over all tasks
  size_t none = 0;     // tasks computed without any (reason in `reasons`)
  size_t runs = 0;     // test runs made (a task whose first run passes no
                       // candidate test makes one)
  double seconds = 0;  // wall time of the computation
  // Task id -> why it has none ("no test file changed since", "the
  // regression patch does not apply at the merged commit: ...", "no test
  // passes twice at the merged commit other than FAIL_TO_PASS and
  // PASS_TO_PASS", ...).
  std::map<std::string, std::string> reasons;
};

struct Skipped {
  std::string commit;
  // Before validation ("filter"): "root commit", "empty change", "submodule
  // update", "binary-only change", "diff of N changed lines is over the limit
  // of M", "version bump", "generated, lock or vendored files only",
  // "docs-only change", "no source change", "no test change" (with
  // require_f2p only), "patch is not valid UTF-8", "cannot diff: ...";
  // "parent P is not in this shallow clone (...)" (infra; mining a window
  // that reaches past a shallow clone's boundary is an error instead, so
  // this is a fallback).
  // The harness ("infra"): "cannot check out ...", "test patch does not apply
  // at the base commit: ...", "test run failed at the merged commit:
  // <infra_error>" (setup failures, a missing test command, a report that
  // lies), "tests timed out at the merged commit", and the same two "at the
  // base commit".
  // The tests ("tests"): "tests wrote no report at the merged commit (exit
  // N)", "merged commit fails its own tests: <ids>" and "no reliable
  // FAIL_TO_PASS test: <id> <why>, ..." (tests failed at the merged commit
  // and no other test fails before the change), "no test passes reliably",
  // "no test fails before the change" (with require_f2p).
  std::string reason;
  std::string summary;   // first line of the commit message
  std::string category;  // "filter", "infra" or "tests"
};

struct MineResult {
  // suite.mined_ref is options.ref, suite.mined_head the newest commit of the
  // history walked (options.after_commit when nothing is newer),
  // suite.mining the skip rules and suite.target_size the number of tasks.
  v1::Suite suite;
  std::vector<v1::GoldenTask> tasks;
  std::vector<Skipped> skipped;
  RegressionSummary regression;  // empty unless options.regression_tests
};

// Walks the first-parent history of options.ref, skips changes by the rules
// of options.skip (see Skipped), splits each remaining change into a source
// patch and a test patch (by the file's new path and options.test_patterns),
// and validates it in the sandbox: the tests run `repeat` times at the merged
// commit, then `repeat` times at base + test patch (each side in one fresh
// workspace, so state a test leaves in the tree carries over to the next
// repetition, as it would on a developer's machine).
//
//  - flaky: tests whose outcome differs between the repetitions of one side;
//    excluded from both lists;
//  - excluded_tests: every test left out of both lists with why: it failed
//    in some or all runs at the merged commit ("failed 1 of 2 runs at the
//    merged commit", "fails at the merged commit (2 of 2 runs)"), or its
//    outcome differed between the runs of a side;
//  - FAIL_TO_PASS: passed in every repetition at the merged commit; failed,
//    errored or absent in every repetition at base;
//  - PASS_TO_PASS: passed in every repetition of both sides.
// A change whose FAIL_TO_PASS is empty while tests failed at the merged
// commit is skipped ("merged commit fails its own tests: IDS" when they
// failed every run, else "no reliable FAIL_TO_PASS test: ID WHY, ..."), and
// so is one whose runs found no test. Otherwise an empty FAIL_TO_PASS keeps
// the task with kind "no-test-delta" and `untestable` set (skipped with
// require_f2p); other tasks get a kind from ClassifyKind. Each list is sorted.
// Then, with options.regression_tests, ComputeRegressionTests against
// suite.mined_head (result.regression sums it up).
//
// Task ids are "t-" and the first 8 hex digits of the merged commit (more
// digits only if two tasks of one suite would collide): stable when the same
// history is mined again with another `last` or after new merges. The intent
// is options.intents[commit] when given, else the commit message; for a merge
// commit whose first line is boilerplate ("Merge pull request #N from ..."),
// the text after the first line. Tasks and skips are returned oldest first
// (also with jobs > 1), and the skips are also in suite.skipped. Text fields
// are valid UTF-8.
//
// Errors: kFailedPrecondition when after_commit is not on the first-parent
// history of ref (the branch was rewritten), or when the oldest change to
// mine has a parent the repository lacks (a shallow clone cut short: the
// message names the commit, the missing parent and how to deepen the clone); kNotFound when
// repo_path is not a git repository or ref is unknown; kInvalidArgument for an empty repo_path,
// suite name, ref or test command, a JUnit test command without {junit}, a non-positive timeout,
// repeat or jobs, a sandbox_policy that sandbox::ParsePolicy refuses; the sandbox's error when it
// cannot be set up (mining stops: every run would fail). Does not write to storage.
Result<MineResult> Mine(const MineOptions& options);

// Computes the regression tests of every task in `tasks` whose
// regression_commit is empty (mining sets it when it computed them, even when
// there are none): N is `newest_commit`. regression_patch is the diff of the
// test files (options.test_patterns, else the defaults; a rename counts when
// both of its names are test paths; submodules are left out) from the task's
// merged commit to N. It is applied to a checkout of the merged commit
// (options.repo_path) and the task's test command (TestCommandFor: its setup,
// result format and sandbox policy) runs max(2, options.repeat) times in that
// one workspace, fewer when a run is unusable or no candidate (a test that is
// neither FAIL_TO_PASS, PASS_TO_PASS nor flaky) passed every run so far;
// regression_tests are the candidates that passed every run, sorted.
// regression_commit is then N. A task with no test change since its merged commit, a patch that
// does not apply or is over 10 MB, a run that is unusable (infra error,
// timeout, no report) or no such test gets none, with the reason in the
// summary; an unusable run leaves regression_commit empty so that a later
// `suite refresh` tries again. options.jobs tasks at once;
// options.regression_progress is called after each. Errors: the sandbox's
// when it cannot be set up, kNotFound for an unknown newest_commit.
Result<RegressionSummary> ComputeRegressionTests(const MineOptions& options,
                                                 const std::string& newest_commit,
                                                 std::vector<v1::GoldenTask>& tasks);

// Mining without validation: walks the history as Mine does, diffs each
// change, applies the skip rules, splits source and test patches and
// classifies the kind, but runs no test. The tasks have no FAIL_TO_PASS or
// PASS_TO_PASS (so no "no-test-delta" kind); test_cmd may be empty. For the
// benchmark (bench/mine_history.cc) and for looking at what a mine would
// validate. `jobs` and `progress` are ignored.
Result<MineResult> Scan(const MineOptions& options);

}  // namespace crucible::golden
