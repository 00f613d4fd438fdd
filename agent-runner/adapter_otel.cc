// The "openinference" trace adapter: OTLP/JSON span files (docs/agents.md
// "Trace formats: openinference").
#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent-runner/adapters.h"
#include "agent-runner/trace.h"
#include "otel/otlp.h"

namespace crucible::runner {
namespace {

using nlohmann::json;

// Longest input or output text kept in an event's attrs (the rest is cut).
constexpr size_t kMaxKeptText = 4096;

std::string Upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// `text` cut to kMaxKeptText bytes, not inside a UTF-8 sequence.
std::string Cut(std::string_view text) {
  if (text.size() <= kMaxKeptText) return std::string(text);
  size_t n = kMaxKeptText;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return fmt::format("{}... ({} bytes)", text.substr(0, n), text.size());
}

// A non-negative integer attribute, or -1 when absent or not one.
int64_t Count(const otel::Span& span, const std::string& key) {
  const std::string& t = span.Attr(key);
  int64_t v = -1;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v < 0) return -1;
  return v;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

class OpenInferenceAdapter : public TraceAdapter {
 public:
  explicit OpenInferenceAdapter(AdapterOptions options) : options_(std::move(options)) {}

  Status Line(std::string_view line, int64_t now_ns, std::vector<v1::TraceEvent>& out) override {
    if (line.size() > kMaxAdapterLineBytes) {
      return Fail(Code::kInvalidArgument, fmt::format("line of {} bytes is longer than {}",
                                                      line.size(), kMaxAdapterLineBytes));
    }
    CRUCIBLE_ASSIGN_OR_RETURN(std::vector<otel::Span> spans, otel::DecodeExportRequest(line));
    // Exporters write a span when it ends, so children come before their
    // parents: events go in start order, unless the spans are Crucible's own
    // export, whose order is the trace's.
    const bool crucible_export = std::any_of(spans.begin(), spans.end(), [](const auto& s) {
      return !s.Attr("crucible.event.name").empty();
    });
    if (!crucible_export) {
      std::stable_sort(spans.begin(), spans.end(),
                       [](const auto& a, const auto& b) { return a.start_ns < b.start_ns; });
    }
    std::vector<v1::TraceEvent> events;
    for (size_t i = 0; i < spans.size(); ++i) {
      const otel::Span& span = spans[i];
      if (otel::IsAttemptRoot(span)) continue;
      auto ev = ToEvent(span, now_ns);
      if (!ev) return Fail(ev.error().Wrap(fmt::format("span \"{}\"", span.name.substr(0, 80))));
      events.push_back(std::move(*ev));
    }
    for (auto& ev : events) out.push_back(std::move(ev));
    return {};
  }

