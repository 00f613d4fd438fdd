// Crucible traces as OpenTelemetry spans: the OTLP/JSON encoding of an
// ExportTraceServiceRequest with OpenInference attributes (docs/exporting.md),
// and its decoding.
//
// Encoding: one resource (service.name "crucible" and the attempt's
// crucible.* keys), one scope ("crucible"), a root AGENT span for the attempt
// and one span per trace event. Each event span carries
// openinference.span.kind (AGENT, CHAIN, TOOL, LLM; runner events are CHAIN
// with crucible.kind "RUNNER"), tool.name and input.value for tools,
// llm.model_name and llm.token_count.* for LLM calls, and the crucible.*
// attributes that keep the event whole (event name, kind, source, seq, the
// attrs JSON, the original span and parent ids). Ids are hex (32 digits for
// the trace, 16 for spans) and derived from the run id and the attempt number,
// so exporting an attempt twice yields the same trace.
//
// Decoding accepts any ExportTraceServiceRequest in OTLP/JSON (what the OTel
// file exporter and OpenInference's tooling write), never throws, and names
// the first problem of a malformed request.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::otel {

// Who an attempt's spans belong to (resource attributes).
struct AttemptMeta {
  std::string run_id;
  uint64_t attempt = 0;
  std::string task_id;
  std::string agent;
  int32_t sample = 0;
};

// The trace id of an attempt: 32 lower-case hex digits, a hash of the run id
// and the attempt number (never all zero).
std::string TraceIdOf(std::string_view run_id, uint64_t attempt);

// One ExportTraceServiceRequest (a single line of JSON, no newline) holding
// `events` as spans of the attempt's trace.
std::string EncodeOtlpJson(const AttemptMeta& meta, std::span<const v1::TraceEvent> events);

// A span as decoded. Attribute values are kept as text: strings as they are,
// integers in decimal, doubles as JSON numbers, booleans "true"/"false",
// arrays and key-value lists as JSON text.
struct Span {
  std::string trace_id;
  std::string span_id;
  std::string parent_span_id;
  std::string name;
  int64_t start_ns = 0;
  int64_t end_ns = 0;         // 0 when absent
  bool status_error = false;  // status.code STATUS_CODE_ERROR (2)
  std::map<std::string, std::string> attributes;
  std::map<std::string, std::string> resource;  // the resource's attributes

  // The attribute `key`, or "" when absent.
  const std::string& Attr(const std::string& key) const;
};

// Decodes one ExportTraceServiceRequest. kInvalidArgument naming the problem
// and where ("not JSON", "resourceSpans[0].scopeSpans[1].spans[3]: missing
// \"spanId\"", "...: startTimeUnixNano \"x\" is not a number of nanoseconds")
// for a request of the wrong shape. Spans without a name, span id or start
// time are errors; an empty request decodes to no span.
Result<std::vector<Span>> DecodeExportRequest(std::string_view json);

// True for the root span EncodeOtlpJson adds for the attempt itself.
bool IsAttemptRoot(const Span& span);

// The events EncodeOtlpJson encoded, back from its output (the root span
// left out): name, kind, ts, span and parent ids, attrs, source and seq come
// from the crucible.* attributes. kInvalidArgument for a malformed request
// or a span without crucible.event.name.
Result<std::vector<v1::TraceEvent>> DecodeOtlpEvents(std::string_view json);

}  // namespace crucible::otel
