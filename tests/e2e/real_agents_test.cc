// Real agent clients (pinned, installed into the build tree by npm: Claude
// Code and Codex CLI) as agents in the sandbox, each against a scripted model
// server that its wrapper starts in the same sandbox (tests/e2e/agents/).
// The conversation solves the sample repository's PR #4 task ("Change the
// default LOW_STOCK_THRESHOLD from 5 to 10"): read inventory/config.py, edit
// it, run the tests, report. Nothing leaves the sandbox: its network is
// loopback only, and the server's request log shows what the client asked for.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using nlohmann::json;
using testing::Crucible;
using ::testing::HasSubstr;
using testing::Quote;
using testing::Sh;

constexpr char kTestCmd[] = "python3 -m pytest -q -p no:cacheprovider --junitxml={junit}";
constexpr char kIntent[] = "Change the default LOW_STOCK_THRESHOLD from 5 to 10";
const std::string kAgentsDir = std::string(CRUCIBLE_SOURCE_DIR) + "/tests/e2e/agents";
// The clients start slowly on a loaded machine (Claude Code is a 14 MB
// script); the scripted conversation itself takes seconds.
constexpr std::chrono::seconds kRunLimit{600};

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    auto j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

// The model server's request log, which the wrappers print to stderr after
// the client exits: the requests, and how many were turns of the conversation.
struct Requests {
  std::vector<json> all;
  int turns = 0;
};

Requests RequestLog(const std::string& output) {
  Requests r;
  auto pos = output.find("model server requests:");
  if (pos == std::string::npos) return r;
  for (auto& line : JsonLines(output.substr(pos))) {
    if (!line.contains("method") || !line.contains("path")) continue;
    if (line.value("kind", "") == "turn") ++r.turns;
    r.all.push_back(std::move(line));
  }
  return r;
}

// Only the model API (and Claude Code's reachability probe of the base URL)
// was asked for.
void ExpectOnlyModelApi(const Requests& r, const std::string& api_prefix) {
  for (const auto& q : r.all) {
    const std::string path = q["path"];
    EXPECT_TRUE(path == "/" || path.rfind(api_prefix, 0) == 0) << q.dump();
  }
}

bool Mentions(const std::vector<json>& events, const std::string& text) {
  for (const auto& a : events) {
    if (a.dump().find(text) != std::string::npos) return true;
  }
  return false;
}

