// `crucible rescore` on a real RocksDB store: a run stored with old scores is
// scored again from its task, evidence and trace.
#include "report/rescore.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "report/report.h"
#include "scoring/score.h"
#include "storage/store.h"
#include "tests/support/run_command.h"

namespace crucible::report {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Quote;

// The agent fixes pkg/a.py as the golden patch does, and also adds an
// unrelated docs/notes.md: an out-of-scope change.
constexpr char kAgentDiff[] =
    "diff --git a/pkg/a.py b/pkg/a.py\n"
    "index 3b18e51..8e3d2f4 100644\n"
    "--- a/pkg/a.py\n"
    "+++ b/pkg/a.py\n"
    "@@ -1,3 +1,3 @@\n"
    " def inc(x):\n"
    "-    return x\n"
    "+    return x + 1\n"
    " \n"
    "diff --git a/docs/notes.md b/docs/notes.md\n"
    "new file mode 100644\n"
    "index 0000000..6a1c0a6\n"
    "--- /dev/null\n"
    "+++ b/docs/notes.md\n"
    "@@ -0,0 +1 @@\n"
    "+Notes nobody asked for.\n";

constexpr char kGoldenDiff[] =
    "diff --git a/pkg/a.py b/pkg/a.py\n"
    "index 3b18e51..8e3d2f4 100644\n"
    "--- a/pkg/a.py\n"
    "+++ b/pkg/a.py\n"
    "@@ -1,3 +1,3 @@\n"
    " def inc(x):\n"
    "-    return x\n"
    "+    return x + 1\n"
    " \n";

class RescoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("crucible-rescore-test-");
    ASSERT_TRUE(tmp.has_value()) << tmp.error().ToString();
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    db_ = tmp_->path() + "/db";
    auto store = storage::Store::Open(db_);
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    store_ = std::move(*store);

    v1::Suite suite;
    suite.set_name("s");
    v1::GoldenTask task;
    task.set_suite("s");
    task.set_id("t-1");
    task.set_intent("make inc increment");
    task.set_source_patch(kGoldenDiff);
    task.add_source_files("pkg/a.py");
    task.add_test_files("tests/test_a.py");
    task.add_fail_to_pass("tests.test_a::test_inc");
    task.add_pass_to_pass("tests.test_a::test_other");
    ASSERT_TRUE(store_->PutSuite(suite, {task}));

    run_.set_id("r1");
    run_.set_suite("s");
    run_.add_agents()->set_name("agent");
    run_.set_samples(1);
  }

  // Stores attempt `number` of task `task` as finished with `evidence` and
  // `score`, and a short trace.
  void Finish(uint64_t number, const std::string& task, const v1::Evidence& evidence,
              const v1::Score& score) {
    v1::Attempt a;
    a.set_run_id("r1");
    a.set_number(number);
    a.set_task_id(task);
    a.set_agent("agent");
    a.set_state(v1::Attempt::DONE);
    attempts_.push_back(a);
    finished_.push_back({a, evidence, score});
  }

  // Writes the run and everything given to Finish.
  void Store() {
    run_.set_attempt_count(static_cast<int>(attempts_.size()));
    std::vector<v1::Attempt> queued = attempts_;
    for (auto& a : queued) a.set_state(v1::Attempt::QUEUED);
    ASSERT_TRUE(store_->CreateRun(run_, queued));
    for (const auto& [a, evidence, score] : finished_) {
      std::vector<v1::TraceEvent> trace(3);
      const char* names[] = {"read_file", "edit_file", "run_tests"};
      for (int i = 0; i < 3; ++i) {
        trace[i].set_seq(i);
        trace[i].set_ts_ns(1000 * (i + 1));
        trace[i].set_kind("TOOL");
        trace[i].set_source("agent");
        trace[i].set_name(names[i]);
        trace[i].set_attrs_json(i < 2 ? R"({"path":"pkg/a.py"})" : R"({"failed":0})");
      }
      ASSERT_TRUE(store_->AppendEvents("r1", a.number(), trace));
      ASSERT_TRUE(store_->FinishAttempt(a, evidence, score));
    }
  }

  static v1::Evidence EvidenceWith(const std::string& diff, v1::TestOutcome::Status f2p) {
    v1::Evidence e;
    e.set_final_diff(diff);
    e.set_diff_bytes(diff.size());
    std::string error;
    for (auto& c : scoring::DescribeChanges(diff, &error)) *e.add_changes() = std::move(c);
    for (auto& c : scoring::DescribeChanges(kGoldenDiff, &error)) {
      *e.add_golden_changes() = std::move(c);
    }
    EXPECT_EQ(error, "");
    for (const auto& c : e.changes()) e.add_files_touched(c.path());
    auto add = [&](const char* id, v1::TestOutcome::Status s) {
      auto* t = e.mutable_tests()->add_tests();
      t->set_id(id);
      t->set_status(s);
    };
    add("tests.test_a::test_inc", f2p);
    add("tests.test_a::test_other", v1::TestOutcome::PASSED);
    e.mutable_tests()->set_report_found(true);
    e.set_wall_ms(1200);
    return e;
  }

  // A score as the first scoring wrote it: completion only, no version.
  static v1::Score OldScore(bool completed) {
    v1::Score s;
    s.set_completed(completed);
    s.set_f2p_total(1);
    s.set_f2p_passed(completed ? 1 : 0);
    s.set_wall_ms(1200);
    return s;
  }

  v1::Score StoredScore(uint64_t number) {
    auto s = store_->GetScore("r1", number);
    EXPECT_TRUE(s.has_value()) << s.error().ToString();
    return s ? *s : v1::Score();
  }

  testing::CommandOutput Crucible(const std::string& args) {
    return testing::Sh(std::string(CRUCIBLE_BIN) + " " + args + " --db " + Quote(db_));
  }

  std::unique_ptr<TempDir> tmp_;
  std::string db_;
  storage::StorePtr store_;
  v1::Run run_;
  std::vector<v1::Attempt> attempts_;
  struct Finished {
    v1::Attempt attempt;
    v1::Evidence evidence;
    v1::Score score;
  };
  std::vector<Finished> finished_;
};

