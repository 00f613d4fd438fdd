// The trace adapters on recorded-format fixtures (tests/runner/fixtures) and
// on malformed input; LineSplitter; ComputeUsage.
#include "agent-runner/adapters.h"

#include <fstream>
#include <random>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace crucible::runner {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(CRUCIBLE_SOURCE_DIR) + "/tests/runner/fixtures/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Session {
  std::vector<v1::TraceEvent> events;
  std::vector<std::string> errors;  // "line N: message"
  std::unique_ptr<TraceAdapter> adapter;

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& e : events) names.push_back(e.name());
    return names;
  }
  std::vector<json> Attrs(const std::string& name) const {
    std::vector<json> out;
    for (const auto& e : events)
      if (e.name() == name) out.push_back(json::parse(e.attrs_json()));
    return out;
  }
};

// Feeds `text` through a LineSplitter into the adapter of `format`, as the
// runner does with an agent's stdout, in chunks of `chunk` bytes.
Session Feed(const std::string& format, std::string_view text, size_t chunk = 7,
             AdapterOptions options = {}) {
  Session run;
  auto adapter = MakeTraceAdapter(format, options);
  EXPECT_TRUE(adapter) << adapter.error().ToString();
  run.adapter = std::move(*adapter);
  int line_no = 0;
  int64_t now = 1000;
  LineSplitter splitter({.line =
                             [&](std::string_view line, bool cut_off) {
                               ++line_no;
                               auto st = run.adapter->Line(line, now++, run.events);
                               if (!st)
                                 run.errors.push_back("line " + std::to_string(line_no) + ": " +
                                                      (cut_off ? "cut off: " : "") +
                                                      st.error().message());
                             },
                         .too_long =
                             [&](uint64_t bytes) {
                               ++line_no;
                               run.errors.push_back("line " + std::to_string(line_no) +
                                                    ": too long: " + std::to_string(bytes));
                             }});
  for (size_t i = 0; i < text.size(); i += chunk) splitter.Feed(text.substr(i, chunk));
  splitter.Finish();
  run.adapter->Finish(now, run.events);
  return run;
}

