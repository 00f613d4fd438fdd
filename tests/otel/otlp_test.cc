// OTLP/JSON encoding of attempts' traces (otel/otlp.h) and the
// "openinference" trace adapter that reads span files back
// (agent-runner/adapter_otel.cc).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent-runner/adapters.h"
#include "base/fs.h"
#include "otel/otlp.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using nlohmann::json;

v1::TraceEvent Event(int64_t ts, std::string kind, std::string name, std::string attrs,
                     std::string source, uint64_t seq, std::string span = "",
                     std::string parent = "") {
  v1::TraceEvent ev;
  ev.set_ts_ns(ts);
  ev.set_kind(std::move(kind));
  ev.set_name(std::move(name));
  ev.set_attrs_json(std::move(attrs));
  ev.set_source(std::move(source));
  ev.set_seq(seq);
  ev.set_span_id(std::move(span));
  ev.set_parent_id(std::move(parent));
  return ev;
}

// An attempt's trace as the store holds it: runner and agent events.
std::vector<v1::TraceEvent> SampleTrace() {
  const int64_t t = 1'795'284'353'000'000'000;
  return {
      Event(t, "RUNNER", "workspace_ready", R"({"files":12})", "runner", 0),
      Event(t + 1, "RUNNER", "agent_start", "", "runner", 1),
      Event(t + 2, "AGENT", "plan", R"({"steps":["read src/a.py","fix it"]})", "agent", 2, "s1"),
      Event(t + 3, "TOOL", "read_file", R"({"path":"src/a.py","tool":"Read"})", "agent", 3, "s2",
            "s1"),
      Event(
          t + 4, "LLM", "llm_call",
          R"({"model":"claude-sonnet-4","tokens_in":4200,"tokens_out":80,"tokens_cached":3000,"tokens_cache_write":0,"latency_ms":1500,"cost_usd":0.012})",
          "agent", 4, "s3", "s1"),
      Event(t + 5, "TOOL", "edit_file", R"({"path":"src/a.py"})", "agent", 5, "s4", "s1"),
      Event(t + 6, "TOOL", "run_tests", R"({"command":"pytest -q","exit_code":0})", "agent", 6,
            "s5", "s1"),
      // A second event under an id already used.
      Event(t + 7, "CHAIN", "commit", R"({"files":["src/a.py"]})", "agent", 7, "s5"),
      Event(t + 8, "RUNNER", "agent_exit", R"({"exit_code":0,"accepted":6,"rejected":0})", "runner",
            8),
  };
}

otel::AttemptMeta Meta() {
  return {.run_id = "r20261130-101500-ab12",
          .attempt = 3,
          .task_id = "t1",
          .agent = "claude",
          .sample = 1};
}

// The attribute `key` of an encoded span, or null.
json Attr(const json& span, const std::string& key) {
  for (const auto& kv : span["attributes"]) {
    if (kv["key"] == key) return kv["value"];
  }
  return nullptr;
}

bool IsHex(const std::string& s, size_t n) {
  return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string::npos &&
         s.find_first_not_of('0') != std::string::npos;
}