TEST_F(RescoreTest, StoresTheNewScoreAndNamesWhatChanged) {
  // Attempt 0 was scored as passing, but its evidence says the new test
  // fails: rescoring flips it. Attempt 1 keeps its verdict.
  Finish(0, "t-1", EvidenceWith(kGoldenDiff, v1::TestOutcome::FAILED), OldScore(true));
  Finish(1, "t-1", EvidenceWith(kGoldenDiff, v1::TestOutcome::PASSED), OldScore(true));
  Store();
  auto summary = RescoreRun(*store_, "r1");
  ASSERT_TRUE(summary.has_value()) << summary.error().ToString();
  EXPECT_EQ(summary->rescored, 2u);
  EXPECT_TRUE(summary->skipped.empty());
  ASSERT_GE(summary->changed.size(), 1u);
  EXPECT_EQ(summary->changed[0].number, 0u);
  EXPECT_EQ(summary->changed[0].changes[0], "tests pass: yes -> no");

  v1::Score s0 = StoredScore(0);
  EXPECT_EQ(s0.scoring_version(), scoring::kScoringVersion);
  EXPECT_FALSE(s0.completed());
  EXPECT_THAT(s0.reason(), HasSubstr("tests.test_a::test_inc"));
  v1::Score s1 = StoredScore(1);
  EXPECT_EQ(s1.scoring_version(), scoring::kScoringVersion);
  EXPECT_TRUE(s1.completed());

  auto text = RenderRescore(*summary);
  EXPECT_THAT(text,
              HasSubstr("attempt 0 (agent agent, task t-1, sample 0): tests pass: yes -> no"));
  EXPECT_THAT(text, HasSubstr(fmt::format("rescored 2 attempts of run r1 with scoring version {}: "
                                          "{} changed",
                                          scoring::kScoringVersion, summary->changed.size())));
}

