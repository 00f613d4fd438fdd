// Recognising a test run in a command: an agent's shell tool call as its
// telemetry reports it, or a program the harness saw executed. Adapters use
// it to turn a shell call into `run_tests`; the runner uses it to check an
// agent's claim that it ran the tests against what was executed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace crucible::scoring {

// True when the shell command line `command` runs tests: one of its simple
// commands (split at ;, &&, ||, | and newlines; leading VAR=value words, `env`,
// `timeout N`, `nice`, `time`, `uv run`, `poetry run`, `pipenv run`, `npx`,
// `bundle exec` dropped; `sh -c` / `bash -c` scripts looked into) is
//  - the suite's test command `test_cmd` (its program and first argument, its
//    {placeholders} ignored), or
//  - a known test runner: pytest, py.test, python -m pytest / unittest,
//    tox, nox, go test, cargo test / nextest, npm / yarn / pnpm test, jest,
//    vitest, mocha, make test / check, ctest, mvn test, gradle test, rspec,
//    phpunit, dotnet test, bin/test, runtests.py, manage.py test.
bool LooksLikeTestRun(std::string_view command, std::string_view test_cmd = {});

// The same for a program the harness saw executed (its argv; argv[0] may be
// a path). An interpreter running a test runner script counts
// (["python3", "/usr/bin/pytest", ...]).
bool LooksLikeTestRun(const std::vector<std::string>& argv, std::string_view test_cmd = {});

}  // namespace crucible::scoring
