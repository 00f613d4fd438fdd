// Mining golden tasks from a repository's merged history.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "storage/store.h"

namespace crucible::golden {

// True for paths that belong to the test patch by the default patterns: a
// "test", "tests" or "__tests__" directory component, test_*.py, *_test.py,
// conftest.py, *_test.cc/.cpp, *_test.go, *.test.* and *.spec.* files.
// Case-sensitive; a file merely named "test" is not a test path.
bool IsTestPath(std::string_view path);

struct MineOptions {
  std::string repo_path;
  std::string suite;
  std::string test_cmd;  // must contain the {junit} placeholder
  std::string ref = "HEAD";
  size_t last = 0;  // newest N changes; 0: all
  std::chrono::seconds test_timeout{600};
  // Called on the calling thread after each candidate is validated:
  // (done, total, task id or skip reason). `total` is the number of changes
  // walked, root commit included.
  std::function<void(size_t, size_t, const std::string&)> progress;
};

struct Skipped {
  std::string commit;
  // One of: "root commit", "empty change", "binary-only change",
  // "no source change", "no test change", "patch is not valid UTF-8",
  // "cannot diff: ...", "cannot check out ...",
  // "test patch does not apply at the base commit: ...",
  // "test run failed at the merged commit: <infra_error>",
  // "tests timed out at the merged commit", "tests wrote no report at the
  // merged commit (exit N)", "merged commit fails its own tests: <ids>",
  // the same three for "at the base commit", and
  // "no test fails before the change".
  std::string reason;
};

struct MineResult {
  v1::Suite suite;
  std::vector<v1::GoldenTask> tasks;
  std::vector<Skipped> skipped;
};

// Walks the first-parent history of options.ref, splits each change into a
// source patch (IsTestPath false) and a test patch (IsTestPath true, by the
// file's new path), validates it in the sandbox (tests at the merged commit,
// then at base + test patch) and fills FAIL_TO_PASS (passed at the merged
// commit; failed, errored or absent at base) and PASS_TO_PASS (passed at
// both), each sorted. Changes without a source change, without a test change,
// whose merged commit fails its own tests, or with an empty FAIL_TO_PASS are
// skipped with a reason. Each validation runs in a fresh temporary workspace
// that is removed afterwards.
//
// Task ids are "t-" and the first 8 hex digits of the merged commit (more
// digits only if two tasks of one suite would collide): stable when the same
// history is mined again with another `last` or after new merges. The intent
// is the commit message; for a merge commit whose first line is boilerplate
// ("Merge pull request #N from ..."), the text after the first line.
// Tasks and skips are returned oldest first. Text fields are valid UTF-8.
//
// Errors: kNotFound when repo_path is not a git repository or ref is unknown;
// kInvalidArgument for an empty repo_path, suite name, ref or test command, a
// test command without {junit}, or a non-positive timeout; the sandbox's
// error when it cannot be set up (mining stops: every run would fail). Does
// not write to storage.
Result<MineResult> Mine(const MineOptions& options);

}  // namespace crucible::golden
