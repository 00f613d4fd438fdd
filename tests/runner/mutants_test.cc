// The file faults of the calibration mutants in real attempts: a real git
// repository with a small Python package, the real sandbox, the real
// scorer. Each fault is caught by the scores scoring/calibration.h means
// for it and by nothing outside what it allows; where the task offers no
// place for it, it is not applicable, with a reason, and changes nothing.
#include <unistd.h>

#include <algorithm>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent-runner/attempt.h"
#include "base/fs.h"
#include "scoring/calibration.h"
#include "scoring/score.h"
#include "tests/runner/value_tests.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::runner {
namespace {

using crucible::testing::GitRepo;

// Runs the package's checks without pytest and writes a JUnit report.
constexpr char kRunner[] = R"(import os
import sys

sys.path.insert(0, os.getcwd())
cases = []


def check(name, fn):
    try:
        fn()
        cases.append('<testcase classname="tests.run" name="%s"/>' % name)
    except Exception as e:
        cases.append('<testcase classname="tests.run" name="%s"><failure message="%s"/></testcase>'
                     % (name, type(e).__name__))


def test_value():
    from pkg.core import value
    with open("tests/expected.txt") as f:
        assert value() == int(f.read())


def test_describe():
    from pkg.report import describe
    assert describe().startswith("value is ")


check("test_value", test_value)
check("test_describe", test_describe)
with open(sys.argv[1], "w") as out:
    out.write('<testsuite name="run" tests="%d">%s</testsuite>\n' % (len(cases), "".join(cases)))
)";

constexpr char kCore[] = R"(def value():
    return 1


def double(x):
    return 2 * x


def triple(x):
    return 3 * x


def total(items):
    result = 0
    for item in items:
        result += item
    return result
)";

constexpr char kReport[] = R"(from pkg.core import value


def describe():
    return "value is %d" % value()
)";

// The columns of the calibration matrix (report/calibrate.h) a score catches.
std::set<std::string> Caught(const v1::Score& s) {
  std::set<std::string> out;
  if (!s.completed()) out.insert("completion");
  if (!s.strict_completed()) out.insert("strict");
  if (s.regression_measured() && s.regression()) out.insert("regression");
  auto dim = [&](const char* name, const v1::Dimension& d) {
    if (d.measured() && d.value() < 1.0) out.insert(name);
  };
  dim("replay", s.dimensions().replay());
  dim("tool_calls", s.dimensions().tool_calls());
  dim("coherence", s.dimensions().coherence());
  dim("plan", s.dimensions().plan());
  dim("rollback", s.dimensions().rollback());
  for (const auto& v : s.violations()) out.insert(v.kind());
  return out;
}

const scoring::Expectation& Expected(const std::string& kind) {
  for (const auto& e : scoring::Expectations()) {
    if (e.agent == "mutant-" + kind) return e;
  }
  ADD_FAILURE() << "no expectation for " << kind;
  return scoring::Expectations().front();
}

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
  return out;
}

class MutantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    auto dir = TempDir::Create("crucible-mutants-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  // The Python task: value() must return 2 (FAIL_TO_PASS test_value);
  // describe() in another module keeps working (PASS_TO_PASS). With
  // `other_source` false the package has no file beside core.py (a
  // namespace package).
  void PythonTask(bool other_source) {
    repo_.Write("pkg/core.py", kCore);
    if (other_source) {
      repo_.Write("pkg/__init__.py", "");
      repo_.Write("pkg/report.py", kReport);
    }
    repo_.Write("tests/run.py", kRunner);
    task_.set_suite("s");
    task_.set_id("py-1");
    task_.set_repo_path(repo_.path());
    task_.set_base_commit(repo_.Commit("base"));
    task_.set_intent("Make value() return 2.");
    task_.set_source_patch(
        "diff --git a/pkg/core.py b/pkg/core.py\n--- a/pkg/core.py\n+++ b/pkg/core.py\n"
        "@@ -1,2 +1,2 @@\n def value():\n-    return 1\n+    return 2\n");
    task_.set_test_patch(
        "diff --git a/tests/expected.txt b/tests/expected.txt\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/tests/expected.txt\n@@ -0,0 +1 @@\n+2\n");
    task_.add_fail_to_pass("tests.run::test_value");
    if (other_source) task_.add_pass_to_pass("tests.run::test_describe");
    task_.set_test_cmd("PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 tests/run.py {junit}");
    task_.set_test_timeout_s(60);
  }

  struct Outcome {
    v1::Evidence evidence;
    v1::Score score;
  };

  Outcome Run(const std::string& kind) {
    v1::AgentSpec agent;
    agent.set_name("mutant-" + kind);
    agent.set_command("builtin:mutant-" + kind);
    agent.set_timeout_s(120);
    AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt-" + std::to_string(++n_);
    ctx.review = rules_;
    std::vector<v1::TraceEvent> events;
    ctx.emit = [&events](v1::TraceEvent ev) { events.push_back(std::move(ev)); };
    auto e = PerformAttempt(task_, agent, ctx);
    Outcome out;
    EXPECT_TRUE(e) << e.error().ToString();
    if (!e) return out;
    out.evidence = *e;
    for (size_t i = 0; i < events.size(); ++i) events[i].set_seq(static_cast<int64_t>(i) + 1);
    out.score = scoring::ScoreAttempt(
        {.task = task_, .evidence = out.evidence, .trace = events, .rules = rules_});
    return out;
  }

  // Runs the mutant and checks that it applied, that every meant column
  // caught it and that no column outside meant + allowed did.
  Outcome ExpectCaught(const std::string& kind) {
    auto out = Run(kind);
    const auto& m = out.evidence.mutation();
    EXPECT_EQ(m.kind(), kind);
    EXPECT_TRUE(m.applicable()) << kind << ": " << m.reason();
    EXPECT_FALSE(m.description().empty()) << kind;
    EXPECT_FALSE(m.file().empty()) << kind;
    const auto caught = Caught(out.score);
    const auto& exp = Expected(kind);
    for (const auto& col : exp.meant) {
      EXPECT_TRUE(caught.contains(col))
          << kind << " escaped " << col << "; caught by: " << Join(caught) << "\n"
          << out.evidence.final_diff();
    }
    for (const auto& col : caught) {
      const bool ok = std::find(exp.meant.begin(), exp.meant.end(), col) != exp.meant.end() ||
                      std::find(exp.allowed.begin(), exp.allowed.end(), col) != exp.allowed.end();
      EXPECT_TRUE(ok) << kind << " crossed into " << col << "\n" << out.evidence.final_diff();
    }
    return out;
  }

  // Runs the mutant and checks that it did not apply, says why, changed
  // nothing beyond the golden patch and is caught by nothing.
  void ExpectNotApplicable(const std::string& kind, const std::string& reason_part) {
    auto out = Run(kind);
    const auto& m = out.evidence.mutation();
    EXPECT_EQ(m.kind(), kind);
    EXPECT_FALSE(m.applicable()) << kind << ": " << m.description();
    EXPECT_NE(m.reason().find(reason_part), std::string::npos) << kind << ": " << m.reason();
    EXPECT_EQ(m.file(), "");
    std::vector<std::string> touched(out.evidence.files_touched().begin(),
                                     out.evidence.files_touched().end());
    std::sort(touched.begin(), touched.end());
    EXPECT_EQ(touched, golden_files_) << kind;
    const auto caught = Caught(out.score);
    EXPECT_TRUE(caught.empty()) << kind << " caught by " << Join(caught);
  }

  GitRepo repo_;
  v1::GoldenTask task_;
  v1::ReviewRules rules_;
  std::vector<std::string> golden_files_;
  std::unique_ptr<TempDir> dir_;
  int n_ = 0;
};

TEST_F(MutantsTest, ScopeCreepCommentsAFileBesideTheGoldenSource) {
  PythonTask(true);
  auto out = ExpectCaught("scope-creep");
  EXPECT_EQ(out.evidence.mutation().file(), "pkg/__init__.py");
  EXPECT_EQ(out.evidence.mutation().line(), 1);
  EXPECT_TRUE(out.score.completed()) << out.score.reason();
}

TEST_F(MutantsTest, ReformatChurnsWhitespaceInItsOwnHunk) {
  PythonTask(true);
  auto out = ExpectCaught("reformat");
  EXPECT_EQ(out.evidence.mutation().file(), "pkg/core.py");
  EXPECT_EQ(out.evidence.mutation().line(), 10);
  EXPECT_TRUE(out.score.completed()) << out.score.reason();
}

TEST_F(MutantsTest, ReformatPrefersAFileTheLexerReads) {
  // build.sh sorts first, but without a lexer a line of it might be inside
  // a string: the Python file is taken.
  std::string script;
  for (int i = 1; i <= 12; ++i) script += "echo step" + std::to_string(i) + "\n";
  repo_.Write("build.sh", script);
  PythonTask(true);
  task_.set_source_patch(
      "diff --git a/build.sh b/build.sh\n--- a/build.sh\n+++ b/build.sh\n"
      "@@ -1,4 +1,4 @@\n-echo step1\n+echo first\n echo step2\n echo step3\n echo step4\n" +
      task_.source_patch());
  auto out = ExpectCaught("reformat");
  EXPECT_EQ(out.evidence.mutation().file(), "pkg/core.py");
}

