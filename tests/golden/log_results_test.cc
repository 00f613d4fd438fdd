// Results read from logs: the presets on recorded output, the suite
// configuration's `results: regex`, and RunTests reading a real sandboxed
// command's output.
#include "golden/log_results.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <string>

#include "base/fs.h"
#include "golden/suite_config.h"
#include "golden/test_run.h"

namespace crucible::golden {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;
using v1::TestOutcome;

std::string Fixture(const std::string& name) {
  auto text = ReadFile(std::string(CRUCIBLE_SOURCE_DIR) + "/tests/golden/fixtures/logs/" + name);
  EXPECT_TRUE(text) << text.error().ToString();
  return text ? *text : std::string();
}

// Outcomes by id, as "STATUS" names.
std::map<std::string, std::string> ByStatus(const std::vector<TestOutcome>& tests) {
  std::map<std::string, std::string> out;
  for (const auto& t : tests) out[t.id()] = TestOutcome::Status_Name(t.status());
  return out;
}

std::map<std::string, std::string> ParsePreset(const std::string& preset, const std::string& file,
                                               const std::vector<std::string>& expected = {}) {
  auto spec = LogPreset(preset);
  EXPECT_TRUE(spec) << spec.error().ToString();
  if (!spec) return {};
  EXPECT_EQ(spec->preset(), preset);
  auto tests = ParseLog(Fixture(file), *spec, expected);
  EXPECT_TRUE(tests) << tests.error().ToString();
  return tests ? ByStatus(*tests) : std::map<std::string, std::string>{};
}

TEST(LogPreset, KnowsItsPresetsAndNamesThemWhenAskedForAnother) {
  EXPECT_THAT(LogPresetNames(), ElementsAre("cargo", "django", "go", "jest", "pytest", "sympy"));
  for (const auto& name : LogPresetNames()) {
    auto spec = LogPreset(name);
    ASSERT_TRUE(spec) << name;
    EXPECT_TRUE(ValidateLogResults(*spec)) << name;
  }
  auto unknown = LogPreset("nose");
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message(), HasSubstr("'nose'"));
  EXPECT_THAT(unknown.error().message(), HasSubstr("cargo, django, go, jest, pytest, sympy"));
}

TEST(ParseLog, PytestShortSummary) {
  // SWE-bench's parse_log_pytest: "STATUS id" lines of -rA; the id is the
  // first word after the status; "SKIPPED [1] file:line" names no test; the
  // last line naming a test wins; XFAIL counts passed, XPASS is not read
  // there (absent, failed) and failed here.
  auto got = ParsePreset("pytest", "pytest.log", {"tests/test_util.py::test_missing"});
  EXPECT_THAT(got, UnorderedElementsAre(Pair("tests/test_util.py::test_slug", "PASSED"),
                                        Pair("tests/test_util.py::test_parse[a-1]", "FAILED"),
                                        Pair("tests/test_util.py::test_parse[b", "PASSED"),
                                        Pair("tests/test_cli.py::test_cli_help", "PASSED"),
                                        Pair("tests/test_cli.py::test_cli_version", "PASSED"),
                                        Pair("tests/test_util.py::test_known_bug", "PASSED"),
                                        Pair("tests/test_util.py::test_flaky_fix", "FAILED"),
                                        Pair("tests/test_cli.py::test_cli_network", "ERROR"),
                                        Pair("tests/test_util.py::test_missing", "FAILED")));
}

TEST(ParseLog, DjangoVerboseRunner) {
  // SWE-bench's parse_log_django: the id is the text before " ... " (the
  // docstring's first line when the test has one).
  auto got = ParsePreset("django", "django.log",
                         {"test_add_view (admin_views.tests.AdminViewBasicTest)",
                          "test_gone (admin_views.tests.AdminViewBasicTest)"});
  EXPECT_THAT(got,
              UnorderedElementsAre(
                  Pair("test_add_view (admin_views.tests.AdminViewBasicTest)", "PASSED"),
                  Pair("test_change_view (admin_views.tests.AdminViewBasicTest)", "FAILED"),
                  Pair("test_delete_view (admin_views.tests.AdminViewBasicTest)", "ERROR"),
                  Pair("test_history_view (admin_views.tests.AdminViewBasicTest)", "SKIPPED"),
                  Pair("Regression test for #12345: the changelist keeps its filters.", "PASSED"),
                  Pair("test_unicode (admin_views.tests.AdminViewStringTest)", "PASSED"),
                  Pair("test_gone (admin_views.tests.AdminViewBasicTest)", "FAILED")));
}

