// Running a repository's test command in the sandbox and reading its results.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::golden {

// Parses a JUnit XML report (pytest, GoogleTest, ctest, Surefire and jest
// flavours: <testsuites> or a single <testsuite>). Each <testcase> becomes one
// outcome with id "<classname>::<name>" (just "<name>" without a classname);
// <error> -> ERROR, <failure> (or ctest's status="fail") -> FAILED, <skipped>
// (or status="notrun"/"disabled", GoogleTest's result="skipped") -> SKIPPED,
// else PASSED. Suites may nest. A test reported more than once (pytest reports
// a teardown error as a second <testcase>) is one outcome with its worst
// status (ERROR > FAILED > SKIPPED > PASSED) and the summed time. Outcomes
// are in document order; ids and messages (cut to 1 KiB) are valid UTF-8.
// kCorruption when the XML does not parse (with pugixml's description and
// byte offset) or the root element is neither <testsuites> nor <testsuite>.
Result<std::vector<v1::TestOutcome>> ParseJunit(std::string_view xml);

// Parses TAP (version 12 or 13) output: each top-level "ok N - desc" /
// "not ok N - desc" line is one outcome with id "desc" (or "N" without a
// description; a repeated id gets " #N" appended). "# SKIP" -> SKIPPED,
// "# TODO" -> SKIPPED (a TODO test is expected to fail), "not ok" -> FAILED,
// else PASSED. Indented lines (subtests, YAML blocks) are ignored. Tests the
// plan ("1..N") announces but that never reported are ERROR "test N (no
// result)"; "Bail out!" adds an ERROR outcome "bail out". kCorruption when
// the text has neither a plan nor a test line.
Result<std::vector<v1::TestOutcome>> ParseTap(std::string_view text);

// How a test command reports its results.
enum class ResultFormat {
  kJunit,     // JUnit XML written to {junit}
  kTap,       // TAP written to {junit} when the command writes it, else its stdout
  kExitCode,  // no report: the whole suite is one test, "<suite>", passed iff exit 0
  kRegex,     // lines of stdout then stderr read with TestCommand::log_results
};

// "junit" (or ""), "tap", "exit-code", "regex"; kInvalidArgument otherwise.
Result<ResultFormat> ParseResultFormat(std::string_view name);

struct TestCommand {
  // Shell command run by /bin/sh -c in /workspace. "{junit}" is replaced by the
  // path (inside the sandbox) where the command must write its JUnit report.
  std::string command;
  std::chrono::seconds timeout{600};
  ResultFormat format = ResultFormat::kJunit;
  // Run first, in the same sandbox and workspace; empty: none. Its failure or
  // timeout is an infra_error ("setup command failed (exit N): ...",
  // "setup command timed out"), not a test failure.
  std::string setup = {};
  std::chrono::seconds setup_timeout{600};
  // A sandbox policy (sandbox/policy.h, YAML text) applied over the settings
  // above: its limits (memory, pids, timeout, ...), network, environment and
  // binds. Its workspace_quota is not applied. Empty: the defaults.
  std::string sandbox_policy = {};
  // kRegex: how the output is read (golden/log_results.h ParseLog), and the
  // tests that must be in it: each one the output never names gets the
  // absent status.
  v1::LogResults log_results = {};
  std::vector<std::string> expected = {};
};

// What a test command's scope placeholders stand for (docs/suites.md "Test
// scope"): {test_files} the files, {test_ids} the ids, each single-quoted
// for the shell and space-separated (an empty list leaves nothing), and
// {test_ids_regex} the ids as one quoted regular expression "^(A|B)$" with
// each id's regex metacharacters escaped ('.*' when there are no ids).
struct TestScope {
  std::vector<std::string> files;
  std::vector<std::string> ids;
};

// `command` with {test_files}, {test_ids} and {test_ids_regex} replaced in one
// pass (text inserted is not scanned again); other text, {junit} included, is
// left as it is.
std::string ExpandTestScope(std::string_view command, const TestScope& scope);

// `paths` without data files, as SWE-bench leaves them out of the test files
// it runs: .json .png .csv .txt .md .jpg .jpeg .pkl .yml .yaml .toml .gif.
std::vector<std::string> TestFilesToRun(std::vector<std::string> paths);

// The hidden tests' scope: the task's test_files (or, when empty, the paths
// of its test_patch) less data files, its FAIL_TO_PASS then PASS_TO_PASS ids.
TestScope HiddenTestScope(const v1::GoldenTask& task);
// The regression run's scope: the paths of regression_patch (less data
// files) and the regression ids.
TestScope RegressionTestScope(const v1::GoldenTask& task);

// The command that runs `task`'s tests, as mining validated it (sandbox
// policy and log results included), its scope placeholders standing for
// `scope` (HiddenTestScope when not given), expecting the scope's ids (with
// results from logs, each one the output never names is absent).
TestCommand TestCommandFor(const v1::GoldenTask& task);
TestCommand TestCommandFor(const v1::GoldenTask& task, const TestScope& scope);

// Runs `cmd` in the sandbox over the host directory `workspace` (read-write)
// and parses its report.
//
// `report_dir`, when set, is the host directory bound at /crucible/out (it
// must exist, be empty and sit where no other host user can reach it; the
// runner puts it beside the workspace on the attempt's size-capped tmpfs);
// otherwise a private temporary directory is used.
//
// The command runs as `/bin/sh -c COMMAND` with cwd /workspace, the report
// directory bound read-write at /crucible/out ({junit} becomes
// /crucible/out/junit.xml) and PYTHONDONTWRITEBYTECODE=1.
//
// The returned TestRun always says what happened: tests, exit code (the
// sandbox's ExitStatus: 128+N for signal N, 124 on timeout), timeout, whether
// a report was found, wall time, and the last 4 KiB of stdout then stderr. A
// report that is missing or unreadable is not an Error; it is recorded in the
// TestRun (report_found = false). infra_error is set when the harness or the
// test command's configuration failed, not the tests:
//  - "test command not found: ..." (exit 127, no report) or cannot be
//    executed (exit 126);
//  - the command exited 0 without writing a report;
//  - the report is not a regular file, is over 64 MiB, or does not parse;
//  - "test command exited N but its report shows no failure": a report that
//    contradicts a non-zero exit status is not believed.
// A missing report after a non-zero exit (the tests crashed before
// reporting) or a timeout leaves infra_error empty. Returns an Error only when
// the sandbox could not be set up (kInvalidArgument for a sandbox_policy that
// does not parse or apply).
Result<v1::TestRun> RunTests(const std::string& workspace, const TestCommand& cmd,
                             const std::string& report_dir = {});

// True when every test in `ids` passed in `run` and the run itself is
// trustworthy: a report was found, no timeout and no infra_error.
bool AllPassed(const v1::TestRun& run, const std::vector<std::string>& ids);

}  // namespace crucible::golden
