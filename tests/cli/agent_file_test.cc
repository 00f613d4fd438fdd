// Agent files, price tables and --trace-format: real files in a temporary
// directory, and every error naming the file, the line and the key.
#include "cli/agent_file.h"

#include <sys/stat.h>

#include <iterator>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/fs.h"

namespace crucible::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class AgentFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("crucible-agent-file-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    ASSERT_TRUE(MakeDirs(dir_->path() + "/prompts"));
    ASSERT_TRUE(WriteFile(dir_->path() + "/prompts/house-style.md", "Keep diffs small.\n"));
    ASSERT_TRUE(WriteFile(dir_->path() + "/wrapper.sh", "#!/bin/sh\n", 0755));
  }

  // Writes `text` as agents.yaml and loads it.
  Result<std::vector<v1::AgentSpec>> Load(const std::string& text) {
    path_ = dir_->path() + "/agents.yaml";
    EXPECT_TRUE(WriteFile(path_, text));
    return LoadAgentFile(path_);
  }

  // The error of loading `text`; fails the test when it loads.
  std::string ErrorOf(const std::string& text) {
    auto agents = Load(text);
    EXPECT_FALSE(agents.has_value()) << text;
    return agents ? "" : agents.error().message();
  }

  std::unique_ptr<TempDir> dir_;
  std::string path_;
};

constexpr char kGood[] = R"(prices:
  claude-sonnet-4-5*: {input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}
  gpt-5: {input: 1.25, output: 10}
agents:
  - name: claude
    command: ./wrapper.sh --fast
    trace_format: claude-stream-json
    model: claude-sonnet-4-5
    prompt_file: prompts/house-style.md
    env: {ANTHROPIC_BASE_URL: "http://gateway:8080", DISABLE_TELEMETRY: "1"}
    pass_env: [ANTHROPIC_API_KEY]
    limits: {timeout: 30m, memory: 8GiB, pids: 1024, cpu: 1h}
    require: [gpu=false]
    rounds: 3
    prices:
      claude-sonnet-4-5*: {input: 2, output: 10}
  - name: plain
    command: /bin/true
)";

TEST_F(AgentFileTest, AGoodFileBecomesAgentSpecs) {
  auto agents = Load(kGood);
  ASSERT_TRUE(agents) << agents.error().ToString();
  ASSERT_EQ(agents->size(), 2u);
  const v1::AgentSpec& a = (*agents)[0];
  EXPECT_EQ(a.name(), "claude");
  EXPECT_EQ(a.command(), dir_->path() + "/wrapper.sh --fast");  // relative to the file
  EXPECT_EQ(a.trace_format(), "claude-stream-json");
  EXPECT_EQ(a.model(), "claude-sonnet-4-5");
  EXPECT_EQ(a.prompt(), "Keep diffs small.\n");
  EXPECT_THAT(
      std::vector<std::string>(a.env().begin(), a.env().end()),
      ::testing::ElementsAre("ANTHROPIC_BASE_URL=http://gateway:8080", "DISABLE_TELEMETRY=1"));
  ASSERT_EQ(a.pass_env_size(), 1);
  EXPECT_EQ(a.pass_env(0), "ANTHROPIC_API_KEY");
  EXPECT_EQ(a.timeout_s(), 1800);
  EXPECT_EQ(a.memory_limit_bytes(), uint64_t{8} << 30);
  EXPECT_EQ(a.pids_limit(), 1024u);
  EXPECT_EQ(a.cpu_time_s(), 3600u);
  ASSERT_EQ(a.require_size(), 1);
  EXPECT_EQ(a.require(0), "gpu=false");
  EXPECT_EQ(a.rounds(), 3);
  // The agent's own price first, then the shared table without that model.
  ASSERT_EQ(a.prices_size(), 2);
  EXPECT_EQ(a.prices(0).model(), "claude-sonnet-4-5*");
  EXPECT_EQ(a.prices(0).input_per_mtok(), 2);
  EXPECT_EQ(a.prices(0).output_per_mtok(), 10);
  EXPECT_EQ(a.prices(1).model(), "gpt-5");
  EXPECT_EQ(a.prices(1).input_per_mtok(), 1.25);

  const v1::AgentSpec& b = (*agents)[1];
  EXPECT_EQ(b.command(), "/bin/true");
  EXPECT_EQ(b.trace_format(), "");
  EXPECT_EQ(b.memory_limit_bytes(), 0u);
  EXPECT_EQ(b.rounds(), 0);       // the run's --rounds or the suite's decide
  ASSERT_EQ(b.prices_size(), 2);  // the shared table
  EXPECT_EQ(b.prices(0).cache_read_per_mtok(), 0.3);
  EXPECT_EQ(b.prices(0).cache_write_per_mtok(), 3.75);
}

