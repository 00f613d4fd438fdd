// The example agent in the review loop (examples/agents/rule_agent.py, issue
// 13): the sample repository's PR #5 ("Rename `calc_total` to
// `compute_order_total`") at its base commit, the agent run there for round 1,
// then again in the same workspace with the feedback the runner gives after a
// round (the failing visible tests as JUnit ids, review comments), as the
// runner lays it out: the task file and the agent's state in one directory,
// the workspace in another. Real git, real pytest (/usr/bin/python3), no
// sandbox.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "base/fs.h"
#include "golden/test_run.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Quote;
using testing::Sh;

constexpr char kPython[] = "/usr/bin/python3";
constexpr std::chrono::seconds kAgentLimit{180};

class RuleAgentRounds : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = TempDir::Create("crucible-rule-agent-repo-");
    ASSERT_TRUE(dir);
    repo_dir_ = new TempDir(std::move(*dir));
    repo_ = repo_dir_->path() + "/sample-repo";
    auto made =
        Sh(std::string(kPython) + " " +
           Quote(std::string(CRUCIBLE_SOURCE_DIR) + "/examples/sample-repo/make_sample_repo.py") +
           " " + Quote(repo_));
    ASSERT_EQ(made.status, 0) << made.text;
    auto merge = Sh("git -C " + Quote(repo_) +
                    " log --first-parent --format=%H --grep='Merge pull request #5 ' main");
    ASSERT_EQ(merge.status, 0) << merge.text;
    ASSERT_GE(merge.text.size(), 40u) << merge.text;
    auto base = Sh("git -C " + Quote(repo_) + " rev-parse " + merge.text.substr(0, 40) + "^1");
    ASSERT_EQ(base.status, 0) << base.text;
    base_ = base.text.substr(0, 40);
    // The PR's description, as mining makes it the task's intent.
    auto body = Sh("git -C " + Quote(repo_) + " log -1 --format=%b " + merge.text.substr(0, 40));
    ASSERT_EQ(body.status, 0) << body.text;
    ASSERT_THAT(body.text, HasSubstr("Rename `calc_total` to `compute_order_total`"));
    intent_ = body.text;
  }
  static void TearDownTestSuite() {
    delete repo_dir_;
    repo_dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(repo_dir_, nullptr) << "the sample repository could not be built";
    auto dir = TempDir::Create("crucible-rule-agent-");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    work_ = dir_->path() + "/workspace";
    crucible_ = dir_->path() + "/crucible";
    ASSERT_TRUE(MakeDirs(work_));
    ASSERT_TRUE(MakeDirs(crucible_));
    auto out = Sh("git -C " + Quote(repo_) + " archive " + base_ + " | tar -x -C " + Quote(work_));
    ASSERT_EQ(out.status, 0) << out.text;
    auto readme = ReadFile(work_ + "/README.md");
    ASSERT_TRUE(readme);
    readme_ = *readme;
  }

  json Task(int round, json feedback) const {
    return {{"intent", intent_},
            {"repo", "sample-repo"},
            {"task_id", "sample-5"},
            {"suite", "sample"},
            {"round", round},
            {"rounds", 3},
            {"feedback", std::move(feedback)}};
  }

  // Runs the agent in the workspace with `task` as its task file.
  testing::CommandOutput Agent(const std::string& style, const json& task) const {
    EXPECT_TRUE(WriteFile(crucible_ + "/task.json", task.dump()));
    return Sh("cd " + Quote(work_) + " && CRUCIBLE_TASK=" + Quote(crucible_ + "/task.json") +
                  " CRUCIBLE_TRACE=" + Quote(crucible_ + "/trace.jsonl") +
                  " RULE_AGENT_STYLE=" + Quote(style) + " " + kPython + " " +
                  Quote(std::string(CRUCIBLE_SOURCE_DIR) + "/examples/agents/rule_agent.py"),
              kAgentLimit);
  }

  // The visible tests in the workspace, as CI runs them; the ids of those
  // that did not pass (JUnit ids, as the runner puts them in the feedback).
  std::vector<std::string> Failing(bool* passed) const {
    const std::string junit = dir_->path() + "/junit.xml";
    auto run = Sh("cd " + Quote(work_) + " && PYTHONDONTWRITEBYTECODE=1 " + kPython +
                      " -m pytest -q -p no:cacheprovider --junitxml=" + Quote(junit),
                  kAgentLimit);
    *passed = run.status == 0;
    std::vector<std::string> ids;
    auto xml = ReadFile(junit);
    EXPECT_TRUE(xml) << run.text;
    if (!xml) return ids;
    auto outcomes = golden::ParseJunit(*xml);
    EXPECT_TRUE(outcomes) << outcomes.error().ToString();
    if (!outcomes) return ids;
    for (const auto& o : *outcomes) {
      if (o.status() == v1::TestOutcome::FAILED || o.status() == v1::TestOutcome::ERROR) {
        ids.push_back(o.id());
      }
    }
    return ids;
  }

  static json CiFeedback(const std::vector<std::string>& failing, json review = json::array()) {
    json items = json::array();
    for (const auto& id : failing) {
      items.push_back({{"test", id}, {"status", "failed"}, {"message", "AttributeError"}});
    }
    return {{"round", 1},
            {"ci", {{"passed", false}, {"error", ""}, {"failing", items}, {"output_tail", ""}}},
            {"review", std::move(review)},
            {"text", "the visible tests fail"}};
  }

  static json OutOfScope(const std::string& file) {
    return json::array({{{"reviewer", "crucible"},
                         {"kind", "out_of_scope"},
                         {"file", file},
                         {"line", 30},
                         {"sentence", file + " is outside the task's scope"}}});
  }

  // The agent's trace events of `round` (all names when `name` is empty).
  std::vector<json> Events(int round, const std::string& name = "") const {
    std::vector<json> out;
    auto text = ReadFile(crucible_ + "/trace.jsonl");
    EXPECT_TRUE(text);
    if (!text) return out;
    const std::string prefix = "r" + std::to_string(round) + "-";
    size_t pos = 0;
    while (pos < text->size()) {
      size_t end = text->find('\n', pos);
      if (end == std::string::npos) end = text->size();
      json e = json::parse(text->substr(pos, end - pos), nullptr, false);
      pos = end + 1;
      EXPECT_FALSE(e.is_discarded()) << "a trace line is not JSON";
      if (e.is_discarded()) continue;
      if (e["span_id"].get<std::string>().rfind(prefix, 0) != 0) continue;
      if (name.empty() || e["name"] == name) out.push_back(e);
    }
    return out;
  }

  // The messages of a round's CHAIN error events, one a line.
  std::string Errors(int round) const {
    std::string out;
    for (const auto& e : Events(round, "error")) {
      out += e["attrs"].value("source", "") + ": " + e["attrs"].value("message", "") + "\n";
    }
    return out;
  }

  // Every file of the workspace with its checksum.
  std::string Snapshot() const {
    auto out = Sh("cd " + Quote(work_) +
                  " && find . -type f ! -path '*/__pycache__/*' -print0 | sort -z | "
                  "xargs -0 sha256sum");
    EXPECT_EQ(out.status, 0) << out.text;
    return out.text;
  }

  // Whole-word occurrences of `word` in the workspace's files.
  std::string Grep(const std::string& word) const {
    return Sh("grep -rnw --include='*.py' " + Quote(word) + " " + Quote(work_)).text;
  }

  std::string Read(const std::string& rel) const {
    auto text = ReadFile(work_ + "/" + rel);
    EXPECT_TRUE(text) << rel;
    return text ? *text : std::string();
  }

  static inline TempDir* repo_dir_ = nullptr;
  static inline std::string repo_, base_, intent_;
  std::optional<TempDir> dir_;
  std::string work_, crucible_, readme_;
};

