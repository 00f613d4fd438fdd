#include "otel/otlp.h"

#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace crucible::otel {
namespace {

using nlohmann::json;

// Nesting of arrayValue / kvlistValue decoded; deeper values are refused.
constexpr int kMaxValueDepth = 16;

uint64_t Fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// 16 hex digits of a hash of `s`, never all zero.
std::string Hex16(std::string_view s) {
  uint64_t h = Fnv1a(s);
  if (h == 0) h = 1;
  return fmt::format("{:016x}", h);
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json StringAttr(std::string key, std::string_view value) {
  return {{"key", std::move(key)}, {"value", {{"stringValue", std::string(value)}}}};
}
json IntAttr(std::string key, int64_t value) {
  // proto3 JSON writes int64 as a decimal string.
  return {{"key", std::move(key)}, {"value", {{"intValue", std::to_string(value)}}}};
}
json DoubleAttr(std::string key, double value) {
  return {{"key", std::move(key)}, {"value", {{"doubleValue", value}}}};
}
json BoolAttr(std::string key, bool value) {
  return {{"key", std::move(key)}, {"value", {{"boolValue", value}}}};
}

// An unsigned integer field of `attrs`, or -1.
int64_t UintField(const json& attrs, const char* key) {
  auto it = attrs.find(key);
  if (it == attrs.end()) return -1;
  if (it->is_number_unsigned())
    return static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX));
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return it->get<int64_t>();
  if (it->is_number_float() && it->get<double>() >= 0 && it->get<double>() < 9.2e18)
    return static_cast<int64_t>(it->get<double>());
  return -1;
}

std::string OpenInferenceKind(std::string_view kind) {
  if (kind == "AGENT" || kind == "TOOL" || kind == "LLM") return std::string(kind);
  return "CHAIN";  // CHAIN, RUNNER and anything else
}

json EventSpan(const v1::TraceEvent& ev, const std::string& trace_id, const std::string& span_id,
               const std::string& parent) {
  json attrs = json::parse(ev.attrs_json(), nullptr, /*allow_exceptions=*/false);
  if (!attrs.is_object()) attrs = json::object();
  const std::string oi_kind = OpenInferenceKind(ev.kind());
  json a = json::array();
  a.push_back(StringAttr("openinference.span.kind", oi_kind));
  int64_t end_ns = ev.ts_ns();
  if (oi_kind == "TOOL") {
    auto tool = attrs.find("tool");
    a.push_back(StringAttr("tool.name", tool != attrs.end() && tool->is_string()
                                            ? tool->get<std::string>()
                                            : ev.name()));
  }
  if (oi_kind == "LLM") {
    auto model = attrs.find("model");
    if (model != attrs.end() && model->is_string()) {
      a.push_back(StringAttr("llm.model_name", model->get<std::string>()));
    }
    const int64_t in = UintField(attrs, "tokens_in"), out = UintField(attrs, "tokens_out");
    const int64_t cached = UintField(attrs, "tokens_cached");
    const int64_t cache_write = UintField(attrs, "tokens_cache_write");
    // Both count every prompt token, cached or not, in the prompt.
    const int64_t prompt = std::max<int64_t>(in, 0);
    if (in >= 0) a.push_back(IntAttr("llm.token_count.prompt", prompt));
    if (out >= 0) a.push_back(IntAttr("llm.token_count.completion", out));
    if (in >= 0 || out >= 0) {
      a.push_back(IntAttr("llm.token_count.total", prompt + std::max<int64_t>(out, 0)));
    }
    if (cached >= 0) a.push_back(IntAttr("llm.token_count.prompt_details.cache_read", cached));
    if (cache_write >= 0) {
      a.push_back(IntAttr("llm.token_count.prompt_details.cache_write", cache_write));
    }
    auto cost = attrs.find("cost_usd");
    if (cost != attrs.end() && cost->is_number()) {
      a.push_back(DoubleAttr("llm.cost.total", cost->get<double>()));
    }
    const int64_t latency_ms = UintField(attrs, "latency_ms");
    if (latency_ms > 0 && latency_ms < INT64_MAX / 1'000'000 &&
        ev.ts_ns() <= INT64_MAX - latency_ms * 1'000'000) {
      end_ns = ev.ts_ns() + latency_ms * 1'000'000;
    }
  }
  if (!ev.attrs_json().empty()) {
    a.push_back(StringAttr("input.value", ev.attrs_json()));
    a.push_back(StringAttr("input.mime_type", "application/json"));
  }
  a.push_back(StringAttr("crucible.event.name", ev.name()));
  a.push_back(StringAttr("crucible.kind", ev.kind()));
  if (!ev.source().empty()) a.push_back(StringAttr("crucible.source", ev.source()));
  a.push_back(IntAttr("crucible.seq", static_cast<int64_t>(ev.seq())));
  if (!ev.attrs_json().empty()) a.push_back(StringAttr("crucible.attrs", ev.attrs_json()));
  if (!ev.span_id().empty()) a.push_back(StringAttr("crucible.span_id", ev.span_id()));
  if (!ev.parent_id().empty()) a.push_back(StringAttr("crucible.parent_id", ev.parent_id()));
  return {{"traceId", trace_id},
          {"spanId", span_id},
          {"parentSpanId", parent},
          {"name", ev.name()},
          {"kind", 1},  // SPAN_KIND_INTERNAL
          {"startTimeUnixNano", std::to_string(ev.ts_ns())},
          {"endTimeUnixNano", std::to_string(end_ns)},
          {"attributes", std::move(a)}};
}

