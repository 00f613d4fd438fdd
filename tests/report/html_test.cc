// The HTML report (`crucible report RUN --html`) of runs written through a
// real RocksDB store: the page's DOM contract (report/html.h), parsed as XML
// with pugixml; escaping of everything from the store; a run in progress; a
// run with no scored attempt; and a 5 agents x 200 tasks x 3 samples run.
#include "report/html.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <pugixml.hpp>

#include <fmt/format.h>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/support/run_command.h"

namespace crucible::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// One attempt's outcome as the test writes it.
enum class Out { kStrict, kLoose, kFailed, kInfra, kQueued };

class HtmlReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("crucible-html-test-");
    ASSERT_TRUE(tmp);
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    auto store = storage::Store::Open(tmp_->path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }

  // A suite "s" whose tasks each have a golden diff of `golden_lines` lines.
  void Suite(const std::vector<std::string>& task_ids, int golden_lines = 3) {
    v1::Suite suite;
    suite.set_name("s");
    suite.set_task_count(static_cast<int>(task_ids.size()));
    std::vector<v1::GoldenTask> tasks;
    for (const auto& id : task_ids) {
      v1::GoldenTask t;
      t.set_suite("s");
      t.set_id(id);
      t.set_intent("Fix the slug of " + id);
      t.add_fail_to_pass("tests/test_x.py::test_fixed");
      t.set_source_patch(Patch("golden " + id, golden_lines));
      tasks.push_back(t);
    }
    ASSERT_TRUE(store_->PutSuite(suite, tasks));
  }

  static std::string Patch(const std::string& what, int lines) {
    std::string p = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n";
    for (int i = 0; i < lines; ++i) {
      p += (i % 2 == 0 ? "-old " : "+new ") + what + " line " + std::to_string(i) + "\n";
    }
    return p;
  }

  // A run of `agents` on `tasks` with `samples` samples, attempts task-major,
  // all queued.
  void Run(const std::vector<std::string>& agents, const std::vector<std::string>& tasks,
           int samples = 1, const std::string& id = "r1") {
    run_ = v1::Run();
    run_.set_id(id);
    run_.set_suite("s");
    run_.set_samples(samples);
    run_.set_state(v1::Run::RUNNING);
    run_.set_created_at_ms(1'796'083'200'000);  // 2026-12-01 00:00 UTC
    for (const auto& a : agents) run_.add_agents()->set_name(a);
    attempts_.clear();
    for (const auto& t : tasks) {
      for (const auto& a : agents) {
        for (int s = 0; s < samples; ++s) {
          v1::Attempt at;
          at.set_run_id(id);
          at.set_number(attempts_.size());
          at.set_task_id(t);
          at.set_agent(a);
          at.set_sample(s);
          at.set_state(v1::Attempt::QUEUED);
          attempts_.push_back(at);
        }
      }
    }
    run_.set_attempt_count(static_cast<int>(attempts_.size()));
    ASSERT_TRUE(store_->CreateRun(run_, attempts_));
  }

  void FinishRun() {
    run_.set_state(v1::Run::FINISHED);
    ASSERT_TRUE(store_->PutRun(run_));
  }

  // Finishes attempt `n` with outcome `out`, a diff of `diff`, and `events`
  // trace events.
  void Finish(uint64_t n, Out out, const std::string& diff = "", int events = 3,
              std::optional<double> cost = std::nullopt) {
    if (out == Out::kQueued) return;
    v1::Attempt a = attempts_.at(n);
    if (out == Out::kInfra) {
      a.set_state(v1::Attempt::FAILED);
      a.set_error("runner lost after 3 tries");
      ASSERT_TRUE(store_->UpdateAttempt(a));
      return;
    }
    a.set_state(v1::Attempt::DONE);
    v1::Evidence ev;
    ev.set_final_diff(diff.empty() ? Patch(a.agent() + " " + a.task_id(), 4) : diff);
    auto* t = ev.mutable_tests()->add_tests();
    t->set_id("tests/test_x.py::test_fixed");
    t->set_status(out == Out::kFailed ? v1::TestOutcome::FAILED : v1::TestOutcome::PASSED);
    if (out == Out::kFailed) t->set_message("assert 'a-b' == 'a_b'");
    if (cost) {
      ev.mutable_usage()->set_cost_usd(*cost);
      ev.mutable_usage()->set_llm_calls(2);
      ev.mutable_usage()->set_cost_source("agent");
    }
    v1::Score s;
    s.set_scoring_version(2);
    s.set_completed(out != Out::kFailed);
    s.set_strict_completed(out == Out::kStrict);
    s.set_merge_ready_round(out == Out::kStrict ? 1 : 0);
    s.set_f2p_total(1);
    s.set_f2p_passed(out == Out::kFailed ? 0 : 1);
    s.set_files_touched(1);
    s.set_wall_ms(1500);
    if (out == Out::kLoose) {
      auto* v = s.add_violations();
      v->set_kind("out_of_scope");
      v->set_file("setup.cfg");
      v->set_detail("changed a file outside the task's scope");
      s.add_failure_modes("out_of_scope_edit");
    }
    if (out == Out::kFailed) s.add_failure_modes("wrong_fix");
    for (auto d :
         {s.mutable_dimensions()->mutable_replay(), s.mutable_dimensions()->mutable_plan()}) {
      d->set_measured(true);
      d->set_value(out == Out::kStrict ? 0.9 : 0.4);
    }
    ASSERT_TRUE(store_->FinishAttempt(a, ev, s));
    std::vector<v1::TraceEvent> trace;
    for (int i = 0; i < events; ++i) {
      v1::TraceEvent e;
      e.set_seq(i);
      e.set_ts_ns(1'000'000'000LL * (100 + i));
      e.set_kind(i % 2 ? "TOOL" : "LLM");
      e.set_name(i % 2 ? "edit_file" : "chat");
      e.set_attrs_json("{\"path\":\"x.py\"}");
      e.set_source("agent");
      trace.push_back(e);
    }
    if (!trace.empty()) {
      ASSERT_TRUE(store_->AppendEvents(run_.id(), n, trace));
    }
  }

  // The page, parsed as XML: the markup must be well-formed.
  std::string Render(pugi::xml_document& doc, const std::string& id = "r1") {
    auto html = RenderRunHtml(*store_, id);
    EXPECT_TRUE(html) << html.error().ToString();
    if (!html) return "";
    auto parsed = doc.load_buffer(html->data(), html->size());
    EXPECT_TRUE(parsed) << parsed.description() << " at byte " << parsed.offset << ": "
                        << html->substr(
                               static_cast<size_t>(std::max<ptrdiff_t>(0, parsed.offset - 80)),
                               160);
    return *html;
  }

  static size_t Count(const pugi::xml_document& doc, const std::string& xpath) {
    return doc.select_nodes(xpath.c_str()).size();
  }

  static std::string Text(const pugi::xml_node& node) {
    std::string out;
    for (auto n : node.select_nodes(".//text()")) out += n.node().value();
    return out;
  }

  static std::string Class(const std::string& c) {
    return "contains(concat(' ', normalize-space(@class), ' '), ' " + c + " ')";
  }

  std::unique_ptr<TempDir> tmp_;
  storage::StorePtr store_;
  v1::Run run_;
  std::vector<v1::Attempt> attempts_;
};