TEST(OtlpEncode, FollowsTheOtlpJsonEncodingWithOpenInferenceAttributes) {
  auto events = SampleTrace();
  const std::string text = otel::EncodeOtlpJson(Meta(), events);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  json req = json::parse(text);
  ASSERT_EQ(req["resourceSpans"].size(), 1u);
  const json& rs = req["resourceSpans"][0];
  std::set<std::string> resource_keys;
  for (const auto& kv : rs["resource"]["attributes"]) resource_keys.insert(kv["key"]);
  for (const char* k : {"service.name", "crucible.run_id", "crucible.attempt", "crucible.task_id",
                        "crucible.agent", "crucible.sample"}) {
    EXPECT_TRUE(resource_keys.contains(k)) << k;
  }
  ASSERT_EQ(rs["scopeSpans"].size(), 1u);
  EXPECT_EQ(rs["scopeSpans"][0]["scope"]["name"], "crucible");
  const json& spans = rs["scopeSpans"][0]["spans"];
  ASSERT_EQ(spans.size(), events.size() + 1);  // the attempt's root span first

  const std::string trace_id = otel::TraceIdOf("r20261130-101500-ab12", 3);
  EXPECT_TRUE(IsHex(trace_id, 32)) << trace_id;
  EXPECT_EQ(trace_id, otel::TraceIdOf("r20261130-101500-ab12", 3)) << "deterministic";
  EXPECT_NE(trace_id, otel::TraceIdOf("r20261130-101500-ab12", 4));
  EXPECT_NE(trace_id, otel::TraceIdOf("r20261130-101500-ab13", 3));

  std::set<std::string> span_ids;
  const json& root = spans[0];
  EXPECT_EQ(Attr(root, "openinference.span.kind")["stringValue"], "AGENT");
  EXPECT_EQ(root["parentSpanId"], "");
  for (const auto& s : spans) {
    EXPECT_EQ(s["traceId"], trace_id);
    EXPECT_TRUE(IsHex(s["spanId"], 16)) << s["spanId"];
    EXPECT_TRUE(span_ids.insert(s["spanId"]).second) << "span ids are unique";
    // Times are decimal strings of nanoseconds.
    ASSERT_TRUE(s["startTimeUnixNano"].is_string());
    ASSERT_TRUE(s["endTimeUnixNano"].is_string());
    EXPECT_GE(std::stoll(s["endTimeUnixNano"].get<std::string>()),
              std::stoll(s["startTimeUnixNano"].get<std::string>()));
    for (const auto& kv : s["attributes"]) {
      ASSERT_TRUE(kv["value"].is_object());
      ASSERT_EQ(kv["value"].size(), 1u) << kv.dump();
      const std::string type = kv["value"].begin().key();
      EXPECT_TRUE(type == "stringValue" || type == "intValue" || type == "doubleValue" ||
                  type == "boolValue" || type == "arrayValue")
          << kv.dump();
      if (type == "intValue") {
        EXPECT_TRUE(kv["value"]["intValue"].is_string()) << kv.dump();
      }
    }
  }
  EXPECT_EQ(spans[1]["parentSpanId"], root["spanId"]) << "runner events hang from the root";

  // Runner events: CHAIN with crucible.kind RUNNER.
  EXPECT_EQ(Attr(spans[1], "openinference.span.kind")["stringValue"], "CHAIN");
  EXPECT_EQ(Attr(spans[1], "crucible.kind")["stringValue"], "RUNNER");
  EXPECT_EQ(Attr(spans[1], "crucible.source")["stringValue"], "runner");
  EXPECT_EQ(Attr(spans[1], "crucible.seq")["intValue"], "0");
  // A tool: tool.name (the agent's own tool name when it gave one) and its input.
  const json& read = spans[4];
  EXPECT_EQ(read["name"], "read_file");
  EXPECT_EQ(Attr(read, "openinference.span.kind")["stringValue"], "TOOL");
  EXPECT_EQ(Attr(read, "tool.name")["stringValue"], "Read");
  EXPECT_EQ(json::parse(Attr(read, "input.value")["stringValue"].get<std::string>())["path"],
            "src/a.py");
  EXPECT_EQ(read["parentSpanId"], spans[3]["spanId"]) << "parent_id s1 is the plan's span";
  EXPECT_EQ(Attr(spans[6], "tool.name")["stringValue"], "edit_file");
  // An LLM call: model, token counts (both count cached tokens in the prompt), latency.
  const json& llm = spans[5];
  EXPECT_EQ(Attr(llm, "openinference.span.kind")["stringValue"], "LLM");
  EXPECT_EQ(Attr(llm, "llm.model_name")["stringValue"], "claude-sonnet-4");
  EXPECT_EQ(Attr(llm, "llm.token_count.prompt")["intValue"], "4200");
  EXPECT_EQ(Attr(llm, "llm.token_count.completion")["intValue"], "80");
  EXPECT_EQ(Attr(llm, "llm.token_count.total")["intValue"], "4280");
  EXPECT_EQ(Attr(llm, "llm.token_count.prompt_details.cache_read")["intValue"], "3000");
  EXPECT_DOUBLE_EQ(Attr(llm, "llm.cost.total")["doubleValue"].get<double>(), 0.012);
  EXPECT_EQ(std::stoll(llm["endTimeUnixNano"].get<std::string>()) -
                std::stoll(llm["startTimeUnixNano"].get<std::string>()),
            1'500'000'000);
  // The second event under span id s5 gets a span of its own.
  EXPECT_NE(spans[8]["spanId"], spans[7]["spanId"]);

  // The same attempt encodes to the same bytes.
  EXPECT_EQ(otel::EncodeOtlpJson(Meta(), events), text);
}

TEST(OtlpEncode, DecodesBackToTheSameEvents) {
  auto events = SampleTrace();
  auto back = otel::DecodeOtlpEvents(otel::EncodeOtlpJson(Meta(), events));
  ASSERT_TRUE(back) << back.error().ToString();
  ASSERT_EQ(back->size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ((*back)[i].SerializeAsString(), events[i].SerializeAsString())
        << (*back)[i].DebugString() << " vs " << events[i].DebugString();
  }
  auto empty = otel::DecodeOtlpEvents(otel::EncodeOtlpJson(Meta(), {}));
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_TRUE(empty->empty());
}

// ---- the openinference adapter

runner::AdapterOptions Options() { return {.test_cmd = "pytest -q", .model = "default-model"}; }

struct Adapted {
  Status status;
  std::vector<v1::TraceEvent> events;
};

Adapted Feed(std::string_view line) {
  auto adapter = runner::MakeOpenInferenceAdapter(Options());
  Adapted a;
  a.status = adapter->Line(line, 42, a.events);
  return a;
}

// A request of `spans` (JSON text of an array) as OpenInference's tooling
// writes it.
std::string Request(const std::string& spans) {
  return R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my-agent"}}]},"scopeSpans":[{"scope":{"name":"openinference.instrumentation.x"},"spans":)" +
         spans + "}]}]}";
}

TEST(OpenInferenceAdapter, MapsToolLlmAgentAndChainSpans) {
  // Written by an exporter: children end (and are written) before their
  // parent, ids are hex, ints are strings or numbers.
  const std::string line = Request(R"([
    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173",
     "name":"Read","kind":1,"startTimeUnixNano":"1700000000200000000","endTimeUnixNano":"1700000000300000000",
     "attributes":[{"key":"openinference.span.kind","value":{"stringValue":"TOOL"}},
                   {"key":"tool.name","value":{"stringValue":"Read"}},
                   {"key":"input.value","value":{"stringValue":"{\"file_path\":\"/workspace/src/a.py\"}"}},
                   {"key":"output.value","value":{"stringValue":"def f(): pass"}}]},
    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","parentSpanId":"eee19b7ec3c1b173",
     "name":"bash","startTimeUnixNano":1700000000400000000,
     "attributes":[{"key":"openinference.span.kind","value":{"stringValue":"TOOL"}},
                   {"key":"input.value","value":{"stringValue":"{\"command\":\"pytest -q tests/\"}"}}],
     "status":{"code":2,"message":"exit 1"}},
    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b176","parentSpanId":"eee19b7ec3c1b173",
     "name":"ChatCompletion","startTimeUnixNano":"1700000000100000000","endTimeUnixNano":"1700000000150000000",
     "attributes":[{"key":"openinference.span.kind","value":{"stringValue":"LLM"}},
                   {"key":"llm.model_name","value":{"stringValue":"gpt-5"}},
                   {"key":"llm.token_count.prompt","value":{"intValue":"1000"}},
                   {"key":"llm.token_count.completion","value":{"intValue":120}},
                   {"key":"llm.token_count.total","value":{"intValue":"1120"}},
                   {"key":"llm.token_count.prompt_details.cache_read","value":{"intValue":"600"}}]},
    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b177","parentSpanId":"eee19b7ec3c1b173",
     "name":"plan","startTimeUnixNano":"1700000000050000000",
     "attributes":[{"key":"openinference.span.kind","value":{"stringValue":"CHAIN"}},
                   {"key":"input.value","value":{"stringValue":"{\"steps\":[\"read a.py\",\"fix f\"]}"}}]},
    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b173",
     "name":"my-agent","startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000500000000",
     "attributes":[{"key":"openinference.span.kind","value":{"stringValue":"agent"}},
                   {"key":"input.value","value":{"stringValue":"fix the bug"}}]}
  ])");
  auto a = Feed(line);
  ASSERT_TRUE(a.status) << a.status.error().ToString();
  ASSERT_EQ(a.events.size(), 5u);
  // In start order.
  const auto& agent = a.events[0];
  EXPECT_EQ(agent.kind(), "AGENT");
  EXPECT_EQ(agent.name(), "my-agent");
  EXPECT_EQ(agent.span_id(), "eee19b7ec3c1b173");
  EXPECT_EQ(agent.parent_id(), "");
  EXPECT_EQ(json::parse(agent.attrs_json())["input"], "fix the bug");
  EXPECT_EQ(agent.ts_ns(), 1'700'000'000'000'000'000);

  const auto& plan = a.events[1];
  EXPECT_EQ(plan.kind(), "CHAIN");
  EXPECT_EQ(plan.name(), "plan");
  EXPECT_EQ(json::parse(plan.attrs_json())["steps"][1], "fix f");

  const auto& llm = a.events[2];
  EXPECT_EQ(llm.kind(), "LLM");
  EXPECT_EQ(llm.name(), "llm_call");
  json la = json::parse(llm.attrs_json());
  EXPECT_EQ(la["model"], "gpt-5");
  EXPECT_EQ(la["tokens_in"], 1000) << "every prompt token, the cached ones too";
  EXPECT_EQ(la["tokens_cached"], 600);
  EXPECT_EQ(la["tokens_out"], 120);
  EXPECT_EQ(la["latency_ms"], 50);

  const auto& read = a.events[3];
  EXPECT_EQ(read.kind(), "TOOL");
  EXPECT_EQ(read.name(), "read_file");
  EXPECT_EQ(read.source(), "agent");
  EXPECT_EQ(read.span_id(), "eee19b7ec3c1b174");
  EXPECT_EQ(read.parent_id(), "eee19b7ec3c1b173");
  json ra = json::parse(read.attrs_json());
  EXPECT_EQ(ra["path"], "src/a.py");
  EXPECT_EQ(ra["tool"], "Read");
  EXPECT_EQ(ra["output"], "def f(): pass");

  const auto& bash = a.events[4];
  EXPECT_EQ(bash.name(), "run_tests") << "a shell call running the tests";
  json ba = json::parse(bash.attrs_json());
  EXPECT_EQ(ba["command"], "pytest -q tests/");
  EXPECT_EQ(ba["ok"], false) << "an error status is a failed run";
}