TEST_F(RuleAgentRounds, MinimalRenamesInTheFailingTestsFilesInRoundTwo) {
  auto first = Agent("minimal", Task(1, nullptr));
  ASSERT_EQ(first.status, 0) << first.text;
  bool passed = true;
  auto failing = Failing(&passed);
  EXPECT_FALSE(passed);
  ASSERT_FALSE(failing.empty());
  for (const auto& id : failing) EXPECT_THAT(id, HasSubstr("tests.test_pricing::")) << id;
  EXPECT_THAT(Read("tests/test_pricing.py"), HasSubstr("pricing.calc_total("));
  EXPECT_EQ(Read("README.md"), readme_) << "minimal touches nothing out of scope";

  auto second = Agent("minimal", Task(2, CiFeedback(failing)));
  ASSERT_EQ(second.status, 0) << second.text;
  EXPECT_EQ(Grep("calc_total"), "") << "the old name is left nowhere";
  EXPECT_THAT(Read("tests/test_pricing.py"), HasSubstr("pricing.compute_order_total(lines)"));
  Failing(&passed);
  EXPECT_TRUE(passed) << "the visible tests pass after round 2";
  EXPECT_EQ(Read("README.md"), readme_);

  // Round 2's trace: the feedback it read, a read before each edit, the
  // failing tests' file first, then a test run.
  auto feedback = Events(2, "feedback");
  ASSERT_EQ(feedback.size(), 1u);
  EXPECT_EQ(feedback[0]["attrs"]["used"], true);
  EXPECT_EQ(feedback[0]["attrs"]["failing_count"], failing.size());
  auto edits = Events(2, "edit_file");
  ASSERT_FALSE(edits.empty());
  EXPECT_EQ(edits[0]["attrs"]["path"], "tests/test_pricing.py");
  std::vector<std::string> names;
  for (const auto& e : Events(2)) names.push_back(e["name"]);
  auto edit = std::find(names.begin(), names.end(), "edit_file");
  EXPECT_NE(std::find(names.begin(), edit, "read_file"), edit) << "read before the edit";
  EXPECT_EQ(names.back(), "finish");
  EXPECT_EQ(names[names.size() - 2], "run_tests");
  EXPECT_EQ(Errors(2), "");
}