TEST_F(HtmlReportTest, FollowsTheDomContract) {
  Suite({"t1", "t2", "t3"});
  Run({"alpha", "beta"}, {"t1", "t2", "t3"});
  // Task-major: t1 alpha 0, t1 beta 1, t2 alpha 2, t2 beta 3, t3 alpha 4, t3 beta 5.
  const Out outs[] = {Out::kStrict, Out::kFailed, Out::kLoose,
                      Out::kStrict, Out::kInfra,  Out::kFailed};
  for (uint64_t n = 0; n < 6; ++n) Finish(n, outs[n], "", 3, 0.25);
  FinishRun();
  pugi::xml_document doc;
  const std::string html = Render(doc);

  auto headline = doc.select_node("//*[@id='headline']");
  ASSERT_TRUE(headline);
  EXPECT_THAT(Text(headline.node()), HasSubstr("strict completion"));
  EXPECT_EQ(Count(doc, "//*[@id='agents']//tr[@data-agent='alpha']"), 1u);
  EXPECT_EQ(Count(doc, "//*[@id='agents']//tr[@data-agent='beta']"), 1u);
  EXPECT_EQ(Count(doc, "//*[@id='progress']"), 0u);  // finished
  EXPECT_THAT(html, HasSubstr("started 2026-12-01 00:00 UTC"));

  // One cell per attempt, each linking to its section with the parts side by side.
  auto cells = doc.select_nodes(("//*[@id='grid']//a[" + Class("cell") + "]").c_str());
  ASSERT_EQ(cells.size(), 6u);
  for (const auto& c : cells) {
    const std::string agent = c.node().attribute("data-agent").value();
    const std::string task = c.node().attribute("data-task").value();
    const std::string href = c.node().attribute("href").value();
    ASSERT_TRUE(href.starts_with("#attempt-")) << href;
    const uint64_t n = std::stoull(href.substr(9));
    EXPECT_EQ(attempts_[n].agent(), agent);
    EXPECT_EQ(attempts_[n].task_id(), task);
    auto section = doc.select_node(("//section[@id='" + href.substr(1) + "']").c_str());
    ASSERT_TRUE(section) << href;
    auto agent_diff = section.node().select_node((".//*[" + Class("diff-agent") + "]").c_str());
    auto golden_diff = section.node().select_node((".//*[" + Class("diff-golden") + "]").c_str());
    ASSERT_TRUE(agent_diff && golden_diff) << href;
    EXPECT_EQ(agent_diff.node().parent(), golden_diff.node().parent()) << "side by side";
    for (auto part : {"tests", "violations", "timeline"}) {
      EXPECT_TRUE(section.node().select_node((".//*[" + Class(part) + "]").c_str()))
          << href << " has no ." << part;
    }
    EXPECT_THAT(Text(section.node()), HasSubstr(fmt::format("r1/{}", n)));
  }
  // Outcomes coloured by class; the infrastructure failure says why.
  EXPECT_EQ(Count(doc, "//*[@id='grid']//a[" + Class("o-strict") + "]"), 2u);
  EXPECT_EQ(Count(doc, "//*[@id='grid']//a[" + Class("o-loose") + "]"), 1u);
  EXPECT_EQ(Count(doc, "//*[@id='grid']//a[" + Class("o-failed") + "]"), 2u);
  EXPECT_EQ(Count(doc, "//*[@id='grid']//a[" + Class("o-infra") + "]"), 1u);
  EXPECT_THAT(Text(doc.select_node("//section[@id='attempt-4']").node()),
              HasSubstr("runner lost after 3 tries"));
  // Diff lines marked: the agent's and the golden ones.
  auto s0 = doc.select_node("//section[@id='attempt-0']").node();
  EXPECT_EQ(s0.select_nodes((".//*[" + Class("diff-agent") + "]//ins").c_str()).size(), 2u);
  EXPECT_EQ(s0.select_nodes((".//*[" + Class("diff-golden") + "]//del").c_str()).size(), 2u);
  EXPECT_THAT(Text(s0), HasSubstr("golden t1 line 1"));
  // The golden diff is written once per task; the task's other sections
  // point at it (the script copies it in when they open).
  auto ref = doc.select_node(
      ("//section[@id='attempt-1']//*[" + Class("diff-golden") + "]/*[" + Class("golden-ref") + "]")
          .c_str());
  ASSERT_TRUE(ref);
  EXPECT_STREQ(ref.node().attribute("data-from").value(), "attempt-0");
  EXPECT_TRUE(ref.node().select_node("a[@href='#attempt-0']"));
  EXPECT_THAT(Text(doc.select_node("//section[@id='attempt-2']").node()),
              HasSubstr("golden t2 line 1"));
  // Attempt sections are folded; the charts are inline SVG; nothing is loaded.
  EXPECT_EQ(Count(doc, "//section[" + Class("attempt") + "]/details"), 6u);
  EXPECT_TRUE(doc.select_node("//svg[@id='dimensions']"));
  EXPECT_TRUE(doc.select_node("//svg[@id='cost']"));
  EXPECT_EQ(Count(doc, "//*[@src]"), 0u);
  EXPECT_EQ(Count(doc, "//link"), 0u);
  std::string rest = html;
  rest.erase(rest.find("xmlns=\"http://www.w3.org/1999/xhtml\""), 36);
  EXPECT_THAT(rest, Not(HasSubstr("http://"))) << "only the XHTML namespace names a URL";
  EXPECT_THAT(rest, Not(HasSubstr("https://")));
  // The failure modes per agent.
  EXPECT_THAT(Text(doc.select_node("//*[@id='failure-modes']").node()), HasSubstr("wrong_fix"));
}