TEST(OpenInferenceAdapter, LlmSpanWithoutModelGetsTheAgentsModel) {
  auto a = Feed(Request(R"([{"spanId":"01","name":"llm","startTimeUnixNano":"5",
      "attributes":[{"key":"openinference.span.kind","value":{"stringValue":"LLM"}}]}])"));
  ASSERT_TRUE(a.status) << a.status.error().ToString();
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(json::parse(a.events[0].attrs_json())["model"], "default-model");
}

TEST(OpenInferenceAdapter, EmptyRequestsCarryNothing) {
  for (std::string line : {R"({"resourceSpans":[]})", R"({"resourceSpans":[{"scopeSpans":[]}]})",
                           R"({"resourceSpans":[{"scopeSpans":[{"spans":[]}]}]})"}) {
    auto a = Feed(line);
    EXPECT_TRUE(a.status) << line;
    EXPECT_TRUE(a.events.empty()) << line;
  }
}

TEST(OpenInferenceAdapter, RejectsMalformedLinesNamingTheProblem) {
  const std::string good_attrs =
      R"("attributes":[{"key":"openinference.span.kind","value":{"stringValue":"TOOL"}}])";
  struct Case {
    std::string line;
    std::string why;
  };
  const std::string huge(100'000, 'x');
  std::vector<Case> cases = {
      {"not json {", "not JSON"},
      {"[1,2]", "not a JSON object"},
      {"{\"spans\":[]}", "no \"resourceSpans\""},
      {"{\"resourceSpans\":{}}", "\"resourceSpans\" must be an array"},
      {"{\"resourceSpans\":[7]}", "resourceSpans[0]: must be an object"},
      {"{\"resourceSpans\":[{\"scopeSpans\":\"x\"}]}", "\"scopeSpans\" must be an array"},
      {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[\"x\"]}]}]}", "a span must be an object"},
      {Request(R"([{"name":"a","startTimeUnixNano":"1",)" + good_attrs + "}]"),
       "missing \"spanId\""},
      {Request(R"([{"spanId":7,"name":"a","startTimeUnixNano":"1",)" + good_attrs + "}]"),
       "\"spanId\" must be a hex string"},
      {Request(R"([{"spanId":"01","startTimeUnixNano":"1",)" + good_attrs + "}]"),
       "missing string \"name\""},
      {Request(R"([{"spanId":"01","name":"a",)" + good_attrs + "}]"),
       "missing \"startTimeUnixNano\""},
      {Request(R"([{"spanId":"01","name":"a","startTimeUnixNano":"yesterday",)" + good_attrs +
               "}]"),
       "is not a number of nanoseconds"},
      {Request(R"([{"spanId":"01","name":"a","startTimeUnixNano":-5,)" + good_attrs + "}]"),
       "startTimeUnixNano is negative"},
      {Request(R"([{"spanId":"01","name":"a","startTimeUnixNano":"99999999999999999999",)" +
               good_attrs + "}]"),
       "is not a number of nanoseconds"},
      {Request(R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":{}}])"),
       "\"attributes\" must be an array"},
      {Request(
           R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":[{"value":{}}]}])"),
       "missing string \"key\""},
      {Request(
           R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":[{"key":"k","value":{"intValue":"x1"}}]}])"),
       "intValue must be a decimal integer"},
      {Request(
           R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":[{"key":"k","value":{"stringValue":1}}]}])"),
       "stringValue must be a string"},
      {Request(
           R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":[{"key":"k","value":{"weirdValue":1}}]}])"),
       "unknown value type \"weirdValue\""},
      {Request(R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":[]}])"),
       "no openinference.span.kind attribute"},
      {Request(
           R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":[{"key":"openinference.span.kind","value":{"stringValue":"WIZARD"}}]}])"),
       "openinference.span.kind \"WIZARD\" is not one of"},
      {Request(
           R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":[{"key":"crucible.event.name","value":{"stringValue":"x"}},{"key":"crucible.kind","value":{"stringValue":"BOSS"}}]}])"),
       "crucible.kind \"BOSS\" is not one of"},
      {Request(
           R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":[{"key":"crucible.event.name","value":{"stringValue":"x"}},{"key":"crucible.kind","value":{"stringValue":"TOOL"}},{"key":"crucible.attrs","value":{"stringValue":"[1]"}}]}])"),
       "crucible.attrs is not a JSON object"},
      // A huge value: the event would be over the trace line limit.
      {Request(
           R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":[{"key":"openinference.span.kind","value":{"stringValue":"CHAIN"}},{"key":"input.value","value":{"stringValue":"{\"x\":\")" +
           huge + R"(\"}"}}]}])"),
       "over the limit of 65536 bytes"},
  };
  // Nesting deeper than the decoder follows.
  std::string deep = R"({"stringValue":"x"})";
  for (int i = 0; i < 40; ++i) deep = R"({"arrayValue":{"values":[)" + deep + "]}}";
  cases.push_back(
      {Request(
           R"([{"spanId":"01","name":"a","startTimeUnixNano":"1","attributes":[{"key":"k","value":)" +
           deep + "}]}]"),
       "value nested too deeply"});
  for (const auto& c : cases) {
    auto a = Feed(c.line);
    ASSERT_FALSE(a.status) << c.line.substr(0, 300);
    EXPECT_EQ(a.status.error().code(), Code::kInvalidArgument);
    EXPECT_NE(a.status.error().message().find(c.why), std::string::npos)
        << "expected '" << c.why << "' in: " << a.status.error().message();
    EXPECT_TRUE(a.events.empty()) << "a rejected line adds no event: " << c.why;
  }
}