TEST(ClaudeAdapter, RecordedSessionMapsToTheAgentContract) {
  Session run = Feed("claude-stream-json", Fixture("claude/fix-bug.jsonl"), 5,
                     {.test_cmd = "python -m pytest {junit}", .model = ""});
  EXPECT_THAT(run.errors, ElementsAre());
  EXPECT_THAT(run.Names(), ElementsAre("llm_call", "read_file", "llm_call", "search", "llm_call",
                                       "plan", "edit_file", "llm_call", "run_tests", "llm_call",
                                       "edit_file", "llm_call", "run_tests", "llm_call"));
  for (const auto& e : run.events) EXPECT_EQ(e.source(), "agent");
  EXPECT_EQ(run.Attrs("read_file")[0]["path"], "inventory/models.py");
  EXPECT_EQ(run.Attrs("search")[0]["pattern"], "def total");
  auto edits = run.Attrs("edit_file");
  EXPECT_EQ(edits[0]["path"], "inventory/models.py");
  EXPECT_EQ(edits[1]["path"], "inventory/models.py");
  EXPECT_EQ(edits[1]["tool"], "MultiEdit");
  // The plan is the first text, given before the first edit.
  EXPECT_THAT(run.Attrs("plan")[0]["text"].get<std::string>(), HasSubstr("inventory/models.py"));
  // Test runs carry their outcome from the tool result.
  auto tests = run.Attrs("run_tests");
  EXPECT_EQ(tests[0]["failed"], 1);
  EXPECT_EQ(tests[0]["passed"], 1);
  EXPECT_EQ(tests[0]["exit_code"], 1);
  EXPECT_EQ(tests[0]["ok"], false);
  EXPECT_THAT(tests[0]["command"].get<std::string>(), HasSubstr("pytest"));
  EXPECT_EQ(tests[1]["passed"], 2);
  EXPECT_EQ(tests[1]["failed"], 0);
  EXPECT_EQ(tests[1]["ok"], true);
  // One llm_call per message, its usage counted once.
  auto calls = run.Attrs("llm_call");
  ASSERT_EQ(calls.size(), 7u);
  EXPECT_EQ(calls[0]["model"], "claude-sonnet-4-5-20250929");
  EXPECT_EQ(calls[0]["tokens_in"], 4 + 2000 + 10000);
  EXPECT_EQ(calls[0]["tokens_cached"], 10000);
  EXPECT_EQ(calls[0]["tokens_cache_write"], 2000);
  EXPECT_EQ(calls[0]["tokens_out"], 30);
  EXPECT_FALSE(calls[0].contains("cost_usd"));
  // Usage and cost from the result message, every model of it.
  const v1::Usage* reported = run.adapter->reported_usage();
  ASSERT_NE(reported, nullptr);
  EXPECT_DOUBLE_EQ(reported->cost_usd(), 0.0712);
  EXPECT_EQ(reported->cost_source(), "agent");
  EXPECT_EQ(reported->tokens_in(), 38u + 85650 + 3200 + 500);
  EXPECT_EQ(reported->tokens_out(), 435u);
  EXPECT_EQ(reported->tokens_cached(), 85650u);
  EXPECT_EQ(reported->tokens_cache_write(), 3200u);
  EXPECT_EQ(reported->llm_calls(), 7u);
  EXPECT_EQ(reported->llm_latency_ms(), 38100);
  EXPECT_THAT(std::vector<std::string>(reported->models().begin(), reported->models().end()),
              ElementsAre("claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"));
  v1::Usage u = ComputeUsage(run.events, reported, {}, "");
  EXPECT_DOUBLE_EQ(u.cost_usd(), 0.0712);
  EXPECT_EQ(u.cost_source(), "agent");
}

// Recorded by a real Claude Code (2.1.112) against a scripted model server.
TEST(ClaudeAdapter, RealClaudeCodeRecording) {
  Session run = Feed("claude-stream-json", Fixture("claude/config-task.jsonl"), 1000,
                     {.test_cmd = "python -m pytest {junit}", .model = ""});
  EXPECT_THAT(run.errors, ElementsAre());
  EXPECT_THAT(run.Names(), ElementsAre("llm_call", "read_file", "llm_call", "plan", "edit_file",
                                       "llm_call", "run_tests", "llm_call"));
  EXPECT_EQ(run.Attrs("read_file")[0]["path"], "inventory/config.py");
  EXPECT_EQ(run.Attrs("edit_file")[0]["path"], "inventory/config.py");
  EXPECT_THAT(run.Attrs("plan")[0]["text"].get<std::string>(), HasSubstr("inventory/config.py"));
  auto test = run.Attrs("run_tests")[0];
  EXPECT_EQ(test["passed"], 44);
  EXPECT_EQ(test["failed"], 0);
  EXPECT_EQ(test["ok"], true);
  const v1::Usage* reported = run.adapter->reported_usage();
  ASSERT_NE(reported, nullptr);
  v1::Usage u = ComputeUsage(run.events, reported, {}, "");
  EXPECT_EQ(u.cost_source(), "agent");
  EXPECT_DOUBLE_EQ(u.cost_usd(), 0.313749);
  EXPECT_EQ(u.tokens_in(), 103663u);
  EXPECT_EQ(u.tokens_out(), 184u);
  EXPECT_EQ(u.llm_calls(), 4u);
  EXPECT_EQ(u.llm_latency_ms(), 644);
  EXPECT_THAT(std::vector<std::string>(u.models().begin(), u.models().end()),
              ElementsAre("claude-sonnet-4-5"));
}

