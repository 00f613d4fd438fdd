#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "golden/test_run.h"
#include "golden/utf8.h"

namespace crucible::golden {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using v1::TestOutcome;

// What pytest --junitxml writes (junit_family=xunit2), trimmed.
const char kPytest[] = R"(<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="0.05">
<testcase classname="tests.test_util" name="test_slug" time="0.001" />
<testcase classname="tests.test_util" name="test_parse[a-1]" time="0.002">
  <failure message="AssertionError: assert 2 == 1">def test_parse():
&gt;       assert parse("a") == 1
E       AssertionError</failure>
</testcase>
<testcase classname="tests.test_util" name="test_skip" time="0.000">
  <skipped type="pytest.skip" message="not on linux">/x.py:3: not on linux</skipped>
</testcase>
<testcase classname="tests.test_util" name="test_teardown" time="0.001" />
<testcase classname="tests.test_util" name="test_teardown" time="0.002">
  <error message="failed on teardown with &quot;RuntimeError&quot;">boom</error>
</testcase>
<testcase classname="" name="tests.test_broken" time="0.000">
  <error message="collection failure">ImportError</error>
</testcase>
</testsuite></testsuites>)";

// What a GoogleTest binary writes with --gtest_output=xml, trimmed.
const char kGtest[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" failures="1" disabled="1" errors="0" name="AllTests">
  <testsuite name="KeyCodec" tests="2" failures="1" disabled="0" skipped="0" errors="0">
    <testcase name="RoundTrips" status="run" result="completed" time="0.001" classname="KeyCodec" />
    <testcase name="Orders" status="run" result="completed" time="0.002" classname="KeyCodec">
      <failure message="key_codec_test.cc:12&#x0A;Expected equality" type=""><![CDATA[details]]></failure>
    </testcase>
  </testsuite>
  <testsuite name="Store" tests="2">
    <testcase name="DISABLED_Slow" status="notrun" result="suppressed" time="0" classname="Store" />
    <testcase name="Skips" status="run" result="skipped" time="0" classname="Store">
      <skipped message="needs root"/>
    </testcase>
  </testsuite>
</testsuites>)";

TestOutcome::Status StatusOf(const std::vector<TestOutcome>& tests, const std::string& id) {
  for (const auto& t : tests) {
    if (t.id() == id) return t.status();
  }
  return TestOutcome::UNKNOWN;
}

TEST(ParseJunit, ReadsPytestReports) {
  auto tests = ParseJunit(kPytest);
  ASSERT_TRUE(tests) << tests.error().ToString();
  ASSERT_EQ(tests->size(), 5u);
  EXPECT_EQ((*tests)[0].id(), "tests.test_util::test_slug");
  EXPECT_EQ((*tests)[0].status(), TestOutcome::PASSED);
  EXPECT_DOUBLE_EQ((*tests)[0].time_s(), 0.001);
  EXPECT_EQ((*tests)[1].id(), "tests.test_util::test_parse[a-1]");
  EXPECT_EQ((*tests)[1].status(), TestOutcome::FAILED);
  EXPECT_EQ((*tests)[1].message(), "AssertionError: assert 2 == 1");
  EXPECT_EQ((*tests)[2].status(), TestOutcome::SKIPPED);
  EXPECT_EQ((*tests)[2].message(), "not on linux");
  // A teardown error is reported as a second testcase: one outcome, the worst.
  EXPECT_EQ((*tests)[3].id(), "tests.test_util::test_teardown");
  EXPECT_EQ((*tests)[3].status(), TestOutcome::ERROR);
  EXPECT_DOUBLE_EQ((*tests)[3].time_s(), 0.003);
  EXPECT_THAT((*tests)[3].message(), HasSubstr("RuntimeError"));
  // No classname: the id is the name alone.
  EXPECT_EQ((*tests)[4].id(), "tests.test_broken");
  EXPECT_EQ((*tests)[4].status(), TestOutcome::ERROR);
}

TEST(ParseJunit, ReadsGtestReports) {
  auto tests = ParseJunit(kGtest);
  ASSERT_TRUE(tests) << tests.error().ToString();
  ASSERT_EQ(tests->size(), 4u);
  EXPECT_EQ(StatusOf(*tests, "KeyCodec::RoundTrips"), TestOutcome::PASSED);
  EXPECT_EQ(StatusOf(*tests, "KeyCodec::Orders"), TestOutcome::FAILED);
  EXPECT_EQ((*tests)[1].message(), "key_codec_test.cc:12\nExpected equality");
  EXPECT_EQ(StatusOf(*tests, "Store::DISABLED_Slow"), TestOutcome::SKIPPED);
  EXPECT_EQ(StatusOf(*tests, "Store::Skips"), TestOutcome::SKIPPED);
}