TEST(ParseLog, GoTestVerboseWithSubtests) {
  auto got = ParsePreset("go", "go.log", {"TestParse/unicode", "TestGone"});
  EXPECT_THAT(got, UnorderedElementsAre(
                       Pair("TestParse", "FAILED"), Pair("TestParse/empty_input", "PASSED"),
                       Pair("TestParse/unicode", "FAILED"), Pair("TestFormat", "PASSED"),
                       Pair("TestNetwork", "SKIPPED"), Pair("TestServe", "PASSED"),
                       Pair("TestGone", "FAILED")));
}

TEST(ParseLog, CargoTest) {
  auto got = ParsePreset("cargo", "cargo.log", {"parse::tests::gone"});
  EXPECT_THAT(got,
              UnorderedElementsAre(
                  Pair("parse::tests::empty", "PASSED"), Pair("parse::tests::unicode", "FAILED"),
                  Pair("format::tests::width", "PASSED"), Pair("net::tests::fetch", "FAILED"),
                  Pair("net::tests::slow_fetch", "FAILED"), Pair("parse::tests::gone", "FAILED")));
}

TEST(ParseLog, JestVerbose) {
  // The id is the test's title as printed, without its describe blocks (as
  // SWE-bench's parse_log_jest; a skipped test's is "skipped TITLE" there too).
  auto got = ParsePreset("jest", "jest.log", {"divides two numbers"});
  EXPECT_THAT(got, UnorderedElementsAre(
                       Pair("adds two numbers", "PASSED"), Pair("subtracts two numbers", "FAILED"),
                       Pair("skipped multiplies two numbers", "SKIPPED"),
                       Pair("joins words", "PASSED"), Pair("divides two numbers", "FAILED")));
}

TEST(ParseLog, VitestVerboseWithTheJestPreset) {
  auto got = ParsePreset("jest", "vitest.log");
  EXPECT_THAT(
      got, UnorderedElementsAre(Pair("src/math.test.ts > math > adds two numbers", "PASSED"),
                                Pair("src/math.test.ts > math > subtracts two numbers", "FAILED"),
                                Pair("src/math.test.ts > math > multiplies two numbers", "SKIPPED"),
                                Pair("src/strings.test.ts > strings > joins words", "PASSED")));
}

TEST(ParseLog, SympyBinTest) {
  auto got = ParsePreset("sympy", "sympy.log", {"test_gone"});
  EXPECT_THAT(
      got, UnorderedElementsAre(Pair("test_structure", "PASSED"), Pair("test_equality", "FAILED"),
                                Pair("test_atoms", "ERROR"), Pair("test_free_symbols", "FAILED"),
                                Pair("test_subs_slow", "FAILED"),
                                Pair("test_literal_evalf", "PASSED"), Pair("test_gone", "FAILED")));
}

// A word mapped to "absent" reads as if the line did not name the test:
// SWE-bench's cargo parser does not record `ignored`, nor its sympy parser
// `s`, so such a test fails both lists of the harness's rule (a skipped one
// would keep a PASS_TO_PASS test).
TEST(ParseLog, AWordMappedToAbsentLeavesTheTestAbsent) {
  auto spec = LogPreset("cargo");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->status().at("ignored"), "absent");
  EXPECT_EQ(LogPreset("sympy")->status().at("s"), "absent");
  spec->set_absent("error");
  auto tests =
      ParseLog("test a::b ... ignored\ntest a::c ... ok\ntest a::c ... ignored\n", *spec, {"a::b"});
  ASSERT_TRUE(tests) << tests.error().ToString();
  ASSERT_EQ(tests->size(), 2u);
  EXPECT_EQ((*tests)[0].id(), "a::b");
  EXPECT_EQ((*tests)[0].status(), TestOutcome::ERROR);  // the spec's absent status
  EXPECT_EQ((*tests)[0].message(), "read as absent (status 'ignored'): test a::b ... ignored");
  EXPECT_EQ((*tests)[1].id(), "a::c");  // its last line wins
  EXPECT_EQ((*tests)[1].status(), TestOutcome::ERROR);
}

TEST(ParseLog, AbsentTestsTakeTheAbsentStatusAndSaySo) {
  auto spec = LogPreset("pytest");
  ASSERT_TRUE(spec);
  auto tests = ParseLog(Fixture("nomatch.log"), *spec, {"tests/a.py::t1", "tests/a.py::t2"});
  ASSERT_TRUE(tests) << tests.error().ToString();
  ASSERT_EQ(tests->size(), 2u);
  EXPECT_EQ((*tests)[0].id(), "tests/a.py::t1");
  EXPECT_EQ((*tests)[0].status(), TestOutcome::FAILED);
  EXPECT_EQ((*tests)[0].message(), "absent from the test log");
  spec->set_absent("error");
  tests = ParseLog(Fixture("nomatch.log"), *spec, {"tests/a.py::t1"});
  ASSERT_TRUE(tests);
  EXPECT_EQ((*tests)[0].status(), TestOutcome::ERROR);
  // No line matches and nothing is expected: no outcome at all.
  tests = ParseLog(Fixture("nomatch.log"), *spec, {});
  ASSERT_TRUE(tests);
  EXPECT_THAT(*tests, IsEmpty());
}

