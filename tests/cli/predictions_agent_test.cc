// `--agent [NAME=]predictions:FILE`: the predictions file is read on the
// client and travels in the agent spec.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "base/fs.h"
#include "cli/common.h"
#include "protocol/golden_task.h"

namespace crucible::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PredictionsAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("crucible-predictions-agent-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    file_ = dir_->path() + "/preds.jsonl";
    ASSERT_TRUE(WriteFile(
        file_,
        "{\"instance_id\": \"t-1\", \"model_name_or_path\": \"org/model-7\", \"model_patch\": "
        "\"diff --git a/v b/v\\n--- a/v\\n+++ b/v\\n@@ -1 +1 @@\\n-1\\n+2\\n\"}\n"
        "{\"instance_id\": \"t-2\", \"model_name_or_path\": \"org/model-7\", \"model_patch\": "
        "null}\n"
        "{\"instance_id\": \"t-1\", \"model_name_or_path\": \"org/model-7\", \"model_patch\": "
        "\"\"}\n"));
  }

  std::unique_ptr<TempDir> dir_;
  std::string file_;
};

TEST_F(PredictionsAgent, NamedAgentCarriesThePatchesWarningsAndModel) {
  auto spec = ParseAgentSpec("mine=predictions:" + file_);
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(spec->name(), "mine");
  EXPECT_TRUE(v1::IsPredictionsAgent(*spec));
  EXPECT_EQ(spec->command(), "predictions:" + file_);
  EXPECT_EQ(spec->model(), "org/model-7");
  ASSERT_EQ(spec->predictions().size(), 2u);
  EXPECT_THAT(spec->predictions().at("t-1").patch(), HasSubstr("+2"));
  EXPECT_EQ(spec->predictions().at("t-2").patch(), "");
  EXPECT_EQ(spec->predictions().at("t-2").line(), 2);
  EXPECT_THAT(spec->prediction_warnings(),
              ElementsAre(HasSubstr(file_ + ":3: instance t-1: given again (first on line 1)")));
}

TEST_F(PredictionsAgent, UnnamedAgentIsNamedByTheModelAndTheFileMadeAbsolute) {
  std::error_code ec;
  const auto cwd = std::filesystem::current_path(ec);
  std::filesystem::current_path(dir_->path());
  auto spec = ParseAgentSpec("predictions:preds.jsonl");
  std::filesystem::current_path(cwd, ec);
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(spec->name(), "org/model-7");
  EXPECT_EQ(spec->command(), "predictions:" + file_);
  // Warnings name the file as the coordinator's do: by its absolute path.
  EXPECT_THAT(spec->prediction_warnings(), ElementsAre(HasSubstr(file_ + ":3: instance t-1")));
}

TEST_F(PredictionsAgent, AFileThatCannotBeReadOrHoldsNothingIsAnErrorNamingIt) {
  auto missing = ParseAgentSpec("x=predictions:" + dir_->path() + "/nope.jsonl");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message(), HasSubstr("nope.jsonl"));
  ASSERT_TRUE(WriteFile(dir_->path() + "/empty.jsonl", "\n"));
  auto empty = ParseAgentSpec("x=predictions:" + dir_->path() + "/empty.jsonl");
  ASSERT_FALSE(empty);
  EXPECT_THAT(empty.error().message(), HasSubstr("empty.jsonl: no prediction"));
  ASSERT_FALSE(ParseAgentSpec("x=predictions:"));
  // Without NAME the file must name a model.
  ASSERT_TRUE(WriteFile(dir_->path() + "/anon.jsonl", "{\"instance_id\": \"t-1\"}\n"));
  auto anon = ParseAgentSpec("predictions:" + dir_->path() + "/anon.jsonl");
  ASSERT_FALSE(anon);
  EXPECT_THAT(anon.error().message(), HasSubstr("NAME=predictions:FILE"));
}

}  // namespace
}  // namespace crucible::cli
