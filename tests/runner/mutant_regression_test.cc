// builtin:mutant-silent-regression in a real attempt: a real git repository
// with a Python module and its pytest tests, the real sandbox; the search
// finds a one-line change outside the golden patch that breaks a
// PASS_TO_PASS test while the FAIL_TO_PASS test passes, and scoring flags it
// as a regression. Tasks with no place for it are "not applicable".
#include <unistd.h>

#include <gtest/gtest.h>

#include "agent-runner/attempt.h"
#include "base/fs.h"
#include "scoring/score.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::runner {
namespace {

using crucible::testing::GitRepo;

constexpr char kTestCmd[] =
    "PYTHONDONTWRITEBYTECODE=1 python3 -m pytest -q -p no:cacheprovider --junitxml={junit}";

// calc.py's base: `double` is wrong (the task fixes it), `add` is right and
// covered by a PASS_TO_PASS test.
constexpr char kCalc[] =
    "# Arithmetic helpers.\n"
    "\n"
    "\n"
    "def add(a, b):\n"
    "    return a + b\n"
    "\n"
    "\n"
    "def double(x):\n"
    "    return x * 3\n";

constexpr char kGoldenPatch[] =
    "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n"
    "@@ -6,4 +6,4 @@ def add(a, b):\n"
    " \n"
    " \n"
    " def double(x):\n"
    "-    return x * 3\n"
    "+    return x * 2\n";

// The hidden test patch: test_double, added after the base's two-line test
// `test_body`.
std::string TestPatch(const std::string& test_body) {
  std::string context;
  size_t start = 0;
  for (size_t nl; (nl = test_body.find('\n', start)) != std::string::npos; start = nl + 1)
    context += " " + test_body.substr(start, nl + 1 - start);
  return "diff --git a/tests/test_calc.py b/tests/test_calc.py\n"
         "--- a/tests/test_calc.py\n+++ b/tests/test_calc.py\n"
         "@@ -4,2 +4,6 @@\n" +
         context +
         "+\n"
         "+\n"
         "+def test_double():\n"
         "+    assert calc.double(4) == 8\n";
}

class MutantRegressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    auto dir = TempDir::Create("crucible-mutant-regression-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  // A task on `repo` (committed here) whose base has calc.py and
  // tests/test_calc.py with `test_body` after the import.
  v1::GoldenTask MakeTask(GitRepo& repo, const std::string& test_body) {
    repo.Write("calc.py", kCalc);
    repo.Write("tests/__init__.py", "");
    repo.Write("tests/test_calc.py", "import calc\n\n\n" + test_body);
    v1::GoldenTask task;
    task.set_suite("s");
    task.set_id("t-1");
    task.set_repo_path(repo.path());
    task.set_base_commit(repo.Commit("base"));
    task.set_intent("double() must double.");
    task.set_source_patch(kGoldenPatch);
    task.set_test_patch(TestPatch(test_body));
    task.add_fail_to_pass("tests.test_calc::test_double");
    task.set_test_cmd(kTestCmd);
    task.set_test_timeout_s(60);
    return task;
  }

  Result<v1::Evidence> Perform(const v1::GoldenTask& task) {
    v1::AgentSpec agent;
    agent.set_name("mutant-silent-regression");
    agent.set_command("builtin:mutant-silent-regression");
    AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt-" + std::to_string(++n_);
    ctx.emit = [this](v1::TraceEvent ev) { events_.push_back(std::move(ev)); };
    return PerformAttempt(task, agent, ctx);
  }

  std::unique_ptr<TempDir> dir_;
  std::vector<v1::TraceEvent> events_;
  int n_ = 0;
};

// The base's tests: test_add covers add() (two lines, so the new test
// lands at line 6).
constexpr char kAddTest[] = "def test_add():\n    assert calc.add(2, 3) == 5\n";

TEST_F(MutantRegressionTest, BreaksAPassToPassTestOutsideTheGoldenHunksWhileF2PPasses) {
  GitRepo repo;
  v1::GoldenTask task = MakeTask(repo, kAddTest);
  task.add_pass_to_pass("tests.test_calc::test_add");
  auto e = Perform(task);
  ASSERT_TRUE(e) << e.error().ToString();

  const v1::Mutation& m = e->mutation();
  EXPECT_EQ(m.kind(), "silent-regression");
  ASSERT_TRUE(m.applicable()) << m.reason();
  EXPECT_EQ(m.file(), "calc.py");
  EXPECT_EQ(m.line(), 5);
  EXPECT_EQ(m.description(),
            "changes `a + b` to `a - b` in calc.py:5; PASS_TO_PASS test "
            "tests.test_calc::test_add fails");
  EXPECT_GE(m.candidates_tried(), 1);
  EXPECT_LE(m.candidates_tried(), 25);

  // The change is the golden patch plus that one line.
  std::vector<std::string> touched(e->files_touched().begin(), e->files_touched().end());
  EXPECT_EQ(touched, std::vector<std::string>{"calc.py"});
  EXPECT_NE(e->final_diff().find("-    return a + b\n+    return a - b\n"), std::string::npos)
      << e->final_diff();
  EXPECT_NE(e->final_diff().find("+    return x * 2\n"), std::string::npos) << e->final_diff();

  const v1::Score s = scoring::ScoreAttempt(task, *e);
  EXPECT_EQ(s.f2p_passed(), s.f2p_total());
  EXPECT_EQ(s.f2p_total(), 1);
  EXPECT_TRUE(s.regression_measured());
  EXPECT_TRUE(s.regression());
  EXPECT_FALSE(s.completed());

  bool event = false;
  for (const auto& ev : events_) {
    if (ev.source() == "runner" && ev.name() == "mutant") {
      event = true;
      EXPECT_NE(ev.attrs_json().find("calc.py"), std::string::npos) << ev.attrs_json();
    }
  }
  EXPECT_TRUE(event);
}

TEST_F(MutantRegressionTest, WithOnlyRegressionTestsItBreaksARegressionTest) {
  GitRepo repo;
  // The base tests cover nothing; the merged commit's other test file
  // covers add(), as a regression test brought in by the regression patch.
  v1::GoldenTask task = MakeTask(repo, "def test_module():\n    assert calc.__name__\n");
  task.set_regression_patch(
      "diff --git a/tests/test_extra.py b/tests/test_extra.py\nnew file mode 100644\n"
      "--- /dev/null\n+++ b/tests/test_extra.py\n@@ -0,0 +1,5 @@\n"
      "+import calc\n"
      "+\n"
      "+\n"
      "+def test_add():\n"
      "+    assert calc.add(2, 3) == 5\n");
  task.add_regression_tests("tests.test_extra::test_add");
  auto e = Perform(task);
  ASSERT_TRUE(e) << e.error().ToString();
  const v1::Mutation& m = e->mutation();
  ASSERT_TRUE(m.applicable()) << m.reason();
  EXPECT_EQ(m.description(),
            "changes `a + b` to `a - b` in calc.py:5; regression test "
            "tests.test_extra::test_add fails");
  EXPECT_EQ(e->regression_error(), "");
  const v1::Score s = scoring::ScoreAttempt(task, *e);
  EXPECT_EQ(s.f2p_passed(), 1);
  EXPECT_TRUE(s.regression_measured());
  EXPECT_TRUE(s.regression());
  EXPECT_EQ(s.regression_total(), 1);
  EXPECT_EQ(s.regression_passed(), 0);
}

TEST_F(MutantRegressionTest, ATaskWithNoPassToPassTestIsNotApplicableAndKeepsTheGoldenPatch) {
  GitRepo repo;
  v1::GoldenTask task = MakeTask(repo, kAddTest);
  auto e = Perform(task);
  ASSERT_TRUE(e) << e.error().ToString();
  const v1::Mutation& m = e->mutation();
  EXPECT_FALSE(m.applicable());
  EXPECT_NE(m.reason().find("no PASS_TO_PASS"), std::string::npos) << m.reason();
  EXPECT_EQ(m.candidates_tried(), 0);
  EXPECT_EQ(m.file(), "");
  // Nothing beyond the golden patch: the attempt completes.
  EXPECT_EQ(e->final_diff().find("a - b"), std::string::npos) << e->final_diff();
  const v1::Score s = scoring::ScoreAttempt(task, *e);
  EXPECT_TRUE(s.completed()) << s.reason();
  EXPECT_FALSE(s.regression());
}

TEST_F(MutantRegressionTest, PassToPassTestsThatCoverNothingMutableMakeItNotApplicable) {
  GitRepo repo;
  // The only PASS_TO_PASS test checks nothing of calc.py's code, so no
  // one-line change of it breaks that test.
  v1::GoldenTask task = MakeTask(repo, "def test_module():\n    assert calc.__name__\n");
  task.add_pass_to_pass("tests.test_calc::test_module");
  auto e = Perform(task);
  ASSERT_TRUE(e) << e.error().ToString();
  const v1::Mutation& m = e->mutation();
  EXPECT_FALSE(m.applicable());
  EXPECT_NE(m.reason().find("no mutation outside the golden patch broke a PASS_TO_PASS test"),
            std::string::npos)
      << m.reason();
  EXPECT_NE(m.reason().find("(budget: 25 candidates or 120 s)"), std::string::npos) << m.reason();
  EXPECT_GE(m.candidates_tried(), 1);
  const v1::Score s = scoring::ScoreAttempt(task, *e);
  EXPECT_TRUE(s.completed()) << s.reason();
  EXPECT_FALSE(s.regression());
}

TEST_F(MutantRegressionTest, ABinaryOnlyGoldenPatchIsNotApplicable) {
  GitRepo repo;
  v1::GoldenTask task = MakeTask(repo, kAddTest);
  repo.Write("data.bin", std::string("\x01\x00\x02", 3));
  const std::string base = repo.Commit("data");
  repo.Write("data.bin", std::string("\x03\x00\x04", 3));
  const std::string golden = repo.Commit("golden");
  task.set_base_commit(base);
  task.set_source_patch(repo.Git("diff --binary " + base + " " + golden));
  ASSERT_NE(task.source_patch().find("GIT binary patch"), std::string::npos);
  task.add_pass_to_pass("tests.test_calc::test_add");
  auto e = Perform(task);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_FALSE(e->mutation().applicable());
  EXPECT_EQ(e->mutation().reason(), "the golden patch changes binary files only");
  std::vector<std::string> touched(e->files_touched().begin(), e->files_touched().end());
  EXPECT_EQ(touched, std::vector<std::string>{"data.bin"});
}

TEST_F(MutantRegressionTest, ATestRunThatCannotStartIsAnInfrastructureErrorNotNotApplicable) {
  GitRepo repo;
  v1::GoldenTask task = MakeTask(repo, kAddTest);
  task.add_pass_to_pass("tests.test_calc::test_add");
  task.set_test_cmd("crucible-no-such-test-command {junit}");
  auto e = Perform(task);
  ASSERT_FALSE(e) << "mutation: " << e->mutation().reason();
  EXPECT_NE(e.error().message().find("silent-regression"), std::string::npos)
      << e.error().ToString();
  EXPECT_NE(e.error().message().find("not found"), std::string::npos) << e.error().ToString();
}

}  // namespace
}  // namespace crucible::runner
