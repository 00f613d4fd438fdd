#include "golden/miner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "base/fs.h"
#include "golden/suite_config.h"
#include "golden/test_run.h"
#include "tests/vcs/git_fixture.h"
#include "vcs/repo.h"

namespace crucible::golden {
namespace {

namespace fs = std::filesystem;
using crucible::testing::GitRepo;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Inside the sandbox PATH is /usr/local/bin:/usr/bin:/bin, so this is the
// system Python with pytest.
const char kPytest[] = "python3 -m pytest -q -p no:cacheprovider --junitxml={junit}";

MineOptions Options(const std::string& repo, const std::string& suite, const std::string& cmd) {
  MineOptions o;
  o.repo_path = repo;
  o.suite = suite;
  o.test_cmd = cmd;
  return o;
}

#define SKIP_UNLESS_ROOT()                                                            \
  do {                                                                                \
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root; run this as root"; \
  } while (0)

TEST(IsTestPath, MatchesTheDefaultPatterns) {
  for (const char* p :
       {"tests/test_util.py", "test/unit/helpers.py", "pkg/tests/data/input.json", "test_x.py",
        "pkg/test_thing.py", "pkg/thing_test.py", "conftest.py", "pkg/conftest.py",
        "storage/key_codec_test.cc", "x_test.cpp", "server/handler_test.go", "web/app.test.js",
        "web/app.spec.ts", "src/__tests__/app.js", "src/test/java/com/x/FooTest.java"}) {
    EXPECT_TRUE(IsTestPath(p)) << p;
  }
  for (const char* p :
       {"src/util.py", "README.md", "testing.py", "pkg/contest.py", "latest/notes.md",
        "attest/x.py", "scripts/test", "test", "test_data.txt", "docs/testing.md",
        "src/protest_test.h", "app.test", ".spec.js", "Tests/x.py"}) {
    EXPECT_FALSE(IsTestPath(p)) << p;
  }
}

TEST(Mine, ValidatesItsOptions) {
  GitRepo repo;
  repo.Write("a.txt", "a\n");
  repo.Commit("root");
  MineOptions base = Options(repo.path(), "s", kPytest);

  auto no_suite = base;
  no_suite.suite = "";
  auto r = Mine(no_suite);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("suite"));

  auto no_cmd = base;
  no_cmd.test_cmd = "";
  r = Mine(no_cmd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("test_cmd"));

  auto no_placeholder = base;
  no_placeholder.test_cmd = "pytest";
  r = Mine(no_placeholder);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("{junit}"));

  auto no_time = base;
  no_time.test_timeout = std::chrono::seconds(0);
  r = Mine(no_time);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("test_timeout"));

  auto not_repo = base;
  not_repo.repo_path = repo.path() + "/missing";
  r = Mine(not_repo);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("is not a git repository"));

  auto bad_ref = base;
  bad_ref.ref = "nope";
  r = Mine(bad_ref);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
}

// Changes that are skipped before any test runs: no sandbox needed.
TEST(Mine, SkipsChangesWithoutSourceOrTests) {
  GitRepo repo;
  repo.Write("calc/ops.py", "def add(a, b):\n    return a + b\n");
  std::string root = repo.Commit("initial");
  repo.Write("README.md", "# calc\n");
  std::string docs = repo.Commit("docs: add a readme");
  repo.Write("tests/test_ops.py", "def test_nothing():\n    pass\n");
  std::string tests_only = repo.Commit("tests only");
  repo.Write("logo.png", std::string("\x89PNG\0\0\x01", 7));
  std::string binary = repo.Commit("add a logo");
  repo.Write("calc/ops.py", "def add(a, b):\n    return b + a\n");
  std::string source_only = repo.Commit("refactor");

  std::vector<std::tuple<size_t, size_t, std::string>> progress;
  MineOptions options = Options(repo.path(), "calc", kPytest);
  options.require_f2p = true;  // a change without tests is dropped before any run
  options.progress = [&](size_t done, size_t total, const std::string& label) {
    progress.emplace_back(done, total, label);
  };
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->tasks.empty());
  ASSERT_EQ(r->skipped.size(), 5u);
  EXPECT_EQ(r->skipped[0].commit, root);
  EXPECT_EQ(r->skipped[0].reason, "root commit");
  EXPECT_EQ(r->skipped[1].commit, docs);
  EXPECT_EQ(r->skipped[1].reason, "docs-only change");
  EXPECT_EQ(r->skipped[1].summary, "docs: add a readme");
  EXPECT_EQ(r->skipped[1].category, "filter");
  EXPECT_EQ(r->skipped[2].commit, tests_only);
  EXPECT_EQ(r->skipped[2].reason, "no source change");
  EXPECT_EQ(r->skipped[3].commit, binary);
  EXPECT_EQ(r->skipped[3].reason, "binary-only change");
  EXPECT_EQ(r->skipped[4].commit, source_only);
  EXPECT_EQ(r->skipped[4].reason, "no test change");
  ASSERT_EQ(progress.size(), 5u);
  EXPECT_EQ(progress[0], std::make_tuple(size_t{1}, size_t{5}, std::string("root commit")));
  EXPECT_EQ(progress[4], std::make_tuple(size_t{5}, size_t{5}, std::string("no test change")));

  EXPECT_EQ(r->suite.name(), "calc");
  EXPECT_EQ(r->suite.repo_path(), fs::canonical(repo.path()).string());
  EXPECT_EQ(r->suite.test_cmd(), kPytest);
  EXPECT_EQ(r->suite.test_timeout_s(), 600);
  EXPECT_EQ(r->suite.task_count(), 0);
  EXPECT_GT(r->suite.created_at_ms(), 0);
  ASSERT_EQ(r->suite.skipped_size(), 5);
  EXPECT_EQ(r->suite.skipped(3).commit(), binary);
  EXPECT_EQ(r->suite.skipped(3).summary(), "add a logo");
  EXPECT_EQ(r->suite.skipped(3).reason(), "binary-only change");

  options.last = 2;
  progress.clear();
  auto last = Mine(options);
  ASSERT_TRUE(last);
  ASSERT_EQ(last->skipped.size(), 2u);
  EXPECT_EQ(last->skipped[0].commit, binary);
  EXPECT_EQ(last->skipped[1].commit, source_only);
}