TEST_F(RuleAgentRounds, TidyRevertsTheReadmeTheReviewNamed) {
  auto first = Agent("tidy", Task(1, nullptr));
  ASSERT_EQ(first.status, 0) << first.text;
  EXPECT_NE(Read("README.md"), readme_) << "tidy changes the readme in round 1";
  bool passed = true;
  auto failing = Failing(&passed);
  ASSERT_FALSE(failing.empty());

  auto second = Agent("tidy", Task(2, CiFeedback(failing, OutOfScope("README.md"))));
  ASSERT_EQ(second.status, 0) << second.text;
  EXPECT_EQ(Read("README.md"), readme_) << "back to its original bytes";
  Failing(&passed);
  EXPECT_TRUE(passed);
  auto reverts = Events(2, "revert");
  ASSERT_EQ(reverts.size(), 1u);
  EXPECT_EQ(reverts[0]["kind"], "TOOL");
  EXPECT_EQ(reverts[0]["attrs"]["path"], "README.md");
  EXPECT_EQ(reverts[0]["attrs"]["reason"], "out_of_scope");
  EXPECT_EQ(Errors(2), "");

  // Round 3 with the same comment: nothing left to revert, the readme stays.
  auto third = Agent("tidy", Task(3, CiFeedback({}, OutOfScope("README.md"))));
  ASSERT_EQ(third.status, 0) << third.text;
  EXPECT_EQ(Read("README.md"), readme_);
  EXPECT_TRUE(Events(3, "revert").empty());
  EXPECT_TRUE(Events(3, "edit_file").empty());
}

