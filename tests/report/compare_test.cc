// `crucible compare`: pairing by task and sample, the statistics per metric,
// the closing sentence and the CI gate, on constructed runs (CompareViews)
// and through the binary on a real RocksDB store.
#include "report/compare.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/report/store_fixture.h"
#include "tests/support/run_command.h"

namespace crucible::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Quote;

// A version-2 score: loose and strict completion alike, regression measured
// and absent unless asked.
v1::Score Scored(bool completed, bool regression = false) {
  v1::Score s;
  s.set_scoring_version(2);
  s.set_completed(completed);
  s.set_strict_completed(completed);
  s.set_merge_ready_round(completed ? 1 : 0);
  s.set_regression_measured(true);
  s.set_regression(regression);
  s.mutable_dimensions()->mutable_replay()->set_measured(true);
  s.mutable_dimensions()->mutable_replay()->set_value(completed ? 0.9 : 0.3);
  return s;
}

// A run built in memory, attempts in the order added.
struct RunBuilder {
  RunView view;

  RunBuilder(const std::string& id, const std::string& suite, std::vector<std::string> agents,
             int samples = 1) {
    view.run.set_id(id);
    view.run.set_suite(suite);
    view.run.set_samples(samples);
    view.run.set_state(v1::Run::FINISHED);
    for (const auto& a : agents) view.run.add_agents()->set_name(a);
  }

  // An attempt; `completed` nullopt: not finished, or infra-failed with
  // `failed`.
  void Add(const std::string& agent, const std::string& task, std::optional<bool> completed,
           int sample = 0, bool failed = false) {
    AttemptView v;
    v.attempt.set_run_id(view.run.id());
    v.attempt.set_number(view.attempts.size());
    v.attempt.set_agent(agent);
    v.attempt.set_task_id(task);
    v.attempt.set_sample(sample);
    v.attempt.set_state(failed      ? v1::Attempt::FAILED
                        : completed ? v1::Attempt::DONE
                                    : v1::Attempt::RUNNING);
    if (completed) v.score = Scored(*completed);
    view.attempts.push_back(std::move(v));
  }
};

const MetricComparison& Metric(const SideComparison& sc, std::string_view name) {
  for (const auto& m : sc.metrics) {
    if (m.name == name) return m;
  }
  ADD_FAILURE() << "no metric " << name;
  return sc.metrics.front();
}

std::string Task(int i) { return "t-" + std::to_string(i); }

// 12 tasks: both complete 2, only A 1, only B 9, neither 0.
RunBuilder NineFlipsToB() {
  RunBuilder r("r1", "s", {"a", "b"});
  for (int i = 0; i < 12; ++i) {
    const bool a = i < 3;
    const bool b = i < 2 || i >= 3;
    r.Add("a", Task(i), a);
    r.Add("b", Task(i), b);
  }
  return r;
}