// ------------------------------------------------ tests that use the sandbox --

class RunTestsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_ROOT();
    auto dir = TempDir::Create("crucible-test-runtests-");
    ASSERT_TRUE(dir);
    dir_ = std::move(*dir);
  }

  v1::TestRun Run(const std::string& command,
                  std::chrono::seconds timeout = std::chrono::seconds(60)) {
    auto run = RunTests(dir_.path(), TestCommand{.command = command, .timeout = timeout});
    EXPECT_TRUE(run) << run.error().ToString();
    return run ? *run : v1::TestRun();
  }

  TempDir dir_ = *TempDir::Create("crucible-test-unused-");
};

const char kPassingReport[] =
    "printf '<testsuite><testcase classname=\"a\" name=\"b\"/></testsuite>' > {junit}";

TEST_F(RunTestsTest, ReadsTheReportOfAPassingRun) {
  std::ofstream(dir_.path() + "/marker") << "here";
  v1::TestRun run =
      Run(std::string("test -f marker && echo out && echo err >&2 && ") + kPassingReport);
  EXPECT_EQ(run.exit_code(), 0);
  EXPECT_TRUE(run.report_found());
  EXPECT_EQ(run.infra_error(), "");
  EXPECT_FALSE(run.timed_out());
  ASSERT_EQ(run.tests_size(), 1);
  EXPECT_EQ(run.tests(0).id(), "a::b");
  EXPECT_TRUE(AllPassed(run, {"a::b"}));
  // stdout first, then stderr (an ASan build adds its own lines to stderr).
  EXPECT_THAT(run.output_tail(), StartsWith("out\n"));
  EXPECT_THAT(run.output_tail(), HasSubstr("err\n"));
}

TEST_F(RunTestsTest, AMissingCommandIsAnInfraError) {
  v1::TestRun run = Run("no-such-test-runner --junitxml={junit}");
  EXPECT_EQ(run.exit_code(), 127);
  EXPECT_FALSE(run.report_found());
  EXPECT_THAT(run.infra_error(), StartsWith("test command not found: "));
  EXPECT_THAT(run.infra_error(), HasSubstr("no-such-test-runner"));
}

TEST_F(RunTestsTest, APassingReportCannotHideAFailedExit) {
  v1::TestRun run = Run(std::string(kPassingReport) + "; exit 1");
  EXPECT_EQ(run.exit_code(), 1);
  EXPECT_TRUE(run.report_found());
  EXPECT_EQ(run.infra_error(), "test command exited 1 but its report shows no failure");
  EXPECT_FALSE(AllPassed(run, {"a::b"}));
}

TEST_F(RunTestsTest, AFailingReportWithAFailedExitIsNormal) {
  v1::TestRun run =
      Run("printf '<testsuite><testcase classname=\"a\" name=\"b\"><failure/></testcase>"
          "<testcase classname=\"a\" name=\"c\"/></testsuite>' > {junit}; exit 1");
  EXPECT_EQ(run.exit_code(), 1);
  EXPECT_EQ(run.infra_error(), "");
  EXPECT_FALSE(AllPassed(run, {"a::b"}));
  EXPECT_TRUE(AllPassed(run, {"a::c"}));
}

TEST_F(RunTestsTest, ReportProblemsAreRecordedNotReturned) {
  v1::TestRun none = Run("true");
  EXPECT_FALSE(none.report_found());
  EXPECT_THAT(none.infra_error(), HasSubstr("wrote no JUnit report"));

  v1::TestRun crashed = Run("echo Traceback >&2; exit 3");
  EXPECT_FALSE(crashed.report_found());
  EXPECT_EQ(crashed.infra_error(), "");
  EXPECT_EQ(crashed.exit_code(), 3);
  EXPECT_THAT(crashed.output_tail(), HasSubstr("Traceback\n"));

  v1::TestRun garbage = Run("echo '<testsuite><oops' > {junit}");
  EXPECT_FALSE(garbage.report_found());
  EXPECT_THAT(garbage.infra_error(), StartsWith("JUnit report does not parse"));

  v1::TestRun link = Run("ln -s /etc/passwd {junit}");
  EXPECT_FALSE(link.report_found());
  EXPECT_NE(link.infra_error(), "");
}

TEST_F(RunTestsTest, TimesOut) {
  v1::TestRun run = Run("sleep 30", std::chrono::seconds(1));
  EXPECT_TRUE(run.timed_out());
  EXPECT_FALSE(run.report_found());
  EXPECT_EQ(run.infra_error(), "");
  EXPECT_EQ(run.exit_code(), 124);
  EXPECT_LT(run.wall_ms(), 10000);
}