// ---- decoding

std::unexpected<Error> Bad(const std::string& where, std::string_view what) {
  return Fail(Code::kInvalidArgument,
              where.empty() ? std::string(what) : fmt::format("{}: {}", where, what));
}

// A nanosecond time: a decimal string or a non-negative integer.
Result<int64_t> Nanos(const json& j, const std::string& where, const char* key) {
  if (j.is_number_unsigned()) {
    if (j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return Bad(where, fmt::format("{} is out of range", key));
    }
    return static_cast<int64_t>(j.get<uint64_t>());
  }
  if (j.is_number_integer()) {
    if (j.get<int64_t>() < 0) return Bad(where, fmt::format("{} is negative", key));
    return j.get<int64_t>();
  }
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size() && v >= 0 && !s.empty()) return v;
    return Bad(where,
               fmt::format("{} \"{}\" is not a number of nanoseconds", key, s.substr(0, 40)));
  }
  return Bad(where, fmt::format("{} must be a decimal string of nanoseconds", key));
}

// An OTLP AnyValue as plain JSON.
Result<json> AnyToJson(const json& v, const std::string& where, int depth) {
  if (depth > kMaxValueDepth) return Bad(where, "value nested too deeply");
  if (!v.is_object()) return Bad(where, "a value must be an object like {\"stringValue\": ...}");
  if (v.empty()) return json();
  if (v.size() != 1)
    return Bad(where, "a value must have exactly one of stringValue, intValue, ...");
  const std::string& type = v.begin().key();
  const json& x = v.begin().value();
  if (type == "stringValue" || type == "bytesValue") {
    if (!x.is_string()) return Bad(where, type + " must be a string");
    return x;
  }
  if (type == "boolValue") {
    if (!x.is_boolean()) return Bad(where, "boolValue must be true or false");
    return x;
  }
  if (type == "intValue") {
    if (x.is_number_integer()) return x;
    if (x.is_string()) {
      const std::string& s = x.get_ref<const std::string&>();
      int64_t n = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return json(n);
    }
    return Bad(where, "intValue must be a decimal integer");
  }
  if (type == "doubleValue") {
    if (x.is_number()) return x;
    return Bad(where, "doubleValue must be a number");
  }
  if (type == "arrayValue" || type == "kvlistValue") {
    if (!x.is_object()) return Bad(where, type + " must be an object with \"values\"");
    auto values = x.find("values");
    if (values == x.end()) return type == "arrayValue" ? json::array() : json::object();
    if (!values->is_array()) return Bad(where, type + ".values must be an array");
    json out = type == "arrayValue" ? json::array() : json::object();
    for (size_t i = 0; i < values->size(); ++i) {
      const json& item = (*values)[i];
      const std::string at = fmt::format("{}.{}[{}]", where, type, i);
      if (type == "arrayValue") {
        CRUCIBLE_ASSIGN_OR_RETURN(json e, AnyToJson(item, at, depth + 1));
        out.push_back(std::move(e));
      } else {
        if (!item.is_object() || !item.contains("key") || !item["key"].is_string()) {
          return Bad(at, "a key-value must have a string \"key\"");
        }
        auto value = item.find("value");
        json e;
        if (value != item.end()) {
          CRUCIBLE_ASSIGN_OR_RETURN(e, AnyToJson(*value, at, depth + 1));
        }
        out[item["key"].get<std::string>()] = std::move(e);
      }
    }
    return out;
  }
  return Bad(where, fmt::format("unknown value type \"{}\"", type.substr(0, 40)));
}

