// `crucible show`'s rendering (report/show.h) of a constructed attempt: the
// diffs side by side or one after the other, failing tests first, file:line
// of violations and findings, a folded trace, a running attempt.
#include "report/show.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace crucible::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAgentDiff[] =
    "diff --git a/pkg/util.py b/pkg/util.py\n"
    "--- a/pkg/util.py\n"
    "+++ b/pkg/util.py\n"
    "@@ -1,2 +1,2 @@\n"
    "-def slug(s): return s\n"
    "+def slug(s): return s.lower()  # AGENT-LINE\n"
    "diff --git a/docs/notes.md b/docs/notes.md\n"
    "--- a/docs/notes.md\n"
    "+++ b/docs/notes.md\n"
    "@@ -0,0 +1 @@\n"
    "+stray note\n";

constexpr char kGoldenDiff[] =
    "diff --git a/pkg/util.py b/pkg/util.py\n"
    "--- a/pkg/util.py\n"
    "+++ b/pkg/util.py\n"
    "@@ -1,2 +1,2 @@\n"
    "-def slug(s): return s\n"
    "+def slug(s): return s.strip().lower()  # GOLDEN-LINE\n"
    "diff --git a/pkg/__init__.py b/pkg/__init__.py\n"
    "--- a/pkg/__init__.py\n"
    "+++ b/pkg/__init__.py\n"
    "@@ -1 +1 @@\n"
    "-VERSION = 1\n"
    "+VERSION = 2\n";

class ShowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_.set_id("r1");
    run_.set_suite("s");
    v1::Attempt& a = d_.view.attempt;
    a.set_run_id("r1");
    a.set_number(3);
    a.set_agent("rule-agent");
    a.set_task_id("t-1");
    a.set_sample(1);
    a.set_state(v1::Attempt::DONE);
    v1::GoldenTask task;
    task.set_id("t-1");
    task.set_intent("Make slug() lower-case and strip blanks.");
    task.set_source_patch(kGoldenDiff);
    task.add_fail_to_pass("tests.test_util::test_slug");
    task.add_pass_to_pass("tests.test_util::test_keep");
    task.add_pass_to_pass("tests.test_util::test_other");
    d_.task = task;
    v1::Evidence e;
    e.set_final_diff(kAgentDiff);
    auto add = [&](const char* id, v1::TestOutcome::Status status) {
      auto* t = e.mutable_tests()->add_tests();
      t->set_id(id);
      t->set_status(status);
    };
    add("tests.test_util::test_keep", v1::TestOutcome::PASSED);
    add("tests.test_util::test_slug", v1::TestOutcome::FAILED);
    add("tests.test_util::test_other", v1::TestOutcome::PASSED);
    d_.evidence = e;
    v1::Score s;
    s.set_scoring_version(2);
    s.set_completed(false);
    s.set_reason("1 of 1 FAIL_TO_PASS tests fail");
    s.set_rounds(1);
    s.set_rounds_allowed(3);
    auto* v = s.add_violations();
    v->set_kind("out_of_scope");
    v->set_file("docs/notes.md");
    v->set_line(1);
    v->set_detail("not part of the task");
    auto* f = s.add_findings();
    f->set_rule("secret.aws-access-key");
    f->set_severity("error");
    f->set_file("pkg/util.py");
    f->set_line(7);
    f->set_match("AKIA****");
    s.mutable_dimensions()->mutable_replay()->set_measured(true);
    s.mutable_dimensions()->mutable_replay()->set_value(0.5);
    s.mutable_dimensions()->mutable_plan()->set_reason("no plan event");
    s.mutable_blast_radius()->set_files(2);
    d_.view.score = s;
    for (int i = 0; i < 50; ++i) {
      v1::TraceEvent ev;
      ev.set_ts_ns(1'000'000'000LL + i * 250'000'000LL);
      ev.set_kind(i % 2 ? "TOOL" : "AGENT");
      ev.set_name(i == 49 ? "last_event" : "edit_file");
      ev.set_attrs_json(R"({"path": "pkg/util.py", "nested": {"x": 1}})");
      ev.set_seq(i);
      d_.events.push_back(ev);
    }
  }

  v1::Run run_;
  AttemptDetail d_;
};

