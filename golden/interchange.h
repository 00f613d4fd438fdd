// Suites in and out of Crucible: pull-request exports, SWE-bench-style JSONL,
// dev / held-out splits and dates.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::golden {

// "2024-03-01", "2024-03-01T12:00:00Z", "2024-03-01 12:00:00",
// "2024-03-01T12:00:00.123+02:00" -> milliseconds since the epoch (UTC when
// no offset is given). kInvalidArgument naming `text` otherwise.
Result<int64_t> ParseDateMs(std::string_view text);

// Milliseconds since the epoch as "2024-03-01T12:00:00Z".
std::string FormatDate(int64_t ms);

// Pull requests as `gh pr list --state merged --json
// number,title,body,mergeCommit` writes them (a JSON array) or one JSON object
// a line (JSONL); the merge commit is "mergeCommit": {"oid": ...} or
// "merge_commit_sha" (the REST API's name). Returns intent by merge commit
// id: the title, a blank line and the body (just the title when the body is
// empty). PRs without a merge commit are ignored. kInvalidArgument naming
// `file` (and the line for JSONL, the index for an array) for text that does
// not parse or an entry that is not an object or lacks a title.
Result<std::map<std::string, std::string>> ParsePullRequests(std::string_view text,
                                                             const std::string& file);
Result<std::map<std::string, std::string>> LoadPullRequests(const std::string& path);

// One JSON object a line per task, with SWE-bench's field names:
// instance_id (the task id), repo (the repository directory's name),
// base_commit, patch (the source patch), test_patch, problem_statement (the
// intent), FAIL_TO_PASS and PASS_TO_PASS (JSON arrays), created_at (the merge
// time, RFC 3339), and "crucible": an object with the fields SWE-bench lacks
// (merged_commit, kind, flaky, failure_modes, held_out, test_cmd, test_timeout_s, setup_cmd,
// results, log_results: {preset, pattern, status, absent} with results
// "regex"), so an export imports back unchanged. Tasks in the given order.
std::string ExportJsonl(const v1::Suite& suite, const std::vector<v1::GoldenTask>& tasks);

struct ImportOptions {
  std::string repo_path;  // local clone holding every base_commit
  std::string suite;      // suite name
  std::string test_cmd;   // for lines without crucible.test_cmd; may be empty
  // How every line's test command reports (golden/log_results.h
  // ResultsByName: junit, tap, exit-code or a log preset), over
  // crucible.results; empty: each line's own (junit without one).
  std::string results = {};
};

struct Imported {
  v1::Suite suite;
  std::vector<v1::GoldenTask> tasks;
};

// Parses a JSONL file (blank lines ignored). FAIL_TO_PASS / PASS_TO_PASS are
// JSON arrays or strings holding a JSON array (as SWE-bench ships them);
// created_at is optional. kInvalidArgument "FILE:LINE: ..." for a line that
// is not a JSON object, a missing or mistyped field (named), an instance_id
// given twice, a base_commit the repository does not have, a line without a
// test command (neither crucible.test_cmd nor options.test_cmd), a
// crucible.results that is not a result format, results "regex" without a
// valid crucible.log_results (the key named), an options.results that
// ResultsByName refuses, and a file without any task.
Result<Imported> ImportJsonl(std::string_view text, const std::string& file,
                             const ImportOptions& options);

// Whether the task `task_id` is held out under the split rule (fraction,
// seed): the hash of (seed, task id), as a number in [0, 1), is below
// `fraction`. Each task's side depends on its id alone, so adding or dropping
// other tasks never moves it; about fraction * N of N tasks are held out.
bool IsHeldOut(std::string_view task_id, double fraction, uint64_t seed);

// Marks each of `tasks` held out or dev by IsHeldOut. kInvalidArgument unless
// 0 <= fraction <= 1.
Status SplitHeldOut(std::vector<v1::GoldenTask>& tasks, double fraction, uint64_t seed);

}  // namespace crucible::golden