TEST_F(HtmlReportTest, EscapesEverythingFromTheStore) {
  const std::string evil = "<script>alert(1)</script>";
  const std::string task = "t<b>&\"'" + evil;
  Suite({task});
  Run({evil, "quote\"agent"}, {task});
  Finish(0, Out::kStrict, "diff --git a/x b/x\n+" + evil + " & \"q\" 'a'\n-</pre></details>\n");
  Finish(1, Out::kFailed);
  FinishRun();
  pugi::xml_document doc;
  const std::string html = Render(doc);
  // Exactly one script element, the page's own, and no injected markup.
  EXPECT_EQ(Count(doc, "//script"), 1u);
  EXPECT_EQ(Count(doc, "//b[text()='&']"), 0u);
  EXPECT_THAT(Text(doc.select_node("//script").node()), Not(HasSubstr("alert")));
  EXPECT_THAT(html, Not(HasSubstr(evil)));
  // The text comes out as text, whole.
  EXPECT_EQ(Count(doc, "//*[@id='agents']//tr[@data-agent='" + evil + "']"), 1u);
  EXPECT_EQ(Count(doc, "//*[@id='agents']//tr[@data-agent='quote\"agent']"), 1u);
  auto cell = doc.select_node("//*[@id='grid']//a[@href='#attempt-0']");
  ASSERT_TRUE(cell);
  EXPECT_EQ(std::string(cell.node().attribute("data-task").value()), task);
  EXPECT_EQ(std::string(cell.node().attribute("data-agent").value()), evil);
  auto diff =
      doc.select_node(("//section[@id='attempt-0']//*[" + Class("diff-agent") + "]").c_str());
  ASSERT_TRUE(diff);
  EXPECT_THAT(Text(diff.node()), HasSubstr("+" + evil + " & \"q\" 'a'"));
  EXPECT_THAT(Text(diff.node()), HasSubstr("-</pre></details>"));
  // The attempts stay separate sections: the diff closed nothing.
  EXPECT_EQ(Count(doc, "//section[" + Class("attempt") + "]"), 2u);
}