// The sample repository, built once for the suite, and PR #4's merge.
class RealAgents : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    auto dir = TempDir::Create("crucible-real-agents-");
    ASSERT_TRUE(dir);
    dir_ = new TempDir(std::move(*dir));
    repo_ = dir_->path() + "/sample-repo";
    auto made = testing::MakeSampleRepo(repo_);
    ASSERT_EQ(made.status, 0) << made.text;
    auto pr4 = Sh("git -C " + Quote(repo_) +
                  " log --first-parent --format=%H --grep='Merge pull request #4 ' main");
    ASSERT_EQ(pr4.status, 0) << pr4.text;
    ASSERT_GE(pr4.text.size(), 40u) << pr4.text;
    merge_ = pr4.text.substr(0, 40);
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    ASSERT_FALSE(merge_.empty()) << "the sample repository could not be built";
    for (const char* client : {CRUCIBLE_CLAUDE_CLI, CRUCIBLE_CODEX_BIN}) {
      ASSERT_EQ(::access(client, R_OK), 0)
          << client << " is missing: the agent_clients_npm target installs it";
    }
  }

  // Runs `wrapper CLIENT model_server.py` through `crucible sandbox` in a
  // checkout of PR #4's base (`name` names the directories). One directory
  // bound read-only holds the client (a hard link when it can be: Codex is a
  // 370 MB binary), the server, the wrapper and the task (`crucible sandbox`
  // takes one --ro-bind).
  static testing::CommandOutput SandboxRun(const std::string& name, const std::string& wrapper,
                                           const std::string& client,
                                           const std::string& client_name) {
    const std::string ws = dir_->path() + "/" + name + "-ws";
    const std::string io = dir_->path() + "/" + name + "-io";
    auto setup =
        Sh("mkdir -p " + Quote(ws) + " " + Quote(io) + " && git -C " + Quote(repo_) + " archive " +
           merge_ + "^1 | tar -x -C " + Quote(ws) + " && cp " +
           Quote(kAgentsDir + "/model_server.py") + " " + Quote(kAgentsDir + "/" + wrapper) + " " +
           Quote(io) + " && { ln " + Quote(client) + " " + Quote(io + "/" + client_name) +
           " 2>/dev/null || cp " + Quote(client) + " " + Quote(io + "/" + client_name) + "; }");
    EXPECT_EQ(setup.status, 0) << setup.text;
    json task = {{"intent", kIntent}, {"repo", "sample-repo"},
                 {"task_id", "pr4"},  {"suite", "real-agents"},
                 {"round", 1},        {"feedback", nullptr}};
    EXPECT_TRUE(WriteFile(io + "/task.json", task.dump()));
    return Crucible("sandbox --workspace=" + Quote(ws) + " --timeout=500 --ro-bind=" + Quote(io) +
                        " --env=CRUCIBLE_TASK=" + Quote(io + "/task.json") + " -- /bin/sh -c " +
                        Quote("cd /workspace && /bin/sh " + io + "/" + wrapper + " " + io + "/" +
                              client_name + " " + io + "/model_server.py"),
                    kRunLimit);
  }

  static std::string Workspace(const std::string& name) {
    return dir_->path() + "/" + name + "-ws";
  }

  // Mines PR #4 into a database of its own and runs `agent` (NAME=COMMAND)
  // on it with `trace_format`; returns the run's id.
  static std::string CrucibleRun(const std::string& db, const std::string& agent,
                                 const std::string& trace_format) {
    auto mined = Crucible("mine --repo " + Quote(repo_) + " --suite real --ref " + merge_ +
                          " --last 1 --test-cmd " + Quote(kTestCmd) + " --db " + Quote(db));
    EXPECT_EQ(mined.status, 0) << mined.text;
    auto run = Crucible("run --suite real --agent " + Quote(agent) + " --trace-format " +
                            trace_format + " --runners 1 --db " + Quote(db),
                        kRunLimit);
    EXPECT_EQ(run.status, 0) << run.text;
    auto pos = run.text.find("run r");
    if (pos == std::string::npos) {
      ADD_FAILURE() << run.text;
      return "";
    }
    return run.text.substr(pos + 4, run.text.find(':', pos + 4) - pos - 4);
  }

  struct Attempt {
    v1::Evidence evidence;
    std::map<std::string, std::vector<json>> agent;   // agent events' attrs by name
    std::map<std::string, std::vector<json>> runner;  // runner events' attrs by name
    std::string names;                                // every event, for messages
  };

  // The run's single attempt: its evidence and trace.
  static Attempt OnlyAttempt(const std::string& db, const std::string& run_id) {
    Attempt out;
    auto store = storage::Store::Open(db);
    EXPECT_TRUE(store) << store.error().ToString();
    if (!store) return out;
    auto attempts = (*store)->ListAttempts(run_id);
    EXPECT_TRUE(attempts && attempts->size() == 1u);
    if (!attempts || attempts->size() != 1u) return out;
    const auto& a = (*attempts)[0];
    EXPECT_EQ(a.state(), v1::Attempt::DONE) << a.error();
    auto evidence = (*store)->GetEvidence(run_id, a.number());
    EXPECT_TRUE(evidence) << evidence.error().ToString();
    if (evidence) out.evidence = *evidence;
    auto events = (*store)->ListEvents(run_id, a.number());
    EXPECT_TRUE(events) << events.error().ToString();
    if (!events) return out;
    for (const auto& e : *events) {
      auto attrs = json::parse(e.attrs_json(), nullptr, false);
      (e.source() == "agent" ? out.agent : out.runner)[e.name()].push_back(attrs);
      out.names += e.source() + ":" + e.name() + " ";
    }
    return out;
  }

  // The attempt completed the task: the client exited cleanly, changed
  // config.py only, and the suite with the hidden test patch passes.
  static void ExpectCompleted(const v1::Evidence& evidence) {
    EXPECT_EQ(evidence.agent_exit().exit_code(), 0) << evidence.agent_output_tail();
    EXPECT_THAT(evidence.files_touched(), ::testing::ElementsAre("inventory/config.py"));
    const auto& tests = evidence.tests();
    EXPECT_EQ(tests.exit_code(), 0) << tests.DebugString();
    EXPECT_TRUE(tests.infra_error().empty()) << tests.DebugString();
    EXPECT_GT(tests.tests_size(), 0) << tests.DebugString();
    for (const auto& t : tests.tests()) EXPECT_EQ(t.status(), v1::TestOutcome::PASSED) << t.id();
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string repo_;
  static inline std::string merge_;
};