TEST_F(RescoreTest, AnOutOfScopeFileBecomesAViolation) {
  const v1::Evidence evidence = EvidenceWith(kAgentDiff, v1::TestOutcome::PASSED);
  {
    // This test needs the review bar of scoring version 2; it checks what
    // rescore does with it, not the bar itself (tests/scoring does).
    const v1::GoldenTask task = *store_->GetTask("s", "t-1");
    const v1::ReviewRules rules;
    v1::Score direct =
        scoring::ScoreAttempt({.task = task, .evidence = evidence, .trace = {}, .rules = rules});
    if (direct.violations().empty()) GTEST_SKIP() << "scoring finds no out_of_scope violation yet";
  }
  Finish(0, "t-1", evidence, OldScore(true));
  Store();
  auto summary = RescoreRun(*store_, "r1");
  ASSERT_TRUE(summary.has_value()) << summary.error().ToString();
  ASSERT_EQ(summary->changed.size(), 1u);
  EXPECT_THAT(summary->changed[0].changes,
              ::testing::Contains(HasSubstr("+ out_of_scope docs/notes.md")));
  v1::Score stored = StoredScore(0);
  EXPECT_TRUE(stored.completed());
  EXPECT_FALSE(stored.strict_completed());
  EXPECT_TRUE(stored.out_of_scope());
  ASSERT_GE(stored.violations_size(), 1);
  EXPECT_EQ(stored.violations(0).kind(), "out_of_scope");
  EXPECT_EQ(stored.violations(0).file(), "docs/notes.md");
  EXPECT_THAT(RenderRescore(*summary), HasSubstr("+ out_of_scope docs/notes.md"));
}

TEST_F(RescoreTest, DryRunStoresNothing) {
  Finish(0, "t-1", EvidenceWith(kAgentDiff, v1::TestOutcome::FAILED), OldScore(true));
  Store();
  const std::string before = StoredScore(0).SerializeAsString();
  auto summary = RescoreRun(*store_, "r1", {.dry_run = true});
  ASSERT_TRUE(summary.has_value()) << summary.error().ToString();
  EXPECT_EQ(summary->rescored, 1u);
  ASSERT_EQ(summary->changed.size(), 1u);
  EXPECT_EQ(StoredScore(0).SerializeAsString(), before);
  auto text = RenderRescore(*summary);
  EXPECT_THAT(text, HasSubstr("would rescore 1 attempt of run r1"));
  EXPECT_THAT(text, HasSubstr("dry run: nothing stored"));
}

TEST_F(RescoreTest, AnAttemptWhoseTaskIsGoneIsSkippedAndKeepsItsScore) {
  Finish(0, "t-gone", EvidenceWith(kGoldenDiff, v1::TestOutcome::FAILED), OldScore(true));
  Finish(1, "t-1", EvidenceWith(kGoldenDiff, v1::TestOutcome::PASSED), OldScore(true));
  Store();
  const std::string before = StoredScore(0).SerializeAsString();
  auto summary = RescoreRun(*store_, "r1");
  ASSERT_TRUE(summary.has_value()) << summary.error().ToString();
  EXPECT_EQ(summary->rescored, 1u);
  ASSERT_EQ(summary->skipped.size(), 1u);
  EXPECT_EQ(summary->skipped[0].number, 0u);
  EXPECT_FALSE(summary->skipped[0].error);
  EXPECT_THAT(summary->skipped[0].reason, HasSubstr("task 't-gone' of suite 's' not found"));
  EXPECT_EQ(StoredScore(0).SerializeAsString(), before);
  EXPECT_EQ(StoredScore(1).scoring_version(), scoring::kScoringVersion);
  auto text = RenderRescore(*summary);
  EXPECT_THAT(text,
              HasSubstr("attempt 0 (task t-gone) skipped, its old score kept: task 't-gone'"));
  EXPECT_THAT(text, HasSubstr(", 1 skipped"));
}

TEST_F(RescoreTest, AnUnknownRunIsNamed) {
  auto summary = RescoreRun(*store_, "r-nope");
  ASSERT_FALSE(summary.has_value());
  EXPECT_EQ(summary.error().code(), Code::kNotFound);
  EXPECT_THAT(summary.error().message(), HasSubstr("run 'r-nope' not found"));
}

TEST_F(RescoreTest, AStoreThatRefusesTheWriteLeavesTheOldScore) {
  Finish(0, "t-1", EvidenceWith(kGoldenDiff, v1::TestOutcome::FAILED), OldScore(true));
  Store();
  const std::string before = StoredScore(0).SerializeAsString();
  // A read-only view of the same database refuses every write.
  auto read_only = storage::Store::Open(db_, {.read_only = true});
  ASSERT_TRUE(read_only.has_value()) << read_only.error().ToString();
  auto summary = RescoreRun(**read_only, "r1");
  ASSERT_FALSE(summary.has_value());
  EXPECT_THAT(summary.error().message(), HasSubstr("rescoring run 'r1': attempt 0: "));
  EXPECT_THAT(summary.error().message(), HasSubstr("0 scores stored before it"));
  EXPECT_EQ(StoredScore(0).SerializeAsString(), before);
}