TEST(CompareViewsTest, KnownFlipsGiveTheExactMcNemarP) {
  RunBuilder r = NineFlipsToB();
  auto c = CompareViews({&r.view, &r.view}, {"a", "b"});
  ASSERT_TRUE(c) << c.error().ToString();
  ASSERT_EQ(c->comparisons.size(), 1u);
  const SideComparison& sc = c->comparisons[0];
  EXPECT_EQ(sc.pairs, 12);
  EXPECT_EQ(sc.tasks, 12);
  const MetricComparison& loose = Metric(sc, "loose_completion");
  EXPECT_EQ(loose.only_a, 1);
  EXPECT_EQ(loose.only_b, 9);
  // python3: import math; print(2*sum(math.comb(10,i) for i in range(2))/2**10)
  EXPECT_NEAR(loose.p, 0.021484375, 1e-12);
  EXPECT_EQ(loose.test, "mcnemar_exact");
  EXPECT_TRUE(loose.significant);
  EXPECT_NEAR(*loose.a, 3.0 / 12, 1e-12);
  EXPECT_NEAR(*loose.b, 11.0 / 12, 1e-12);
  EXPECT_NEAR(loose.difference.value, 8.0 / 12, 1e-12);
  EXPECT_LE(loose.difference.ci.low, loose.difference.value);
  EXPECT_GE(loose.difference.ci.high, loose.difference.value);
  // Wilson of 3/12 (python3, the formula of Newcombe 1998): 0.0889 .. 0.5323.
  EXPECT_NEAR(loose.a_ci->low, 0.0889, 1e-4);
  EXPECT_NEAR(loose.a_ci->high, 0.5323, 1e-4);
  // The flips, with the attempts that show them.
  ASSERT_EQ(loose.flips_to_a.size(), 1u);
  EXPECT_EQ(loose.flips_to_a[0].task_id, "t-2");
  EXPECT_EQ(loose.flips_to_a[0].a_attempt, "r1/4");
  EXPECT_EQ(loose.flips_to_a[0].b_attempt, "r1/5");
  ASSERT_EQ(loose.flips_to_b.size(), 9u);
  EXPECT_EQ(loose.flips_to_b[0].task_id, "t-10");  // task order
  // The headline is strict completion (every pair has a version-2 score).
  EXPECT_EQ(sc.headline_metric, "strict_completion");
  EXPECT_THAT(sc.sentence, HasSubstr("r1:b completes 67 points more than r1:a, 95% CI "));
  EXPECT_THAT(sc.sentence, HasSubstr("p = 0.02 (strict completion)"));
  // A dimension is a mean: the sign test over the pairs that differ.
  const MetricComparison& replay = Metric(sc, "replay");
  EXPECT_EQ(replay.test, "sign_test");
  EXPECT_NEAR(replay.p, 0.021484375, 1e-12);
  EXPECT_NEAR(replay.difference.value, 0.6 * 8 / 12, 1e-12);
  // No evidence of cost: no pair.
  EXPECT_EQ(Metric(sc, "cost_per_attempt").pairs, 0);
  EXPECT_FALSE(Metric(sc, "cost_per_attempt").significant);
}

TEST(CompareViewsTest, IndistinguishableAgentsSayWhatTheSuiteCanDetect) {
  // 10 tasks, each agent completes the same 5: no discordant pair, so the
  // detectable difference is planned from independent rates of 0.5:
  // psi = 0.5, (1.95996 + 0.84162) * sqrt(0.5) / sqrt(10) = 0.6264 -> 63.
  RunBuilder r("r1", "s", {"a", "b"});
  for (int i = 0; i < 10; ++i) {
    r.Add("a", Task(i), i < 5);
    r.Add("b", Task(i), i < 5);
  }
  auto c = CompareViews({&r.view, &r.view}, {"a", "b"});
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->comparisons[0].sentence,
            "these agents cannot be told apart: differences under 63 points are not detectable "
            "with 10 tasks");
}

TEST(CompareViewsTest, DifferentSuitesCompareTheSharedTasksAndCountTheRest) {
  RunBuilder r1("r1", "s1", {"a"});
  for (int i = 0; i < 5; ++i) r1.Add("a", Task(i), true);  // t-0 .. t-4
  RunBuilder r2("r2", "s2", {"a"});
  for (int i = 2; i < 8; ++i) r2.Add("a", Task(i), false);  // t-2 .. t-7
  auto c = CompareViews({&r1.view, &r2.view}, {"a", "a"});
  ASSERT_TRUE(c) << c.error().ToString();
  const SideComparison& sc = c->comparisons[0];
  EXPECT_EQ(sc.pairs, 3);
  EXPECT_EQ(sc.a_tasks_not_in_b, 2);
  EXPECT_EQ(sc.b_tasks_not_in_a, 3);
  EXPECT_EQ(sc.sentence.rfind("these runs cannot be told apart", 0), 0u) << sc.sentence;
  const std::string table = RenderComparisonTable(*c);
  EXPECT_THAT(table, HasSubstr("tasks of one side only, left out: 2 of A's 5 tasks, 3 of B's 6"));

  // No task in common: nothing to compare.
  RunBuilder r3("r3", "s3", {"a"});
  r3.Add("a", "other", true);
  auto none = CompareViews({&r1.view, &r3.view}, {"a", "a"});
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message(), HasSubstr("share no task (suites 's1' and 's3')"));
}