TEST(OpenInferenceAdapter, OneBadSpanRejectsItsWholeLineAndTheNextLineStillReads) {
  auto adapter = runner::MakeOpenInferenceAdapter(Options());
  std::vector<v1::TraceEvent> out;
  auto st = adapter->Line(Request(R"([
      {"spanId":"01","name":"ok","startTimeUnixNano":"1","attributes":[{"key":"openinference.span.kind","value":{"stringValue":"CHAIN"}}]},
      {"spanId":"02","name":"bad","startTimeUnixNano":"2","attributes":[]}])"),
                          1, out);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("span \"bad\""), std::string::npos) << st.error().message();
  EXPECT_TRUE(out.empty());
  st = adapter->Line(
      Request(
          R"([{"spanId":"03","name":"next","startTimeUnixNano":"3","attributes":[{"key":"openinference.span.kind","value":{"stringValue":"CHAIN"}}]}])"),
      1, out);
  ASSERT_TRUE(st) << st.error().ToString();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name(), "next");
}

TEST(OpenInferenceAdapter, LongTextIsCutNotRefused) {
  const std::string long_output(20'000, 'y');
  auto a = Feed(Request(R"([{"spanId":"01","name":"Read","startTimeUnixNano":"1","attributes":[
      {"key":"openinference.span.kind","value":{"stringValue":"TOOL"}},
      {"key":"input.value","value":{"stringValue":"{\"path\":\"a.py\"}"}},
      {"key":"output.value","value":{"stringValue":")" +
                        long_output + R"("}}]}])"));
  ASSERT_TRUE(a.status) << a.status.error().ToString();
  ASSERT_EQ(a.events.size(), 1u);
  std::string output = json::parse(a.events[0].attrs_json())["output"];
  EXPECT_LT(output.size(), 5000u);
  EXPECT_NE(output.find("(20000 bytes)"), std::string::npos);
}