TEST_F(AgentFileTest, EachErrorNamesTheFileTheLineAndTheKey) {
  struct Case {
    const char* yaml;
    const char* expected;  // after "FILE:"
  };
  const Case cases[] = {
      {"agents:\n  - name: a\n    command: /bin/true\n    colour: red\n",
       ":4:5: an agent: unknown key 'colour'"},
      {"agents:\n  - name: a\n    command: /bin/true\n    rounds: 0\n",
       ":4:13: key 'rounds': '0' is not a number of review rounds from 1 to 10"},
      {"agents:\n  - name: a\n    command: /bin/true\n    rounds: three\n",
       ":4:13: key 'rounds': 'three' is not a number of review rounds from 1 to 10"},
      {"agent:\n  - name: a\n", ":1:1: an agent file: unknown key 'agent'"},
      {"agents:\n  - name: a\n    command: /bin/true\n    limits: {memory: 8 gigs}\n",
       ":4:22: key 'memory': expected a size"},
      {"agents:\n  - name: a\n    command: /bin/true\n    limits: {timeout: soon}\n",
       ":4:23: key 'timeout': expected a duration"},
      {"agents:\n  - name: a\n    command: /bin/true\n    limits: {walltime: 5m}\n",
       ":4:14: key 'limits': unknown key 'walltime'"},
      {"agents:\n  - name: a\n    command: /bin/true\n    env: {\"NOT-A-NAME\": x}\n",
       ":4:11: key 'env': 'NOT-A-NAME' is not a variable name"},
      {"agents:\n  - name: a\n    command: /bin/true\n    env: [CRUCIBLE_TRACE=/tmp/x]\n",
       ":4:11: key 'env': 'CRUCIBLE_TRACE' is Crucible's own"},
      {"agents:\n  - name: a\n    command: /bin/true\n    pass_env: [OK_KEY, 9LIVES]\n",
       ":4:24: key 'pass_env': '9LIVES' is not a variable name"},
      {"agents:\n  - name: a\n    command: /bin/true\n    pass_env: [CRUCIBLE_X]\n",
       ":4:16: key 'pass_env': 'CRUCIBLE_X' is Crucible's own"},
      {"agents:\n  - name: a\n    command: /bin/true\n    prompt_file: prompts/none.md\n",
       ":4:18: key 'prompt_file': 'prompts/none.md'"},
      {"agents:\n  - name: a\n    command: /bin/true\n    prompt_file: prompts\n",
       ":4:18: key 'prompt_file': 'prompts' ("},
      {"agents:\n  - name: a\n    command: /bin/true\n  - name: a\n    command: /bin/false\n",
       ":4:11: key 'name': agent 'a' given twice (first on line 2)"},
      {"prices:\n  m: {input: -1, output: 2}\nagents:\n  - name: a\n    command: /bin/true\n",
       ":2:14: key 'input': a price cannot be negative"},
      {"prices:\n  m: {input: 1, output: 2, outptu: 3}\nagents: []\n",
       ":2:28: price of 'm': unknown key 'outptu'"},
      {"prices:\n  m: {input: 1}\nagents: []\n",
       ":2:3: price of 'm': keys 'input' and 'output' are required"},
      {"agents:\n  - name: a\n    command: /bin/true\n    trace_format: otel\n",
       ":4:19: key 'trace_format': unknown trace format 'otel' (known: crucible,"},
      {"agents:\n  - command: /bin/true\n", ":2:5: an agent needs a 'name'"},
      {"agents:\n  - name: a\n    command: /bin/true\n    env: {K: v}\n    pass_env: [K]\n",
       ":5:16: key 'pass_env': 'K' is set in 'env' too"},
      {"agents: [\n", ":2:1: not valid YAML"},
  };
  for (const auto& c : cases) {
    std::string error = ErrorOf(c.yaml);
    EXPECT_THAT(error, HasSubstr(path_ + c.expected)) << c.yaml;
  }
  // The prompt file errors say why.
  EXPECT_THAT(
      ErrorOf("agents:\n  - name: a\n    command: /bin/true\n    prompt_file: prompts/none.md\n"),
      HasSubstr("No such file or directory"));
  EXPECT_THAT(ErrorOf("agents:\n  - name: a\n    command: /bin/true\n    prompt_file: prompts\n"),
              HasSubstr("is not a regular file"));
}

