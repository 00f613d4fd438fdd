// End to end through the real crucible binary: the sample repository is built
// with git, mined with the sandbox, and replayed by an embedded coordinator and
// runner processes over ipc://, with everything stored in RocksDB.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using testing::Crucible;
using testing::Quote;
using testing::Sh;
using Output = testing::CommandOutput;

constexpr char kTestCmd[] = "python3 -m pytest -q -p no:cacheprovider --junitxml={junit}";

class SampleRepoEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    auto dir = TempDir::Create("crucible-e2e-");
    ASSERT_TRUE(dir);
    dir_ = new TempDir(std::move(*dir));
    repo_ = dir_->path() + "/sample-repo";
    db_ = dir_->path() + "/db";
    auto made = testing::MakeSampleRepo(repo_);
    ASSERT_EQ(made.status, 0) << made.text;
    mine_ = new Output(Crucible("mine --repo " + Quote(repo_) + " --suite sample --test-cmd " +
                                Quote(kTestCmd) + " --db " + Quote(db_)));
  }
  static void TearDownTestSuite() {
    delete mine_;
    delete dir_;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    ASSERT_EQ(mine_->status, 0) << mine_->text;
  }

  static inline TempDir* dir_ = nullptr;
  static inline Output* mine_ = nullptr;
  static inline std::string repo_;
  static inline std::string db_;
};

TEST_F(SampleRepoEndToEnd, MiningReproducesTheKnownFailToPassLists) {
  auto store = storage::Store::Open(db_);
  ASSERT_TRUE(store) << store.error().ToString();
  auto tasks = (*store)->ListTasks("sample");
  ASSERT_TRUE(tasks) << tasks.error().ToString();
  EXPECT_GE(tasks->size(), 8u) << mine_->text;

  auto expected_text =
      ReadFile(std::string(CRUCIBLE_SOURCE_DIR) + "/examples/sample-repo/EXPECTED_F2P.json");
  ASSERT_TRUE(expected_text);
  auto expected = nlohmann::json::parse(*expected_text);
  std::set<std::string> matched;
  for (const auto& t : *tasks) {
    EXPECT_GT(t.fail_to_pass_size(), 0) << t.id();
    auto summary = Sh("git -C " + Quote(repo_) + " log -1 --format=%s " + t.merged_commit());
    ASSERT_EQ(summary.status, 0);
    std::string key = summary.text.substr(0, summary.text.find('\n'));
    ASSERT_TRUE(expected.contains(key)) << "unexpected task for " << key;
    std::vector<std::string> want = expected[key];
    std::vector<std::string> got(t.fail_to_pass().begin(), t.fail_to_pass().end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want) << key;
    EXPECT_FALSE(t.source_patch().empty());
    EXPECT_FALSE(t.test_patch().empty());
    matched.insert(key);
  }
  EXPECT_EQ(matched.size(), expected.size()) << "every merged change becomes a task";
}