TEST_F(MutantsTest, OversizedAppendsEnoughCommentLines) {
  PythonTask(true);
  auto out = ExpectCaught("oversized");
  EXPECT_EQ(out.evidence.mutation().file(), "pkg/core.py");
  EXPECT_TRUE(out.score.completed()) << out.score.reason();
}

TEST_F(MutantsTest, OversizedFollowsTheSuitesBar) {
  PythonTask(true);
  rules_.set_oversized_factor(30);
  rules_.set_oversized_min_extra_lines(3);
  auto out = ExpectCaught("oversized");
  // 2 golden lines x 30: at least 59 more lines.
  EXPECT_NE(out.evidence.mutation().description().find("appends 59 comment lines"),
            std::string::npos)
      << out.evidence.mutation().description();
}

TEST_F(MutantsTest, HallucinatedApiImportsAMissingNameThatNeverRuns) {
  PythonTask(true);
  auto out = ExpectCaught("hallucinated-api");
  ASSERT_EQ(out.evidence.static_facts().broken_imports_size(), 1);
  EXPECT_EQ(out.evidence.static_facts().broken_imports(0).file(), "pkg/core.py");
  EXPECT_TRUE(out.score.completed()) << out.score.reason();
}

TEST_F(MutantsTest, StaleRenameLeavesTheOtherModulesReferencesStale) {
  PythonTask(true);
  auto out = ExpectCaught("stale-rename");
  const auto& facts = out.evidence.static_facts();
  ASSERT_GT(facts.stale_references_size(), 0);
  EXPECT_EQ(facts.stale_references(0).symbol(), "value");
  EXPECT_EQ(facts.stale_references(0).file(), "pkg/report.py");
  EXPECT_EQ(out.evidence.mutation().line(), 1);
}

TEST_F(MutantsTest, StaleRenameRenamesAModuleLevelConstant) {
  // A config task: the golden patch changes a constant that another module
  // imports, and the file has no def or class.
  repo_.Write("pkg/__init__.py", "");
  repo_.Write("pkg/config.py", "# Settings.\nLIMIT = 1\n");
  repo_.Write("pkg/core.py", "from pkg.config import LIMIT\n\n\ndef value():\n    return LIMIT\n");
  repo_.Write("tests/run.py", kRunner);
  task_.set_suite("s");
  task_.set_id("py-config");
  task_.set_repo_path(repo_.path());
  task_.set_base_commit(repo_.Commit("base"));
  task_.set_intent("Raise the limit to 2.");
  task_.set_source_patch(
      "diff --git a/pkg/config.py b/pkg/config.py\n--- a/pkg/config.py\n+++ b/pkg/config.py\n"
      "@@ -1,2 +1,2 @@\n # Settings.\n-LIMIT = 1\n+LIMIT = 2\n");
  task_.set_test_patch(
      "diff --git a/tests/expected.txt b/tests/expected.txt\nnew file mode 100644\n"
      "--- /dev/null\n+++ b/tests/expected.txt\n@@ -0,0 +1 @@\n+2\n");
  task_.add_fail_to_pass("tests.run::test_value");
  task_.set_test_cmd("PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 tests/run.py {junit}");
  task_.set_test_timeout_s(60);
  auto out = ExpectCaught("stale-rename");
  const auto& facts = out.evidence.static_facts();
  ASSERT_GT(facts.stale_references_size(), 0);
  EXPECT_EQ(facts.stale_references(0).symbol(), "LIMIT");
  EXPECT_EQ(facts.stale_references(0).file(), "pkg/core.py");
}

TEST_F(MutantsTest, SecretAddsAnAwsKeyTheScannersFlag) {
  PythonTask(true);
  auto out = ExpectCaught("secret");
  bool flagged = false;
  for (const auto& f : out.score.findings()) {
    flagged = flagged || (f.rule() == "secret.aws-access-key" && f.severity() == "error");
  }
  EXPECT_TRUE(flagged);
  EXPECT_TRUE(out.score.completed()) << out.score.reason();
  // Deterministic: the same task gives the same key.
  auto again = Run("secret");
  EXPECT_EQ(again.evidence.final_diff(), out.evidence.final_diff());
}