// The in-house agent of docs/agents.md ("Trace formats", "openinference"),
// run as written: its span file reads as the events the doc promises.
TEST(OpenInferenceAdapter, TheDocumentedPythonAgentsSpansRead) {
  auto doc = ReadFile(std::string(CRUCIBLE_SOURCE_DIR) + "/docs/agents.md");
  ASSERT_TRUE(doc);
  const size_t section = doc->find("### `openinference`");
  ASSERT_NE(section, std::string::npos);
  const size_t start = doc->find("```python\n", section);
  ASSERT_NE(start, std::string::npos);
  const size_t end = doc->find("```", start + 10);
  ASSERT_NE(end, std::string::npos);
  auto dir = TempDir::Create("crucible-spans-");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(WriteFile(dir->path() + "/agent.py", doc->substr(start + 10, end - start - 10)));
  auto ran = testing::Sh("CRUCIBLE_SPANS=" + testing::Quote(dir->path() + "/spans.jsonl") +
                             " python3 " + testing::Quote(dir->path() + "/agent.py"),
                         std::chrono::seconds(60));
  ASSERT_EQ(ran.status, 0) << ran.text;
  auto spans = ReadFile(dir->path() + "/spans.jsonl");
  ASSERT_TRUE(spans);
  auto adapter = runner::MakeOpenInferenceAdapter(Options());
  std::vector<v1::TraceEvent> events;
  size_t pos = 0;
  while (pos < spans->size()) {
    const size_t nl = spans->find('\n', pos);
    ASSERT_NE(nl, std::string::npos);
    auto st = adapter->Line(std::string_view(*spans).substr(pos, nl - pos), 1, events);
    ASSERT_TRUE(st) << st.error().ToString();
    pos = nl + 1;
  }
  std::vector<std::string> names;
  for (const auto& ev : events) names.push_back(ev.kind() + " " + ev.name());
  EXPECT_EQ(names, (std::vector<std::string>{"AGENT my-agent", "CHAIN plan", "TOOL read_file",
                                             "LLM llm_call", "TOOL run_tests"}));
  EXPECT_EQ(json::parse(events[1].attrs_json())["steps"][0], "read src/app.py");
  EXPECT_EQ(json::parse(events[2].attrs_json())["path"], "src/app.py");
  json llm = json::parse(events[3].attrs_json());
  EXPECT_EQ(llm["model"], "gpt-5");
  EXPECT_EQ(llm["tokens_in"], 1200);
  EXPECT_EQ(llm["tokens_out"], 80);
  EXPECT_EQ(llm["latency_ms"], 900);
  EXPECT_EQ(events[4].parent_id(), events[0].span_id());
}

