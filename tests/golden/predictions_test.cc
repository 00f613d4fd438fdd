#include "golden/predictions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

namespace crucible::golden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string nlohmann_quote(const std::string& s) { return nlohmann::json(s).dump(); }

const char kDiff[] =
    "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n";

TEST(Predictions, ReadsJsonlWithLineNumbersAndTheModel) {
  const std::string text = std::string(
                               "{\"instance_id\": \"t1\", \"model_name_or_path\": \"m/x\", "
                               "\"model_patch\": ") +
                           nlohmann_quote(kDiff) +
                           "}\n\n"
                           "{\"instance_id\": \"t2\", \"model_name_or_path\": \"m/x\", "
                           "\"model_patch\": null}\n"
                           "{\"instance_id\": \"t3\", \"model_name_or_path\": \"m/x\"}\n";
  auto p = ParsePredictions(text, "p.jsonl");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  ASSERT_EQ(p->by_id.size(), 3u);
  EXPECT_EQ(p->by_id.at("t1").patch(), kDiff);
  EXPECT_EQ(p->by_id.at("t1").line(), 1);
  EXPECT_EQ(p->by_id.at("t2").patch(), "");  // null: no submission
  EXPECT_EQ(p->by_id.at("t2").line(), 3);    // the blank line counts
  EXPECT_EQ(p->by_id.at("t3").patch(), "");  // absent: no submission
  EXPECT_THAT(p->models, ElementsAre("m/x"));
  EXPECT_TRUE(p->warnings.empty());
}

TEST(Predictions, ReadsAJsonListWithOneBasedIndexes) {
  const std::string text = std::string(
                               "  \n[{\"instance_id\": \"a\", \"model_name_or_path\": "
                               "\"gold\", \"model_patch\": ") +
                           nlohmann_quote(kDiff) +
                           "},\n {\"instance_id\": \"b\", \"model_name_or_path\": \"gold\", "
                           "\"model_patch\": \"\"}]";
  auto p = ParsePredictions(text, "p.json");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->by_id.at("a").line(), 1);
  EXPECT_EQ(p->by_id.at("b").line(), 2);
  EXPECT_EQ(p->by_id.at("b").patch(), "");
  EXPECT_THAT(p->models, ElementsAre("gold"));
}

// Every bad entry is named by file, line and instance; the rest is read.
TEST(Predictions, NamesEveryBadEntryAndKeepsTheRest) {
  const std::string diff = nlohmann_quote(kDiff);
  const std::string text =
      "{\"instance_id\": \"ok\", \"model_name_or_path\": \"m1\", \"model_patch\": " + diff +
      "}\n"                                                                                 // 1
      "{\"instance_id\": \"ok\", \"model_name_or_path\": \"m1\", \"model_patch\": \"\"}\n"  // 2
      "{\"instance_id\": \"prose\", \"model_patch\": \"I fixed it by editing calc.py\"}\n"  // 3
      "{\"instance_id\": \"bin\", \"model_patch\": \"diff --git a/x.png b/x.png\\nGIT binary "
      "patch\\nliteral 3\\nabc\\n\"}\n"  // 4
      "{\"instance_id\": \"bin2\", \"model_patch\": \"diff --git a/y b/y\\nBinary files a/y "
      "and b/y differ\\n\"}\n"     // 5
      "[1, 2]\n"                   // 6
      "{\"model_patch\": \"\"}\n"  // 7
      "{\"instance_id\": \"m2\", \"model_name_or_path\": \"m2\", \"model_patch\": " +
      diff +
      "}\n"                                                // 8
      "{not json\n"                                        // 9
      "{\"instance_id\": \"num\", \"model_patch\": 7}\n";  // 10
  auto p = ParsePredictions(text, "preds.jsonl");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_THAT(p->warnings,
              ElementsAre(HasSubstr("preds.jsonl:2: instance ok: given again (first on line 1)"),
                          HasSubstr("preds.jsonl:3: instance prose: model_patch has no "
                                    "unified diff header"),
                          HasSubstr("preds.jsonl:4: instance bin: model_patch has binary hunks "
                                    "(GIT binary patch)"),
                          HasSubstr("preds.jsonl:5: instance bin2: model_patch has binary hunks "
                                    "(Binary files ... differ)"),
                          HasSubstr("preds.jsonl:6: not a JSON object"),
                          HasSubstr("preds.jsonl:7: no instance_id"),
                          HasSubstr("preds.jsonl:8: instance m2: model_name_or_path 'm2' "
                                    "differs from 'm1' (line 1)"),
                          HasSubstr("preds.jsonl:9: not valid JSON"),
                          HasSubstr("preds.jsonl:10: instance num: model_patch is not a string")));
  // The first of a duplicate is kept; not-a-diff and binary are kept (they
  // fail when applied); the others are skipped.
  EXPECT_EQ(p->by_id.at("ok").line(), 1);
  EXPECT_EQ(p->by_id.at("ok").patch(), kDiff);
  EXPECT_EQ(p->by_id.count("prose"), 1u);
  EXPECT_EQ(p->by_id.count("bin"), 1u);
  EXPECT_EQ(p->by_id.count("bin2"), 1u);
  EXPECT_EQ(p->by_id.count("m2"), 1u);
  EXPECT_EQ(p->by_id.count("num"), 0u);
  EXPECT_THAT(p->models, ElementsAre("m1", "m2"));
}

TEST(Predictions, AFileWithoutAnyEntryOrThatCannotBeReadIsAnError) {
  for (const std::string& text :
       {std::string(""), std::string("\n  \n"), std::string("{\"model_patch\": \"\"}\n"),
        std::string("[{\"instance_id\": 1}]")}) {
    auto p = ParsePredictions(text, "empty.jsonl");
    ASSERT_FALSE(p.has_value()) << text;
    EXPECT_THAT(p.error().message(), HasSubstr("empty.jsonl: no prediction")) << text;
  }
  auto broken = ParsePredictions("[{\"instance_id\": \"a\"", "broken.json");
  ASSERT_FALSE(broken.has_value());
  EXPECT_THAT(broken.error().message(), HasSubstr("broken.json: starts with '['"));
  auto missing = LoadPredictions("/nonexistent/preds.jsonl");
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error().message(),
              HasSubstr("cannot read the predictions file /nonexistent/preds.jsonl"));
}

TEST(Predictions, PatchProblemKnowsDiffsFromProse) {
  EXPECT_EQ(PatchProblem(kDiff), "");
  EXPECT_EQ(PatchProblem("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"), "");  // plain unified diff
  EXPECT_EQ(PatchProblem("  \n"), "");
  EXPECT_THAT(PatchProblem("just text"), HasSubstr("no unified diff header"));
  EXPECT_THAT(PatchProblem("--- a/x\nno new side\n"), HasSubstr("no unified diff header"));
}

}  // namespace
}  // namespace crucible::golden