TEST_F(SampleRepoEndToEnd, EmbeddedRunScoresOracleFullAndNoopZero) {
  std::string agent = std::string(CRUCIBLE_SOURCE_DIR) + "/examples/agents/rule_agent.py";
  auto run = Crucible("run --suite sample --agent builtin:oracle --agent builtin:noop --agent " +
                      Quote("rule-agent=" + agent) + " --runners 2 --db " + Quote(db_));
  ASSERT_EQ(run.status, 0) << run.text;
  auto pos = run.text.find("run r");
  ASSERT_NE(pos, std::string::npos) << run.text;
  std::string run_id = run.text.substr(pos + 4, run.text.find(':', pos) - pos - 4);
  EXPECT_NE(run.text.find("completion"), std::string::npos) << run.text;

  auto report = Crucible("report " + run_id + " --format json --db " + Quote(db_));
  ASSERT_EQ(report.status, 0) << report.text;
  auto rows = nlohmann::json::parse(report.text);
  std::map<std::string, nlohmann::json> by_agent;
  for (const auto& r : rows) by_agent[r["agent"]] = r;
  ASSERT_EQ(by_agent.size(), 3u) << report.text;
  EXPECT_EQ(by_agent["oracle"]["completion_rate"], 1.0) << report.text;
  EXPECT_EQ(by_agent["noop"]["completion_rate"], 0.0) << report.text;
  // rule-agent knows renames and default changes: 4 of the sample's tasks.
  EXPECT_EQ(by_agent["rule-agent"]["completed"], 4) << report.text;
  int attempts = by_agent["oracle"]["attempts"];
  EXPECT_GE(attempts, 8);

  // The runner streamed the agent's own trace events into storage.
  auto store = storage::Store::Open(db_);
  ASSERT_TRUE(store);
  auto all = (*store)->ListAttempts(run_id);
  ASSERT_TRUE(all);
  size_t agent_events = 0, runner_events = 0;
  for (const auto& a : *all) {
    EXPECT_EQ(a.state(), v1::Attempt::DONE) << a.error();
    auto events = (*store)->ListEvents(run_id, a.number());
    ASSERT_TRUE(events);
    for (size_t i = 0; i < events->size(); ++i) {
      EXPECT_EQ((*events)[i].seq(), i) << "trace of attempt " << a.number() << " has a gap";
      if ((*events)[i].source() == "agent") ++agent_events;
      if ((*events)[i].source() == "runner") ++runner_events;
    }
    if (a.agent() == "rule-agent") {
      std::set<std::string> names;
      for (const auto& e : *events) names.insert(e.name());
      EXPECT_TRUE(names.count("plan")) << "attempt " << a.number();
      EXPECT_TRUE(names.count("run_tests")) << "attempt " << a.number();
    }
  }
  EXPECT_GT(agent_events, 0u);
  EXPECT_GT(runner_events, 0u);

  // Drilling down to a real attempt of rule-agent: its intent, its diff beside
  // the golden one, its tests and its trace, named as the task matrix names it.
  auto matrix = Crucible("report " + run_id + " --by task --format json --db " + Quote(db_));
  ASSERT_EQ(matrix.status, 0) << matrix.text;
  auto cells = nlohmann::json::parse(matrix.text);
  ASSERT_FALSE(cells["tasks"].empty()) << matrix.text;
  const std::string ref = cells["tasks"][0]["agents"]["rule-agent"][0]["attempt_id"];
  auto show = Crucible("show " + ref + " --width 200 --db " + Quote(db_));
  ASSERT_EQ(show.status, 0) << show.text;
  EXPECT_NE(show.text.find("attempt " + ref + "  DONE  agent rule-agent"), std::string::npos)
      << show.text;
  EXPECT_NE(show.text.find("FAIL_TO_PASS"), std::string::npos) << show.text;
  EXPECT_NE(show.text.find("=== "), std::string::npos) << show.text;
  EXPECT_NE(show.text.find("plan"), std::string::npos) << show.text;
}