TEST(SplitDiff, OneEntryPerFileNamedByItsNewPath) {
  auto files = SplitDiff(kAgentDiff);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path, "pkg/util.py");
  EXPECT_EQ(files[1].path, "docs/notes.md");
  EXPECT_THAT(files[1].text, HasSubstr("+stray note"));
  EXPECT_THAT(files[0].text, Not(HasSubstr("stray")));
  EXPECT_TRUE(SplitDiff("").empty());
}

TEST_F(ShowTest, HeadingIntentScoresTestsViolations) {
  const std::string text = RenderShow(run_, d_, {.columns = 100});
  EXPECT_THAT(text,
              HasSubstr("attempt r1/3  DONE  agent rule-agent  task t-1  sample 1  rounds 1/3"));
  EXPECT_THAT(text, HasSubstr("Make slug() lower-case and strip blanks."));
  EXPECT_THAT(text, HasSubstr("loose: fail (FAIL_TO_PASS 0/0"));
  EXPECT_THAT(text, HasSubstr("replay      0.50"));
  EXPECT_THAT(text, HasSubstr("plan        null (no plan event)"));
  EXPECT_THAT(text, HasSubstr("merge-ready round: never"));
  EXPECT_THAT(text, HasSubstr("out_of_scope     docs/notes.md:1"));
  EXPECT_THAT(text, HasSubstr("secret.aws-access-key pkg/util.py:7"));
  // Failing tests first.
  const size_t fail = text.find("fail    FAIL_TO_PASS tests.test_util::test_slug");
  const size_t pass = text.find("pass    PASS_TO_PASS tests.test_util::test_keep");
  ASSERT_NE(fail, std::string::npos) << text;
  ASSERT_NE(pass, std::string::npos) << text;
  EXPECT_LT(fail, pass);
}

TEST_F(ShowTest, AMutantSaysWhatItPlantedOrWhyItDidNot) {
  EXPECT_THAT(RenderShow(run_, d_, {.columns = 100}), Not(HasSubstr("mutation")));
  v1::Mutation* m = d_.evidence->mutable_mutation();
  m->set_kind("reformat");
  m->set_applicable(true);
  m->set_file("pkg/util.py");
  m->set_line(9);
  m->set_description("adds two trailing spaces to pkg/util.py:9");
  std::string text = RenderShow(run_, d_, {.columns = 100});
  EXPECT_THAT(text, HasSubstr("mutation reformat\n  adds two trailing spaces to pkg/util.py:9\n"
                              "  at pkg/util.py:9\n"));
  auto j = nlohmann::json::parse(RenderShowJson(run_, d_));
  EXPECT_EQ(j["mutation"]["kind"], "reformat");
  EXPECT_EQ(j["mutation"]["line"], 9);
  m->set_applicable(false);
  m->set_reason("the golden patch changes no readable source file");
  text = RenderShow(run_, d_, {.columns = 100});
  EXPECT_THAT(text, HasSubstr("mutation reformat\n  not applicable: the golden patch changes no "
                              "readable source file\n"));
}

TEST_F(ShowTest, ANoSubmissionAttemptSaysSo) {
  EXPECT_THAT(RenderShow(run_, d_, {.columns = 100}), Not(HasSubstr("no submission")));
  d_.evidence = v1::Evidence();
  d_.evidence->set_no_submission(true);
  d_.view.score->set_no_submission(true);
  d_.view.score->set_reason("no submission");
  EXPECT_THAT(RenderShow(run_, d_, {.columns = 100}),
              HasSubstr("scores\n  no submission: the predictions file has no patch"));
  auto j = nlohmann::json::parse(RenderShowJson(run_, d_));
  EXPECT_EQ(j["scores"]["no_submission"], true);
}

TEST_F(ShowTest, ManyPassingPassToPassTestsAreCountedInOneLine) {
  for (int i = 0; i < 30; ++i) {
    const std::string id = "tests.test_more::test_" + std::to_string(i);
    d_.task->add_pass_to_pass(id);
    auto* t = d_.evidence->mutable_tests()->add_tests();
    t->set_id(id);
    t->set_status(i == 7 ? v1::TestOutcome::FAILED : v1::TestOutcome::PASSED);
  }
  const std::string text = RenderShow(run_, d_, {.columns = 100});
  EXPECT_THAT(text, HasSubstr("fail    PASS_TO_PASS tests.test_more::test_7"));
  EXPECT_THAT(text, Not(HasSubstr("tests.test_more::test_8\n")));
  EXPECT_THAT(text, HasSubstr("pass    PASS_TO_PASS 31 more tests"));
  EXPECT_EQ(nlohmann::json::parse(RenderShowJson(run_, d_))["tests"].size(), 33u);
}