 private:
  Result<v1::TraceEvent> ToEvent(const otel::Span& span, int64_t now_ns) const {
    v1::TraceEvent ev;
    ev.set_source("agent");
    ev.set_ts_ns(span.start_ns > 0 ? span.start_ns : now_ns);
    ev.set_span_id(span.span_id);
    ev.set_parent_id(span.parent_span_id);
    const std::string& oi_kind = span.Attr("openinference.span.kind");
    const std::string& crucible_name = span.Attr("crucible.event.name");
    if (!crucible_name.empty()) {
      // Crucible's own export: the event as it was. An agent cannot make
      // runner events: those come back as CHAIN events of the agent.
      std::string kind = Upper(span.Attr("crucible.kind"));
      if (kind == "RUNNER") kind = "CHAIN";
      if (kind != "AGENT" && kind != "CHAIN" && kind != "TOOL" && kind != "LLM") {
        return Fail(Code::kInvalidArgument,
                    fmt::format("crucible.kind \"{}\" is not one of AGENT, CHAIN, TOOL, LLM",
                                Cut(span.Attr("crucible.kind"))));
      }
      ev.set_kind(kind);
      ev.set_name(crucible_name);
      const std::string& attrs = span.Attr("crucible.attrs");
      if (!attrs.empty()) {
        json parsed = json::parse(attrs, nullptr, /*allow_exceptions=*/false);
        if (!parsed.is_object()) {
          return Fail(Code::kInvalidArgument, "crucible.attrs is not a JSON object");
        }
        ev.set_attrs_json(attrs);
      }
      // The event's own ids (empty when it had none), not the span's.
      ev.set_span_id(span.Attr("crucible.span_id"));
      ev.set_parent_id(span.Attr("crucible.parent_id"));
      return Checked(std::move(ev));
    }
    if (oi_kind.empty()) {
      return Fail(Code::kInvalidArgument, "no openinference.span.kind attribute");
    }
    const std::string kind = Upper(oi_kind);
    json attrs = json::object();
    if (kind == "TOOL") {
      const std::string& tool = span.Attr("tool.name");
      MappedTool mapped =
          MapToolCall(tool.empty() ? span.name : tool, span.Attr("input.value"), options_);
      attrs = json::parse(mapped.attrs_json, nullptr, /*allow_exceptions=*/false);
      if (!attrs.is_object()) attrs = json::object();
      ev.set_kind("TOOL");
      ev.set_name(mapped.name);
    } else if (kind == "LLM") {
      ev.set_kind("LLM");
      ev.set_name("llm_call");
      std::string model = span.Attr("llm.model_name");
      if (model.empty()) model = options_.model;
      if (!model.empty()) attrs["model"] = model;
      const int64_t prompt = Count(span, "llm.token_count.prompt");
      const int64_t completion = Count(span, "llm.token_count.completion");
      const int64_t cached = Count(span, "llm.token_count.prompt_details.cache_read");
      const int64_t cache_write = Count(span, "llm.token_count.prompt_details.cache_write");
      // Both count every prompt token, cached or not, in the prompt.
      if (prompt >= 0) attrs["tokens_in"] = prompt;
      if (completion >= 0) attrs["tokens_out"] = completion;
      if (cached >= 0) attrs["tokens_cached"] = cached;
      if (cache_write >= 0) attrs["tokens_cache_write"] = cache_write;
      if (span.end_ns > span.start_ns) {
        attrs["latency_ms"] = (span.end_ns - span.start_ns) / 1'000'000;
      }
      const std::string& cost = span.Attr("llm.cost.total");
      if (!cost.empty()) {
        json c = json::parse(cost, nullptr, /*allow_exceptions=*/false);
        if (c.is_number() && c.get<double>() >= 0) attrs["cost_usd"] = c;
      }
    } else if (kind == "RETRIEVER") {
      ev.set_kind("TOOL");
      ev.set_name("search");
      attrs["tool"] = span.name;
      if (const auto& q = span.Attr("input.value"); !q.empty()) attrs["pattern"] = Cut(q);
    } else if (kind == "AGENT" || kind == "CHAIN" || kind == "EMBEDDING" || kind == "RERANKER" ||
               kind == "GUARDRAIL" || kind == "EVALUATOR" || kind == "PROMPT" ||
               kind == "UNKNOWN") {
      ev.set_kind(kind == "AGENT" ? "AGENT" : "CHAIN");
      ev.set_name(span.name);
      // An input that is a JSON object is the event's attrs (a plan span's
      // {"steps": [...]}); other input is kept as text.
      const std::string& input = span.Attr("input.value");
      json parsed = json::parse(input, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_object()) {
        attrs = std::move(parsed);
      } else if (!input.empty()) {
        attrs["input"] = Cut(input);
      }
    } else {
      return Fail(Code::kInvalidArgument,
                  fmt::format("openinference.span.kind \"{}\" is not one of AGENT, CHAIN, TOOL, "
                              "LLM, RETRIEVER, EMBEDDING, RERANKER, GUARDRAIL, EVALUATOR, PROMPT, "
                              "UNKNOWN",
                              Cut(oi_kind)));
    }
    if (const auto& output = span.Attr("output.value");
        !output.empty() && !attrs.contains("output")) {
      attrs["output"] = Cut(output);
    }
    if (span.status_error && !attrs.contains("ok")) attrs["ok"] = false;
    if (!attrs.empty()) ev.set_attrs_json(Dump(attrs));
    return Checked(std::move(ev));
  }

  // Refuses an event bigger than a trace line may be.
  static Result<v1::TraceEvent> Checked(v1::TraceEvent ev) {
    if (ev.attrs_json().size() > kMaxTraceLineBytes || ev.name().size() > 1024) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("event of {} bytes is over the limit of {} bytes",
                              ev.attrs_json().size() + ev.name().size(), kMaxTraceLineBytes));
    }
    return ev;
  }

  AdapterOptions options_;
};

}  // namespace

std::unique_ptr<TraceAdapter> MakeOpenInferenceAdapter(const AdapterOptions& options) {
  return std::make_unique<OpenInferenceAdapter>(options);
}

}  // namespace crucible::runner
