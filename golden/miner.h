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
// "test"/"tests" directory component, test_*.py, *_test.py, conftest.py,
// *_test.cc/.cpp, *_test.go, *.test.* and *.spec.* files.
bool IsTestPath(std::string_view path);

struct MineOptions {
  std::string repo_path;
  std::string suite;
  std::string test_cmd;          // with the {junit} placeholder
  std::string ref = "HEAD";
  size_t last = 0;               // newest N changes; 0: all
  std::chrono::seconds test_timeout{600};
  // Called after each candidate is validated: (done, total, task id or skip reason).
  std::function<void(size_t, size_t, const std::string&)> progress;
};

struct Skipped {
  std::string commit;
  std::string reason;  // "no source change", "no test change", "merged commit fails its tests", ...
};

struct MineResult {
  v1::Suite suite;
  std::vector<v1::GoldenTask> tasks;
  std::vector<Skipped> skipped;
};

// Walks the first-parent history of options.ref, splits each change into a
// source patch and a test patch, validates it in the sandbox (tests at base +
// test patch, then at the merged commit) and fills FAIL_TO_PASS and
// PASS_TO_PASS. Changes without a source change, without a test change, or
// with an empty FAIL_TO_PASS are skipped with a reason.
//
// Errors: kNotFound when repo_path is not a git repository; kInvalidArgument
// for an empty suite name or test command. Does not write to storage.
Result<MineResult> Mine(const MineOptions& options);

}  // namespace crucible::golden