TEST(ClaudeAdapter, TodoWriteIsThePlanAndATestRunWithoutResultEndsWithoutOutcome) {
  Session run = Feed("claude-stream-json", Fixture("claude/todowrite.jsonl"), 4096);
  EXPECT_THAT(run.errors, ElementsAre());
  EXPECT_THAT(run.Names(), ElementsAre("llm_call", "plan", "llm_call", "run_tests"));
  auto plan = run.Attrs("plan")[0];
  EXPECT_THAT(plan["steps"], ElementsAre("Read pkg/util.py", "Fix parse() in pkg/util.py"));
  auto test = run.Attrs("run_tests")[0];
  EXPECT_EQ(test["command"], "pytest tests/");
  for (const char* key : {"ok", "passed", "failed", "exit_code"}) EXPECT_FALSE(test.contains(key));
  EXPECT_EQ(run.adapter->reported_usage(), nullptr);  // no result message
}

TEST(ClaudeAdapter, AToolResultForAnUnknownIdIsRejectedNamingIt) {
  Session run = Feed(
      "claude-stream-json",
      R"({"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"toolu_ghost","content":"x"}]}})"
      "\n");
  EXPECT_THAT(run.errors, ElementsAre(HasSubstr("unknown tool_use_id \"toolu_ghost\"")));
  EXPECT_TRUE(run.events.empty());
}

TEST(CodexAdapter, RecordedSessionMapsToTheAgentContract) {
  Session run = Feed("codex-json", Fixture("codex/fix-bug.jsonl"), 13,
                     {.test_cmd = "", .model = "gpt-5-codex"});
  EXPECT_THAT(run.errors, ElementsAre());
  // The todo list's update only ticks steps off: the plan is the same.
  EXPECT_THAT(run.Names(), ElementsAre("plan", "shell", "edit_file", "run_tests", "web", "llm_call",
                                       "run_tests"));
  auto plans = run.Attrs("plan");
  EXPECT_THAT(plans[0]["steps"],
              ElementsAre("Inspect inventory/models.py", "Fix total() rounding"));
  auto edit = run.Attrs("edit_file")[0];
  EXPECT_THAT(edit["files"], ElementsAre("inventory/models.py"));
  EXPECT_EQ(edit["path"], "inventory/models.py");
  auto tests = run.Attrs("run_tests");
  EXPECT_EQ(tests[0]["exit_code"], 1);
  EXPECT_EQ(tests[0]["failed"], 1);
  EXPECT_EQ(tests[0]["passed"], 1);
  // Started, never completed (the turn failed): no outcome.
  EXPECT_FALSE(tests[1].contains("exit_code"));
  EXPECT_FALSE(tests[1].contains("failed"));
  auto call = run.Attrs("llm_call")[0];
  EXPECT_EQ(call["model"], "gpt-5-codex");
  EXPECT_EQ(call["tokens_in"], 24763);  // cached tokens are part of it, as in Usage
  EXPECT_EQ(call["tokens_cached"], 24448);
  EXPECT_EQ(call["tokens_out"], 122);
  EXPECT_EQ(run.adapter->reported_usage(), nullptr);
  // No cost reported: priced by the table.
  v1::ModelPrice price;
  price.set_model("gpt-5*");
  price.set_input_per_mtok(1.25);
  price.set_cache_read_per_mtok(0.125);
  price.set_output_per_mtok(10);
  v1::Usage u = ComputeUsage(run.events, nullptr, {&price, 1}, "gpt-5-codex");
  EXPECT_EQ(u.cost_source(), "price_table");
  EXPECT_NEAR(u.cost_usd(), (315 * 1.25 + 24448 * 0.125 + 122 * 10) / 1e6, 1e-12);
  EXPECT_EQ(u.tokens_in(), 24763u);
  EXPECT_EQ(u.llm_calls(), 1u);
}