std::string ValueText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return Dump(v);
}

Status DecodeAttributes(const json& parent, const std::string& where,
                        std::map<std::string, std::string>& out) {
  auto attrs = parent.find("attributes");
  if (attrs == parent.end() || attrs->is_null()) return {};
  if (!attrs->is_array()) return Bad(where, "\"attributes\" must be an array");
  for (size_t i = 0; i < attrs->size(); ++i) {
    const json& kv = (*attrs)[i];
    const std::string at = fmt::format("{}.attributes[{}]", where, i);
    if (!kv.is_object()) return Bad(at, "must be an object {\"key\": ..., \"value\": ...}");
    auto key = kv.find("key");
    if (key == kv.end() || !key->is_string()) return Bad(at, "missing string \"key\"");
    auto value = kv.find("value");
    json v;
    if (value != kv.end() && !value->is_null()) {
      CRUCIBLE_ASSIGN_OR_RETURN(v, AnyToJson(*value, at, 0));
    }
    out[key->get<std::string>()] = ValueText(v);
  }
  return {};
}

// The array `key` of `obj` (absent or null: none).
Result<const json*> ArrayField(const json& obj, const char* key, const std::string& where) {
  static const json kEmpty = json::array();
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return &kEmpty;
  if (!it->is_array()) return Bad(where, fmt::format("\"{}\" must be an array", key));
  return &*it;
}

Result<std::string> IdString(const json& span, const char* key, const std::string& where,
                             bool required) {
  auto it = span.find(key);
  if (it == span.end() || it->is_null() ||
      (it->is_string() && it->get_ref<const std::string&>().empty())) {
    if (required) return Bad(where, fmt::format("missing \"{}\"", key));
    return std::string();
  }
  if (!it->is_string()) return Bad(where, fmt::format("\"{}\" must be a hex string", key));
  return it->get<std::string>();
}