TEST(DescribeScoreChange, NamesFlipsViolationsFindingsDimensionsAndFailureModes) {
  v1::Score before;
  before.set_completed(true);
  before.set_strict_completed(true);
  auto* gone = before.add_violations();
  gone->set_kind("reformat");
  gone->set_file("pkg/a.py");
  gone->set_line(4);
  before.mutable_dimensions()->mutable_replay()->set_measured(true);
  before.mutable_dimensions()->mutable_replay()->set_value(1.0);
  before.mutable_dimensions()->mutable_plan()->set_measured(true);
  before.mutable_dimensions()->mutable_plan()->set_value(0.5);
  v1::Score after = before;
  after.set_scoring_version(2);
  after.set_strict_completed(false);
  after.set_regression_measured(true);
  after.set_regression(true);
  after.clear_violations();
  auto* v = after.add_violations();
  v->set_kind("out_of_scope");
  v->set_file("docs/notes.md");
  auto* f = after.add_findings();
  f->set_rule("injection.eval");
  f->set_file("pkg/a.py");
  f->set_line(9);
  after.mutable_dimensions()->mutable_replay()->set_value(0.7);
  after.mutable_dimensions()->clear_plan();
  after.mutable_dimensions()->mutable_coherence()->set_measured(true);
  after.mutable_dimensions()->mutable_coherence()->set_value(0.4);
  after.add_failure_modes("scope-creep");
  EXPECT_THAT(
      DescribeScoreChange(before, after),
      ElementsAre("strict completion: yes -> no", "regression: not measured -> yes",
                  "+ out_of_scope docs/notes.md", "- reformat pkg/a.py:4",
                  "+ finding injection.eval pkg/a.py:9", "replay: 1.00 -> 0.70",
                  "coherence: null -> 0.40", "plan: 0.50 -> null", "+ failure mode scope-creep"));
  // The version alone is no change of verdict.
  v1::Score same = before;
  same.set_scoring_version(2);
  same.set_wall_ms(99);
  EXPECT_THAT(DescribeScoreChange(before, same), ::testing::IsEmpty());
}

TEST_F(RescoreTest, CommandRescoresThenReportShowsTheAttempt) {
  Finish(0, "t-1", EvidenceWith(kGoldenDiff, v1::TestOutcome::FAILED), OldScore(true));
  Finish(1, "t-gone", EvidenceWith(kGoldenDiff, v1::TestOutcome::PASSED), OldScore(true));
  Store();
  const std::string before = StoredScore(0).SerializeAsString();
  store_.reset();  // the command opens the database for writing

  auto dry = Crucible("rescore r1 --dry-run");
  ASSERT_EQ(dry.status, 0) << dry.text;
  EXPECT_THAT(dry.text,
              HasSubstr("attempt 0 (agent agent, task t-1, sample 0): tests pass: yes -> no"));
  EXPECT_THAT(dry.text, HasSubstr("attempt 1 (task t-gone) skipped"));
  EXPECT_THAT(dry.text, HasSubstr("would rescore 1 attempt of run r1"));
  {
    auto store = storage::Store::Open(db_, {.read_only = true});
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    EXPECT_EQ((*store)->GetScore("r1", 0)->SerializeAsString(), before);
  }

  auto out = Crucible("rescore r1");
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_THAT(out.text,
              HasSubstr(fmt::format("rescored 1 attempt of run r1 with scoring version {}",
                                    scoring::kScoringVersion)));
  EXPECT_THAT(out.text, Not(HasSubstr("dry run")));

  auto report = Crucible("report r1 --by attempt --format json");
  ASSERT_EQ(report.status, 0) << report.text;
  auto json = nlohmann::json::parse(report.text);
  ASSERT_EQ(json.size(), 2u) << report.text;
  EXPECT_EQ(json[0]["attempt_id"], 0);
  EXPECT_EQ(json[0]["tests_passed"], false);
  EXPECT_EQ(json[0]["scoring_version"], scoring::kScoringVersion);
  EXPECT_EQ(json[1]["scoring_version"], 0);  // skipped: the old score

  auto table = Crucible("report r1 --by attempt");
  ASSERT_EQ(table.status, 0) << table.text;
  EXPECT_THAT(table.text, HasSubstr("t-gone"));

  auto missing = Crucible("rescore r-nope");
  EXPECT_NE(missing.status, 0);
  EXPECT_THAT(missing.text, HasSubstr("run 'r-nope' not found"));
}

}  // namespace
}  // namespace crucible::report
