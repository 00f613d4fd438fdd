// The review bar, the metrics of one attempt and bad input
// (docs/scoring.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoring/scanners.h"
#include "tests/scoring/fixtures.h"
#include "vcs/repo.h"

namespace crucible {
namespace {

using namespace crucible::testing;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

TEST(Review, TheGoldenPatchItselfIsAStrictCompletion) {
  auto s = Score(Task(), Passing(GoldenPatch()));
  EXPECT_EQ(s.scoring_version(), scoring::kScoringVersion);
  EXPECT_TRUE(s.completed()) << s.reason();
  EXPECT_TRUE(s.strict_completed());
  EXPECT_THAT(Kinds(s), IsEmpty());
  EXPECT_EQ(s.rounds(), 1);
  EXPECT_EQ(s.merge_ready_round(), 1);
  EXPECT_TRUE(s.regression_measured());
  EXPECT_FALSE(s.regression());
  EXPECT_FALSE(s.out_of_scope());
  EXPECT_DOUBLE_EQ(s.golden_overlap(), 1.0);
  ASSERT_TRUE(s.dimensions().replay().measured()) << s.dimensions().replay().reason();
  EXPECT_DOUBLE_EQ(s.dimensions().replay().value(), 1.0);
  EXPECT_EQ(s.blast_radius().files(), 1);
  EXPECT_EQ(s.blast_radius().modules(), 1);
  EXPECT_EQ(s.blast_radius().lines(), 3);
  EXPECT_EQ(s.blast_radius().broken_tests(), 0);
  EXPECT_THAT(s.failure_modes(), IsEmpty());
}

TEST(Review, AnUnrelatedFileIsOutOfScopeButTestsAndTheChangelogAreNot) {
  const std::string diff = GoldenPatch() + Modify("pkg/unrelated.py", 7, {"a = 1"}, {"a = 2"}) +
                           Modify("CHANGELOG.md", 3, {"## 1.0"}, {"## 1.1"}) +
                           Create("tests/test_core.py", {"def test_x():", "    pass"});
  auto s = Score(Task(), Passing(diff));
  EXPECT_TRUE(s.completed()) << s.reason();
  EXPECT_FALSE(s.strict_completed());
  EXPECT_EQ(s.merge_ready_round(), 0);
  EXPECT_TRUE(s.out_of_scope());
  ASSERT_THAT(Kinds(s), ElementsAre("out_of_scope"));
  EXPECT_EQ(s.violations(0).file(), "pkg/unrelated.py");
  EXPECT_EQ(s.violations(0).line(), 7);
  EXPECT_THAT(s.violations(0).detail(), ::testing::HasSubstr("pkg/core.py"));
  EXPECT_THAT(s.failure_modes(), ElementsAre("scope-creep"));
  // Agent test files do not count against the golden overlap.
  EXPECT_DOUBLE_EQ(s.golden_overlap(), 1.0 / 3.0);
}

TEST(Review, TheSuitesAllowedPathsReplaceTheDefaults) {
  const std::string diff = GoldenPatch() + Modify("docs/usage.md", 1, {"a"}, {"b"}) +
                           Modify("CHANGELOG.md", 3, {"## 1.0"}, {"## 1.1"});
  v1::ReviewRules rules;
  rules.add_allowed_paths("docs/");
  auto s = Score(Task(), Passing(diff), {}, rules);
  ASSERT_THAT(Kinds(s), ElementsAre("out_of_scope"));
  EXPECT_EQ(s.violations(0).file(), "CHANGELOG.md");
  // Test patterns of the rules replace the defaults too.
  v1::ReviewRules spec_rules;
  spec_rules.add_test_patterns("spec/");
  auto t = Score(Task(),
                 Passing(GoldenPatch() + Create("spec/core_spec.py", {"x"}) +
                         Create("tests/test_more.py", {"y"})),
                 {}, spec_rules);
  ASSERT_THAT(Kinds(t), ElementsAre("out_of_scope"));
  EXPECT_EQ(t.violations(0).file(), "tests/test_more.py");
}

TEST(Review, AWhitespaceOnlyHunkIsAReformatAtItsNewStart) {
  const std::string diff =
      ModifyHunks("pkg/core.py", {GoldenHunk(), {40, {"def f(a,b):"}, {"def f(a, b):"}}});
  auto s = Score(Task(), Passing(diff));
  ASSERT_THAT(Kinds(s), ElementsAre("reformat"));
  EXPECT_EQ(s.violations(0).file(), "pkg/core.py");
  EXPECT_EQ(s.violations(0).line(), 41);  // the golden hunk added a line above
  EXPECT_FALSE(s.strict_completed());
  ASSERT_TRUE(s.dimensions().replay().measured());
  EXPECT_DOUBLE_EQ(s.dimensions().replay().value(), 0.7);
}

TEST(Review, OversizedNeedsBothTheFactorAndTheExtraLines) {
  // Golden: 3 lines. 9 lines is over 2x but not 10 more: no violation, but
  // replay still loses 0.2 for more than twice the golden size.
  auto small = Score(Task(), Passing(Modify("pkg/core.py", 10, Lines(4, "a"), Lines(5, "b"))));
  EXPECT_THAT(Kinds(small), IsEmpty());
  EXPECT_DOUBLE_EQ(small.dimensions().replay().value(), 0.8);
  auto big = Score(Task(), Passing(Modify("pkg/core.py", 10, Lines(6, "a"), Lines(8, "b"))));
  ASSERT_THAT(Kinds(big), ElementsAre("oversized"));
  EXPECT_EQ(big.violations(0).file(), "pkg/core.py");
  EXPECT_THAT(big.violations(0).detail(), ::testing::HasSubstr("14 lines"));
  // The suite's thresholds apply.
  v1::ReviewRules lenient;
  lenient.set_oversized_factor(5);
  EXPECT_THAT(Kinds(Score(Task(), Passing(Modify("pkg/core.py", 10, Lines(6, "a"), Lines(8, "b"))),
                          {}, lenient)),
              IsEmpty());
  v1::ReviewRules strict;
  strict.set_oversized_min_extra_lines(1);
  EXPECT_THAT(Kinds(Score(Task(), Passing(Modify("pkg/core.py", 10, Lines(4, "a"), Lines(5, "b"))),
                          {}, strict)),
              ElementsAre("oversized"));
}

TEST(Review, StaticFactsBecomeViolationsCoherenceAndFailureModes) {
  auto e = Passing(GoldenPatch());
  auto* facts = e.mutable_static_facts();
  auto* ref = facts->add_stale_references();
  ref->set_symbol("subtract");
  ref->set_file("pkg/api.py");
  ref->set_line(12);
  ref->set_defined_in("pkg/core.py");
  auto* imp = facts->add_broken_imports();
  imp->set_file("pkg/core.py");
  imp->set_line(1);
  imp->set_name("pkg.helpers");
  imp->set_detail("no module pkg/helpers.py");
  auto s = Score(Task(), e);
  ASSERT_THAT(Kinds(s), ElementsAre("stale_reference", "broken_import"));
  EXPECT_EQ(s.violations(0).file(), "pkg/api.py");
  EXPECT_EQ(s.violations(0).line(), 12);
  EXPECT_THAT(s.violations(0).detail(), ::testing::HasSubstr("subtract"));
  EXPECT_EQ(s.violations(1).line(), 1);
  EXPECT_THAT(s.failure_modes(), UnorderedElementsAre("context-blindness", "hallucinated-api"));
  ASSERT_TRUE(s.dimensions().coherence().measured());
  EXPECT_DOUBLE_EQ(s.dimensions().coherence().value(), 0.0);  // 1 - 0.4 - 0.6

  // A second line using the same symbol is another violation (file, line)
  // but the same stale reference for coherence; another symbol is not.
  auto* again = facts->add_stale_references();
  *again = *ref;
  again->set_line(30);
  facts->clear_broken_imports();
  auto one_symbol = Score(Task(), e);
  EXPECT_EQ(one_symbol.violations_size(), 2);
  EXPECT_DOUBLE_EQ(one_symbol.dimensions().coherence().value(), 0.4);
  again->set_symbol("add");
  EXPECT_DOUBLE_EQ(Score(Task(), e).dimensions().coherence().value(), 0.0);
  *facts->add_broken_imports() = *imp;

  facts->clear_stale_references();
  auto one_import = Score(Task(), e);
  EXPECT_DOUBLE_EQ(one_import.dimensions().coherence().value(), 0.6);
  EXPECT_THAT(one_import.failure_modes(), ElementsAre("hallucinated-api"));
}

TEST(Review, WhatTheHiddenTestPatchReplacesIsNotTheAgentsFault) {
  // The visible tests still call the old name; the hidden test patch
  // rewrites that file. The golden patch would be flagged otherwise.
  auto task = Task();
  task.set_test_patch(ModifyHunks("tests/test_core.py", {{3, {"subtract(1, 2)"}, {"sub(1, 2)"}}}));
  auto e = Passing(GoldenPatch());
  auto* ref = e.mutable_static_facts()->add_stale_references();
  ref->set_symbol("subtract");
  ref->set_file("tests/test_core.py");
  ref->set_line(3);
  ref->set_defined_in("pkg/core.py");
  auto* imp = e.mutable_static_facts()->add_broken_imports();
  imp->set_file("tests/test_core.py");
  imp->set_line(1);
  imp->set_name("pkg.gone");
  auto s = Score(task, e);
  EXPECT_TRUE(s.violations().empty()) << s.DebugString();
  EXPECT_TRUE(s.failure_modes().empty()) << s.DebugString();
  EXPECT_DOUBLE_EQ(s.dimensions().coherence().value(), 1.0);
  EXPECT_TRUE(s.strict_completed());

  // Anywhere else it counts.
  ref->set_file("pkg/api.py");
  imp->set_file("pkg/api.py");
  EXPECT_THAT(Kinds(Score(task, e)), ElementsAre("stale_reference", "broken_import"));
}

TEST(Review, CoherenceIsNullWhenTheChecksDidNotRunOrCoverNoChangedFile) {
  auto e = Passing(GoldenPatch());
  auto absent = Score(Task(), e).dimensions().coherence();
  EXPECT_FALSE(absent.measured());
  EXPECT_THAT(absent.reason(), ::testing::HasSubstr("no static checks"));

  e.mutable_static_facts()->set_error("ctags is not installed");
  auto failed = Score(Task(), e).dimensions().coherence();
  EXPECT_FALSE(failed.measured());
  EXPECT_THAT(failed.reason(), ::testing::HasSubstr("ctags is not installed"));

  e.mutable_static_facts()->clear_error();
  e.mutable_static_facts()->add_not_checked("pkg/core.py");
  auto unchecked = Score(Task(), e).dimensions().coherence();
  EXPECT_FALSE(unchecked.measured());
  EXPECT_THAT(unchecked.reason(), ::testing::HasSubstr("language"));

  e.mutable_static_facts()->clear_not_checked();
  auto clean = Score(Task(), e).dimensions().coherence();
  EXPECT_TRUE(clean.measured());
  EXPECT_DOUBLE_EQ(clean.value(), 1.0);
}

TEST(Review, ScannerErrorsAreViolationsAndABadBannedPatternIsNotMeasurable) {
  const std::string diff =
      GoldenPatch() + Create("pkg/extra_core.py", {"os.system(FORBIDDEN_CALL)"});
  const std::vector<std::string> banned = {"FORBIDDEN_CALL"};
  auto probe = scoring::Scanners::For(banned);
  ASSERT_TRUE(probe.has_value());
  auto parsed = vcs::ParseDiff(diff);
  ASSERT_TRUE(parsed.has_value());
  if ((*probe)->Scan(*parsed).empty()) GTEST_SKIP() << "the scanners find nothing yet";

  v1::ReviewRules rules;
  rules.add_banned_patterns("FORBIDDEN_CALL");
  auto s = Score(Task(), Passing(diff), {}, rules);
  EXPECT_FALSE(s.findings().empty());
  bool found = false;
  for (const auto& v : s.violations()) {
    if (v.kind() == "scanner" && v.file() == "pkg/extra_core.py" && v.line() == 1) found = true;
  }
  EXPECT_TRUE(found) << s.DebugString();

  v1::ReviewRules bad;
  bad.add_banned_patterns("(unclosed");
  auto b = Score(Task(), Passing(GoldenPatch()), {}, bad);
  EXPECT_TRUE(NotMeasurable(b, "scanners:")) << AllNotMeasurable(b);
  EXPECT_TRUE(b.completed());
}

TEST(Review, ABrokenPassToPassTestIsARegression) {
  auto e = Passing(GoldenPatch());
  SetStatus(e, "tests.test_util::test_slug", v1::TestOutcome::FAILED);
  auto s = Score(Task(), e);
  EXPECT_FALSE(s.completed());
  EXPECT_TRUE(s.regression_measured());
  EXPECT_TRUE(s.regression());
  EXPECT_EQ(s.blast_radius().broken_tests(), 1);
  EXPECT_THAT(s.failure_modes(), ElementsAre("silent-regression"));
  EXPECT_DOUBLE_EQ(s.dimensions().replay().value(), 0.5);
}

TEST(Review, RegressionIsNotMeasuredUnlessEveryFailToPassTestPasses) {
  auto e = Passing(GoldenPatch());
  SetStatus(e, "tests.test_core::test_none", v1::TestOutcome::FAILED);
  SetStatus(e, "tests.test_util::test_slug", v1::TestOutcome::FAILED);
  auto s = Score(Task(), e);
  EXPECT_FALSE(s.regression_measured());
  EXPECT_FALSE(s.regression());

  auto timed_out = Passing(GoldenPatch());
  timed_out.mutable_tests()->set_timed_out(true);
  auto t = Score(Task(), timed_out);
  EXPECT_FALSE(t.regression_measured());
  EXPECT_FALSE(t.dimensions().replay().measured());
  EXPECT_THAT(t.dimensions().replay().reason(), ::testing::HasSubstr("timed out"));
}

v1::GoldenTask TaskWithRegressionTests() {
  auto t = Task();
  t.add_regression_tests("tests.test_later::test_a");
  t.add_regression_tests("tests.test_later::test_b");
  return t;
}

TEST(Review, AFailedRegressionTestIsASilentRegression) {
  auto e = Passing(GoldenPatch());
  auto* rt = e.mutable_regression_tests();
  auto* a = rt->add_tests();
  a->set_id("tests.test_later::test_a");
  a->set_status(v1::TestOutcome::PASSED);
  auto* b = rt->add_tests();
  b->set_id("tests.test_later::test_b");
  b->set_status(v1::TestOutcome::FAILED);
  auto s = Score(TaskWithRegressionTests(), e);
  EXPECT_TRUE(s.completed()) << "regression tests are not part of loose completion";
  EXPECT_TRUE(s.regression());
  EXPECT_EQ(s.regression_passed(), 1);
  EXPECT_EQ(s.regression_total(), 2);
  EXPECT_EQ(s.blast_radius().broken_tests(), 1);
  EXPECT_THAT(s.failure_modes(), ElementsAre("silent-regression"));
}

TEST(Review, RegressionTestsThatDidNotRunAreNotMeasurableButPassToPassStillCounts) {
  auto e = Passing(GoldenPatch());
  e.set_regression_error("the regression patch does not apply");
  auto clean = Score(TaskWithRegressionTests(), e);
  EXPECT_FALSE(clean.regression());
  EXPECT_TRUE(NotMeasurable(clean, "regression tests: did not run: the regression patch"))
      << AllNotMeasurable(clean);
  SetStatus(e, "tests.test_core::test_sub", v1::TestOutcome::ERROR);
  EXPECT_TRUE(Score(TaskWithRegressionTests(), e).regression());

  // Evidence stored before regression tests existed.
  auto old = Score(TaskWithRegressionTests(), Passing(GoldenPatch()));
  EXPECT_TRUE(NotMeasurable(old, "regression tests: not in the evidence")) << AllNotMeasurable(old);
}

TEST(Review, BlastRadiusCountsFilesModulesAndLines) {
  const std::string diff = GoldenPatch() + Modify("pkg/sub/b.py", 1, {"a"}, {"b"}) +
                           Modify("web/app.py", 1, {"a", "b"}, {"c"}) +
                           Modify("setup.py", 1, {"a"}, {"b"});
  auto s = Score(Task(), Passing(diff));
  EXPECT_EQ(s.blast_radius().files(), 4);
  EXPECT_EQ(s.blast_radius().modules(), 3);  // pkg, web and the root
  EXPECT_EQ(s.blast_radius().lines(), 3 + 2 + 3 + 2);
  v1::ReviewRules rules;
  rules.add_modules("pkg/*/");
  EXPECT_EQ(Score(Task(), Passing(diff), {}, rules).blast_radius().modules(), 4);  // + pkg/sub
}

TEST(Review, OldEvidenceIsDescribedFromItsDiffAndTheTask) {
  const std::string diff = GoldenPatch() + Modify("pkg/unrelated.py", 7, {"a = 1"}, {"a = 2"});
  auto e = Passing(diff);
  e.clear_changes();
  e.clear_golden_changes();
  auto s = Score(Task(), e);
  EXPECT_THAT(Kinds(s), ElementsAre("out_of_scope"));
  EXPECT_EQ(s.blast_radius().lines(), 5);
  EXPECT_DOUBLE_EQ(s.golden_overlap(), 0.5);
  EXPECT_TRUE(s.dimensions().replay().measured()) << s.dimensions().replay().reason();
}

TEST(Review, ABinaryFileIsNamedAndItsLinesAreNotCounted) {
  const std::string diff =
      GoldenPatch() +
      "diff --git a/pkg/logo.png b/pkg/logo.png\nnew file mode 100644\n"
      "index 0000000..3f2a1c9\nBinary files /dev/null and b/pkg/logo.png differ\n";
  auto s = Score(Task(), Passing(diff));
  EXPECT_TRUE(NotMeasurable(s, "pkg/logo.png")) << AllNotMeasurable(s);
  EXPECT_EQ(s.blast_radius().files(), 2);
  EXPECT_EQ(s.blast_radius().lines(), 3);
  EXPECT_THAT(Kinds(s), ElementsAre("out_of_scope"));
}

TEST(Review, ADiffOverTheLimitIsNotMeasurableNotZero) {
  v1::Evidence e;
  e.set_diff_error(
      "the agent's diff is 11000000 bytes, more than the limit of 10485760: not stored");
  e.set_diff_bytes(11'000'000);
  e.add_files_touched("pkg/core.py");
  e.add_files_touched("vendor/big.js");
  auto s = Score(Task(), e);
  EXPECT_FALSE(s.completed());
  EXPECT_FALSE(s.strict_completed());
  EXPECT_TRUE(NotMeasurable(s, "diff: not stored: the agent's diff is 11000000 bytes"))
      << AllNotMeasurable(s);
  EXPECT_FALSE(s.dimensions().replay().measured());
  EXPECT_FALSE(s.regression_measured());
  // The file list still shows the change's reach and scope.
  EXPECT_EQ(s.blast_radius().files(), 2);
  EXPECT_TRUE(s.out_of_scope());
}

TEST(Review, DroppedHunksMakeReformatNotMeasurable) {
  auto e = Passing(ModifyHunks("pkg/core.py", {GoldenHunk(), {40, {"a=1"}, {"a = 1"}}}));
  e.clear_final_diff();
  for (auto& c : *e.mutable_changes()) c.clear_hunks();
  e.set_truncated("evidence of 9000000 bytes is over the message limit: the final diff dropped");
  auto s = Score(Task(), e);
  EXPECT_THAT(Kinds(s), IsEmpty());
  EXPECT_TRUE(NotMeasurable(s, "reformatting is not measurable")) << AllNotMeasurable(s);
  EXPECT_TRUE(NotMeasurable(s, "scanners: the diff is not stored")) << AllNotMeasurable(s);
  EXPECT_FALSE(s.dimensions().replay().measured());
  EXPECT_EQ(s.blast_radius().lines(), 5);
}

TEST(Review, AGoldenPatchWithNoSourceFileMakesScopeAndReplayNotMeasurable) {
  auto task = Task();
  task.set_source_patch(Modify("tests/test_core.py", 1, {"a"}, {"b"}));
  auto e = Passing(Modify("pkg/anything.py", 1, Lines(30, "a"), Lines(30, "b")));
  e.clear_golden_changes();
  auto s = Score(task, e);
  EXPECT_THAT(Kinds(s), IsEmpty());
  EXPECT_TRUE(NotMeasurable(s, "golden patch: has no source file")) << AllNotMeasurable(s);
  EXPECT_FALSE(s.dimensions().replay().measured());
  EXPECT_THAT(s.dimensions().replay().reason(), ::testing::HasSubstr("no source file"));
}

TEST(Review, ADiffThatIsNotValidUtf8IsScoredWithEscapedPaths) {
  const std::string diff = GoldenPatch() + Modify("pkg/caf\xe9.py", 2, {"a = '\xff'"}, {"a = 1"});
  auto s = Score(Task(), Passing(diff));
  ASSERT_THAT(Kinds(s), ElementsAre("out_of_scope"));
  std::string serialized;
  EXPECT_TRUE(s.SerializeToString(&serialized));
  v1::Score back;
  EXPECT_TRUE(back.ParseFromString(serialized));
  EXPECT_EQ(back.violations(0).file(), s.violations(0).file());
}

TEST(Review, AnUnparsableDiffIsNotMeasurableAndDoesNotCrash) {
  auto e = Passing(GoldenPatch());
  e.clear_changes();
  e.set_final_diff("diff --git a/x b/x\n@@ this is not a hunk header\n+\n");
  auto s = Score(Task(), e);
  EXPECT_TRUE(NotMeasurable(s, "diff:")) << AllNotMeasurable(s);
}

TEST(Review, JudgeScoresAreCopiedBesideTheDeterministicOnes) {
  auto e = Passing(GoldenPatch());
  auto* j = e.add_judge_scores();
  j->set_judge("llm");
  j->set_dimension("replay");
  j->set_score(0.25);
  auto s = Score(Task(), e);
  ASSERT_EQ(s.judge_size(), 1);
  EXPECT_EQ(s.judge(0).judge(), "llm");
  EXPECT_DOUBLE_EQ(s.dimensions().replay().value(), 1.0);
}

}  // namespace
}  // namespace crucible

namespace crucible::scoring {
namespace {

TEST(DescribeChanges, AHunkNamesItsFirstChangedLineNotItsContext) {
  const std::string diff =
      "diff --git a/c.py b/c.py\n--- a/c.py\n+++ b/c.py\n"
      "@@ -16,4 +16,4 @@\n a\n b\n c\n-X = 1\n+X  =  1\n"
      "@@ -30,5 +30,4 @@\n d\n e\n-gone\n f\n g\n";
  std::string error;
  auto changes = DescribeChanges(diff, &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(changes.size(), 1u);
  ASSERT_EQ(changes[0].hunks_size(), 2);
  EXPECT_EQ(changes[0].hunks(0).first_changed_line(), 19);
  EXPECT_TRUE(changes[0].hunks(0).whitespace_only());
  EXPECT_EQ(changes[0].hunks(1).first_changed_line(), 32) << "a removal sits after its context";
}

}  // namespace
}  // namespace crucible::scoring