Result<Span> DecodeSpan(const json& s, const std::string& where,
                        const std::map<std::string, std::string>& resource) {
  if (!s.is_object()) return Bad(where, "a span must be an object");
  Span span;
  span.resource = resource;
  CRUCIBLE_ASSIGN_OR_RETURN(span.trace_id, IdString(s, "traceId", where, false));
  CRUCIBLE_ASSIGN_OR_RETURN(span.span_id, IdString(s, "spanId", where, true));
  CRUCIBLE_ASSIGN_OR_RETURN(span.parent_span_id, IdString(s, "parentSpanId", where, false));
  auto name = s.find("name");
  if (name == s.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
    return Bad(where, "missing string \"name\"");
  }
  span.name = name->get<std::string>();
  auto start = s.find("startTimeUnixNano");
  if (start == s.end()) return Bad(where, "missing \"startTimeUnixNano\"");
  CRUCIBLE_ASSIGN_OR_RETURN(span.start_ns, Nanos(*start, where, "startTimeUnixNano"));
  if (auto end = s.find("endTimeUnixNano"); end != s.end() && !end->is_null()) {
    CRUCIBLE_ASSIGN_OR_RETURN(span.end_ns, Nanos(*end, where, "endTimeUnixNano"));
  }
  if (auto status = s.find("status"); status != s.end() && !status->is_null()) {
    if (!status->is_object()) return Bad(where, "\"status\" must be an object");
    auto code = status->find("code");
    if (code != status->end()) {
      span.status_error = (code->is_number_integer() && code->get<int64_t>() == 2) ||
                          (code->is_string() && code->get<std::string>() == "STATUS_CODE_ERROR");
    }
  }
  CRUCIBLE_RETURN_IF_ERROR(DecodeAttributes(s, where, span.attributes));
  return span;
}

}  // namespace

std::string TraceIdOf(std::string_view run_id, uint64_t attempt) {
  const std::string key = fmt::format("{}/{}", run_id, attempt);
  return Hex16("crucible-trace-a/" + key) + Hex16("crucible-trace-b/" + key);
}

std::string EncodeOtlpJson(const AttemptMeta& meta, std::span<const v1::TraceEvent> events) {
  const std::string trace_id = TraceIdOf(meta.run_id, meta.attempt);
  const std::string root_id = Hex16(trace_id + "/root");

  // Span ids: an event's own span id names its span (the first event that
  // uses it); other events get one of their own.
  std::map<std::string, std::string> by_agent_id;
  std::set<std::string> used = {root_id};
  std::vector<std::string> ids(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& ev = events[i];
    std::string id;
    if (!ev.span_id().empty() && !by_agent_id.contains(ev.span_id())) {
      id = Hex16(trace_id + "/span/" + ev.span_id());
    }
    for (int salt = 0; id.empty() || used.contains(id); ++salt) {
      id = Hex16(fmt::format("{}/event/{}/{}/{}", trace_id, ev.seq(), i, salt));
    }
    used.insert(id);
    if (!ev.span_id().empty() && !by_agent_id.contains(ev.span_id())) {
      by_agent_id[ev.span_id()] = id;
    }
    ids[i] = std::move(id);
  }

  int64_t first = 0, last = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (i == 0 || events[i].ts_ns() < first) first = events[i].ts_ns();
    if (i == 0 || events[i].ts_ns() > last) last = events[i].ts_ns();
  }
  json spans = json::array();
  const std::string attempt_name = fmt::format("{}/{}", meta.run_id, meta.attempt);
  spans.push_back({{"traceId", trace_id},
                   {"spanId", root_id},
                   {"parentSpanId", ""},
                   {"name", "attempt " + attempt_name},
                   {"kind", 1},
                   {"startTimeUnixNano", std::to_string(first)},
                   {"endTimeUnixNano", std::to_string(last)},
                   {"attributes", json::array({StringAttr("openinference.span.kind", "AGENT"),
                                               BoolAttr("crucible.root", true),
                                               StringAttr("crucible.attempt_id", attempt_name),
                                               StringAttr("crucible.task_id", meta.task_id),
                                               StringAttr("crucible.agent", meta.agent)})}});
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& ev = events[i];
    std::string parent = root_id;
    if (auto it = by_agent_id.find(ev.parent_id());
        !ev.parent_id().empty() && it != by_agent_id.end() && it->second != ids[i]) {
      parent = it->second;
    }
    spans.push_back(EventSpan(ev, trace_id, ids[i], parent));
  }
  json resource = json::array(
      {StringAttr("service.name", "crucible"), StringAttr("crucible.run_id", meta.run_id),
       IntAttr("crucible.attempt", static_cast<int64_t>(meta.attempt)),
       StringAttr("crucible.task_id", meta.task_id), StringAttr("crucible.agent", meta.agent),
       IntAttr("crucible.sample", meta.sample)});
  json request = {{"resourceSpans",
                   json::array({{{"resource", {{"attributes", std::move(resource)}}},
                                 {"scopeSpans", json::array({{{"scope", {{"name", "crucible"}}},
                                                              {"spans", std::move(spans)}}})}}})}};
  return Dump(request);
}

