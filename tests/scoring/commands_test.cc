#include "scoring/commands.h"

#include <gtest/gtest.h>

namespace crucible::scoring {
namespace {

TEST(LooksLikeTestRun, KnownRunnersInShellCommands) {
  for (const char* cmd :
       {"pytest -q", "python -m pytest tests/test_x.py", "cd /workspace && pytest",
        "PYTHONPATH=. timeout 60 python3 -m pytest -x 2>&1 | tail -20", "uv run pytest",
        "go test ./...", "cargo test --release", "npm test", "yarn run test:unit", "npx jest --ci",
        "make check", "ctest --output-on-failure", "python manage.py test inventory",
        "bash -c 'cd src && pytest -q'", "python -m unittest discover", "./bin/test sympy/core",
        "env -i tox -e py311", "/usr/bin/pytest -q"}) {
    EXPECT_TRUE(LooksLikeTestRun(std::string_view(cmd))) << cmd;
  }
}

TEST(LooksLikeTestRun, OtherCommandsAreNot) {
  for (const char* cmd :
       {"", "ls -la", "cat tests/test_x.py", "grep -rn pytest .", "python -m pip install pytest",
        "echo 'pytest'", "git diff", "sed -i s/a/b/ test_x.py", "python setup.py build", "make",
        "go build ./...", "npm install", "vim pytest.ini"}) {
    EXPECT_FALSE(LooksLikeTestRun(std::string_view(cmd))) << cmd;
  }
}

TEST(LooksLikeTestRun, TheSuitesOwnTestCommand) {
  const char* suite = "./run_tests.sh --junit {junit}";
  EXPECT_TRUE(LooksLikeTestRun(std::string_view("./run_tests.sh"), suite));
  EXPECT_TRUE(LooksLikeTestRun(std::string_view("cd /workspace; sh -c ./run_tests.sh"), suite));
  EXPECT_FALSE(LooksLikeTestRun(std::string_view("./build.sh"), suite));
  // "python -m X" keys on the module, not on "python -m".
  EXPECT_FALSE(
      LooksLikeTestRun(std::string_view("python -m pip list"), "python -m mytests {junit}"));
  EXPECT_TRUE(
      LooksLikeTestRun(std::string_view("python -m mytests -v"), "python -m mytests {junit}"));
}

TEST(LooksLikeTestRun, ExecutedArgv) {
  using V = std::vector<std::string>;
  EXPECT_TRUE(LooksLikeTestRun(V{"/usr/bin/python3", "/usr/bin/pytest", "-q"}));
  EXPECT_TRUE(LooksLikeTestRun(V{"python3", "-m", "pytest"}));
  EXPECT_TRUE(LooksLikeTestRun(V{"/bin/sh", "-c", "pytest -q"}));
  EXPECT_TRUE(LooksLikeTestRun(V{"go", "test", "./..."}));
  EXPECT_FALSE(LooksLikeTestRun(V{"/usr/bin/git", "status"}));
  EXPECT_FALSE(LooksLikeTestRun(V{"python3", "-c", "print(1)"}));
  EXPECT_FALSE(LooksLikeTestRun(V{}));
}

}  // namespace
}  // namespace crucible::scoring