TEST(CompareViewsTest, UnfinishedAndInfraFailedPairsAreLeftOutAndCounted) {
  RunBuilder r("r1", "s", {"a", "b"});
  for (int i = 0; i < 6; ++i) {
    r.Add("a", Task(i), true);
    if (i < 3) {
      r.Add("b", Task(i), false);
    } else if (i < 5) {
      r.Add("b", Task(i), std::nullopt);  // still running
    } else {
      r.Add("b", Task(i), std::nullopt, 0, /*failed=*/true);
    }
  }
  r.view.run.set_state(v1::Run::RUNNING);
  auto c = CompareViews({&r.view, &r.view}, {"a", "b"});
  ASSERT_TRUE(c) << c.error().ToString();
  const SideComparison& sc = c->comparisons[0];
  EXPECT_EQ(sc.pairs, 3);
  EXPECT_EQ(sc.left_out_not_finished, 2);
  EXPECT_EQ(sc.left_out_infra_failed, 1);
  EXPECT_EQ(c->sides[1].tasks, 6);  // its tasks, finished or not
  EXPECT_EQ(c->sides[1].finished, 3);
  const std::string table = RenderComparisonTable(*c);
  EXPECT_THAT(table, HasSubstr("2 pairs left out: not finished"));
  EXPECT_THAT(table, HasSubstr("1 pairs left out: infra-failed"));
  EXPECT_THAT(table, HasSubstr("run r1 is still running"));
}

TEST(CompareViewsTest, SidesWithOtherReviewRoundsSayStrictCompletionIsNotComparable) {
  RunBuilder one = NineFlipsToB();
  RunBuilder three = NineFlipsToB();
  three.view.run.set_id("r3");
  three.view.run.mutable_agents(1)->set_rounds(3);
  auto c = CompareViews({&one.view, &three.view}, {"a", "b"});
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->sides[0].rounds, 1);
  EXPECT_EQ(c->sides[1].rounds, 3);
  ASSERT_EQ(c->notes.size(), 1u);
  EXPECT_THAT(c->notes[0], HasSubstr("r3:b had 3 review rounds and the baseline r1:a had 1"));
  EXPECT_THAT(RenderComparisonTable(*c), HasSubstr("not comparable across rounds settings"));
  // The same setting on both sides says nothing.
  auto same = CompareViews({&one.view, &one.view}, {"a", "b"});
  ASSERT_TRUE(same);
  EXPECT_TRUE(same->notes.empty());
}

TEST(CompareViewsTest, AnAgentWithNoFinishedAttemptIsAnError) {
  RunBuilder r("r1", "s", {"a", "b"});
  r.Add("a", Task(0), true);
  r.Add("b", Task(0), std::nullopt, 0, true);
  auto c = CompareViews({&r.view, &r.view}, {"a", "b"});
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(),
              HasSubstr("agent 'b' of run 'r1' has no finished attempts (1 attempts: 1 "
                        "infra-failed"));
}

TEST(CompareViewsTest, MoreThanTwoSidesGetHolmAdjustedPValues) {
  // b: 9 flips to B and 1 to A (p 0.0215); c: 6 to C, 0 to A (p 0.03125).
  RunBuilder r("r1", "s", {"a", "b", "c"});
  for (int i = 0; i < 12; ++i) {
    r.Add("a", Task(i), i < 3);
    r.Add("b", Task(i), i < 2 || i >= 3);
    r.Add("c", Task(i), i < 3 || (i >= 6 && i < 12));
  }
  auto c = CompareViews({&r.view, &r.view, &r.view}, {"a", "b", "c"});
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_TRUE(c->holm);
  ASSERT_EQ(c->comparisons.size(), 2u);
  const auto& pb = Metric(c->comparisons[0], "loose_completion");
  const auto& pc = Metric(c->comparisons[1], "loose_completion");
  EXPECT_NEAR(pb.p, 0.021484375, 1e-12);
  EXPECT_NEAR(pc.p, 0.03125, 1e-12);
  // Holm: 2 * 0.021484375 = 0.04296875, then max(that, 1 * 0.03125).
  EXPECT_NEAR(pb.p_adjusted, 0.04296875, 1e-12);
  EXPECT_NEAR(pc.p_adjusted, 0.04296875, 1e-12);
  EXPECT_THAT(c->comparisons[0].sentence, HasSubstr("Holm-adjusted"));
  EXPECT_THAT(RenderComparisonTable(*c), HasSubstr("p-values are Holm-adjusted over the 2"));
}