TEST_F(RunTestsTest, KeepsTheTailOfLongOutput) {
  v1::TestRun run = Run("seq 1 100000; echo last line");
  EXPECT_LE(run.output_tail().size(), 4096u);
  EXPECT_THAT(run.output_tail(), HasSubstr("99999\n100000\nlast line\n"));
}

// A small Python project whose history has one good bug-fix PR and several
// changes that must be skipped.
class MineFixture : public ::testing::Test {
 protected:
  static constexpr const char* kOps =
      "def add(a, b):\n    return a + b\n\n\n"
      "def mul(a, b):\n    return a * b + 1\n\n\n"
      "def neg(a):\n    return -a\n";
  static constexpr const char* kTests =
      "from calc.ops import add, neg\n\n\n"
      "def test_add():\n    assert add(2, 3) == 5\n\n\n"
      "def test_neg():\n    assert neg(2) == -2\n";

  void SetUp() override {
    SKIP_UNLESS_ROOT();
    repo_.Write("calc/__init__.py", "");
    repo_.Write("calc/ops.py", kOps);
    repo_.Write("tests/test_ops.py", kTests);
    root_ = repo_.Commit("initial");

    repo_.Write("README.md", "# calc\n");
    docs_ = repo_.Commit("docs: add a readme");

    // PR #1: fixes mul and adds the test that shows the bug.
    repo_.Git("checkout -q -b fix-mul");
    std::string ops = kOps;
    ops.replace(ops.find("a * b + 1"), 9, "a * b");
    repo_.Write("calc/ops.py", ops);
    repo_.Commit("fix mul");
    std::string tests = kTests;
    tests.replace(0, tests.find('\n'), "from calc.ops import add, mul, neg");
    repo_.Write("tests/test_ops.py", tests + "\n\ndef test_mul():\n    assert mul(3, 4) == 12\n");
    repo_.Commit("test mul");
    repo_.Git("checkout -q main");
    fix_ = repo_.Merge("fix-mul",
                       "Merge pull request #1 from dev/fix-mul\n\nFix mul off-by-one\n\n"
                       "mul added one to every product.");

    // A refactor with a test that passes before and after.
    repo_.Write("calc/ops.py",
                ReadCurrent("calc/ops.py") + "\n\ndef sub(a, b):\n    return a - b\n");
    repo_.Write(
        "tests/test_more.py",
        "from calc.ops import add\n\n\ndef test_add_negative():\n    assert add(-1, -1) == -2\n");
    no_f2p_ = repo_.Commit("add sub, test add with negatives");

    // A change whose merged commit fails its own tests.
    std::string broken = ReadCurrent("calc/ops.py");
    broken.replace(broken.find("return -a"), 9, "return a");
    repo_.Write("calc/ops.py", broken);
    repo_.Write("tests/test_sub.py",
                "from calc.ops import sub\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n");
    broken_ = repo_.Commit("break neg by accident");
  }

  std::string ReadCurrent(const std::string& rel) {
    return crucible::testing::ReadOrEmpty(repo_.path() + "/" + rel);
  }

  GitRepo repo_;
  std::string root_, docs_, fix_, no_f2p_, broken_;
};

TEST_F(MineFixture, MinesTheBugFixAndSkipsTheRest) {
  std::vector<std::string> labels;
  MineOptions options = Options(repo_.path(), "calc", kPytest);
  options.test_timeout = std::chrono::seconds(120);
  options.require_f2p = true;
  options.progress = [&](size_t, size_t total, const std::string& label) {
    EXPECT_EQ(total, 5u);
    labels.push_back(label);
  };
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();

  ASSERT_EQ(r->tasks.size(), 1u) << (r->skipped.empty() ? "" : r->skipped.back().reason);
  const v1::GoldenTask& task = r->tasks[0];
  EXPECT_EQ(task.id(), "t-" + fix_.substr(0, 8));
  EXPECT_EQ(task.suite(), "calc");
  EXPECT_EQ(task.repo_path(), fs::canonical(repo_.path()).string());
  EXPECT_EQ(task.merged_commit(), fix_);
  EXPECT_EQ(task.base_commit(), docs_);
  EXPECT_EQ(task.intent(), "Fix mul off-by-one\n\nmul added one to every product.");
  EXPECT_THAT(task.fail_to_pass(), ElementsAre("tests.test_ops::test_mul"));
  EXPECT_THAT(task.pass_to_pass(),
              ElementsAre("tests.test_ops::test_add", "tests.test_ops::test_neg"));
  EXPECT_THAT(task.source_files(), ElementsAre("calc/ops.py"));
  EXPECT_THAT(task.test_files(), ElementsAre("tests/test_ops.py"));
  EXPECT_THAT(task.source_patch(), HasSubstr("-    return a * b + 1\n+    return a * b\n"));
  EXPECT_THAT(task.test_patch(), HasSubstr("+def test_mul():"));
  EXPECT_EQ(task.test_cmd(), kPytest);
  EXPECT_EQ(task.test_timeout_s(), 120);
  EXPECT_GT(task.merged_at_ms(), 0);

  ASSERT_EQ(r->skipped.size(), 4u);
  EXPECT_EQ(r->skipped[0].reason, "root commit");
  EXPECT_EQ(r->skipped[1].commit, docs_);
  EXPECT_EQ(r->skipped[1].reason, "docs-only change");
  EXPECT_EQ(r->skipped[2].commit, no_f2p_);
  EXPECT_EQ(r->skipped[2].reason, "no test fails before the change");
  EXPECT_EQ(r->skipped[2].category, "tests");
  EXPECT_EQ(r->skipped[3].commit, broken_);
  EXPECT_EQ(r->skipped[3].reason, "merged commit fails its own tests: tests.test_ops::test_neg");
  EXPECT_EQ(r->skipped[3].category, "tests");
  EXPECT_EQ(task.kind(), "bug-fix");
  EXPECT_TRUE(task.flaky().empty());
  EXPECT_EQ(r->suite.repeat(), 2);
  EXPECT_THAT(labels, ElementsAre("root commit", "docs-only change", task.id(),
                                  "no test fails before the change",
                                  "merged commit fails its own tests: tests.test_ops::test_neg"));
  EXPECT_EQ(r->suite.task_count(), 1);

  // The task replays: base + source patch + test patch passes FAIL_TO_PASS.
  auto dir = TempDir::Create("crucible-test-replay-");
  ASSERT_TRUE(dir);
  auto ws = vcs::Workspace::Create(task.repo_path(), task.base_commit(), dir->path() + "/w",
                                   dir->path() + "/g");
  ASSERT_TRUE(ws);
  ASSERT_TRUE((*ws)->Apply(task.source_patch()));
  ASSERT_TRUE((*ws)->Apply(task.test_patch()));
  auto run = RunTests((*ws)->workdir(), TestCommand{.command = kPytest});
  ASSERT_TRUE(run);
  std::vector<std::string> f2p(task.fail_to_pass().begin(), task.fail_to_pass().end());
  std::vector<std::string> p2p(task.pass_to_pass().begin(), task.pass_to_pass().end());
  EXPECT_TRUE(AllPassed(*run, f2p)) << run->output_tail();
  EXPECT_TRUE(AllPassed(*run, p2p));
}