// Recorded by a real Codex CLI (0.171.0) against a scripted model server.
TEST(CodexAdapter, RealCodexRecording) {
  Session run = Feed("codex-json", Fixture("codex/config-task.jsonl"), 1000,
                     {.test_cmd = "", .model = "gpt-5-codex"});
  EXPECT_THAT(run.errors, ElementsAre());
  EXPECT_THAT(run.Names(), ElementsAre("shell", "edit_file", "run_tests", "llm_call"));
  EXPECT_THAT(run.Attrs("shell")[0]["command"].get<std::string>(),
              HasSubstr("cat inventory/config.py"));
  EXPECT_THAT(run.Attrs("edit_file")[0]["files"], ElementsAre("inventory/config.py"));
  auto test = run.Attrs("run_tests")[0];
  EXPECT_EQ(test["exit_code"], 0);
  EXPECT_EQ(test["passed"], 44);
  EXPECT_EQ(test["failed"], 0);
  v1::ModelPrice price;
  price.set_model("gpt-5-codex");
  price.set_input_per_mtok(1.25);
  price.set_output_per_mtok(10);
  v1::Usage u = ComputeUsage(run.events, run.adapter->reported_usage(), {&price, 1}, "gpt-5-codex");
  EXPECT_EQ(u.cost_source(), "price_table");
  EXPECT_EQ(u.tokens_in(), 39320u);
  EXPECT_EQ(u.tokens_out(), 295u);
  EXPECT_NEAR(u.cost_usd(), (39320 * 1.25 + 295 * 10) / 1e6, 1e-12);
}

TEST(CodexAdapter, OlderMsgEventsAreReadToo) {
  Session run =
      Feed("codex-json", Fixture("codex/legacy.jsonl"), 64, {.test_cmd = "", .model = "o4-mini"});
  EXPECT_THAT(run.errors, ElementsAre());
  EXPECT_THAT(run.Names(), ElementsAre("shell", "edit_file", "run_tests", "llm_call"));
  EXPECT_THAT(run.Attrs("edit_file")[0]["files"], ElementsAre("value.txt"));
  auto test = run.Attrs("run_tests")[0];
  EXPECT_EQ(test["exit_code"], 0);
  EXPECT_EQ(test["passed"], 1);
  EXPECT_EQ(run.Attrs("llm_call")[0]["tokens_in"], 3000);
}

TEST(CrucibleAdapter, IsTheTraceLineParser) {
  Session run = Feed("crucible", R"({"kind":"TOOL","name":"edit_file","attrs":{"path":"a.py"}})"
                                 "\nnope\n");
  EXPECT_THAT(run.Names(), ElementsAre("edit_file"));
  EXPECT_THAT(run.errors, ElementsAre("line 2: not JSON"));
  EXPECT_TRUE(MakeTraceAdapter("", {}));
}

TEST(TraceAdapters, UnknownFormatNamesTheKnownOnes) {
  auto a = MakeTraceAdapter("claude-json", {});
  ASSERT_FALSE(a);
  EXPECT_THAT(a.error().message(), HasSubstr("claude-json"));
  for (const auto& f : TraceFormats()) EXPECT_THAT(a.error().message(), HasSubstr(f));
  EXPECT_EQ(SourceOf("claude-stream-json"), TraceSource::kStdout);
  EXPECT_EQ(SourceOf("codex-json"), TraceSource::kStdout);
  EXPECT_EQ(SourceOf("openinference"), TraceSource::kSpanFile);
  EXPECT_EQ(SourceOf(""), TraceSource::kTraceFile);
}

