// An agent from an agent file, run for real: in the sandbox by PerformAttempt,
// and through `crucible run --agents` with RocksDB, where the value of a
// pass_env variable must end up nowhere.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent-runner/attempt.h"
#include "base/fs.h"
#include "cli/agent_file.h"
#include "storage/store.h"
#include "tests/runner/value_tests.h"
#include "tests/support/run_command.h"
#include "tests/vcs/git_fixture.h"

namespace crucible {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Quote;

// The passed variable of these tests and a value unlike anything else.
constexpr char kKeyName[] = "H4_AGENT_TEST_API_KEY";

std::string SecretValue() {
  return fmt::format("sk-test-{:x}-{:x}-passed-only", ::getpid(), ::time(nullptr));
}

class AgentFileSandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    task_ = runner::ValueTask(repo_);
    auto dir = TempDir::Create("crucible-agent-sandbox-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    ASSERT_TRUE(MakeDirs(dir_->path() + "/prompts"));
    ASSERT_TRUE(WriteFile(dir_->path() + "/prompts/style.md", "Fix it in one line.\n"));
  }

  void TearDown() override { ::unsetenv(kKeyName); }

  // Writes `script` as agent.sh and `yaml` as agents.yaml beside it; returns
  // the file's only agent.
  v1::AgentSpec AgentFromFile(const std::string& script, const std::string& yaml) {
    EXPECT_TRUE(WriteFile(dir_->path() + "/agent.sh", script, 0755));
    EXPECT_TRUE(WriteFile(dir_->path() + "/agents.yaml", yaml));
    auto agents = cli::LoadAgentFile(dir_->path() + "/agents.yaml");
    EXPECT_TRUE(agents) << agents.error().ToString();
    if (!agents || agents->size() != 1) return {};
    return agents->front();
  }

  Result<v1::Evidence> Perform(const v1::AgentSpec& agent) {
    runner::AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt-" + std::to_string(++n_);
    ctx.emit = [this](v1::TraceEvent ev) { events_.push_back(std::move(ev)); };
    return runner::PerformAttempt(task_, agent, ctx);
  }

  std::vector<std::string> Warnings() {
    std::vector<std::string> out;
    for (const auto& ev : events_) {
      if (ev.name() == "sandbox_warning") {
        out.push_back(nlohmann::json::parse(ev.attrs_json())["message"].get<std::string>());
      }
    }
    return out;
  }

  crucible::testing::GitRepo repo_;
  v1::GoldenTask task_;
  std::unique_ptr<TempDir> dir_;
  std::vector<v1::TraceEvent> events_;
  int n_ = 0;
};

constexpr char kShowScript[] = R"sh(#!/bin/sh
echo "model=$CRUCIBLE_MODEL"
echo "prompt_path=$CRUCIBLE_PROMPT"
echo "prompt=$(cat "$CRUCIBLE_PROMPT")"
echo "gateway=$MODEL_GATEWAY"
echo "key=$H4_AGENT_TEST_API_KEY"
echo "missing=${H4_AGENT_TEST_UNSET-unset}"
echo 2 > value.txt
)sh";

constexpr char kShowYaml[] = R"(agents:
  - name: shower
    command: ./agent.sh
    model: claude-sonnet-4-5
    prompt_file: prompts/style.md
    env: {MODEL_GATEWAY: "http://gateway:8080"}
    pass_env: [H4_AGENT_TEST_API_KEY, H4_AGENT_TEST_UNSET]
    limits: {timeout: 2m, pids: 256}
)";

TEST_F(AgentFileSandboxTest, TheAgentSeesItsEnvPromptModelAndPassedValue) {
  const std::string secret = SecretValue();
  ASSERT_EQ(::setenv(kKeyName, secret.c_str(), 1), 0);
  ::unsetenv("H4_AGENT_TEST_UNSET");
  v1::AgentSpec agent = AgentFromFile(kShowScript, kShowYaml);
  auto e = Perform(agent);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->agent_exit().exit_code(), 0) << e->agent_output_tail();
  const std::string& out = e->agent_output_tail();
  EXPECT_THAT(out, HasSubstr("model=claude-sonnet-4-5\n"));
  EXPECT_THAT(out, HasSubstr("prompt_path=/crucible/prompt.md\n"));
  EXPECT_THAT(out, HasSubstr("prompt=Fix it in one line.\n"));
  EXPECT_THAT(out, HasSubstr("gateway=http://gateway:8080\n"));
  EXPECT_THAT(out, HasSubstr("key=" + secret + "\n"));  // read from our environment
  EXPECT_THAT(out, HasSubstr("missing=unset\n"));
  // The missing variable is a warning that names it.
  EXPECT_THAT(Warnings(), ::testing::Contains(HasSubstr("H4_AGENT_TEST_UNSET is not set")));
  for (const auto& w : Warnings()) EXPECT_THAT(w, Not(HasSubstr(secret)));
  EXPECT_NE(e->final_diff().find("+2"), std::string::npos);
}

TEST_F(AgentFileSandboxTest, AMemoryLimitFromTheFileIsApplied) {
  v1::AgentSpec agent = AgentFromFile(
      "#!/bin/sh\n"
      "python3 -c 'b = bytearray(512 << 20); print(len(b))'\n"
      "echo \"python exit $?\"\n",
      "agents:\n  - name: hog\n    command: ./agent.sh\n    limits: {memory: 96MiB}\n");
  ASSERT_EQ(agent.memory_limit_bytes(), uint64_t{96} << 20);
  auto e = Perform(agent);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_TRUE(e->agent_exit().oom_killed()) << e->agent_exit().DebugString();
  EXPECT_THAT(e->agent_output_tail(), Not(HasSubstr(std::to_string(512 << 20))));
  EXPECT_THAT(e->agent_output_tail(), HasSubstr("python exit 137"));
}

