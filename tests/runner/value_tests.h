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