TEST_F(MineFixture, TaskIdsAreStableAcrossWindows) {
  MineOptions options = Options(repo_.path(), "calc", kPytest);
  options.ref = fix_;
  options.last = 1;
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->tasks.size(), 1u);
  EXPECT_EQ(r->tasks[0].id(), "t-" + fix_.substr(0, 8));
}

TEST_F(MineFixture, AMissingTestRunnerSkipsWithTheInfraError) {
  MineOptions options = Options(repo_.path(), "calc", "no-such-runner --junitxml={junit}");
  options.ref = fix_;
  options.last = 1;
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->tasks.empty());
  ASSERT_EQ(r->skipped.size(), 1u);
  EXPECT_THAT(r->skipped[0].reason,
              StartsWith("test run failed at the merged commit: test command not found: "));
  EXPECT_EQ(r->skipped[0].category, "infra");
}

// Without require_f2p a change whose tests all passed before is kept, as kind
// no-test-delta, scored on PASS_TO_PASS; validation runs two at a time.
TEST_F(MineFixture, KeepsChangesWithoutATestDeltaAndValidatesInParallel) {
  MineOptions options = Options(repo_.path(), "calc", kPytest);
  options.repeat = 1;
  options.jobs = 2;
  size_t calls = 0;
  options.progress = [&](size_t done, size_t total, const std::string&) {
    EXPECT_EQ(done, ++calls);
    EXPECT_EQ(total, 5u);
  };
  // The root commit and the docs change are skipped by the rules, reported
  // before the three candidates are validated.
  int prepared = 0;
  options.prepared = [&](size_t skipped, size_t candidates) {
    ++prepared;
    EXPECT_EQ(skipped, 2u);
    EXPECT_EQ(candidates, 3u);
    EXPECT_EQ(calls, 2u);
  };
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(calls, 5u);
  EXPECT_EQ(prepared, 1);
  ASSERT_EQ(r->tasks.size(), 2u);
  EXPECT_EQ(r->tasks[0].merged_commit(), fix_);  // oldest first despite the threads
  EXPECT_EQ(r->tasks[0].kind(), "bug-fix");
  EXPECT_EQ(r->tasks[1].merged_commit(), no_f2p_);
  EXPECT_EQ(r->tasks[1].kind(), "no-test-delta");
  EXPECT_TRUE(r->tasks[1].fail_to_pass().empty());
  EXPECT_THAT(r->tasks[1].pass_to_pass(),
              ::testing::Contains("tests.test_more::test_add_negative"));
  ASSERT_EQ(r->skipped.size(), 3u);
  EXPECT_EQ(r->skipped[2].commit, broken_);
}

// Intents from a pull-request export win over the commit message.
TEST_F(MineFixture, UsesThePullRequestTitleAndBody) {
  MineOptions options = Options(repo_.path(), "calc", kPytest);
  options.ref = fix_;
  options.last = 1;
  options.repeat = 1;
  options.intents[fix_] = "Fix mul\n\nFrom the PR body.";
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->tasks.size(), 1u);
  EXPECT_EQ(r->tasks[0].intent(), "Fix mul\n\nFrom the PR body.");
}

