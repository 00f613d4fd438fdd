// The test command's scope placeholders (golden/test_run.h TestScope):
// {test_files}, {test_ids} and {test_ids_regex} expanded for a task and run by
// a real /bin/sh in the sandbox, with ids built to break out of their quotes.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/fs.h"
#include "golden/miner.h"
#include "golden/test_run.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::golden {
namespace {

using ::testing::ElementsAreArray;

// Ids no shell must read as code: spaces, both quotes, brackets, globs,
// command substitution of both kinds, separators, a backslash, a placeholder.
const std::vector<std::string> kHostileIds = {
    "tests/test_a.py::test_x[1-2]",
    "test with spaces",
    "it's quoted",
    "\"double\"",
    "$(touch pwned-dollar)",
    "`touch pwned-backtick`",
    "a; touch pwned-semicolon",
    "back\\slash",
    "*",
    "{test_files}",
    "'",
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

TEST(TestScope, EachItemIsOneQuotedShellWordAndAnEmptyListLeavesNothing) {
  TestScope scope{.files = {"a.py", "b c.py"}, .ids = {"x", "it's"}};
  EXPECT_EQ(ExpandTestScope("pytest -rA {test_files}", scope), "pytest -rA 'a.py' 'b c.py'");
  EXPECT_EQ(ExpandTestScope("run {test_ids} --junit={junit}", scope),
            "run 'x' 'it'\\''s' --junit={junit}");
  EXPECT_EQ(ExpandTestScope("go test -run {test_ids_regex} ./...",
                            {.files = {}, .ids = {"TestA", "Test.B(x)"}}),
            "go test -run '^(TestA|Test\\.B\\(x\\))$' ./...");
  EXPECT_EQ(ExpandTestScope("pytest {test_files} {test_ids}", {}), "pytest  ");
  EXPECT_EQ(ExpandTestScope("go test -run {test_ids_regex}", {}), "go test -run '.*'");
  // One pass: an id that spells a placeholder stays text.
  EXPECT_EQ(ExpandTestScope("{test_ids}", {.files = {"f"}, .ids = {"{test_files}"}}),
            "'{test_files}'");
  // Near misses are text.
  EXPECT_EQ(ExpandTestScope("{test_file} {test_idsx} {TEST_IDS}", scope),
            "{test_file} {test_idsx} {TEST_IDS}");
}

TEST(TestScope, TheTaskGivesItsTestFilesThenTestPatchPathsAndFailToPassThenPassToPass) {
  v1::GoldenTask task;
  task.set_test_cmd("t {test_files} -- {test_ids}");
  task.add_fail_to_pass("f1");
  task.add_fail_to_pass("f2");
  task.add_pass_to_pass("p1");
  task.set_test_patch(
      "diff --git a/tests/t.py b/tests/t.py\n--- a/tests/t.py\n+++ b/tests/t.py\n"
      "@@ -1 +1 @@\n-a\n+b\n");
  EXPECT_EQ(TestCommandFor(task).command, "t 'tests/t.py' -- 'f1' 'f2' 'p1'");
  task.add_test_files("tests/u.py");
  // Data files are not run, as SWE-bench leaves them out (NON_TEST_EXTS).
  task.add_test_files("tests/fixtures/data.json");
  task.add_test_files("tests/snapshots/out.txt");
  task.add_test_files("tests/conf.yaml");
  EXPECT_EQ(TestCommandFor(task).command, "t 'tests/u.py' -- 'f1' 'f2' 'p1'");
  task.add_regression_tests("r1");
  task.set_regression_patch(
      "diff --git a/tests/r.py b/tests/r.py\n--- a/tests/r.py\n+++ b/tests/r.py\n"
      "@@ -1 +1 @@\n-a\n+b\n");
  EXPECT_EQ(TestCommandFor(task, RegressionTestScope(task)).command, "t 'tests/r.py' -- 'r1'");
}

class TestScopeSandbox : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
    auto dir = TempDir::Create("crucible-test-scope-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }
  // Runs the task's test command (TestCommandFor) in the sandbox over the
  // workspace; exit-code results, so no report is needed.
  v1::TestRun Run(const v1::GoldenTask& task) {
    TestCommand cmd = TestCommandFor(task);
    cmd.format = ResultFormat::kExitCode;
    cmd.timeout = std::chrono::seconds(60);
    auto run = RunTests(dir_->path(), cmd);
    EXPECT_TRUE(run) << run.error().ToString();
    return run ? *run : v1::TestRun();
  }
  std::string Read(const std::string& name) {
    auto text = ReadFile(dir_->path() + "/" + name);
    return text ? *text : "(missing " + name + ")";
  }
  std::unique_ptr<TempDir> dir_;
};

// The ids reach the command as the same strings, one argument each, and
// nothing in them runs; the regex matches exactly them under grep -E.
TEST_F(TestScopeSandbox, HostileIdsArriveIntactAndRunNothing) {
  v1::GoldenTask task;
  for (size_t i = 0; i < kHostileIds.size(); ++i) {
    (i % 2 == 0 ? task.add_fail_to_pass(kHostileIds[i]) : task.add_pass_to_pass(kHostileIds[i]));
  }
  task.add_test_files("tests/it's a file.py");
  task.add_test_files("tests/$(touch pwned-file).py");
  task.set_test_cmd(
      "printf '%s\\n' {test_ids} > ids.txt && printf '%s\\n' {test_files} > files.txt && "
      "printf '%s\\n' {test_ids} | grep -cE {test_ids_regex} > matched.txt; "
      "printf '%s\\n' 'test with spacesX' 'xit'\\''s quoted' | grep -cE {test_ids_regex} "
      "> unmatched.txt; exit 0");
  v1::TestRun run = Run(task);
  EXPECT_EQ(run.exit_code(), 0) << run.output_tail();
  EXPECT_TRUE(run.infra_error().empty()) << run.infra_error();
  // FAIL_TO_PASS first, then PASS_TO_PASS.
  std::vector<std::string> expected;
  for (size_t i = 0; i < kHostileIds.size(); i += 2) expected.push_back(kHostileIds[i]);
  for (size_t i = 1; i < kHostileIds.size(); i += 2) expected.push_back(kHostileIds[i]);
  EXPECT_THAT(Lines(Read("ids.txt")), ElementsAreArray(expected));
  EXPECT_EQ(Read("files.txt"), "tests/it's a file.py\ntests/$(touch pwned-file).py\n");
  EXPECT_EQ(Read("matched.txt"), std::to_string(kHostileIds.size()) + "\n");
  EXPECT_EQ(Read("unmatched.txt"), "0\n");
  for (const char* pwned : {"pwned-dollar", "pwned-backtick", "pwned-semicolon", "pwned-file"}) {
    EXPECT_FALSE(std::filesystem::exists(dir_->path() + "/" + pwned)) << pwned << " was created";
  }
}

// No ids and no files: the placeholders leave no argument at all, so the
// runner's whole suite runs; the regex matches anything.
TEST_F(TestScopeSandbox, EmptyListsLeaveNoArgument) {
  v1::GoldenTask task;
  task.set_test_cmd(
      "set -- {test_files} {test_ids}; echo $# > count.txt; "
      "echo anything | grep -cE {test_ids_regex} > regex.txt");
  v1::TestRun run = Run(task);
  EXPECT_EQ(run.exit_code(), 0) << run.output_tail();
  EXPECT_EQ(Read("count.txt"), "0\n");
  EXPECT_EQ(Read("regex.txt"), "1\n");
}

// Mining's validation runs know the change's test files but not its ids yet:
// {test_files} is the change's test files, {test_ids} nothing. A runner
// script that needs its files finds them; the task keeps the placeholders
// and scoring gets its own files and FAIL_TO_PASS.
TEST_F(TestScopeSandbox, MiningRunsTheChangesTestFiles) {
  crucible::testing::GitRepo repo;
  repo.Write("lib.sh", "add() { echo $(($1 - $2)); }\n");
  repo.Write("tests/run.sh",
             ". ./lib.sh\n[ $# -gt 0 ] || { echo 'no test files given' >&2; exit 2; }\n"
             "check() { n=$1; shift; if \"$@\"; then echo \"ok 1 - $n\"; else echo \"not ok 1 - "
             "$n\"; fi; }\n"
             "for f in \"$@\"; do [ \"$f\" = -- ] || . \"./$f\"; done\n");
  repo.Commit("base");
  repo.Write("lib.sh", "add() { echo $(($1 + $2)); }\n");
  repo.Write("tests/test_add.sh", "check add_works [ \"$(add 1 2)\" = 3 ]\n");
  repo.Commit("Fix add");
  MineOptions options;
  options.repo_path = repo.path();
  options.suite = "s";
  options.test_cmd = "sh tests/run.sh {test_files} -- {test_ids}";
  options.results = ResultFormat::kTap;
  options.repeat = 1;
  auto mined = Mine(options);
  ASSERT_TRUE(mined) << mined.error().ToString();
  ASSERT_EQ(mined->tasks.size(), 1u)
      << (mined->skipped.empty() ? "" : mined->skipped.back().reason);
  const auto& task = mined->tasks[0];
  EXPECT_THAT(task.fail_to_pass(), ElementsAreArray({"add_works"}));
  EXPECT_EQ(task.test_cmd(), options.test_cmd);
  EXPECT_EQ(TestCommandFor(task).command, "sh tests/run.sh 'tests/test_add.sh' -- 'add_works'");
}

}  // namespace
}  // namespace crucible::golden