TEST_F(ShowTest, NarrowTerminalShowsTheDiffsOneAfterTheOtherAndMarksOneSidedFiles) {
  const std::string text = RenderShow(run_, d_, {.columns = 100});
  EXPECT_THAT(text, HasSubstr("=== docs/notes.md  (agent only"));
  EXPECT_THAT(text, HasSubstr("=== pkg/__init__.py  (golden only"));
  const size_t agent = text.find("--- agent\n");
  const size_t golden = text.find("--- golden\n");
  ASSERT_NE(agent, std::string::npos) << text;
  ASSERT_NE(golden, std::string::npos) << text;
  EXPECT_LT(agent, golden);
  EXPECT_LT(text.find("AGENT-LINE"), golden);
  EXPECT_GT(text.find("GOLDEN-LINE"), golden);
}

TEST_F(ShowTest, WideTerminalShowsTheDiffsSideBySide) {
  const std::string text = RenderShow(run_, d_, {.columns = 200});
  bool same_line = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    const std::string line = text.substr(pos, end - pos);
    if (line.find("AGENT-LINE") != std::string::npos &&
        line.find("GOLDEN-LINE") != std::string::npos) {
      same_line = true;
      EXPECT_LE(line.size(), 200u);
      EXPECT_LT(line.find("AGENT-LINE"), line.find(" | "));
    }
    pos = end + 1;
  }
  EXPECT_TRUE(same_line) << text;
}

TEST_F(ShowTest, LongTraceIsFoldedToItsEnds) {
  const std::string text = RenderShow(run_, d_, {.columns = 100, .trace_ends = 15});
  EXPECT_THAT(text, HasSubstr("trace: 50 events"));
  EXPECT_THAT(text, HasSubstr("... 20 events ..."));
  EXPECT_THAT(text, HasSubstr("+   12.250s  TOOL   last_event"));
  EXPECT_THAT(text, HasSubstr("path=pkg/util.py"));
  EXPECT_THAT(text, Not(HasSubstr("nested")));
}

TEST_F(ShowTest, RunningAttemptShowsWhatExistsAndSaysSo) {
  d_.view.attempt.set_state(v1::Attempt::RUNNING);
  d_.view.score.reset();
  d_.evidence.reset();
  d_.events.resize(3);
  const std::string text = RenderShow(run_, d_, {.columns = 100});
  EXPECT_THAT(text, HasSubstr("this attempt is still running (RUNNING)"));
  EXPECT_THAT(text, HasSubstr("Make slug() lower-case"));
  EXPECT_THAT(text, HasSubstr("none yet"));
  EXPECT_THAT(text, HasSubstr("trace: 3 events"));
  auto json = nlohmann::json::parse(RenderShowJson(run_, d_));
  EXPECT_EQ(json["finished"], false);
  EXPECT_TRUE(json["scores"].is_null());
}

TEST_F(ShowTest, JsonHasEveryPart) {
  auto json = nlohmann::json::parse(RenderShowJson(run_, d_));
  EXPECT_EQ(json["attempt_id"], "r1/3");
  EXPECT_EQ(json["intent"], "Make slug() lower-case and strip blanks.");
  EXPECT_EQ(json["scores"]["loose"], false);
  EXPECT_EQ(json["scores"]["dimensions"]["replay"], 0.5);
  EXPECT_TRUE(json["scores"]["dimensions"]["plan"].is_null());
  ASSERT_EQ(json["tests"].size(), 3u);
  EXPECT_EQ(json["tests"][0]["status"], "fail");
  EXPECT_EQ(json["violations"][0]["file"], "docs/notes.md");
  EXPECT_EQ(json["findings"][0]["line"], 7);
  ASSERT_EQ(json["diff"]["files"].size(), 3u);
  EXPECT_EQ(json["diff"]["files"][1]["path"], "docs/notes.md");
  EXPECT_EQ(json["diff"]["files"][1]["golden"], false);
  EXPECT_EQ(json["events"].size(), 50u);
  EXPECT_DOUBLE_EQ(json["events"][4]["offset_ms"].get<double>(), 1000.0);
}

}  // namespace
}  // namespace crucible::report