// A squash-merged change whose new test is flaky: it toggles a counter file
// (ignored by git) in the workspace, so it passes and fails on alternate runs.
TEST(MineFlaky, FlakyTestsAreRecordedAndExcluded) {
  SKIP_UNLESS_ROOT();
  GitRepo repo;
  repo.Write(".gitignore", "counter\n");
  repo.Write("calc.py", "def double(x):\n    return x + x + 1\n");
  repo.Write("tests/test_base.py",
             "from calc import double\n\n\ndef test_zero_is_fine():\n    assert double(0) >= 0\n");
  repo.Commit("initial");
  repo.Write("calc.py", "def double(x):\n    return x * 2\n");
  repo.Write("tests/test_calc.py",
             "import os\n\nfrom calc import double\n\n\n"
             "def test_double():\n    assert double(3) == 6\n\n\n"
             "def test_flaky():\n"
             "    n = int(open('counter').read()) if os.path.exists('counter') else 0\n"
             "    open('counter', 'w').write(str(n + 1))\n"
             "    assert n % 2 == 0\n");
  std::string squash = repo.Commit("Fix double (#12)\n\ndouble added one.");
  MineOptions options = Options(repo.path(), "calc", kPytest);
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->tasks.size(), 1u) << r->skipped.back().reason;
  const auto& task = r->tasks[0];
  EXPECT_EQ(task.merged_commit(), squash);
  EXPECT_EQ(task.intent(), "Fix double (#12)\n\ndouble added one.");
  EXPECT_THAT(task.fail_to_pass(), ElementsAre("tests.test_calc::test_double"));
  EXPECT_THAT(task.pass_to_pass(), ElementsAre("tests.test_base::test_zero_is_fine"));
  EXPECT_THAT(task.flaky(), ElementsAre("tests.test_calc::test_flaky"));

  // One repetition cannot see it: the test passes on its first run.
  options.repeat = 1;
  auto once = Mine(options);
  ASSERT_TRUE(once);
  ASSERT_EQ(once->tasks.size(), 1u);
  EXPECT_TRUE(once->tasks[0].flaky().empty());
  EXPECT_THAT(once->tasks[0].pass_to_pass(),
              ElementsAre("tests.test_base::test_zero_is_fine", "tests.test_calc::test_flaky"));
}

// A merge that adds one real test and three that pass half the time: each
// counts its runs in a file of its own (ignored by git) in the workspace, so
// over the two runs at the merged commit flaky_a passes then fails, flaky_b
// fails then passes and flaky_c fails twice (it fails two runs in four). The
// three are left out with their reasons; the real test keeps the task. A
// change (in another repository) whose only new tests are such tests has no
// reliable FAIL_TO_PASS test left and is skipped, naming them.
TEST(MineFlaky, TestsFailingAtTheMergedCommitAreExcludedNotTheTask) {
  SKIP_UNLESS_ROOT();
  auto flaky = [](const std::string& name, const std::string& fails_when) {
    return "def test_" + name + "():\n    path = 'runs_" + name +
           "'\n    n = int(open(path).read()) if os.path.exists(path) else 0\n"
           "    open(path, 'w').write(str(n + 1))\n    assert not (" +
           fails_when + ")\n\n\n";
  };
  GitRepo repo;
  repo.Write(".gitignore", "runs_*\n");
  repo.Write("calc.py", "def double(x):\n    return x + x + 1\n");
  repo.Write("tests/test_base.py",
             "from calc import double\n\n\ndef test_zero_is_fine():\n    assert double(0) >= 0\n");
  repo.Commit("initial");
  repo.Git("checkout -q -b fix-double");
  repo.Write("calc.py", "def double(x):\n    return x * 2\n");
  repo.Write("tests/test_calc.py",
             "import os\n\nfrom calc import double\n\n\n" + flaky("flaky_a", "n % 2 == 1") +
                 flaky("flaky_b", "n % 2 == 0") + flaky("flaky_c", "n // 2 % 2 == 0") +
                 "def test_double():\n    assert double(3) == 6\n");
  repo.Commit("fix double");
  repo.Git("checkout -q main");
  std::string merge = repo.Merge("fix-double",
                                 "Merge pull request #7 from dev/fix-double\n\n"
                                 "Fix double\n\ndouble added one.");
  MineOptions options = Options(repo.path(), "calc", kPytest);
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->tasks.size(), 1u) << r->skipped.back().reason;
  const auto& task = r->tasks[0];
  EXPECT_EQ(task.merged_commit(), merge);
  EXPECT_THAT(task.fail_to_pass(), ElementsAre("tests.test_calc::test_double"));
  EXPECT_THAT(task.pass_to_pass(), ElementsAre("tests.test_base::test_zero_is_fine"));
  EXPECT_FALSE(task.untestable());
  std::vector<std::pair<std::string, std::string>> excluded;
  for (const auto& e : task.excluded_tests()) excluded.emplace_back(e.id(), e.reason());
  EXPECT_THAT(excluded, ElementsAre(std::make_pair("tests.test_calc::test_flaky_a",
                                                   "failed 1 of 2 runs at the merged commit"),
                                    std::make_pair("tests.test_calc::test_flaky_b",
                                                   "failed 1 of 2 runs at the merged commit"),
                                    std::make_pair("tests.test_calc::test_flaky_c",
                                                   "fails at the merged commit (2 of 2 runs)")));

  ASSERT_EQ(r->skipped.size(), 1u);  // the root commit

  GitRepo other;
  other.Write(".gitignore", "runs_*\n");
  other.Write("calc.py", "def half(x):\n    return x / 2\n");
  other.Write("tests/test_base.py", "def test_true():\n    assert True\n");
  other.Commit("initial");
  other.Write("calc.py", "def half(x):\n    return x // 2\n");
  other.Write("tests/test_half.py", "import os\n\nfrom calc import half\n\n\n" +
                                        flaky("half_a", "n % 2 == 1 or half(3) != 1") +
                                        flaky("half_c", "n // 2 % 2 == 0 or half(3) != 1"));
  std::string only_flaky = other.Commit("Make half an integer division");
  auto skipped = Mine(Options(other.path(), "half", kPytest));
  ASSERT_TRUE(skipped) << skipped.error().ToString();
  EXPECT_TRUE(skipped->tasks.empty());
  ASSERT_EQ(skipped->skipped.size(), 2u);
  EXPECT_EQ(skipped->skipped[1].commit, only_flaky);
  EXPECT_EQ(skipped->skipped[1].category, "tests");
  EXPECT_EQ(skipped->skipped[1].reason,
            "no reliable FAIL_TO_PASS test: tests.test_half::test_half_a failed 1 of 2 runs at the "
            "merged commit, tests.test_half::test_half_c fails at the merged commit (2 of 2 "
            "runs)");
}