// The review loop (docs/review-loop.md) on the sample repository with the
// example agent file: rule_agent in three styles, each with 3 rounds. The
// expected rounds per PR are examples/README.md's table.
TEST_F(SampleRepoEndToEnd, ReviewRoundsOnTheSampleRepositoryTakeOneTwoOrNever) {
  const std::string agents = std::string(CRUCIBLE_SOURCE_DIR) + "/examples/agents/agents.yaml";
  auto run =
      Crucible("run --suite sample --agents " + Quote(agents) + " --runners 2 --db " + Quote(db_));
  ASSERT_EQ(run.status, 0) << run.text;
  auto pos = run.text.find("run r");
  ASSERT_NE(pos, std::string::npos) << run.text;
  std::string run_id = run.text.substr(pos + 4, run.text.find(':', pos) - pos - 4);

  // PR number of each task, from its merge commit's summary.
  auto store = storage::Store::Open(db_, {.create_if_missing = false, .read_only = true});
  ASSERT_TRUE(store) << store.error().ToString();
  auto tasks = (*store)->ListTasks("sample");
  ASSERT_TRUE(tasks);
  std::map<std::string, int> pr_of;
  for (const auto& t : *tasks) {
    auto summary = Sh("git -C " + Quote(repo_) + " log -1 --format=%s " + t.merged_commit());
    ASSERT_EQ(summary.status, 0);
    auto hash = summary.text.find('#');
    ASSERT_NE(hash, std::string::npos) << summary.text;
    pr_of[t.id()] = std::stoi(summary.text.substr(hash + 1));
  }
  // merge_ready_round per style and PR; 0: never within 3 rounds.
  auto expected = [](const std::string& agent, int pr) {
    const bool solvable = pr == 4 || pr == 5 || pr == 8 || pr == 9;
    if (!solvable || agent == "rule-agent-stubborn") return 0;
    if (agent == "rule-agent" && pr == 4) return 1;
    return 2;
  };
  auto report = Crucible("report " + run_id + " --by attempt --format json --db " + Quote(db_));
  ASSERT_EQ(report.status, 0) << report.text;
  auto attempts = nlohmann::json::parse(report.text);
  ASSERT_EQ(attempts.size(), 3 * tasks->size()) << report.text;
  for (const auto& a : attempts) {
    const std::string agent = a["agent"];
    const int pr = pr_of.at(a["task_id"]);
    EXPECT_EQ(a["merge_ready_round"], expected(agent, pr))
        << agent << " on PR #" << pr << ": " << a.dump();
  }
  auto rows = nlohmann::json::parse(
      Crucible("report " + run_id + " --format json --db " + Quote(db_)).text);
  std::map<std::string, nlohmann::json> by_agent;
  for (const auto& r : rows) by_agent[r["agent"]] = r;
  EXPECT_EQ(by_agent["rule-agent"]["review_loops"]["1"], 1) << rows.dump();
  EXPECT_EQ(by_agent["rule-agent"]["review_loops"]["2"], 3) << rows.dump();
  EXPECT_DOUBLE_EQ(by_agent["rule-agent"]["review_loops_mean"], 1.75) << rows.dump();
  EXPECT_EQ(by_agent["rule-agent"]["strict_completed"], 1) << rows.dump();
  EXPECT_EQ(by_agent["rule-agent"]["completed"], 4) << rows.dump();
  EXPECT_EQ(by_agent["rule-agent-tidy"]["review_loops"]["2"], 4) << rows.dump();
  EXPECT_EQ(by_agent["rule-agent-stubborn"]["review_loops"]["never"],
            static_cast<int>(tasks->size()))
      << rows.dump();

  // Every round is in the evidence, and the trace marks them.
  auto listed = (*store)->ListAttempts(run_id);
  ASSERT_TRUE(listed);
  for (const auto& a : *listed) {
    auto e = (*store)->GetEvidence(run_id, a.number());
    ASSERT_TRUE(e) << e.error().ToString();
    EXPECT_EQ(e->rounds_allowed(), 3);
    ASSERT_GE(e->rounds_size(), 1);
    const int expected_rounds = expected(a.agent(), pr_of.at(a.task_id()));
    EXPECT_EQ(e->rounds_size(), expected_rounds == 0 ? 3 : expected_rounds)
        << a.agent() << " on PR #" << pr_of.at(a.task_id());
    auto events = (*store)->ListEvents(run_id, a.number());
    ASSERT_TRUE(events);
    int starts = 0;
    for (const auto& ev : *events) starts += ev.name() == "round_start";
    EXPECT_EQ(starts, e->rounds_size());
  }
}

TEST_F(SampleRepoEndToEnd, RunStoppedBySigtermLeavesNoTemporaryDirectory) {
  auto tmp = TempDir::Create("crucible-e2e-tmpdir-");
  ASSERT_TRUE(tmp);
  // SIGTERM 5 s in, while the agents sleep; SIGKILL 30 s later if it is ignored.
  auto run = Sh("TMPDIR=" + Quote(tmp->path()) + " timeout -k 30 -s TERM 5 " +
                std::string(CRUCIBLE_BIN) + " run --suite sample --agent " +
                Quote("sleeper=sleep 600") + " --runners 1 --db " + Quote(db_));
  EXPECT_EQ(run.status, 124) << run.text;  // timeout's status: it sent the signal
  EXPECT_NE(run.text.find("--resume"), std::string::npos) << run.text;
  std::vector<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(tmp->path())) {
    left.push_back(entry.path().filename().string());
  }
  EXPECT_TRUE(left.empty()) << "left behind: " << left.front();
}