TEST(CompareViewsTest, SeveralSamplesGivePassAtKAndPairBySample) {
  RunBuilder r("r1", "s", {"a", "b"}, 3);
  // Per task: a completes samples 0 and 1 of 3; b only sample 2.
  for (int i = 0; i < 4; ++i) {
    for (int s = 0; s < 3; ++s) {
      r.Add("a", Task(i), s < 2, s);
      r.Add("b", Task(i), s == 2, s);
    }
  }
  auto c = CompareViews({&r.view, &r.view}, {"a", "b"});
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->comparisons[0].pairs, 12);
  EXPECT_EQ(c->comparisons[0].tasks, 4);
  const ComparedSide& a = c->sides[0];
  ASSERT_EQ(a.pass_k.size(), 3u);
  // n = 3, c = 2: pass@1 = 2/3, pass@2 = 1, pass^2 = C(2,2)/C(3,2) = 1/3.
  EXPECT_NEAR(a.pass_k[0].pass_at_k, 2.0 / 3, 1e-12);
  EXPECT_NEAR(a.pass_k[1].pass_at_k, 1.0, 1e-12);
  EXPECT_NEAR(a.pass_k[1].pass_hat_k, 1.0 / 3, 1e-12);
  EXPECT_NEAR(a.pass_k[2].pass_hat_k, 0.0, 1e-12);
  // Variance of (1, 1, 0) with n - 1: 1/3.
  EXPECT_NEAR(*a.completion_variance, 1.0 / 3, 1e-12);
  const auto& loose = Metric(c->comparisons[0], "loose_completion");
  // The samples of one task are not independent: the test is the sign test
  // over the 4 tasks (A's mean 2/3 beats B's 1/3 on each): 2 / 2^4.
  EXPECT_EQ(loose.test, "sign_test");
  EXPECT_NEAR(loose.p, 0.125, 1e-12);
  EXPECT_FALSE(loose.significant);
  ASSERT_EQ(loose.flips_to_a.size(), 8u);
  EXPECT_EQ(loose.flips_to_a[0].sample, 0);
  const std::string table = RenderComparisonTable(*c);
  EXPECT_THAT(table, HasSubstr("pass@k and pass^k"));
  // A p under 0.001 is shown as such, never as 0.000: 12 pairs only A,
  // p = 2 / 2^12.
  RunBuilder many("r2", "s", {"a", "b"});
  for (int i = 0; i < 12; ++i) {
    many.Add("a", Task(i), true);
    many.Add("b", Task(i), false);
  }
  auto small = CompareViews({&many.view, &many.view}, {"a", "b"});
  ASSERT_TRUE(small);
  EXPECT_THAT(RenderComparisonTable(*small), HasSubstr("<0.001*"));
  EXPECT_THAT(RenderComparisonTable(*small), Not(HasSubstr("0.000")));
}

TEST(WorseGateTest, ParsesAndNamesWhatIsWrong) {
  auto g = ParseWorseGate("strict_completion:5");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->metric, "strict_completion");
  EXPECT_EQ(g->points, 5);
  auto unknown = ParseWorseGate("speed:5");
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message(), HasSubstr("unknown metric 'speed' (metrics: "));
  EXPECT_FALSE(ParseWorseGate("strict_completion"));
  EXPECT_FALSE(ParseWorseGate("strict_completion:five"));
  EXPECT_FALSE(ParseWorseGate("strict_completion:-1"));
  EXPECT_FALSE(ParseSide(""));
  EXPECT_FALSE(ParseSide("r1:"));
  EXPECT_EQ(ParseSide("r1:a:b")->agent, "a:b");
}

TEST(WorseGateTest, FailsOnlyWhenTheWholeIntervalIsBeyondTheAllowance) {
  RunBuilder r = NineFlipsToB();
  // a against b: b is the baseline here, a is 67 points worse.
  auto c = CompareViews({&r.view, &r.view}, {"b", "a"});
  ASSERT_TRUE(c);
  const auto& m = Metric(c->comparisons[0], "strict_completion");
  ASSERT_TRUE(m.significant);
  const double high_points = -m.difference.ci.high * 100;  // the interval's least-bad end
  auto failed = FailedGates(*c, {{"strict_completion", 5}});
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_THAT(failed[0], HasSubstr("strict_completion: r1:a is 66.7 points worse than r1:b"));
  EXPECT_TRUE(FailedGates(*c, {{"strict_completion", high_points + 1}}).empty());
  // The other way round B is better: no gate fails.
  auto better = CompareViews({&r.view, &r.view}, {"a", "b"});
  EXPECT_TRUE(FailedGates(*better, {{"strict_completion", 0}, {"loose_completion", 0}}).empty());
}