// Shell test suites: TAP on stdout, or just the exit code; a setup command
// that fails is an infra failure.
class ShellSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_ROOT();
    repo_.Write("lib.sh", "greet() { echo hello; }\n");
    repo_.Write("tests/run.sh",
                ". ./lib.sh\necho 1..1\n"
                "[ \"$(greet)\" = hello ] && echo 'ok 1 - greets' || echo 'not ok 1 - greets'\n");
    repo_.Commit("initial");
    repo_.Write("lib.sh", "greet() { echo \"hello ${1:-world}\"; }\n");
    repo_.Write("tests/run.sh",
                ". ./lib.sh\necho 1..2\n"
                "[ \"$(greet)\" = 'hello world' ] && echo 'ok 1 - greets' || echo 'not ok 1 - "
                "greets'\n"
                "[ \"$(greet ann)\" = 'hello ann' ] && echo 'ok 2 - greets by name' || "
                "{ echo 'not ok 2 - greets by name'; exit 1; }\n");
    change_ = repo_.Commit("Greet by name");
  }
  GitRepo repo_;
  std::string change_;
};

TEST_F(ShellSuite, ReadsTapFromStdout) {
  MineOptions options = Options(repo_.path(), "sh", "sh tests/run.sh");
  options.results = ResultFormat::kTap;
  options.repeat = 1;
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->tasks.size(), 1u) << r->skipped.back().reason;
  EXPECT_THAT(r->tasks[0].fail_to_pass(), ElementsAre("greets", "greets by name"));
  EXPECT_EQ(r->tasks[0].results(), "tap");
  EXPECT_EQ(r->suite.results(), "tap");
}

TEST_F(ShellSuite, ReadsResultsFromTheLogAndCopiesTheRuleToEveryTask) {
  MineOptions options = Options(repo_.path(), "sh", "sh tests/run.sh");
  options.results = ResultFormat::kRegex;
  options.log_results.set_pattern(R"(^(?P<status>ok|not ok) \d+ - (?P<test>.+)$)");
  (*options.log_results.mutable_status())["ok"] = "passed";
  (*options.log_results.mutable_status())["not ok"] = "failed";
  options.repeat = 1;
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->tasks.size(), 1u) << r->skipped.back().reason;
  EXPECT_THAT(r->tasks[0].fail_to_pass(), ElementsAre("greets", "greets by name"));
  EXPECT_EQ(r->tasks[0].results(), "regex");
  EXPECT_EQ(r->tasks[0].log_results().pattern(), options.log_results.pattern());
  EXPECT_EQ(r->suite.results(), "regex");
  EXPECT_EQ(r->suite.log_results().status().at("not ok"), "failed");

  options.log_results.set_pattern("(?P<test>.+)");
  auto bad = Mine(options);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("named group 'status'"));
}

TEST_F(ShellSuite, FallsBackToTheExitCode) {
  MineOptions options = Options(repo_.path(), "sh", "sh tests/run.sh");
  options.results = ResultFormat::kExitCode;
  options.repeat = 1;
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->tasks.size(), 1u) << r->skipped.back().reason;
  EXPECT_THAT(r->tasks[0].fail_to_pass(), ElementsAre("<suite>"));
}

TEST_F(ShellSuite, AFailingSetupIsAnInfraFailure) {
  MineOptions options = Options(repo_.path(), "sh", "sh tests/run.sh");
  options.results = ResultFormat::kTap;
  options.repeat = 1;
  options.setup_cmd = "echo cannot install >&2; exit 3";
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->skipped.size(), 2u);
  EXPECT_EQ(
      r->skipped[1].reason,
      "test run failed at the merged commit: setup command failed (exit 3): cannot install\n");
  EXPECT_EQ(r->skipped[1].category, "infra");
}

// The suite configuration's sandbox policy governs validation: its wall-clock
// limit stops a test command that would otherwise pass, and the run counts as
// an infrastructure failure, not a test failure.
TEST_F(ShellSuite, TheConfigSandboxPolicyLimitsValidation) {
  auto dir = TempDir::Create("crucible-test-policy-");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(WriteFile(dir->path() + "/suite.yaml",
                        "test_cmd: sleep 5; sh tests/run.sh\nresults: tap\nrepeat: 1\n"
                        "sandbox:\n  timeout: 1s\n  pids: 64\n"));
  auto config = LoadSuiteConfig(dir->path() + "/suite.yaml");
  ASSERT_TRUE(config) << config.error().ToString();
  MineOptions options = Options(repo_.path(), "sh", "sh tests/run.sh");
  options.results = ResultFormat::kTap;
  options.repeat = 1;

  // Within the limits the change is a task, and scoring runs its tests under
  // the same policy.
  options.sandbox_policy = "pids: 64\n";
  auto ok = Mine(options);
  ASSERT_TRUE(ok) << ok.error().ToString();
  ASSERT_EQ(ok->tasks.size(), 1u) << ok->skipped.back().reason;
  EXPECT_EQ(ok->tasks[0].sandbox_policy(), "pids: 64\n");
  EXPECT_EQ(TestCommandFor(ok->tasks[0]).sandbox_policy, "pids: 64\n");

  options.test_cmd = *config->test_cmd;
  options.sandbox_policy = *config->sandbox_policy;
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->tasks.empty());
  ASSERT_EQ(r->skipped.size(), 2u);
  EXPECT_EQ(r->skipped[1].reason, "tests timed out at the merged commit");
  EXPECT_EQ(r->skipped[1].category, "infra");
  EXPECT_THAT(r->suite.sandbox_policy(), HasSubstr("timeout: 1s"));

  // A policy that does not parse stops mining before anything runs.
  options.sandbox_policy = "pids: lots\n";
  auto bad = Mine(options);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(bad.error().message(), HasSubstr("pids"));
}