TEST(CliErrors, PathThatIsNotAGitRepository) {
  auto dir = TempDir::Create("crucible-cli-");
  ASSERT_TRUE(dir);
  auto out = Crucible("mine --repo " + Quote(dir->path()) +
                      " --suite s --test-cmd 'true {junit}' --db " + Quote(dir->path() + "/db"));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("not a git repository"), std::string::npos) << out.text;
}

TEST(CliErrors, UnknownSuiteAndUnknownRun) {
  auto dir = TempDir::Create("crucible-cli-");
  ASSERT_TRUE(dir);
  std::string db = Quote(dir->path() + "/db");
  // An empty database is created by the first command that writes.
  ASSERT_TRUE(storage::Store::Open(dir->path() + "/db"));
  auto run = Crucible("run --suite ghost --agent builtin:noop --db " + db);
  EXPECT_NE(run.status, 0);
  EXPECT_NE(run.text.find("suite 'ghost' not found"), std::string::npos) << run.text;
  auto report = Crucible("report r-nope --db " + db);
  EXPECT_NE(report.status, 0);
  EXPECT_NE(report.text.find("run 'r-nope' not found"), std::string::npos) << report.text;
  auto show = Crucible("suite show ghost --db " + db);
  EXPECT_NE(show.status, 0);
  EXPECT_NE(show.text.find("ghost"), std::string::npos) << show.text;
}

TEST(CliErrors, MissingDatabaseIsNamed) {
  auto out = Crucible("report r1 --db /nonexistent/crucible-db");
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("no Crucible database at /nonexistent/crucible-db"), std::string::npos)
      << out.text;
}

TEST(CliErrors, DirectoryThatIsNotACrucibleDatabase) {
  auto dir = TempDir::Create("crucible-cli-");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(WriteFile(dir->path() + "/notes.txt", "my files"));
  auto out = Crucible("suite list --db " + Quote(dir->path()));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("is not a Crucible database"), std::string::npos) << out.text;
  auto still = ReadFile(dir->path() + "/notes.txt");
  ASSERT_TRUE(still);
  EXPECT_EQ(*still, "my files");  // nothing of the user's is touched
}

TEST(CliErrors, BadAgentSpec) {
  auto out = Crucible("run --suite s --agent builtin:genius --db /nonexistent/x");
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("unknown builtin"), std::string::npos) << out.text;
}

TEST(CliErrors, BadRoundsAndReviewers) {
  auto many = Crucible("run --suite s --agent builtin:noop --rounds 11 --db /nonexistent/x");
  EXPECT_NE(many.status, 0);
  EXPECT_NE(many.text.find("--rounds 11: between 1 and 10"), std::string::npos) << many.text;
  auto reviewer =
      Crucible("run --suite s --agent builtin:noop --reviewer lint --db /nonexistent/x");
  EXPECT_NE(reviewer.status, 0);
  EXPECT_NE(reviewer.text.find("--reviewer 'lint': expected NAME=COMMAND"), std::string::npos)
      << reviewer.text;
}

TEST(CliErrors, TestCommandThatDoesNotExist) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
  auto dir = TempDir::Create("crucible-cli-");
  ASSERT_TRUE(dir);
  std::string repo = dir->path() + "/repo";
  auto made = testing::MakeSampleRepo(repo);
  ASSERT_EQ(made.status, 0) << made.text;
  auto out = Crucible("mine --repo " + Quote(repo) + " --suite s --last 2 --test-cmd " +
                      Quote("no-such-test-runner --junit {junit}") + " --db " +
                      Quote(dir->path() + "/db"));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("no-such-test-runner"), std::string::npos) << out.text;
}

}  // namespace
}  // namespace crucible