// Claude Code alone, through `crucible sandbox`: it solves the task in the
// workspace, prints stream-json with the read, the edit, the test run, usage
// and cost, and asks nothing of anyone but the model server on loopback.
TEST_F(RealAgents, ClaudeCodeWrapperSolvesTheTaskTalkingOnlyToTheModelServer) {
  auto out = SandboxRun("claude", "claude_agent.sh", CRUCIBLE_CLAUDE_CLI, "cli.js");
  ASSERT_EQ(out.status, 0) << out.text;
  auto config = ReadFile(Workspace("claude") + "/inventory/config.py");
  ASSERT_TRUE(config);
  EXPECT_THAT(*config, HasSubstr("LOW_STOCK_THRESHOLD = 10"));

  std::set<std::string> tools;
  json result;
  for (auto& line : JsonLines(out.text)) {
    if (line.value("type", "") == "assistant") {
      for (const auto& block : line["message"]["content"]) {
        if (block.value("type", "") != "tool_use") continue;
        tools.insert(block["name"].get<std::string>());
        if (block["name"] == "Read" || block["name"] == "Edit") {
          EXPECT_EQ(block["input"]["file_path"], "/workspace/inventory/config.py");
        }
      }
    } else if (line.value("type", "") == "result") {
      result = line;
    }
  }
  EXPECT_EQ(tools, (std::set<std::string>{"Read", "Edit", "Bash"})) << out.text;
  ASSERT_TRUE(result.is_object()) << out.text;
  EXPECT_EQ(result["subtype"], "success") << result.dump(2);
  EXPECT_GT(result["total_cost_usd"].get<double>(), 0.0) << result.dump(2);
  EXPECT_GT(result["usage"]["input_tokens"].get<int64_t>(), 0) << result.dump(2);
  EXPECT_GT(result["usage"]["output_tokens"].get<int64_t>(), 0) << result.dump(2);
  EXPECT_THAT(out.text, HasSubstr(" passed")) << "the test run's output reached the client";

  auto requests = RequestLog(out.text);
  EXPECT_EQ(requests.turns, 4) << out.text;
  ExpectOnlyModelApi(requests, "/v1/messages");
}

// Codex CLI alone, through `crucible sandbox`: the same task through `codex
// exec --json` and the Responses API.
TEST_F(RealAgents, CodexWrapperSolvesTheTaskTalkingOnlyToTheModelServer) {
  auto out = SandboxRun("codex", "codex_agent.sh", CRUCIBLE_CODEX_BIN, "codex");
  ASSERT_EQ(out.status, 0) << out.text;
  auto config = ReadFile(Workspace("codex") + "/inventory/config.py");
  ASSERT_TRUE(config);
  EXPECT_THAT(*config, HasSubstr("LOW_STOCK_THRESHOLD = 10"));

  std::vector<std::string> commands;
  std::vector<std::string> changed;
  json usage;
  for (auto& line : JsonLines(out.text)) {
    if (line.value("type", "") == "turn.completed") usage = line["usage"];
    if (line.value("type", "") != "item.completed") continue;
    const auto& item = line["item"];
    if (item.value("type", "") == "command_execution") {
      commands.push_back(item["command"]);
      if (item["command"].get<std::string>().find("pytest") != std::string::npos) {
        EXPECT_EQ(item["exit_code"], 0) << item.dump(2);
      }
    } else if (item.value("type", "") == "file_change") {
      for (const auto& c : item["changes"]) changed.push_back(c["path"]);
    }
  }
  ASSERT_EQ(commands.size(), 2u) << out.text;
  EXPECT_THAT(commands[0], HasSubstr("cat inventory/config.py"));
  EXPECT_THAT(commands[1], HasSubstr("pytest"));
  EXPECT_EQ(changed, std::vector<std::string>{"/workspace/inventory/config.py"}) << out.text;
  ASSERT_TRUE(usage.is_object()) << out.text;
  EXPECT_GT(usage["input_tokens"].get<int64_t>(), 0) << usage.dump();
  EXPECT_GT(usage["output_tokens"].get<int64_t>(), 0) << usage.dump();

  auto requests = RequestLog(out.text);
  EXPECT_EQ(requests.turns, 4) << out.text;
  ExpectOnlyModelApi(requests, "/v1/responses");
}