// Every byte of every file below `dir`.
std::string AllBytes(const std::string& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return all;
}

TEST_F(AgentFileSandboxTest, PassedValuesAreStoredNowhere) {
  const std::string secret = SecretValue();
  // The agent spreads the value everywhere it can: stdout, stderr, its trace,
  // a file of its change; and a marker beside it, to show that what the
  // agent writes is found where it is stored.
  v1::AgentSpec agent = AgentFromFile(
      R"sh(#!/bin/sh
echo "marker=VISIBLE-MARKER-4711 key=$H4_AGENT_TEST_API_KEY"
echo "key on stderr: $H4_AGENT_TEST_API_KEY" >&2
printf '{"kind":"TOOL","name":"shell","attrs":{"command":"echo %s","marker":"VISIBLE-MARKER-4711"}}\n' "$H4_AGENT_TEST_API_KEY" >> "$CRUCIBLE_TRACE"
echo "$H4_AGENT_TEST_API_KEY" > notes.txt
echo 2 > value.txt
)sh",
      "agents:\n  - name: leaky\n    command: ./agent.sh\n    pass_env: [H4_AGENT_TEST_API_KEY]\n");
  ASSERT_EQ(agent.pass_env_size(), 1);
  const std::string db = dir_->path() + "/db";
  {
    auto store = storage::Store::Open(db);
    ASSERT_TRUE(store) << store.error().ToString();
    v1::Suite suite;
    suite.set_name("s");
    ASSERT_TRUE((*store)->PutSuite(suite, {task_}));
  }
  auto run = testing::Sh(fmt::format("{}={} {} -v run --suite s --agents {} --runners 1 --db {}",
                                     kKeyName, Quote(secret), CRUCIBLE_BIN,
                                     Quote(dir_->path() + "/agents.yaml"), Quote(db)));
  ASSERT_EQ(run.status, 0) << run.text;
  EXPECT_THAT(run.text, Not(HasSubstr(secret)));  // the logs

  auto store =
      storage::Store::Open(db, storage::OpenOptions{.create_if_missing = false, .read_only = true});
  ASSERT_TRUE(store) << store.error().ToString();
  auto runs = (*store)->ListRuns();
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), 1u);
  const v1::Run& stored_run = runs->front();
  ASSERT_EQ(stored_run.agents_size(), 1);
  EXPECT_EQ(stored_run.agents(0).pass_env(0), kKeyName);  // the name is kept
  std::string everything = stored_run.DebugString();
  auto evidence = (*store)->GetEvidence(stored_run.id(), 0);
  ASSERT_TRUE(evidence) << evidence.error().ToString();
  everything += evidence->DebugString();
  auto trace = (*store)->ListEvents(stored_run.id(), 0);
  ASSERT_TRUE(trace);
  for (const auto& ev : *trace) everything += ev.DebugString();
  EXPECT_THAT(everything, HasSubstr("VISIBLE-MARKER-4711"));
  EXPECT_THAT(everything, HasSubstr("[pass_env H4_AGENT_TEST_API_KEY]"));
  EXPECT_THAT(everything, Not(HasSubstr(secret)));
  EXPECT_THAT(evidence->final_diff(), HasSubstr("notes.txt"));
  store->reset();

  const std::string files = AllBytes(db);
  EXPECT_THAT(files, HasSubstr("VISIBLE-MARKER-4711"));
  EXPECT_EQ(files.find(secret), std::string::npos) << "the value is in the database's files";
}

TEST(CrucibleRun, RejectsAnUnknownTraceFormatAndABadAgentFile) {
  auto dir = TempDir::Create("crucible-run-flags-test-");
  ASSERT_TRUE(dir);
  const std::string db = Quote(dir->path() + "/db");
  auto bad = testing::Sh(fmt::format(
      "{} run --suite s --agent a=/bin/true --trace-format otel-ish --db {}", CRUCIBLE_BIN, db));
  EXPECT_NE(bad.status, 0);
  EXPECT_THAT(bad.text, HasSubstr("--trace-format 'otel-ish': unknown trace format 'otel-ish' "
                                  "(known: crucible, claude-stream-json"));
  const std::string file = dir->path() + "/agents.yaml";
  ASSERT_TRUE(WriteFile(file,
                        "agents:\n  - name: a\n    command: /bin/true\n    "
                        "limits: {memory: lots}\n"));
  auto bad_file = testing::Sh(
      fmt::format("{} run --suite s --agents {} --db {}", CRUCIBLE_BIN, Quote(file), db));
  EXPECT_NE(bad_file.status, 0);
  EXPECT_THAT(bad_file.text, HasSubstr(file + ":4:22: key 'memory': expected a size"));
  ASSERT_TRUE(WriteFile(file, "agents:\n  - name: a\n    command: /bin/true\n"));
  auto twice = testing::Sh(fmt::format("{} run --suite s --agents {} --agent a=/bin/false --db {}",
                                       CRUCIBLE_BIN, Quote(file), db));
  EXPECT_NE(twice.status, 0);
  EXPECT_THAT(twice.text, HasSubstr("agent name 'a' given twice"));
}

}  // namespace
}  // namespace crucible