TEST(TraceAdapters, MalformedLinesAreRejectedNamingTheProblem) {
  std::string binary;
  std::mt19937 rng(7);
  for (int i = 0; i < 4096; ++i) {
    char c = static_cast<char>(rng() % 256);
    binary += c == '\n' ? '\0' : c;
  }
  for (const char* format : {"claude-stream-json", "codex-json"}) {
    Session run = Feed(format,
                       "hello\n[1,2]\n{\"no\":\"type\"}\n{\"type\":7}\n" + binary +
                           "\n{\"type\":\"x\",\"s\":\"\xff\xfe\"}\n{\"type\":\"brand-new\"}\n",
                       3);
    EXPECT_TRUE(run.events.empty()) << format;
    ASSERT_EQ(run.errors.size(), 7u) << format;
    EXPECT_THAT(run.errors[0], HasSubstr("not JSON (at byte"));
    EXPECT_THAT(run.errors[1], HasSubstr("not a JSON object"));
    EXPECT_THAT(run.errors[2], HasSubstr("missing \"type\""));
    EXPECT_THAT(run.errors[3], HasSubstr("\"type\" is not a string"));
    EXPECT_THAT(run.errors[4], HasSubstr("not JSON"));
    EXPECT_THAT(run.errors[5], HasSubstr("not JSON"));  // not UTF-8
    EXPECT_THAT(run.errors[6], HasSubstr("unknown type \"brand-new\""));
  }
}

TEST(TraceAdapters, AStreamThatStopsMidLineIsTriedThenRejected) {
  // A complete last line without its newline is still read...
  Session whole =
      Feed("codex-json", "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":5}}");
  EXPECT_THAT(whole.Names(), ElementsAre("llm_call"));
  // ...one cut off is rejected, and what came before stays.
  Session cut = Feed("claude-stream-json", Fixture("claude/todowrite.jsonl") +
                                               R"({"type":"assistant","message":{"id":"m)");
  EXPECT_THAT(cut.errors, ElementsAre(HasSubstr("cut off: not JSON")));
  EXPECT_THAT(cut.Names(), ElementsAre("llm_call", "plan", "llm_call", "run_tests"));
}

size_t PeakRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("VmHWM:")) return std::stoul(line.substr(6));
  return 0;
}

TEST(LineSplitter, AHundredMegabyteLineIsSkippedWithBoundedMemory) {
  std::vector<std::string> lines;
  std::vector<uint64_t> too_long;
  LineSplitter splitter({.line = [&](std::string_view l, bool) { lines.emplace_back(l); },
                         .too_long = [&](uint64_t bytes) { too_long.push_back(bytes); }});
  const size_t before = PeakRssKiB();
  splitter.Feed("{\"type\":\"a\"}\r\n{\"type\":\"");
  const std::string chunk(64 * 1024, 'x');
  const size_t total = size_t{100} << 20;
  for (size_t fed = 0; fed < total; fed += chunk.size()) splitter.Feed(chunk);
  splitter.Feed("\"}\n{\"type\":\"b\"}\n");
  splitter.Finish();
  EXPECT_THAT(lines, ElementsAre("{\"type\":\"a\"}", "{\"type\":\"b\"}"));
  EXPECT_THAT(too_long, ElementsAre(total + 11));
  // At most one line of the limit is ever held.
  EXPECT_LT(PeakRssKiB() - before, (kMaxAdapterLineBytes >> 10) * 2 + 8192);
}

TEST(LineSplitter, AnOverLongLineThroughTheAdapterIsNamedWithItsSize) {
  std::string big = "{\"type\":\"assistant\",\"pad\":\"" + std::string(kMaxAdapterLineBytes, 'y') +
                    "\"}\n{\"type\":\"system\"}\n";
  Session run = Feed("claude-stream-json", big, 1 << 20);
  EXPECT_THAT(run.errors, ElementsAre(HasSubstr("too long: " + std::to_string(big.size() - 19))));
  // Called directly, the adapter names the limit.
  std::vector<v1::TraceEvent> out;
  auto adapter = MakeTraceAdapter("claude-stream-json", {});
  auto st = (*adapter)->Line(std::string_view(big).substr(0, big.size() - 19), 0, out);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("over the 16 MiB limit"));
}

v1::TraceEvent Llm(const json& attrs) {
  v1::TraceEvent ev;
  ev.set_kind("LLM");
  ev.set_name("llm_call");
  ev.set_source("agent");
  ev.set_attrs_json(attrs.dump());
  return ev;
}