v1::LogResults Custom() {
  v1::LogResults spec;
  spec.set_pattern(R"(^(?P<status>PASS|FAIL|SKIP)\s+(?P<test>\S+))");
  (*spec.mutable_status())["PASS"] = "passed";
  (*spec.mutable_status())["FAIL"] = "failed";
  return spec;
}

TEST(ParseLog, AStatusWordOutsideTheMapIsCorruptionNamingWordAndLine) {
  auto tests = ParseLog("noise\nPASS a\r\nSKIP b\n", Custom(), {});
  ASSERT_FALSE(tests);
  EXPECT_EQ(tests.error().code(), Code::kCorruption);
  EXPECT_THAT(tests.error().message(), HasSubstr("line 3"));
  EXPECT_THAT(tests.error().message(), HasSubstr("'SKIP'"));
}

TEST(ParseLog, ReadsColouredLinesAndLastLinesWithoutNewline) {
  auto tests = ParseLog("\x1b[32mPASS\x1b[0m a\r\nFAIL b", Custom(), {});
  ASSERT_TRUE(tests) << tests.error().ToString();
  EXPECT_THAT(ByStatus(*tests), UnorderedElementsAre(Pair("a", "PASSED"), Pair("b", "FAILED")));
}

TEST(ValidateLogResults, NamesTheKeyThatIsWrong) {
  auto check = [](const v1::LogResults& spec) {
    auto st = ValidateLogResults(spec);
    EXPECT_FALSE(st);
    return st ? std::string() : st.error().message();
  };
  EXPECT_TRUE(ValidateLogResults(Custom()));
  v1::LogResults bad = Custom();
  bad.set_pattern("(?P<test>\\S+");
  EXPECT_THAT(check(bad), StartsWith("pattern: "));
  EXPECT_THAT(check(bad), HasSubstr("missing )"));
  bad.set_pattern("(?P<name>\\S+) (?P<status>\\S+)");
  EXPECT_THAT(check(bad), HasSubstr("named group 'test'"));
  bad.set_pattern("(?P<test>\\S+) (\\S+)");
  EXPECT_THAT(check(bad), HasSubstr("named group 'status'"));
  bad = Custom();
  (*bad.mutable_status())["SKIP"] = "ignored";
  EXPECT_THAT(check(bad), HasSubstr("status: 'SKIP' maps to 'ignored'"));
  bad = Custom();
  bad.clear_status();
  EXPECT_THAT(check(bad), StartsWith("status: "));
  bad = Custom();
  bad.set_absent("passed");
  EXPECT_THAT(check(bad), StartsWith("absent: "));
  bad = Custom();
  bad.clear_pattern();
  EXPECT_THAT(check(bad), StartsWith("pattern: "));
}

TEST(ResultsByName, FormatsAndPresets) {
  auto junit = ResultsByName("junit");
  ASSERT_TRUE(junit);
  EXPECT_EQ(junit->format, ResultFormat::kJunit);
  auto go = ResultsByName("go");
  ASSERT_TRUE(go);
  EXPECT_EQ(go->format, ResultFormat::kRegex);
  EXPECT_EQ(go->log.preset(), "go");
  auto regex = ResultsByName("regex");
  ASSERT_FALSE(regex);
  EXPECT_THAT(regex.error().message(), HasSubstr("pattern"));
  auto unknown = ResultsByName("nose");
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message(),
              HasSubstr("junit, tap, exit-code, cargo, django, go, jest, pytest, sympy"));
  EXPECT_TRUE(ParseResultFormat("regex"));
}

// ------------------------------------------------------ suite configuration --

TEST(SuiteConfigResults, ReadsRegexWithItsLogMapping) {
  auto c = ParseSuiteConfig(R"(
test_cmd: ./run-tests
results: regex
log:
  pattern: '^(?P<test>\S+): (?P<status>\w+)$'
  status: {good: passed, bad: failed, meh: skipped, broken: error}
  absent: error
)",
                            "s.yaml");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->results, "regex");
  ASSERT_TRUE(c->log_results);
  EXPECT_EQ(c->log_results->pattern(), R"(^(?P<test>\S+): (?P<status>\w+)$)");
  EXPECT_EQ(c->log_results->status().at("meh"), "skipped");
  EXPECT_EQ(c->log_results->absent(), "error");
  EXPECT_EQ(c->log_results->preset(), "");
}