// The binary on a real store: runs, attempts and scores written through
// storage::Store.
class CompareCliTest : public fixture::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    v1::Suite suite;
    suite.set_name("s");
    std::vector<v1::GoldenTask> tasks;
    for (int i = 0; i < 12; ++i) {
      tasks.emplace_back();
      tasks.back().set_id(Task(i));
      tasks.back().add_fail_to_pass("tests::t");
    }
    ASSERT_TRUE(store_->PutSuite(suite, tasks));
  }

  // Stores run `id` whose agents complete the tasks `outcome(agent, task)`
  // says (nullopt: left running, or infra-failed with `failed`).
  void StoreRun(const std::string& id, const std::string& suite,
                const std::vector<std::string>& agents, int tasks,
                const std::function<std::optional<bool>(const std::string&, int)>& outcome,
                v1::Run::State state = v1::Run::FINISHED, int first_task = 0) {
    v1::Run run;
    run.set_id(id);
    run.set_suite(suite);
    run.set_samples(1);
    run.set_state(state);
    for (const auto& a : agents) run.add_agents()->set_name(a);
    std::vector<v1::Attempt> attempts;
    for (int t = first_task; t < first_task + tasks; ++t) {
      for (const auto& agent : agents) {
        v1::Attempt a;
        a.set_run_id(id);
        a.set_number(attempts.size());
        a.set_task_id(Task(t));
        a.set_agent(agent);
        a.set_state(v1::Attempt::QUEUED);
        attempts.push_back(a);
      }
    }
    run.set_attempt_count(static_cast<int>(attempts.size()));
    ASSERT_TRUE(store_->CreateRun(run, attempts));
    for (auto a : attempts) {
      const int t = std::stoi(a.task_id().substr(2));
      auto done = outcome(a.agent(), t);
      if (!done) continue;
      a.set_state(v1::Attempt::DONE);
      ASSERT_TRUE(store_->FinishAttempt(a, v1::Evidence(), Scored(*done)));
    }
  }

  // Closes the store so that the binary can open the database.
  void Close() { store_.reset(); }

  testing::CommandOutput Run(const std::string& args) {
    return testing::Crucible("compare " + args + " --db " + Quote(db_), std::chrono::seconds(60));
  }
};

// Last night: "model" completes 11 of 12; tonight 2 of 12.
TEST_F(CompareCliTest, LastNightAgainstTonightWithTheGate) {
  StoreRun("night1", "s", {"model"}, 12, [](const std::string&, int t) { return t != 0; });
  StoreRun("night2", "s", {"model"}, 12, [](const std::string&, int t) { return t < 2; });
  Close();
  auto out = Run("night1:model night2:model");
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("night2:model completes 75 points less than night1:model"));
  EXPECT_THAT(out.text, Not(HasSubstr("95% CI -")));  // the interval in the sentence's direction
  EXPECT_THAT(out.text,
              HasSubstr("    t-2  A night1/2  B night2/2\n"));  // a flip with its attempts

  auto gate = Run("night1:model night2:model --fail-if-worse strict_completion:10");
  EXPECT_EQ(gate.status, 3) << gate.text;
  EXPECT_THAT(gate.text, HasSubstr("crucible: worse: strict_completion: night2:model is 75.0"));
  // The other way round tonight is the baseline and last night is better.
  auto fine = Run("night2 night1 --fail-if-worse strict_completion:10");
  EXPECT_EQ(fine.status, 0) << fine.text;
  // A gate beyond the interval does not fail.
  auto wide = Run("night1 night2 --fail-if-worse strict_completion:99");
  EXPECT_EQ(wide.status, 0) << wide.text;

  auto json = Run("night1 night2 --format json");
  ASSERT_EQ(json.status, 0) << json.text;
  auto j = nlohmann::json::parse(json.text);
  EXPECT_EQ(j["sides"][0]["run"], "night1");
  EXPECT_EQ(j["comparisons"][0]["pairs"], 12);
  const auto& strict = j["comparisons"][0]["metrics"]["strict_completion"];
  EXPECT_NEAR(strict["difference"].get<double>(), -0.75, 1e-12);
  EXPECT_EQ(strict["only_a"], 10);  // t-2 .. t-11
  EXPECT_EQ(strict["only_b"], 1);   // t-0
  EXPECT_EQ(strict["flips_to_a"].size(), 10u);
  EXPECT_TRUE(strict["significant"].get<bool>());
}