v1::ModelPrice Price(std::string model, double in, double out, double read = 0, double write = 0) {
  v1::ModelPrice p;
  p.set_model(std::move(model));
  p.set_input_per_mtok(in);
  p.set_output_per_mtok(out);
  p.set_cache_read_per_mtok(read);
  p.set_cache_write_per_mtok(write);
  return p;
}

TEST(ComputeUsage, PricesByExactOrLongestPrefixWithCacheDefaultingToInput) {
  std::vector<v1::TraceEvent> trace = {
      Llm({{"model", "claude-sonnet-4-5"},
           {"tokens_in", 1'000'000},
           {"tokens_out", 1'000'000},
           {"tokens_cached", 400'000},
           {"tokens_cache_write", 100'000},
           {"latency_ms", 30}}),
      Llm({{"tokens_in", 2'000'000}, {"tokens_out", 0}, {"latency_ms", 12}}),  // default model
  };
  std::vector<v1::ModelPrice> prices = {
      Price("claude-*", 100, 100), Price("claude-sonnet-4*", 3, 15, 0.3),
      Price("claude-sonnet-4-5", 3, 15, 0.3), Price("local-model", 1, 2)};
  v1::Usage u = ComputeUsage(trace, nullptr, prices, "local-model");
  EXPECT_EQ(u.cost_source(), "price_table");
  // 500k uncached at 3, 400k read at 0.3, 100k written at 3 (the input price), 1M out at 15.
  EXPECT_NEAR(u.cost_usd(), 1.5 + 0.12 + 0.3 + 15 + 2.0 * 1, 1e-9);
  EXPECT_EQ(u.tokens_in(), 3'000'000u);
  EXPECT_EQ(u.tokens_cached(), 400'000u);
  EXPECT_EQ(u.llm_calls(), 2u);
  EXPECT_EQ(u.llm_latency_ms(), 42);
  EXPECT_THAT(std::vector<std::string>(u.models().begin(), u.models().end()),
              ElementsAre("claude-sonnet-4-5", "local-model"));
  // The longest prefix wins.
  std::vector<v1::ModelPrice> prefixes = {Price("claude-*", 100, 100),
                                          Price("claude-sonnet-4*", 3, 15)};
  v1::Usage p = ComputeUsage({&trace[0], 1}, nullptr, prefixes, "");
  EXPECT_NEAR(p.cost_usd(), 3 + 15, 1e-9);
}

TEST(ComputeUsage, AModelWithoutAPriceIsAWarningNotAZero) {
  std::vector<v1::TraceEvent> trace = {
      Llm({{"model", "mystery-1"}, {"tokens_in", 10}, {"tokens_out", 5}}),
      Llm({{"model", "mystery-1"}, {"tokens_in", 10}, {"tokens_out", 5}}),
      Llm({{"model", "priced"}, {"tokens_in", 1'000'000}, {"tokens_out", 0}}),
      Llm({{"tokens_in", 1}}),
      Llm({{"model", "agent-priced"}, {"cost_usd", 0.5}}),
  };
  v1::ModelPrice price = Price("priced", 2, 2);
  v1::Usage u = ComputeUsage(trace, nullptr, {&price, 1}, "");
  EXPECT_EQ(u.cost_source(), "partial");
  EXPECT_NEAR(u.cost_usd(), 2.5, 1e-9);
  EXPECT_THAT(std::vector<std::string>(u.warnings().begin(), u.warnings().end()),
              ElementsAre(HasSubstr("name no model"),
                          "no price for model mystery-1: its 2 calls are not priced"));
  // No prices at all, and no call: nothing to say.
  EXPECT_EQ(ComputeUsage({}, nullptr, {}, "x").cost_source(), "");
  // Only the agent's own costs.
  EXPECT_EQ(ComputeUsage({&trace[4], 1}, nullptr, {}, "").cost_source(), "agent");
  // Garbage attrs count as a call without tokens.
  v1::TraceEvent bad = Llm({});
  bad.set_attrs_json("not json");
  EXPECT_EQ(ComputeUsage({&bad, 1}, nullptr, {}, "").llm_calls(), 1u);
}

TEST(ComputeUsage, WhatTheAgentReportedTakesPrecedence) {
  std::vector<v1::TraceEvent> trace = {Llm({{"model", "m"}, {"tokens_in", 1}, {"latency_ms", 9}})};
  v1::Usage reported;
  reported.set_tokens_in(100);
  reported.set_cost_usd(0.25);
  reported.set_cost_source("agent");
  v1::ModelPrice price = Price("m", 1000, 1000);
  v1::Usage u = ComputeUsage(trace, &reported, {&price, 1}, "");
  EXPECT_EQ(u.tokens_in(), 100u);
  EXPECT_DOUBLE_EQ(u.cost_usd(), 0.25);
  EXPECT_EQ(u.llm_calls(), 1u);
  EXPECT_EQ(u.llm_latency_ms(), 9);
  // Reported tokens without a cost are priced from the table.
  reported.clear_cost_usd();
  reported.clear_cost_source();
  reported.add_models("m");
  v1::Usage priced = ComputeUsage(trace, &reported, {&price, 1}, "");
  EXPECT_EQ(priced.cost_source(), "price_table");
  EXPECT_NEAR(priced.cost_usd(), 0.1, 1e-12);
  v1::Usage unpriced = ComputeUsage(trace, &reported, {}, "");
  EXPECT_EQ(unpriced.cost_source(), "partial");
  EXPECT_THAT(unpriced.warnings(0), HasSubstr("no price for model m"));
}

TEST(FoldLlmCalls, KeepsTheUsageInBoundedSpace) {
  std::vector<v1::TraceEvent> calls;
  std::mt19937 rng(3);
  const char* models[] = {"a-1", "a-2", "b", ""};
  for (int i = 0; i < 10000; ++i) {
    json attrs = {{"tokens_in", rng() % 100000},
                  {"tokens_out", rng() % 1000},
                  {"tokens_cached", rng() % 100},
                  {"latency_ms", rng() % 50}};
    if (*models[i % 4]) attrs["model"] = models[i % 4];
    if (i % 7 == 0) attrs["cost_usd"] = (rng() % 1000) / 1e4;
    calls.push_back(Llm(attrs));
  }
  std::vector<v1::ModelPrice> prices = {Price("a-*", 3, 15, 0.3)};
  v1::Usage before = ComputeUsage(calls, nullptr, prices, "");
  FoldLlmCalls(calls);
  EXPECT_LE(calls.size(), 8u);
  FoldLlmCalls(calls);  // folding folded calls changes nothing
  EXPECT_LE(calls.size(), 8u);
  v1::Usage after = ComputeUsage(calls, nullptr, prices, "");
  EXPECT_EQ(after.llm_calls(), 10000u);
  EXPECT_EQ(after.tokens_in(), before.tokens_in());
  EXPECT_EQ(after.tokens_out(), before.tokens_out());
  EXPECT_EQ(after.tokens_cached(), before.tokens_cached());
  EXPECT_EQ(after.llm_latency_ms(), before.llm_latency_ms());
  EXPECT_NEAR(after.cost_usd(), before.cost_usd(), 1e-6 * before.cost_usd());
  EXPECT_EQ(after.cost_source(), "partial");
  EXPECT_THAT(std::vector<std::string>(after.warnings().begin(), after.warnings().end()),
              ElementsAreArray(before.warnings()));
  EXPECT_THAT(std::vector<std::string>(after.models().begin(), after.models().end()),
              ::testing::UnorderedElementsAreArray(before.models()));
}

}  // namespace
}  // namespace crucible::runner
