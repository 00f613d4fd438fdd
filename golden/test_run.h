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
// <failure> -> FAILED, <error> -> ERROR, <skipped> -> SKIPPED, else PASSED.
// kCorruption when the XML does not parse or has no testsuite element.
Result<std::vector<v1::TestOutcome>> ParseJunit(std::string_view xml);

struct TestCommand {
  // Shell command run by /bin/sh -c in /workspace. "{junit}" is replaced by the
  // path (inside the sandbox) where the command must write its JUnit report.
  std::string command;
  std::chrono::seconds timeout{600};
};

// Runs `cmd` in the sandbox over the host directory `workspace` (read-write)
// and parses its report.
//
// The returned TestRun always says what happened: tests, exit code, timeout,
// whether a report was found, and an output tail. A report that is missing or
// unreadable is not an Error; it is recorded in the TestRun (report_found =
// false, infra_error set when the harness itself failed). Returns an Error
// only when the sandbox could not be set up.
Result<v1::TestRun> RunTests(const std::string& workspace, const TestCommand& cmd);

// True when every test in `ids` passed in `run`.
bool AllPassed(const v1::TestRun& run, const std::vector<std::string>& ids);

}  // namespace crucible::golden
