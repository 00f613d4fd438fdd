// Test infrastructure: the files that decide how the tests run rather than
// what they test (conftest files, test runner configuration, modules that
// shadow the test runner, byte-code caches). An agent's change to them is
// never tested: scoring puts them back as the task's tests expect them.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/crucible.pb.h"

namespace crucible::golden {

// The built-in patterns, used when a suite names none (docs/suites.md lists
// them): pytest's conftest.py and configuration files, modules and packages
// that would shadow pytest or unittest from the working directory,
// site customisation, byte-code caches, and the configuration of the common
// JavaScript test runners.
const std::vector<std::string>& DefaultTestInfrastructure();

// The task's patterns, or the built-in ones when it has none.
std::vector<std::string> TestInfrastructureOf(const v1::GoldenTask& task);

// True when `path` (relative, '/'-separated) matches one of `patterns`. A
// pattern without '/' matches any one component of the path (a file or a
// directory name, so "__pycache__" matches everything below such a
// directory); a pattern with '/' matches the whole path, with '*' crossing
// directory separators. Patterns are fnmatch(3) globs.
bool IsTestInfrastructure(std::string_view path, std::span<const std::string> patterns);

}  // namespace crucible::golden