// Claude Code as a `crucible run` agent with the claude-stream-json trace
// format: the attempt completes the task, the trace holds the agent's read,
// edit and test run with their paths, the evidence its tokens and cost, and
// what the harness saw (exec and file_write runner events) agrees.
TEST_F(RealAgents, ClaudeCodeRunTracesTheReadEditAndTestRunWithTokensAndCost) {
  const std::string db = dir_->path() + "/claude-db";
  auto run_id = CrucibleRun(db,
                            "claude=/bin/sh " + kAgentsDir + "/claude_agent.sh " +
                                CRUCIBLE_CLAUDE_CLI + " " + kAgentsDir + "/model_server.py",
                            "claude-stream-json");
  ASSERT_FALSE(run_id.empty());
  auto a = OnlyAttempt(db, run_id);
  ExpectCompleted(a.evidence);
  const auto& ev = a.evidence;
  EXPECT_EQ(ev.trace_format(), "claude-stream-json");
  EXPECT_EQ(ev.trace_rejected(), 0u) << ev.agent_output_tail();
  EXPECT_GT(ev.usage().tokens_in(), 0u) << ev.usage().DebugString();
  EXPECT_GT(ev.usage().tokens_out(), 0u) << ev.usage().DebugString();
  EXPECT_GT(ev.usage().cost_usd(), 0.0) << ev.usage().DebugString();
  EXPECT_EQ(ev.usage().cost_source(), "agent") << ev.usage().DebugString();
  EXPECT_TRUE(ev.contradictions().empty()) << ev.DebugString();

  EXPECT_TRUE(Mentions(a.agent["read_file"], "inventory/config.py")) << a.names;
  EXPECT_TRUE(Mentions(a.agent["edit_file"], "inventory/config.py")) << a.names;
  EXPECT_TRUE(Mentions(a.agent["run_tests"], "pytest")) << a.names;
  EXPECT_TRUE(Mentions(a.runner["exec"], "pytest")) << a.names;
  EXPECT_TRUE(Mentions(a.runner["file_write"], "inventory/config.py")) << a.names;

  auto requests = RequestLog(ev.agent_output_tail());
  EXPECT_EQ(requests.turns, 4) << ev.agent_output_tail();
  ExpectOnlyModelApi(requests, "/v1/messages");
}

// Codex CLI as a `crucible run` agent with the codex-json trace format.
// Codex reports tokens, not cost; its shell `cat` is a command, so the trace
// is checked for the edit and the test run.
TEST_F(RealAgents, CodexRunTracesTheEditAndTestRunWithTokens) {
  const std::string db = dir_->path() + "/codex-db";
  auto run_id = CrucibleRun(db,
                            "codex=/bin/sh " + kAgentsDir + "/codex_agent.sh " +
                                CRUCIBLE_CODEX_BIN + " " + kAgentsDir + "/model_server.py",
                            "codex-json");
  ASSERT_FALSE(run_id.empty());
  auto a = OnlyAttempt(db, run_id);
  ExpectCompleted(a.evidence);
  const auto& ev = a.evidence;
  EXPECT_EQ(ev.trace_format(), "codex-json");
  EXPECT_EQ(ev.trace_rejected(), 0u) << ev.agent_output_tail();
  EXPECT_GT(ev.usage().tokens_in(), 0u) << ev.usage().DebugString();
  EXPECT_GT(ev.usage().tokens_out(), 0u) << ev.usage().DebugString();
  EXPECT_TRUE(ev.contradictions().empty()) << ev.DebugString();

  EXPECT_TRUE(Mentions(a.agent["edit_file"], "inventory/config.py")) << a.names;
  EXPECT_TRUE(Mentions(a.agent["run_tests"], "pytest")) << a.names;
  EXPECT_TRUE(Mentions(a.runner["exec"], "pytest")) << a.names;
  EXPECT_TRUE(Mentions(a.runner["file_write"], "inventory/config.py")) << a.names;

  auto requests = RequestLog(ev.agent_output_tail());
  EXPECT_EQ(requests.turns, 4) << ev.agent_output_tail();
  ExpectOnlyModelApi(requests, "/v1/responses");
}

}  // namespace
}  // namespace crucible