TEST_F(HtmlReportTest, ControlCharactersAndInvalidUtf8StayWellFormed) {
  Suite({"t1"});
  Run({"a"}, {"t1"});
  Finish(0, Out::kFailed, std::string("+bad \x01\x1b[31m \xff\xfe and \xc3\x28 ok \xc3\xa9\n"));
  FinishRun();
  pugi::xml_document doc;
  const std::string html = Render(doc);
  EXPECT_THAT(html, Not(HasSubstr("\x01")));
  EXPECT_THAT(html, Not(HasSubstr("\xff")));
  EXPECT_THAT(html, HasSubstr("ok \xc3\xa9"));  // valid UTF-8 kept
}

TEST_F(HtmlReportTest, ARunInProgressShowsWhatIsFinishedAndSaysSo) {
  Suite({"t1", "t2"});
  Run({"a", "b"}, {"t1", "t2"});
  Finish(0, Out::kStrict);
  Finish(1, Out::kFailed);
  // 2 and 3 queued.
  pugi::xml_document doc;
  Render(doc);
  auto progress = doc.select_node("//*[@id='progress']");
  ASSERT_TRUE(progress);
  EXPECT_THAT(Text(progress.node()), HasSubstr("in progress"));
  EXPECT_THAT(Text(progress.node()), HasSubstr("2 of 4 attempts are finished"));
  EXPECT_EQ(Count(doc, "//*[@id='grid']//a[" + Class("o-pending") + "]"), 2u);
  // The agents' rates are over their finished attempts: 1 of 1 for a.
  auto row = doc.select_node("//*[@id='agents']//tr[@data-agent='a']");
  ASSERT_TRUE(row);
  EXPECT_THAT(Text(row.node()), HasSubstr("100.0%"));
  EXPECT_THAT(Text(doc.select_node("//section[@id='attempt-2']").node()),
              HasSubstr("not finished"));
}