TEST(ParseJunit, ReadsASingleTestsuiteAndNestedSuites) {
  auto single = ParseJunit(
      "<testsuite name='s'><testcase classname='C' name='a'/>"
      "<testcase classname='C' name='b'><failure/></testcase></testsuite>");
  ASSERT_TRUE(single);
  ASSERT_EQ(single->size(), 2u);
  EXPECT_EQ(StatusOf(*single, "C::b"), TestOutcome::FAILED);

  auto nested = ParseJunit(
      "<testsuites><testsuite name='outer'><testcase classname='O' name='first'/>"
      "<testsuite name='inner'><testcase classname='I' name='deep'><error message='x'/></testcase>"
      "</testsuite><testcase classname='O' name='last'/></testsuite></testsuites>");
  ASSERT_TRUE(nested);
  ASSERT_EQ(nested->size(), 3u);
  EXPECT_EQ((*nested)[0].id(), "O::first");
  EXPECT_EQ((*nested)[1].id(), "O::last");
  EXPECT_EQ((*nested)[2].id(), "I::deep");
  EXPECT_EQ((*nested)[2].status(), TestOutcome::ERROR);

  auto ctest = ParseJunit(
      "<testsuite><testcase name='t1' classname='t1' status='fail'/>"
      "<testcase name='t2' classname='t2' status='disabled'/></testsuite>");
  ASSERT_TRUE(ctest);
  EXPECT_EQ(StatusOf(*ctest, "t1::t1"), TestOutcome::FAILED);
  EXPECT_EQ(StatusOf(*ctest, "t2::t2"), TestOutcome::SKIPPED);

  auto empty = ParseJunit("<testsuites tests='0'/>");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(ParseJunit, RejectsMalformedXml) {
  auto r = ParseJunit("<testsuites><testsuite><testcase name='x'></testsuite>");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kCorruption);
  EXPECT_THAT(r.error().message(), StartsWith("JUnit report does not parse: "));
  EXPECT_THAT(r.error().message(), HasSubstr("at byte"));

  auto empty = ParseJunit("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Code::kCorruption);

  auto garbage = ParseJunit("\x89PNG not xml at all");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code(), Code::kCorruption);
}

TEST(ParseJunit, RejectsXmlThatIsNotAReport) {
  auto r = ParseJunit("<html><body>oops</body></html>");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kCorruption);
  EXPECT_THAT(r.error().message(), HasSubstr("<html>"));
}

TEST(ParseJunit, KeepsTextValidUtf8AndMessagesShort) {
  std::string xml =
      "<testsuite encoding='x'><testcase classname='C' name='bad\xff'>"
      "<failure message='" +
      std::string(5000, 'm') + "'/></testcase></testsuite>";
  auto r = ParseJunit(xml);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE(internal::IsValidUtf8((*r)[0].id()));
  EXPECT_EQ((*r)[0].message().size(), 1024u);
}

TEST(ParseJunit, SurvivesDeepNesting) {
  std::string xml;
  for (int i = 0; i < 20000; ++i) xml += "<testsuite>";
  xml += "<testcase classname='C' name='deep'/>";
  for (int i = 0; i < 20000; ++i) xml += "</testsuite>";
  auto r = ParseJunit(xml);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
}

TEST(ParseJunit, SurvivesMangledReports) {
  const std::string xml = kPytest;
  uint32_t state = 777;
  auto next = [&] { return state = state * 1103515245u + 12345u; };
  for (int round = 0; round < 2000; ++round) {
    std::string mangled = xml.substr(0, next() % (xml.size() + 1));
    for (int k = next() % 4; k > 0 && !mangled.empty(); --k) {
      mangled[next() % mangled.size()] = "<>/='\"&;x\xff"[next() % 10];
    }
    auto r = ParseJunit(mangled);
    if (r) {
      for (const auto& t : *r) EXPECT_TRUE(internal::IsValidUtf8(t.id()));
    }
  }
}

TEST(AllPassed, NeedsATrustworthyRunAndEveryId) {
  v1::TestRun run;
  run.set_report_found(true);
  auto* a = run.add_tests();
  a->set_id("a");
  a->set_status(TestOutcome::PASSED);
  auto* b = run.add_tests();
  b->set_id("b");
  b->set_status(TestOutcome::FAILED);
  EXPECT_TRUE(AllPassed(run, {"a"}));
  EXPECT_TRUE(AllPassed(run, {}));
  EXPECT_FALSE(AllPassed(run, {"a", "b"}));
  EXPECT_FALSE(AllPassed(run, {"missing"}));

  v1::TestRun infra = run;
  infra.set_infra_error("test command exited 1 but its report shows no failure");
  EXPECT_FALSE(AllPassed(infra, {"a"}));
  v1::TestRun timed_out = run;
  timed_out.set_timed_out(true);
  EXPECT_FALSE(AllPassed(timed_out, {"a"}));
  v1::TestRun no_report = run;
  no_report.set_report_found(false);
  EXPECT_FALSE(AllPassed(no_report, {"a"}));
}

TEST(Utf8, ValidatesAndRepairs) {
  EXPECT_TRUE(internal::IsValidUtf8("plain ascii"));
  EXPECT_TRUE(internal::IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(internal::IsValidUtf8("latin-1 caf\xe9"));
  EXPECT_FALSE(internal::IsValidUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(internal::IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(internal::IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(internal::IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_EQ(internal::ToValidUtf8("caf\xe9!"), "caf\xef\xbf\xbd!");
  EXPECT_EQ(internal::ToValidUtf8("ok \xe2\x82\xac"), "ok \xe2\x82\xac");
  // A tail never starts inside a character.
  EXPECT_EQ(internal::Utf8Tail("x\xe2\x82\xac", 2), "");
  EXPECT_EQ(internal::Utf8Tail("x\xe2\x82\xac", 3), "\xe2\x82\xac");
  EXPECT_EQ(internal::Utf8Tail("abc", 10), "abc");
}

}  // namespace
}  // namespace crucible::golden