TEST_F(CompareCliTest, CsvIsOneQuotedRowPerMetric) {
  StoreRun("r1", "s", {"fast, cheap", "slow \"careful\""}, 4,
           [](const std::string& agent, int t) { return agent[0] == 'f' || t < 2; });
  Close();
  auto out = Run("r1 --format csv");
  ASSERT_EQ(out.status, 0) << out.text;
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = out.text.find("\r\n", start)) != std::string::npos; start = end + 2) {
    lines.push_back(out.text.substr(start, end - start));
  }
  ASSERT_EQ(lines.size(), 1 + std::size(kCompareMetrics));
  EXPECT_EQ(lines[0].rfind("a,b,metric,pairs,tasks,", 0), 0u);
  EXPECT_EQ(
      lines[1].rfind("\"r1:fast, cheap\",\"r1:slow \"\"careful\"\"\",loose_completion,4,4,", 0), 0u)
      << lines[1];
  // Flips with their attempts; the sentence closes the row.
  EXPECT_THAT(lines[1], HasSubstr(",t-2#0 (r1/4 vs r1/5); t-3#0 (r1/6 vs r1/7),,"));
  EXPECT_THAT(lines[1],
              HasSubstr(",these agents cannot be told apart: differences under 70 points"));
}

TEST_F(CompareCliTest, BadInputSaysWhatIsWrong) {
  StoreRun("r1", "s", {"a", "b"}, 4, [](const std::string&, int) { return true; });
  StoreRun("solo", "s", {"a"}, 4, [](const std::string&, int) { return true; });
  StoreRun(
      "idle", "s", {"a"}, 4, [](const std::string&, int) { return std::nullopt; },
      v1::Run::RUNNING);
  StoreRun(
      "half", "s", {"a"}, 4,
      [](const std::string&, int t) -> std::optional<bool> {
        if (t < 2) return true;
        return std::nullopt;
      },
      v1::Run::RUNNING);
  StoreRun(
      "other", "elsewhere", {"a"}, 2, [](const std::string&, int) { return true; },
      v1::Run::FINISHED, /*first_task=*/100);
  Close();

  auto missing = Run("r1:a nope:a");
  EXPECT_EQ(missing.status, 1);
  EXPECT_THAT(missing.text, HasSubstr("run 'nope' not found"));
  auto agent = Run("r1:a r1:zed");
  EXPECT_EQ(agent.status, 1);
  EXPECT_THAT(agent.text, HasSubstr("agent 'zed' not in run 'r1' (its agents: a, b)"));
  auto one = Run("solo");
  EXPECT_EQ(one.status, 1);
  EXPECT_THAT(one.text, HasSubstr("nothing to compare: solo:a is one agent"));
  auto shared = Run("r1:a other:a");
  EXPECT_EQ(shared.status, 1);
  EXPECT_THAT(shared.text, HasSubstr("share no task (suites 's' and 'elsewhere')"));
  auto idle = Run("r1:a idle:a");
  EXPECT_EQ(idle.status, 1);
  EXPECT_THAT(idle.text, HasSubstr("agent 'a' of run 'idle' has no finished attempts"));
  auto gate = Run("r1:a r1:b --fail-if-worse speed:3");
  EXPECT_EQ(gate.status, 1);
  EXPECT_THAT(gate.text, HasSubstr("unknown metric 'speed'"));
  auto side = Run("r1: r1:b");
  EXPECT_EQ(side.status, 1);
  EXPECT_THAT(side.text, HasSubstr("give RUN or RUN:AGENT"));

  // A run in progress: what finished is compared, and the output says so.
  auto half = Run("r1:a half:a");
  EXPECT_EQ(half.status, 0) << half.text;
  EXPECT_THAT(half.text, HasSubstr("run half is still running"));
  EXPECT_THAT(half.text, HasSubstr("2 pairs left out: not finished"));
}

}  // namespace
}  // namespace crucible::report
