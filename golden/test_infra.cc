#include "golden/test_infra.h"

#include <fnmatch.h>

namespace crucible::golden {

const std::vector<std::string>& DefaultTestInfrastructure() {
  static const std::vector<std::string> kPatterns = {
      // pytest: plugins and configuration
      "conftest.py", "pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml",
      // modules that would be imported instead of the test runner's own
      "pytest.py", "pytest", "_pytest", "py.py", "pluggy", "unittest.py", "unittest",
      // code every Python interpreter runs at start-up
      "sitecustomize.py", "usercustomize.py", "*.pth",
      // byte-code caches: what the tests import must be what the diff says
      "__pycache__", "*.pyc", "*.pyo", ".pytest_cache",
      // JavaScript test runners
      "jest.config.*", "vitest.config.*", ".mocharc*", "karma.conf.*"};
  return kPatterns;
}

std::vector<std::string> TestInfrastructureOf(const v1::GoldenTask& task) {
  if (task.test_infrastructure().empty()) return DefaultTestInfrastructure();
  return {task.test_infrastructure().begin(), task.test_infrastructure().end()};
}

bool IsTestInfrastructure(std::string_view path, std::span<const std::string> patterns) {
  const std::string full(path);
  for (const auto& pattern : patterns) {
    if (pattern.find('/') != std::string::npos) {
      if (::fnmatch(pattern.c_str(), full.c_str(), 0) == 0) return true;
      continue;
    }
    size_t start = 0;
    while (start <= full.size()) {
      size_t end = full.find('/', start);
      if (end == std::string::npos) end = full.size();
      const std::string component = full.substr(start, end - start);
      if (!component.empty() && ::fnmatch(pattern.c_str(), component.c_str(), 0) == 0) {
        return true;
      }
      start = end + 1;
    }
  }
  return false;
}

}  // namespace crucible::golden