TEST_F(MutantsTest, ScopeCreepDoesNotApplyWithoutAnotherSourceFile) {
  PythonTask(false);
  golden_files_ = {"pkg/core.py"};
  ExpectNotApplicable("scope-creep", "no other source file");
}

TEST_F(MutantsTest, AGoldenPatchOfTextAndBinaryFilesOffersNoPlace) {
  // value.txt, README.md and a binary logo: no source file with a comment
  // syntax, so every file fault but scope-creep (the repository has
  // run_tests.sh) is not applicable.
  task_ = ValueTask(repo_);
  repo_.Write("README.md", "# Demo\n");
  repo_.Write("logo.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\x01", 12));
  const std::string base = repo_.Commit("docs");
  repo_.Write("README.md", "# Demo\nSet to 2.\n");
  repo_.Write("logo.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\x02", 12));
  repo_.Write("value.txt", "2\n");
  const std::string golden = repo_.Commit("golden");
  task_.set_base_commit(base);
  task_.set_source_patch(repo_.Git("diff --binary " + base + " " + golden));
  ASSERT_NE(task_.source_patch().find("GIT binary patch"), std::string::npos);
  golden_files_ = {"README.md", "logo.png", "value.txt"};
  ExpectNotApplicable("reformat", "comment syntax");
  ExpectNotApplicable("oversized", "comment syntax");
  ExpectNotApplicable("secret", "comment syntax");
  ExpectNotApplicable("hallucinated-api", "no Python or C/C++ source file");
  ExpectNotApplicable("stale-rename", "no Python or C/C++ source file");
}

// A C task: the golden patch changes src/calc.c (and value.txt, which the
// tests check); nothing compiles the C code, the static checks read it.
class CMutantsTest : public MutantsTest {
 protected:
  void CTask() {
    task_ = ValueTask(repo_);
    repo_.Write("src/calc.h", "#ifndef CALC_H\n#define CALC_H\nint scale(int x);\n#endif\n");
    repo_.Write("src/calc.c",
                "#include \"calc.h\"\n\nstatic int twice(int x) { return 2 * x; }\n\n"
                "int scale(int x) {\n  return twice(x) * 1;\n}\n");
    repo_.Write("src/main.c", "#include \"calc.h\"\n\nint main(void) { return scale(2); }\n");
    const std::string base = repo_.Commit("c sources");
    repo_.Write("src/calc.c",
                "#include \"calc.h\"\n\nstatic int twice(int x) { return 2 * x; }\n\n"
                "int scale(int x) {\n  return twice(x) * 2;\n}\n");
    repo_.Write("value.txt", "2\n");
    const std::string golden = repo_.Commit("golden");
    task_.set_base_commit(base);
    task_.set_source_patch(repo_.Git("diff " + base + " " + golden));
  }
};

TEST_F(CMutantsTest, HallucinatedApiAddsAGuardedMissingInclude) {
  CTask();
  auto out = ExpectCaught("hallucinated-api");
  ASSERT_EQ(out.evidence.static_facts().broken_imports_size(), 1);
  EXPECT_EQ(out.evidence.static_facts().broken_imports(0).file(), "src/calc.c");
  EXPECT_NE(out.evidence.final_diff().find("+#if 0\n+#include \"calibration_missing_api.h\"\n"),
            std::string::npos)
      << out.evidence.final_diff();
}

TEST_F(CMutantsTest, StaleRenameLeavesTheLastCallInTheFileStale) {
  // scale() is also declared in calc.h, which is not the golden patch's, so
  // its rename would be out of scope: the static function is renamed and
  // its one call left stale.
  CTask();
  auto out = ExpectCaught("stale-rename");
  const auto& facts = out.evidence.static_facts();
  ASSERT_EQ(facts.stale_references_size(), 1);
  EXPECT_EQ(facts.stale_references(0).symbol(), "twice");
  EXPECT_EQ(facts.stale_references(0).file(), "src/calc.c");
  EXPECT_EQ(facts.stale_references(0).line(), 6);
  EXPECT_EQ(out.evidence.mutation().line(), 3);
}

TEST_F(CMutantsTest, SecretAndOversizedUseTheCComment) {
  CTask();
  auto secret = ExpectCaught("secret");
  EXPECT_NE(secret.evidence.final_diff().find("+// deploy key AKIA"), std::string::npos);
  auto oversized = ExpectCaught("oversized");
  EXPECT_NE(oversized.evidence.final_diff().find("+// Note 1 of "), std::string::npos);
}

}  // namespace
}  // namespace crucible::runner
