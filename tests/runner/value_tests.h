// The test command of the runner tests' fixture repositories: no
// dependencies, passes when value.txt matches tests/expected.txt, and writes a
// one-test JUnit report to its first argument.
#pragma once

#include "protocol/crucible.pb.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::runner {

constexpr char kRunTests[] = R"(#!/bin/sh
if [ -f tests/expected.txt ] && cmp -s value.txt tests/expected.txt; then
  body='<testcase classname="tests.check" name="test_value"/>'
else
  body='<testcase classname="tests.check" name="test_value"><failure message="differs"/></testcase>'
fi
printf '<testsuite name="check" tests="1">%s</testsuite>\n' "$body" > "$1"
)";

// The runner tests' fixture task on `repo` (committed here): value.txt holds
// 1 and must hold 2; the hidden test patch adds tests/expected.txt.
inline v1::GoldenTask ValueTask(crucible::testing::GitRepo& repo) {
  repo.Write("run_tests.sh", kRunTests);
  repo.Write("value.txt", "1\n");
  v1::GoldenTask task;
  task.set_suite("s");
  task.set_id("t-1");
  task.set_repo_path(repo.path());
  task.set_base_commit(repo.Commit("base"));
  task.set_intent("Set the value to 2.");
  task.set_source_patch(
      "diff --git a/value.txt b/value.txt\n--- a/value.txt\n+++ b/value.txt\n"
      "@@ -1 +1 @@\n-1\n+2\n");
  task.set_test_patch(
      "diff --git a/tests/expected.txt b/tests/expected.txt\nnew file mode 100644\n"
      "--- /dev/null\n+++ b/tests/expected.txt\n@@ -0,0 +1 @@\n+2\n");
  task.add_fail_to_pass("tests.check::test_value");
  task.set_test_cmd("sh run_tests.sh {junit}");
  task.set_test_timeout_s(30);
  return task;
}

}  // namespace crucible::runner

namespace crucible::runner {

// A test command for fixture repositories with several tests: each
// tests/test_NAME.sh is the test "tests::NAME", passed when it exits 0; writes
// a JUnit report to its first argument and exits 1 when a test failed.
constexpr char kRunShellTests[] = R"(#!/bin/sh
body=''; status=0
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  n=$(basename "$t" .sh); n=${n#test_}
  if sh "$t" >/dev/null 2>&1; then
    body="$body<testcase classname=\"tests\" name=\"$n\"/>"
  else
    body="$body<testcase classname=\"tests\" name=\"$n\"><failure message=\"failed\"/></testcase>"
    status=1
  fi
done
printf '<testsuite name="tests">%s</testsuite>\n' "$body" > "$1"
exit $status
)";

}  // namespace crucible::runner