// Export an attempt, read the lines back through the adapter: the same events
// (the agent's exactly; the runner's as CHAIN events of the agent, so a span
// file cannot forge what the harness saw).
TEST(OtlpRoundTrip, EncoderOutputThroughTheAdapterGivesTheSameEvents) {
  auto events = SampleTrace();
  // Split over two lines, as an exporter batching its spans would write them.
  std::vector<v1::TraceEvent> first(events.begin(), events.begin() + 4);
  std::vector<v1::TraceEvent> second(events.begin() + 4, events.end());
  auto adapter = runner::MakeOpenInferenceAdapter(Options());
  std::vector<v1::TraceEvent> back;
  for (const auto& part : {first, second}) {
    auto st = adapter->Line(otel::EncodeOtlpJson(Meta(), part), 1, back);
    ASSERT_TRUE(st) << st.error().ToString();
  }
  adapter->Finish(2, back);
  ASSERT_EQ(back.size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& want = events[i];
    const auto& got = back[i];
    EXPECT_EQ(got.name(), want.name()) << i;
    EXPECT_EQ(got.kind(), want.kind() == "RUNNER" ? "CHAIN" : want.kind()) << i;
    EXPECT_EQ(got.ts_ns(), want.ts_ns()) << i;
    EXPECT_EQ(got.attrs_json(), want.attrs_json()) << i;
    EXPECT_EQ(got.span_id(), want.span_id()) << i;
    EXPECT_EQ(got.parent_id(), want.parent_id()) << i;
    EXPECT_EQ(got.source(), "agent") << i;
  }
}

}  // namespace
}  // namespace crucible