const std::string& Span::Attr(const std::string& key) const {
  static const std::string kEmpty;
  auto it = attributes.find(key);
  return it == attributes.end() ? kEmpty : it->second;
}

Result<std::vector<Span>> DecodeExportRequest(std::string_view text) {
  json request = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return Bad("", "not JSON");
  if (!request.is_object()) return Bad("", "not a JSON object");
  if (!request.contains("resourceSpans")) {
    return Bad("", "not an ExportTraceServiceRequest (no \"resourceSpans\")");
  }
  std::vector<Span> spans;
  CRUCIBLE_ASSIGN_OR_RETURN(const json* resource_spans, ArrayField(request, "resourceSpans", ""));
  for (size_t r = 0; r < resource_spans->size(); ++r) {
    const json& rs = (*resource_spans)[r];
    const std::string rwhere = fmt::format("resourceSpans[{}]", r);
    if (!rs.is_object()) return Bad(rwhere, "must be an object");
    std::map<std::string, std::string> resource;
    if (auto res = rs.find("resource"); res != rs.end() && !res->is_null()) {
      if (!res->is_object()) return Bad(rwhere, "\"resource\" must be an object");
      CRUCIBLE_RETURN_IF_ERROR(DecodeAttributes(*res, rwhere + ".resource", resource));
    }
    CRUCIBLE_ASSIGN_OR_RETURN(const json* scope_spans, ArrayField(rs, "scopeSpans", rwhere));
    for (size_t s = 0; s < scope_spans->size(); ++s) {
      const json& ss = (*scope_spans)[s];
      const std::string swhere = fmt::format("{}.scopeSpans[{}]", rwhere, s);
      if (!ss.is_object()) return Bad(swhere, "must be an object");
      CRUCIBLE_ASSIGN_OR_RETURN(const json* list, ArrayField(ss, "spans", swhere));
      for (size_t i = 0; i < list->size(); ++i) {
        CRUCIBLE_ASSIGN_OR_RETURN(
            Span span, DecodeSpan((*list)[i], fmt::format("{}.spans[{}]", swhere, i), resource));
        spans.push_back(std::move(span));
      }
    }
  }
  return spans;
}

bool IsAttemptRoot(const Span& span) { return span.Attr("crucible.root") == "true"; }

Result<std::vector<v1::TraceEvent>> DecodeOtlpEvents(std::string_view json_text) {
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<Span> spans, DecodeExportRequest(json_text));
  std::vector<v1::TraceEvent> events;
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& s = spans[i];
    if (IsAttemptRoot(s)) continue;
    v1::TraceEvent ev;
    const std::string& name = s.Attr("crucible.event.name");
    if (name.empty()) {
      return Bad(fmt::format("span {} ({})", i, s.name), "no crucible.event.name attribute");
    }
    ev.set_name(name);
    const std::string& kind = s.Attr("crucible.kind");
    ev.set_kind(kind.empty() ? s.Attr("openinference.span.kind") : kind);
    ev.set_ts_ns(s.start_ns);
    ev.set_span_id(s.Attr("crucible.span_id"));
    ev.set_parent_id(s.Attr("crucible.parent_id"));
    ev.set_attrs_json(s.Attr("crucible.attrs"));
    ev.set_source(s.Attr("crucible.source"));
    uint64_t seq = 0;
    const std::string& seq_text = s.Attr("crucible.seq");
    std::from_chars(seq_text.data(), seq_text.data() + seq_text.size(), seq);
    ev.set_seq(seq);
    events.push_back(std::move(ev));
  }
  return events;
}

}  // namespace crucible::otel