TEST_F(HtmlReportTest, ARunWithoutAScoredAttemptSaysThereIsNothingToCompare) {
  Suite({"t1"});
  Run({"a", "b"}, {"t1"});
  Finish(0, Out::kInfra);
  pugi::xml_document doc;
  Render(doc);
  auto headline = doc.select_node("//*[@id='headline']");
  ASSERT_TRUE(headline);
  EXPECT_THAT(Text(headline.node()), HasSubstr("No attempt of this run is scored yet"));
  EXPECT_EQ(Count(doc, "//*[@id='agents']//tr[@data-agent]"), 2u);
  EXPECT_EQ(Count(doc, "//*[@id='grid']//a[@href]"), 2u);
  EXPECT_THAT(Text(doc.select_node("//*[@id='cost']").node()), HasSubstr("No cost reported"));
}

TEST_F(HtmlReportTest, HeadlineNamesTheBestAgentOnlyWhenTheDifferenceIsSignificant) {
  std::vector<std::string> tasks;
  for (int i = 0; i < 30; ++i) tasks.push_back(fmt::format("t{:02}", i));
  Suite(tasks);
  Run({"weak", "strong"}, tasks);
  // strong completes all 30 strictly, weak 5 of them: McNemar p < 0.001.
  for (int i = 0; i < 30; ++i) {
    Finish(2 * i, i < 5 ? Out::kStrict : Out::kFailed, "", 0);
    Finish(2 * i + 1, Out::kStrict, "", 0);
  }
  FinishRun();
  pugi::xml_document doc;
  Render(doc);
  std::string headline = Text(doc.select_node("//*[@id='headline']").node());
  EXPECT_THAT(headline, HasSubstr("strong is best on strict completion"));
  EXPECT_THAT(headline, HasSubstr("83 points more than weak"));
  EXPECT_THAT(headline, HasSubstr("p < 0.001"));

  // Two agents that differ on two tasks of thirty cannot be told apart.
  Run({"x", "y"}, tasks, 1, "r2");
  for (int i = 0; i < 30; ++i) {
    Finish(2 * i, i < 12 ? Out::kStrict : Out::kFailed, "", 0);
    Finish(2 * i + 1, i < 14 ? Out::kStrict : Out::kFailed, "", 0);
  }
  pugi::xml_document doc2;
  Render(doc2, "r2");
  headline = Text(doc2.select_node("//*[@id='headline']").node());
  EXPECT_THAT(headline, HasSubstr("y and x cannot be told apart on strict completion"));
  EXPECT_THAT(headline, HasSubstr("p = 0.50"));
  EXPECT_THAT(headline, HasSubstr("not detectable with 30 tasks"));
}

TEST_F(HtmlReportTest, LongDiffsAndTracesAreCutAndSayWhere) {
  Suite({"t1"}, 500);
  Run({"a"}, {"t1"});
  Finish(0, Out::kFailed, Patch("agent", 1000), 200);
  FinishRun();
  pugi::xml_document doc;
  Render(doc);
  const std::string section = Text(doc.select_node("//section[@id='attempt-0']").node());
  EXPECT_THAT(section, HasSubstr("of 1004 lines"));
  EXPECT_THAT(section, HasSubstr("of 504 lines"));
  EXPECT_THAT(section, HasSubstr("crucible show r1/0"));
  EXPECT_THAT(section, HasSubstr("of 200 events"));
  EXPECT_THAT(section, Not(HasSubstr("agent line 999")));
}

TEST_F(HtmlReportTest, TheReportCommandWritesThePageAndPrintsItsPath) {
  Suite({"t1"});
  Run({"a"}, {"t1"});
  Finish(0, Out::kStrict);
  FinishRun();
  store_.reset();  // the command opens the database itself
  const std::string db = tmp_->path() + "/db";
  const std::string file = tmp_->path() + "/report.html";
  auto out =
      testing::Crucible("report r1 --html " + testing::Quote(file) + " --db " + testing::Quote(db));
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_EQ(out.text, file + "\n");
  auto html = ReadFile(file);
  ASSERT_TRUE(html) << html.error().ToString();
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_buffer(html->data(), html->size()));
  EXPECT_TRUE(doc.select_node("//section[@id='attempt-0']"));

  out = testing::Crucible("report nope --html " + testing::Quote(file) + " --db " +
                          testing::Quote(db));
  EXPECT_NE(out.status, 0);
  EXPECT_THAT(out.text, HasSubstr("run 'nope' not found"));
  out = testing::Crucible("report r1 --html " + testing::Quote(tmp_->path() + "/no/dir/x.html") +
                          " --db " + testing::Quote(db));
  EXPECT_NE(out.status, 0);
  EXPECT_THAT(out.text, HasSubstr("writing the HTML report to"));
}