TEST_F(RunTestsTest, RunsTheSetupCommandFirst) {
  auto run = RunTests(dir_.path(),
                      TestCommand{.command = "test -f ready && " + std::string(kPassingReport),
                                  .setup = "touch ready"});
  ASSERT_TRUE(run) << run.error().ToString();
  EXPECT_EQ(run->infra_error(), "");
  EXPECT_TRUE(AllPassed(*run, {"a::b"}));
}

TEST_F(RunTestsTest, TheReportDirectoryHasASize) {
  // /crucible/out is writable by the code under test: it must not reach the
  // host's disk without a bound (80 MiB as root). Its temporary directory
  // goes below one of ours, so that other tests' mounts are not mistaken
  // for it.
  auto tmp = TempDir::Create("crucible-test-tmpdir-");
  ASSERT_TRUE(tmp);
  ASSERT_EQ(::setenv("TMPDIR", tmp->path().c_str(), 1), 0);
  auto run = RunTests(
      dir_.path(),
      TestCommand{.command = "i=0; while [ $i -lt 128 ]; do head -c 1048576 /dev/zero > "
                             "/crucible/out/fill.$i 2>/dev/null || break; i=$((i+1)); done; "
                             "echo wrote $i; rm -f /crucible/out/fill.*; " +
                             std::string(kPassingReport)});
  ASSERT_TRUE(run) << run.error().ToString();
  auto wrote = run->output_tail().find("wrote ");
  ASSERT_NE(wrote, std::string::npos) << run->output_tail();
  EXPECT_LT(std::stoi(run->output_tail().substr(wrote + 6)), 100) << run->output_tail();
  EXPECT_TRUE(AllPassed(*run, {"a::b"})) << run->infra_error();
  ::unsetenv("TMPDIR");
  // Nothing stays mounted.
  auto mounts = ReadFile("/proc/self/mountinfo").value_or("");
  EXPECT_EQ(mounts.find(tmp->path()), std::string::npos) << mounts;
}

TEST_F(RunTestsTest, ExitCodeModeCannotBeFooledByANotFoundCommand) {
  auto run = RunTests(dir_.path(),
                      TestCommand{.command = "no-such-runner", .format = ResultFormat::kExitCode});
  ASSERT_TRUE(run);
  EXPECT_THAT(run->infra_error(), StartsWith("test command not found"));
  auto tap = RunTests(
      dir_.path(), TestCommand{.command = "echo 'ok 1 - a'; exit 1", .format = ResultFormat::kTap});
  ASSERT_TRUE(tap);
  EXPECT_EQ(tap->infra_error(), "test command exited 1 but its report shows no failure");
}

// Regression tests: a history whose newest commit adds a test for behaviour
// the first task's merged commit already has (t_other) and, before it, a
// feature with its own test (t_new) that the first task's merged commit
// fails. Tests are shell scripts printing TAP.
class RegressionHistory : public ::testing::Test {
 protected:
  static std::string Check(const std::string& name, const std::string& condition) {
    return fmt::format("{} && echo 'ok - {}' || echo 'not ok - {}'\n", condition, name, name);
  }
  void SetUp() override {
    SKIP_UNLESS_ROOT();
    repo_.Write("value.txt", "1\n");
    repo_.Write("other.txt", "ok\n");
    repo_.Write("tests/t_exists.sh", Check("exists", "[ -f value.txt ]"));
    repo_.Commit("initial");
    repo_.Write("value.txt", "2\n");
    repo_.Write("tests/t_value.sh", Check("value", "[ \"$(cat value.txt)\" = 2 ]"));
    a_ = repo_.Commit("Set the value to 2");
    repo_.Write("new.txt", "yes\n");
    repo_.Write("tests/t_new.sh", Check("new", "[ \"$(cat new.txt 2>/dev/null)\" = yes ]"));
    b_ = repo_.Commit("Add new.txt");
    repo_.Write("tests/t_other.sh", Check("other", "[ \"$(cat other.txt)\" = ok ]"));
    newest_ = repo_.Commit("Test other.txt");
  }
  MineOptions Shell() {
    MineOptions o = Options(repo_.path(), "reg", "for t in tests/t_*.sh; do sh \"$t\"; done");
    o.results = ResultFormat::kTap;
    o.jobs = 2;
    return o;
  }
  GitRepo repo_;
  std::string a_, b_, newest_;
};