TEST(SuiteConfigResults, APresetNameSetsItsLogResults) {
  auto c = ParseSuiteConfig("test_cmd: go test -v ./...\nresults: go\n", "s.yaml");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->results, "regex");
  ASSERT_TRUE(c->log_results);
  EXPECT_EQ(c->log_results->preset(), "go");
  EXPECT_EQ(c->log_results->pattern(), LogPreset("go")->pattern());
}

TEST(SuiteConfigResults, ErrorsNameTheKey) {
  auto error = [](const std::string& yaml) {
    auto c = ParseSuiteConfig(yaml, "s.yaml");
    EXPECT_FALSE(c) << yaml;
    return c ? std::string() : c.error().message();
  };
  EXPECT_THAT(error("test_cmd: t\nresults: nose\n"),
              HasSubstr("junit, tap, exit-code, regex or a log preset (cargo, django, go, jest, "
                        "pytest, sympy), not 'nose'"));
  EXPECT_THAT(error("test_cmd: t\nresults: regex\n"), HasSubstr("key 'log'"));
  EXPECT_THAT(
      error("test_cmd: t\nresults: regex\nlog:\n  pattern: '(?P<test>x'\n"
            "  status: {ok: passed}\n"),
      AllOf(StartsWith("s.yaml:4:"), HasSubstr("key 'log.pattern'"), HasSubstr("missing )")));
  EXPECT_THAT(error("test_cmd: t\nresults: regex\nlog:\n  pattern: '(?P<test>x) (?P<st>y)'\n"
                    "  status: {ok: passed}\n"),
              AllOf(HasSubstr("key 'log.pattern'"), HasSubstr("named group 'status'")));
  EXPECT_THAT(error("test_cmd: t\nresults: regex\nlog:\n  pattern: '(?P<test>x) (?P<status>y)'\n"
                    "  status: {ok: fine}\n"),
              AllOf(StartsWith("s.yaml:5:"), HasSubstr("key 'log.status'"),
                    HasSubstr("'ok' maps to 'fine'")));
  EXPECT_THAT(error("test_cmd: t\nresults: regex\nlog:\n  pattern: '(?P<test>x) (?P<status>y)'\n"
                    "  status: {ok: passed}\n  absent: passed\n"),
              AllOf(StartsWith("s.yaml:6:"), HasSubstr("key 'log.absent'")));
  EXPECT_THAT(error("test_cmd: t\nresults: regex\nlog:\n  pattern: '(?P<test>x) (?P<status>y)'\n"
                    "  status: {ok: passed}\n  colour: no\n"),
              HasSubstr("unknown key 'colour' in log"));
  EXPECT_THAT(error("test_cmd: t {junit}\nlog:\n  pattern: x\n"),
              HasSubstr("key 'log' is read only with results: regex"));
}

// ------------------------------------------------ RunTests in the sandbox --

class RegexRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root; run this as root";
    auto dir = TempDir::Create("crucible-test-regexrun-");
    ASSERT_TRUE(dir);
    dir_ = std::move(*dir);
  }

  v1::TestRun Run(const std::string& command, std::vector<std::string> expected) {
    TestCommand cmd{
        .command = command, .timeout = std::chrono::seconds(60), .format = ResultFormat::kRegex};
    cmd.log_results = Custom();
    cmd.expected = std::move(expected);
    auto run = RunTests(dir_.path(), cmd);
    EXPECT_TRUE(run) << run.error().ToString();
    return run ? *run : v1::TestRun();
  }

  TempDir dir_ = *TempDir::Create("crucible-test-unused-");
};

TEST_F(RegexRun, ReadsStdoutThenStderr) {
  v1::TestRun run = Run("echo 'PASS a'; echo 'FAIL b' >&2; echo 'PASS b' >&2", {"a", "b"});
  EXPECT_EQ(run.exit_code(), 0);
  EXPECT_EQ(run.infra_error(), "");
  EXPECT_TRUE(run.report_found());
  EXPECT_THAT(ByStatus({run.tests().begin(), run.tests().end()}),
              UnorderedElementsAre(Pair("a", "PASSED"), Pair("b", "PASSED")));
  EXPECT_TRUE(AllPassed(run, {"a", "b"}));
}

