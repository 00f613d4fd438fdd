// The test command of the runner tests' fixture repositories: no
// dependencies, passes when value.txt matches tests/expected.txt, and writes a
// one-test JUnit report to its first argument.
#pragma once

namespace crucible::runner {

constexpr char kRunTests[] = R"(#!/bin/sh
if [ -f tests/expected.txt ] && cmp -s value.txt tests/expected.txt; then
  body='<testcase classname="tests.check" name="test_value"/>'
else
  body='<testcase classname="tests.check" name="test_value"><failure message="differs"/></testcase>'
fi
printf '<testsuite name="check" tests="1">%s</testsuite>\n' "$body" > "$1"
)";

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
