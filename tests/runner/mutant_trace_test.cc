// The trace faults of the calibration mutants (agent-runner/mutants.h):
// pile-on, blind and off-plan change only the trace. Each runs as a real
// attempt (a real git repository, the real sandbox) and its score must show
// the fault in the dimension meant for it and nowhere else.
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent-runner/attempt.h"
#include "agent-runner/mutants.h"
#include "base/fs.h"
#include "scoring/calibration.h"
#include "scoring/score.h"
#include "tests/runner/value_tests.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::runner {
namespace {

using crucible::testing::GitRepo;

class MutantTraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    repo_.Write("README.md", "# value\n");
    task_ = ValueTask(repo_);
    auto dir = TempDir::Create("crucible-mutant-trace-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  Result<v1::Evidence> Perform(const std::string& command) {
    events_.clear();
    v1::AgentSpec agent;
    agent.set_name("a");
    agent.set_command(command);
    AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt-" + std::to_string(++n_);
    ctx.emit = [this](v1::TraceEvent ev) {
      ev.set_seq(events_.size());
      events_.push_back(std::move(ev));
    };
    return PerformAttempt(task_, agent, ctx);
  }

  v1::Score Score(const v1::Evidence& evidence) {
    v1::ReviewRules rules;
    return scoring::ScoreAttempt(
        {.task = task_, .evidence = evidence, .trace = events_, .rules = rules});
  }

  // The attributes of the runner's "mutant" event; null if none.
  nlohmann::json MutantEvent() const {
    for (const auto& e : events_) {
      if (e.source() == "runner" && e.name() == "mutant")
        return nlohmann::json::parse(e.attrs_json());
    }
    return nullptr;
  }

  GitRepo repo_;
  v1::GoldenTask task_;
  std::unique_ptr<TempDir> dir_;
  std::vector<v1::TraceEvent> events_;
  int n_ = 0;
};

// What every trace fault keeps: the golden change, so the tests pass, no
// violation, and the dimensions of the diff untouched.
void ExpectGoldenChange(const v1::Evidence& evidence, const v1::Score& score) {
  EXPECT_EQ(evidence.files_touched_size(), 1);
  EXPECT_TRUE(score.completed()) << score.reason();
  EXPECT_TRUE(score.strict_completed());
  EXPECT_EQ(score.violations_size(), 0);
  EXPECT_TRUE(score.dimensions().replay().measured());
  EXPECT_DOUBLE_EQ(score.dimensions().replay().value(), 1.0);
}

TEST_F(MutantTraceTest, PileOnIsCaughtByRollbackAlone) {
  auto evidence = Perform("builtin:mutant-pile-on");
  ASSERT_TRUE(evidence) << evidence.error().message();
  EXPECT_EQ(evidence->mutation().kind(), "pile-on");
  EXPECT_TRUE(evidence->mutation().applicable());
  EXPECT_EQ(evidence->mutation().file(), "value.txt");
  v1::Score score = Score(*evidence);
  ExpectGoldenChange(*evidence, score);
  ASSERT_TRUE(score.dimensions().rollback().measured()) << score.dimensions().rollback().reason();
  EXPECT_LT(score.dimensions().rollback().value(), 1.0);
  EXPECT_TRUE(score.rollback().pile_on());
  EXPECT_EQ(score.rollback().failures(), 1);
  EXPECT_DOUBLE_EQ(score.rollback().edits_per_failure(), 3.0);
  // The rest of the trace is clean: read before edit, on plan, tests last.
  EXPECT_DOUBLE_EQ(score.dimensions().tool_calls().value(), 1.0)
      << score.dimensions().tool_calls().reason();
  EXPECT_DOUBLE_EQ(score.dimensions().plan().value(), 1.0);
  EXPECT_EQ(score.tool_calls().commit_matches_diff(), "held");
  auto event = MutantEvent();
  ASSERT_FALSE(event.is_null());
  EXPECT_EQ(event["kind"], "pile-on");
  EXPECT_EQ(event["applicable"], true);
}

TEST_F(MutantTraceTest, BlindIsCaughtByToolCallsAlone) {
  auto evidence = Perform("builtin:mutant-blind");
  ASSERT_TRUE(evidence) << evidence.error().message();
  v1::Score score = Score(*evidence);
  ExpectGoldenChange(*evidence, score);
  EXPECT_EQ(score.tool_calls().tests_after_last_edit(), "failed");
  EXPECT_EQ(score.tool_calls().read_before_edit(), "held");
  EXPECT_EQ(score.tool_calls().edits_on_plan(), "held");
  EXPECT_LT(score.dimensions().tool_calls().value(), 1.0);
  EXPECT_DOUBLE_EQ(score.dimensions().plan().value(), 1.0);
  EXPECT_FALSE(score.dimensions().rollback().measured());  // the tests never failed
}

TEST_F(MutantTraceTest, OffPlanIsCaughtByThePlan) {
  auto evidence = Perform("builtin:mutant-off-plan");
  ASSERT_TRUE(evidence) << evidence.error().message();
  EXPECT_TRUE(evidence->mutation().applicable());
  // The plan names another file of the repository, not a test file.
  EXPECT_EQ(evidence->mutation().file(), "README.md");
  v1::Score score = Score(*evidence);
  ExpectGoldenChange(*evidence, score);
  ASSERT_TRUE(score.dimensions().plan().measured());
  EXPECT_NEAR(score.dimensions().plan().value(), 0.2, 1e-9);  // 1 - 0.5 - 0.3
  EXPECT_EQ(score.tool_calls().edits_on_plan(), "failed");
  EXPECT_EQ(score.tool_calls().read_before_edit(), "held");
  EXPECT_EQ(score.tool_calls().tests_after_last_edit(), "held");
}

TEST_F(MutantTraceTest, AnUnknownMutantIsRefusedByName) {
  auto evidence = Perform("builtin:mutant-nonsense");
  ASSERT_FALSE(evidence);
  EXPECT_EQ(evidence.error().code(), Code::kInvalidArgument);
  EXPECT_NE(evidence.error().message().find("builtin:mutant-nonsense"), std::string::npos)
      << evidence.error().message();
}

TEST(MutantKindTest, NamesOnlyKnownKinds) {
  EXPECT_EQ(MutantKind("builtin:mutant-blind"), "blind");
  EXPECT_EQ(MutantKind("builtin:mutant-"), "");
  EXPECT_EQ(MutantKind("builtin:oracle"), "");
  EXPECT_EQ(MutantKind("mutant-blind"), "");
  for (const auto& kind : scoring::MutantKinds()) {
    EXPECT_EQ(MutantKind("builtin:mutant-" + kind), kind);
  }
}

TEST(ExpectationsTest, EveryMutantHasARowThatMustCatchIt) {
  const auto& rows = scoring::Expectations();
  ASSERT_EQ(rows.size(), scoring::MutantKinds().size() + 2);
  EXPECT_EQ(rows[0].agent, "oracle");
  EXPECT_TRUE(rows[0].meant.empty());
  EXPECT_TRUE(rows[0].allowed.empty());
  EXPECT_EQ(rows[1].agent, "noop");
  for (size_t i = 0; i < scoring::MutantKinds().size(); ++i) {
    EXPECT_EQ(rows[i + 2].agent, "mutant-" + scoring::MutantKinds()[i]);
    EXPECT_FALSE(rows[i + 2].meant.empty()) << rows[i + 2].agent;
  }
}

}  // namespace
}  // namespace crucible::runner