TEST_F(RegressionHistory, LaterTestsThatPassAtTheMergedCommitAreRegressionTests) {
  size_t calls = 0;
  MineOptions options = Shell();
  options.regression_progress = [&](size_t done, size_t total, const std::string&) {
    EXPECT_EQ(done, ++calls);
    EXPECT_EQ(total, 2u);
  };
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->tasks.size(), 2u);
  const v1::GoldenTask& a = r->tasks[0];
  ASSERT_EQ(a.merged_commit(), a_);
  EXPECT_THAT(a.fail_to_pass(), ElementsAre("value"));
  EXPECT_THAT(a.pass_to_pass(), ElementsAre("exists"));
  // t_new fails at a's merged commit: not a regression test; t_value and
  // t_exists are its own FAIL_TO_PASS and PASS_TO_PASS.
  EXPECT_THAT(a.regression_tests(), ElementsAre("other"));
  EXPECT_EQ(a.regression_commit(), newest_);
  EXPECT_THAT(a.regression_patch(), HasSubstr("+++ b/tests/t_other.sh"));
  EXPECT_THAT(a.regression_patch(), HasSubstr("+++ b/tests/t_new.sh"));
  EXPECT_THAT(a.regression_patch(), ::testing::Not(HasSubstr("new.txt\n")));
  const v1::GoldenTask& b = r->tasks[1];
  EXPECT_THAT(b.pass_to_pass(), ElementsAre("exists", "value"));
  EXPECT_THAT(b.regression_tests(), ElementsAre("other"));
  EXPECT_EQ(r->suite.regression_tests(), "newest");
  EXPECT_EQ(r->regression.tasks, 2u);
  EXPECT_EQ(r->regression.tests, 2u);
  EXPECT_EQ(r->regression.none, 0u);
  EXPECT_EQ(r->regression.runs, 4u);  // a candidate passed the first run: two each
  EXPECT_EQ(calls, 2u);
}

// The run that would confirm a candidate is not made when the first run
// passes none: t_new fails at a's merged commit and the other tests are its
// own; b, the newest task, has no later test file and no run at all.
TEST_F(RegressionHistory, OneRunWhenTheFirstPassesNoCandidate) {
  MineOptions options = Shell();
  options.ref = b_;
  options.repeat = 3;
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->tasks.size(), 2u);
  EXPECT_EQ(r->regression.none, 2u);
  EXPECT_EQ(r->regression.runs, 1u);
  EXPECT_EQ(r->tasks[0].regression_commit(), b_);  // computed: none, not tried again
  EXPECT_THAT(r->regression.reasons[r->tasks[0].id()],
              HasSubstr("other than FAIL_TO_PASS and PASS_TO_PASS passes all 3 runs"));
}

// A candidate that passed the first run gets a second; the runs stop as soon
// as no candidate has passed them all (t_once passes the first run only).
TEST_F(RegressionHistory, RunsStopWhenTheLastCandidateFails) {
  MineOptions off = Shell();
  off.ref = b_;
  off.regression_tests = false;
  auto mined = Mine(off);
  ASSERT_TRUE(mined) << mined.error().ToString();
  ASSERT_EQ(mined->tasks.size(), 2u);
  repo_.Remove("tests/t_other.sh");
  repo_.Write("tests/t_once.sh", Check("once", "[ ! -f .ran ] && touch .ran"));
  const std::string newest = repo_.Commit("Test that runs once");

  MineOptions options = Shell();
  options.repeat = 3;
  auto computed = ComputeRegressionTests(options, newest, mined->tasks);
  ASSERT_TRUE(computed) << computed.error().ToString();
  EXPECT_EQ(computed->none, 2u);
  EXPECT_EQ(computed->runs, 4u);  // two each: the second run drops t_once
  for (const auto& t : mined->tasks) {
    EXPECT_TRUE(t.regression_tests().empty()) << t.id();
    EXPECT_EQ(t.regression_commit(), newest) << t.id();
    EXPECT_THAT(computed->reasons[t.id()], HasSubstr("stopped after run 2")) << t.id();
  }
}

TEST_F(RegressionHistory, NoneWithoutALaterTestThatPassesOrInNoneMode) {
  MineOptions options = Shell();
  options.ref = b_;  // the newest commit is b's merged commit
  auto r = Mine(options);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->tasks.size(), 2u);
  for (const auto& t : r->tasks) {
    EXPECT_TRUE(t.regression_tests().empty()) << t.id();
    EXPECT_TRUE(t.regression_patch().empty()) << t.id();
    EXPECT_EQ(t.regression_commit(), b_) << t.id();  // computed: none
  }
  EXPECT_EQ(r->regression.none, 2u);
  EXPECT_THAT(r->regression.reasons[r->tasks[0].id()],
              HasSubstr("other than FAIL_TO_PASS and PASS_TO_PASS passes all 2 runs"));
  EXPECT_THAT(r->regression.reasons[r->tasks[1].id()],
              StartsWith("no test file changed between the merged commit and"));

  MineOptions off = Shell();
  off.regression_tests = false;
  auto none = Mine(off);
  ASSERT_TRUE(none) << none.error().ToString();
  ASSERT_EQ(none->tasks.size(), 2u);
  for (const auto& t : none->tasks) {
    EXPECT_TRUE(t.regression_tests().empty());
    EXPECT_TRUE(t.regression_commit().empty());
  }
  EXPECT_EQ(none->suite.regression_tests(), "none");
  EXPECT_EQ(none->regression.tasks + none->regression.none, 0u);

  // Computed later (as suite refresh does) for the tasks that lack them.
  auto computed = ComputeRegressionTests(Shell(), newest_, none->tasks);
  ASSERT_TRUE(computed) << computed.error().ToString();
  EXPECT_EQ(computed->tasks, 2u);
  EXPECT_THAT(none->tasks[0].regression_tests(), ElementsAre("other"));
}

}  // namespace
}  // namespace crucible::golden