TEST_F(RuleAgentRounds, StubbornChangesNothingInRoundTwo) {
  auto first = Agent("stubborn", Task(1, nullptr));
  ASSERT_EQ(first.status, 0) << first.text;
  EXPECT_NE(Read("README.md"), readme_) << "stubborn tidies like tidy";
  bool passed = true;
  auto failing = Failing(&passed);
  ASSERT_FALSE(failing.empty());
  const std::string before = Snapshot();

  auto second = Agent("stubborn", Task(2, CiFeedback(failing, OutOfScope("README.md"))));
  ASSERT_EQ(second.status, 0) << second.text;
  EXPECT_EQ(Snapshot(), before);
  EXPECT_TRUE(Events(2, "edit_file").empty());
  EXPECT_TRUE(Events(2, "revert").empty());
  auto feedback = Events(2, "feedback");
  ASSERT_EQ(feedback.size(), 1u);
  EXPECT_EQ(feedback[0]["attrs"]["received"], true);
  EXPECT_EQ(feedback[0]["attrs"]["used"], false);
  EXPECT_EQ(Errors(2), "");
}

TEST_F(RuleAgentRounds, OddFeedbackAndABrokenStateFileAreReportedNotFatal) {
  auto first = Agent("tidy", Task(1, nullptr));
  ASSERT_EQ(first.status, 0) << first.text;
  const std::string tidied = Read("README.md");
  ASSERT_NE(tidied, readme_);

  // A corrupt state file: nothing can be reverted, and the trace says why.
  ASSERT_TRUE(WriteFile(crucible_ + "/rule_agent_state.json", "{\"version\": 1, \"originals\""));
  auto second = Agent("tidy", Task(2, json{{"round", 1}, {"review", OutOfScope("README.md")}}));
  ASSERT_EQ(second.status, 0) << second.text;
  EXPECT_THAT(Errors(2), HasSubstr("rule_agent_state.json is corrupt"));
  EXPECT_THAT(Errors(2), HasSubstr("cannot revert README.md (out_of_scope): no state file"));
  EXPECT_EQ(Read("README.md"), tidied) << "nothing is reverted to a guess";
  EXPECT_FALSE(Events(2, "finish").empty()) << second.text;

  // Feedback of the wrong type.
  auto third = Agent("minimal", Task(3, 42));
  ASSERT_EQ(third.status, 0) << third.text;
  EXPECT_THAT(Errors(3), HasSubstr("feedback: feedback is a number, not an object: ignored"));
  EXPECT_FALSE(Events(3, "finish").empty()) << third.text;

  // Garbage inside the feedback, and far too many items.
  json many = json::array();
  for (int i = 0; i < 5000; ++i)
    many.push_back({{"test", "tests.test_nowhere::t" + std::to_string(i)}});
  auto fourth = Agent(
      "minimal", Task(4, json{{"ci", {{"failing", json::array({nullptr, 7})}}}, {"review", "x"}}));
  ASSERT_EQ(fourth.status, 0) << fourth.text;
  EXPECT_THAT(Errors(4), HasSubstr("feedback.ci.failing: 2 unusable item(s), the first at "
                                   "index 0 (null)"));
  EXPECT_THAT(Errors(4), HasSubstr("feedback.review is a string, not an array: ignored"));
  auto fifth = Agent("minimal", Task(5, json{{"ci", {{"failing", many}}}, {"review", many}}));
  ASSERT_EQ(fifth.status, 0) << fifth.text;
  EXPECT_THAT(Errors(5), HasSubstr("feedback.ci.failing has 5000 items; only the first 200"));
  EXPECT_THAT(Errors(5), HasSubstr("feedback.review: 200 unusable item(s)"));
  EXPECT_THAT(Errors(5), HasSubstr("'tests.test_nowhere::t0': no such test file"));
  EXPECT_FALSE(Events(5, "finish").empty()) << fifth.text;

  // Missing keys and a missing state file.
  ASSERT_EQ(::unlink((crucible_ + "/rule_agent_state.json").c_str()), 0);
  auto sixth = Agent("minimal", Task(6, json::object()));
  ASSERT_EQ(sixth.status, 0) << sixth.text;
  EXPECT_THAT(Errors(6), HasSubstr("rule_agent_state.json is missing"));
  EXPECT_THAT(Errors(6), Not(HasSubstr("feedback")));
  EXPECT_FALSE(Events(6, "finish").empty()) << sixth.text;
}

}  // namespace
}  // namespace crucible