TEST_F(HtmlReportTest, TheComparisonPageShowsEachMetricAndTheFlippedAttempts) {
  const std::string evil = "<script>alert(1)</script>";
  std::vector<std::string> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back(fmt::format("t{:02}", i));
  Suite(tasks);
  Run({"a", evil}, tasks);
  // a: strict on 4 tasks; evil: strict on 16 (the first 4 too).
  for (int i = 0; i < 20; ++i) {
    Finish(2 * i, i < 4 ? Out::kStrict : Out::kFailed, "", 0);
    Finish(2 * i + 1, i < 16 ? Out::kStrict : Out::kFailed, "", 0);
  }
  FinishRun();
  auto c = Compare(*store_, {{"r1", "a"}, {"r1", evil}});
  ASSERT_TRUE(c) << c.error().ToString();
  const std::string html = RenderComparisonHtml(*c);
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_buffer(html.data(), html.size()));
  EXPECT_EQ(Count(doc, "//script"), 1u);
  EXPECT_THAT(html, Not(HasSubstr(evil)));
  ASSERT_EQ(c->comparisons.size(), 1u);
  EXPECT_EQ(Text(doc.select_node("//*[@id='headline']").node()), c->comparisons[0].sentence);
  EXPECT_EQ(Count(doc, "//*[@id='sides']//tr[@data-side='r1:a']"), 1u);
  EXPECT_EQ(Count(doc, "//*[@id='sides']//tr[@data-side='r1:" + evil + "']"), 1u);
  auto section = doc.select_node(
      ("//section[" + Class("comparison") + "][@data-b='r1:" + evil + "']").c_str());
  ASSERT_TRUE(section);
  for (auto metric : kCompareMetrics) {
    EXPECT_TRUE(section.node().select_node(
        (".//table[" + Class("metrics") + "]//tr[@data-metric='" + std::string(metric) + "']")
            .c_str()))
        << metric;
  }
  auto strict = section.node().select_node(".//tr[@data-metric='strict_completion']");
  EXPECT_THAT(Text(strict.node()), HasSubstr("+60.0"));
  EXPECT_THAT(Text(strict.node()), HasSubstr("p < 0.001"));
  // The 12 tasks only the second completed, with both attempt ids.
  auto flips = section.node().select_node(
      (".//*[@data-metric='strict_completion'][" + Class("flips") + "]").c_str());
  ASSERT_TRUE(flips);
  EXPECT_THAT(Text(flips.node()), HasSubstr("only B (12)"));
  EXPECT_THAT(Text(flips.node()), HasSubstr("r1/8 / r1/9"));
}

TEST_F(HtmlReportTest, TheTrendPageDrawsEachAgentPerRun) {
  Suite({"t1", "t2", "t3", "t4"});
  for (int night = 0; night < 3; ++night) {
    Run({"a", "b"}, {"t1", "t2", "t3", "t4"}, 1, fmt::format("night-{}", night));
    for (uint64_t n = 0; n < attempts_.size(); ++n) {
      Finish(n, static_cast<int>(n / 2) <= night ? Out::kStrict : Out::kFailed, "", 0);
    }
    if (night < 2) FinishRun();  // the last night is still running
  }
  auto trend = LoadTrend(*store_, "s");
  ASSERT_TRUE(trend) << trend.error().ToString();
  const std::string html = RenderTrendHtml(*trend);
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_buffer(html.data(), html.size()));
  EXPECT_THAT(Text(doc.select_node("//*[@id='headline']").node()), HasSubstr("3 runs"));
  EXPECT_THAT(Text(doc.select_node("//*[@id='headline']").node()), HasSubstr("1 still running"));
  for (auto chart : {"trend-strict", "trend-loose"}) {
    for (auto agent : {"a", "b"}) {
      auto line = doc.select_node(
          fmt::format("//svg[@id='{}']/polyline[@data-agent='{}']", chart, agent).c_str());
      ASSERT_TRUE(line) << chart << " " << agent;
      // Three points: one per night.
      const std::string points = line.node().attribute("points").value();
      EXPECT_EQ(std::count(points.begin(), points.end(), ','), 3) << points;
    }
  }
  EXPECT_EQ(Count(doc, "//*[@id='trend']//tr[@data-run]"), 6u);
  auto row = doc.select_node("//*[@id='trend']//tr[@data-run='night-1'][@data-agent='a']");
  ASSERT_TRUE(row);
  EXPECT_THAT(Text(row.node()), HasSubstr("50.0%"));  // t1 and t2 of four
}