TEST(ExampleAgentFile, TheReadmesExampleLoads) {
  auto agents = LoadAgentFile(std::string(CRUCIBLE_SOURCE_DIR) + "/examples/agents/agents.yaml");
  ASSERT_TRUE(agents) << agents.error().ToString();
  // The rule agent in its three review-feedback styles, three rounds each.
  const char* const styles[][2] = {
      {"rule-agent", "minimal"}, {"rule-agent-tidy", "tidy"}, {"rule-agent-stubborn", "stubborn"}};
  ASSERT_EQ(agents->size(), std::size(styles));
  for (size_t i = 0; i < std::size(styles); ++i) {
    const auto& agent = (*agents)[i];
    EXPECT_EQ(agent.name(), styles[i][0]);
    EXPECT_EQ(agent.command(), std::string(CRUCIBLE_SOURCE_DIR) + "/examples/agents/rule_agent.py");
    EXPECT_FALSE(agent.prompt().empty());
    EXPECT_THAT(agent.env(), ElementsAre(std::string("RULE_AGENT_STYLE=") + styles[i][1]));
    EXPECT_EQ(agent.rounds(), 3) << agent.name();
  }
}

TEST_F(AgentFileTest, AMissingFileIsNamed) {
  auto agents = LoadAgentFile(dir_->path() + "/nowhere.yaml");
  ASSERT_FALSE(agents);
  EXPECT_THAT(agents.error().message(), HasSubstr("--agents " + dir_->path() + "/nowhere.yaml"));
}

TEST_F(AgentFileTest, PriceTablesAreAddedBehindTheAgentsOwnPrices) {
  const std::string path = dir_->path() + "/prices.yaml";
  ASSERT_TRUE(WriteFile(path, "gpt-5: {input: 1.25, output: 10}\nm*: {input: 1, output: 2}\n"));
  auto prices = LoadPriceFile(path);
  ASSERT_TRUE(prices) << prices.error().ToString();
  ASSERT_EQ(prices->size(), 2u);
  std::vector<v1::AgentSpec> agents(2);
  auto* own = agents[0].add_prices();
  own->set_model("m*");
  own->set_input_per_mtok(9);
  AddPrices(*prices, agents);
  ASSERT_EQ(agents[0].prices_size(), 2);
  EXPECT_EQ(agents[0].prices(0).input_per_mtok(), 9);  // its own wins
  EXPECT_EQ(agents[0].prices(1).model(), "gpt-5");
  EXPECT_EQ(agents[1].prices_size(), 2);

  ASSERT_TRUE(WriteFile(path, "gpt-5: {input: 1.25, output: -10}\n"));
  auto bad = LoadPriceFile(path);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(),
              HasSubstr(path + ":1:30: key 'output': a price cannot be negative"));
}

TEST(TraceFormats, UnknownFormatsAreRejectedAndKnownOnesApplied) {
  std::vector<v1::AgentSpec> cli(2), files(1);
  cli[0].set_name("a");
  cli[1].set_name("b");
  files[0].set_name("f");
  auto bad = ApplyTraceFormats({"jsonl-ish"}, cli, files);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(),
              HasSubstr("--trace-format 'jsonl-ish': unknown trace format 'jsonl-ish' (known: "));
  EXPECT_THAT(bad.error().message(), HasSubstr("claude-stream-json"));
  ASSERT_TRUE(ApplyTraceFormats({"codex-json", "f=openinference"}, cli, files));
  EXPECT_EQ(cli[0].trace_format(), "codex-json");
  EXPECT_EQ(cli[1].trace_format(), "codex-json");
  EXPECT_EQ(files[0].trace_format(), "openinference");
  auto nobody = ApplyTraceFormats({"g=crucible"}, cli, files);
  ASSERT_FALSE(nobody);
  EXPECT_THAT(nobody.error().message(), HasSubstr("no agent is named 'g'"));
  auto bad_named = ApplyTraceFormats({"a=bogus"}, cli, files);
  ASSERT_FALSE(bad_named);
  EXPECT_THAT(bad_named.error().message(), HasSubstr("unknown trace format 'bogus'"));
}

}  // namespace
}  // namespace crucible::cli