TEST_F(RegexRun, ExitZeroWithoutAMatchingLineIsAnInfraError) {
  v1::TestRun run = Run("echo 'all good'", {"a"});
  EXPECT_EQ(run.infra_error(),
            "test command exited 0 but no line of its output matched the results pattern");
  EXPECT_FALSE(AllPassed(run, {"a"}));
}

TEST_F(RegexRun, AFailedExitWithTheTargetPassingIsBelieved) {
  // SWE-bench's logs often end non-zero because other tests fail: the
  // target's own line decides.
  v1::TestRun run = Run("echo 'PASS a'; echo 'FAIL other'; exit 1", {"a"});
  EXPECT_EQ(run.exit_code(), 1);
  EXPECT_EQ(run.infra_error(), "");
  EXPECT_TRUE(AllPassed(run, {"a"}));
}

TEST_F(RegexRun, TestsThatBrokeBeforeReportingAreAbsent) {
  v1::TestRun run = Run("echo 'ImportError: no module' >&2; exit 2", {"a", "b"});
  EXPECT_EQ(run.exit_code(), 2);
  EXPECT_EQ(run.infra_error(), "");
  ASSERT_EQ(run.tests_size(), 2);
  EXPECT_EQ(run.tests(0).id(), "a");
  EXPECT_EQ(run.tests(0).status(), TestOutcome::FAILED);
  EXPECT_EQ(run.tests(0).message(), "absent from the test log");
  EXPECT_FALSE(AllPassed(run, {"a"}));
}

TEST_F(RegexRun, AnUnknownStatusWordIsAnInfraError) {
  v1::TestRun run = Run("echo 'SKIP a'", {"a"});
  EXPECT_THAT(run.infra_error(), HasSubstr("'SKIP'"));
}

TEST_F(RegexRun, ReadsTheWholeOutputNotItsTail) {
  // Far more than the 4 KiB tail and the 1 MiB cap of other formats: the
  // summary comes last, as pytest prints it.
  v1::TestRun run = Run("seq 1 400000 | sed 's/^/noise /'; echo 'PASS a'", {"a"});
  EXPECT_EQ(run.infra_error(), "");
  EXPECT_TRUE(AllPassed(run, {"a"}));
}

TEST_F(RegexRun, ThePytestPresetReadsARealPytestRun) {
  ASSERT_TRUE(WriteFile(dir_.path() + "/test_live.py",
                        "import pytest\n"
                        "def test_ok():\n    assert True\n"
                        "def test_bad():\n    assert 1 == 2\n"
                        "@pytest.mark.xfail(reason='known')\n"
                        "def test_known():\n    assert False\n"
                        "@pytest.mark.skip(reason='later')\n"
                        "def test_later():\n    pass\n"));
  TestCommand cmd{.command = "python3 -m pytest -rA -p no:cacheprovider test_live.py",
                  .timeout = std::chrono::seconds(120),
                  .format = ResultFormat::kRegex};
  cmd.log_results = *LogPreset("pytest");
  cmd.expected = {"test_live.py::test_ok", "test_live.py::test_bad", "test_live.py::test_known",
                  "test_live.py::test_later"};
  auto run = RunTests(dir_.path(), cmd);
  ASSERT_TRUE(run) << run.error().ToString();
  EXPECT_EQ(run->exit_code(), 1) << run->output_tail();
  EXPECT_EQ(run->infra_error(), "");
  // pytest's own summary names no skipped test: absent, failed, as SWE-bench
  // counts it.
  EXPECT_THAT(ByStatus({run->tests().begin(), run->tests().end()}),
              UnorderedElementsAre(Pair("test_live.py::test_ok", "PASSED"),
                                   Pair("test_live.py::test_bad", "FAILED"),
                                   Pair("test_live.py::test_known", "PASSED"),
                                   Pair("test_live.py::test_later", "FAILED")))
      << run->output_tail();
  EXPECT_TRUE(AllPassed(*run, {"test_live.py::test_ok", "test_live.py::test_known"}));
}

TEST(TestCommandFor, ExpectsTheTasksTestsAndCarriesItsLogResults) {
  v1::GoldenTask task;
  task.set_test_cmd("pytest -rA");
  task.set_results("regex");
  *task.mutable_log_results() = *LogPreset("pytest");
  task.add_fail_to_pass("t::f2p");
  task.add_pass_to_pass("t::p2p");
  TestCommand cmd = TestCommandFor(task);
  EXPECT_EQ(cmd.format, ResultFormat::kRegex);
  EXPECT_EQ(cmd.log_results.preset(), "pytest");
  EXPECT_THAT(cmd.expected, ElementsAre("t::f2p", "t::p2p"));
}

}  // namespace
}  // namespace crucible::golden