TEST_F(HtmlReportTest, CompareAndTrendWriteTheirPagesWithHtml) {
  Suite({"t1", "t2"});
  Run({"a", "b"}, {"t1", "t2"});
  for (uint64_t n = 0; n < 4; ++n) Finish(n, n % 2 ? Out::kStrict : Out::kFailed);
  FinishRun();
  store_.reset();  // the commands open the database themselves
  const std::string db = testing::Quote(tmp_->path() + "/db");
  for (const auto& [args, file] : std::vector<std::pair<std::string, std::string>>{
           {"compare r1:a r1:b", tmp_->path() + "/compare.html"},
           {"report --suite s --trend", tmp_->path() + "/trend.html"}}) {
    auto out = testing::Crucible(args + " --html " + testing::Quote(file) + " --db " + db);
    ASSERT_EQ(out.status, 0) << args << ": " << out.text;
    EXPECT_EQ(out.text, file + "\n");
    auto html = ReadFile(file);
    ASSERT_TRUE(html) << html.error().ToString();
    pugi::xml_document doc;
    EXPECT_TRUE(doc.load_buffer(html->data(), html->size())) << args;
    EXPECT_TRUE(doc.select_node("//*[@id='headline']")) << args;
  }
}

TEST_F(HtmlReportTest, AnUnknownRunIsNotFound) {
  auto html = RenderRunHtml(*store_, "nope");
  ASSERT_FALSE(html);
  EXPECT_EQ(html.error().code(), Code::kNotFound);
  EXPECT_THAT(html.error().ToString(), HasSubstr("run 'nope' not found"));
}

// 5 agents x 200 tasks x 3 samples: every attempt with a diff of about 60
// lines, a golden diff of 40 and 30 trace events. The page stays one
// well-formed file of bounded size (printed for docs/reports.md).
TEST_F(HtmlReportTest, FiveAgentsTwoHundredTasksThreeSamples) {
  std::vector<std::string> tasks, agents;
  for (int i = 0; i < 200; ++i) tasks.push_back(fmt::format("{:04}-3f2a1c9d", i));
  for (int i = 0; i < 5; ++i) agents.push_back(fmt::format("agent-{}", i));
  Suite(tasks, 40);
  Run(agents, tasks, 3);
  store_->SetGroupCommit(true);  // one fsync, not 3,000
  for (uint64_t n = 0; n < attempts_.size(); ++n) {
    const Out out = n % 7 == 0 ? Out::kFailed : n % 5 == 0 ? Out::kLoose : Out::kStrict;
    Finish(n, out, Patch(fmt::format("attempt {} of a longer line of code here", n), 60), 30,
           0.01 * static_cast<double>(n % 5 + 1));
  }
  store_->SetGroupCommit(false);
  FinishRun();
  const auto start = std::chrono::steady_clock::now();
  pugi::xml_document doc;
  const std::string html = Render(doc);
  std::printf("5x200x3 page rendered and parsed in %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  std::printf("5x200x3 page: %zu bytes (%.1f MiB)\n", html.size(),
              static_cast<double>(html.size()) / (1 << 20));
  EXPECT_LT(html.size(), 60u << 20);
  EXPECT_EQ(Count(doc, "//*[@id='grid']//a[" + Class("cell") + "]"), 3000u);
  EXPECT_EQ(Count(doc, "//section[" + Class("attempt") + "]"), 3000u);
  EXPECT_EQ(Count(doc, "//*[@id='agents']//tr[@data-agent]"), 5u);
}

}  // namespace
}  // namespace crucible::report
