// Parts the trace adapters share (adapters.cc, adapter_claude.cc,
// adapter_codex.cc); not for use outside agent-runner.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent-runner/adapters.h"

namespace crucible::runner::adapters {

// An event of the agent (source "agent") with `attrs` as its attrs_json.
v1::TraceEvent AgentEvent(int64_t ts_ns, std::string_view kind, std::string_view name,
                          const nlohmann::json& attrs, std::string_view span_id = {});

// `line` as a JSON object with a string "type" (or, when `alt_key` is given, an
// object under `alt_key`); kInvalidArgument naming what is wrong: over the
// line limit, not JSON (with the byte offset), not an object, no "type".
Result<nlohmann::json> ParseTypedLine(std::string_view line, const char* alt_key = nullptr);

// Adds what a test run's output says to a run_tests event's attrs: "passed",
// "failed" and "errors" counts from a pytest-style summary ("3 passed, 1
// failed in 0.2s", the last one in `output`), and "exit_code" from a
// "Exit code N" line when `attrs` has none. Returns whether it found any.
bool AddTestOutcome(std::string_view output, nlohmann::json& attrs);

// A string value of `obj[key]`, or "" when missing or not a string.
std::string Str(const nlohmann::json& obj, const char* key);
// An unsigned integer value of `obj[key]` (negative, fractional or missing: 0).
uint64_t U64(const nlohmann::json& obj, const char* key);

std::unique_ptr<TraceAdapter> MakeCrucibleAdapter();
std::unique_ptr<TraceAdapter> MakeClaudeAdapter(const AdapterOptions& options);
std::unique_ptr<TraceAdapter> MakeCodexAdapter(const AdapterOptions& options);

}  // namespace crucible::runner::adapters
