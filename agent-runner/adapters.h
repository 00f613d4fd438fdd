// Reading real agents' own telemetry into trace events (docs/agents.md
// "Trace formats"): Claude Code's stream-json, Codex CLI's exec --json,
// OpenInference span files, and Crucible's own JSONL.
//
// Everything an adapter reads is untrusted: a line may be garbage, huge,
// binary or cut off. An adapter never throws or crashes; a line it cannot use
// is an Error naming the problem, which the runner counts and reports like a
// rejected trace line, and the attempt goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::runner {

// Longest line an adapter accepts (a stream-json line can carry a whole file
// the agent read); a longer line is rejected as a whole, never buffered.
inline constexpr size_t kMaxAdapterLineBytes = size_t{16} << 20;

// Where a format's telemetry comes from.
enum class TraceSource {
  kTraceFile,  // "crucible": JSONL the agent appends to $CRUCIBLE_TRACE
  kStdout,     // "claude-stream-json", "codex-json": the agent's stdout
  kSpanFile,   // "openinference": OTLP/JSON lines the agent appends to $CRUCIBLE_SPANS
};

struct AdapterOptions {
  std::string test_cmd;  // the suite's test command: a shell call running it is run_tests
  std::string model;     // AgentSpec.model: the model of LLM events that name none
};

// Turns the lines of one format into trace events, in order. Events it makes
// have source "agent", kind AGENT|CHAIN|TOOL|LLM and the names of the agent
// contract (plan, read_file, edit_file, search, run_tests, shell, llm_call,
// ...) with their paths relative to the workspace, so scoring reads every
// format the same way. LLM calls are `llm_call` events (kind LLM) whose attrs
// carry model, tokens_in, tokens_out, tokens_cached, tokens_cache_write,
// latency_ms and, when the agent reported it, cost_usd.
class TraceAdapter {
 public:
  virtual ~TraceAdapter() = default;

  // One complete line (no newline), read at `now_ns` (the time of events the
  // line does not date itself). Appends its events to `out`. Returns an Error
  // (kInvalidArgument, naming the problem) for a line it rejects; lines the
  // format defines but that carry nothing for the trace return success.
  virtual Status Line(std::string_view line, int64_t now_ns, std::vector<v1::TraceEvent>& out) = 0;

  // The stream ended (the agent exited): appends what is still pending, e.g. a
  // tool call whose result never came.
  virtual void Finish(int64_t now_ns, std::vector<v1::TraceEvent>& out) {
    (void)now_ns;
    (void)out;
  }

  // Totals the agent itself reported for the whole session (Claude Code's
  // result message), which take precedence over the sum of its llm_call
  // events; nullptr when it reported none.
  virtual const v1::Usage* reported_usage() const { return nullptr; }
};

// The adapter of `format` ("crucible" or empty, "claude-stream-json",
// "codex-json", "openinference"); kInvalidArgument naming the known formats
// for any other.
Result<std::unique_ptr<TraceAdapter>> MakeTraceAdapter(std::string_view format,
                                                       const AdapterOptions& options);

// The known formats, for --help and error messages.
const std::vector<std::string>& TraceFormats();

// Where `format`'s telemetry comes from (kTraceFile for "crucible" and empty).
TraceSource SourceOf(std::string_view format);

// An agent's tool call mapped to an event of the agent contract.
struct MappedTool {
  std::string name;        // read_file, edit_file, search, run_tests, shell, plan, web, tool
  std::string attrs_json;  // a JSON object: path/files, command, pattern, steps...; "tool": the
                           // original name
};

// Maps a tool call by the tool's name and its input (JSON text; garbage is
// tolerated) across agents' vocabularies: Read/view -> read_file; Edit,
// MultiEdit, Write, NotebookEdit, apply_patch, str_replace_based_edit_tool ->
// edit_file; Grep, Glob, LS, search -> search; Bash, shell, exec_command ->
// run_tests when scoring::LooksLikeTestRun(command, options.test_cmd), else
// shell; TodoWrite, update_plan -> plan (its steps); anything else -> tool.
// Paths lose a "/workspace/" or "./" prefix.
MappedTool MapToolCall(std::string_view tool, std::string_view input_json,
                       const AdapterOptions& options);

// The adapter of OpenInference span files ("openinference"; adapter_otel.cc).
std::unique_ptr<TraceAdapter> MakeOpenInferenceAdapter(const AdapterOptions& options);

// Cuts a byte stream into lines for an adapter: bounded memory whatever
// arrives (lines over kMaxAdapterLineBytes are reported by length and
// skipped, never buffered), \r\n and \n endings, and at Finish a last line
// without its newline (a stream that stopped mid-line) handed on with
// `cut_off` set.
class LineSplitter {
 public:
  struct Callbacks {
    // A complete line (valid during the call only).
    std::function<void(std::string_view line, bool cut_off)> line;
    // A line over the limit was skipped: its length in bytes.
    std::function<void(uint64_t bytes)> too_long;
  };
  explicit LineSplitter(Callbacks callbacks, size_t max_line = kMaxAdapterLineBytes);
  void Feed(std::string_view chunk);
  void Finish();

 private:
  Callbacks callbacks_;
  size_t max_line_;
  std::string partial_;
  bool skipping_ = false;
  uint64_t skipped_bytes_ = 0;
};

// The attempt's usage from its trace (the agent's llm_call events) or from
// what the agent reported (`reported`, when not null). Calls without a cost
// are priced with `prices` (the model named by the call, else `default_model`;
// a price entry "claude-sonnet-4*" matches by prefix). A model without a
// price leaves those calls unpriced: cost_source "partial" and a warning
// naming the model; no call is ever priced at zero silently.
v1::Usage ComputeUsage(std::span<const v1::TraceEvent> trace, const v1::Usage* reported,
                       std::span<const v1::ModelPrice> prices, std::string_view default_model);

// Folds `calls` (llm_call events kept for ComputeUsage) into one event per
// model and per whether the agent gave a cost, with the sums of their tokens,
// latency and cost and "calls": their number, which ComputeUsage counts as
// that many calls. ComputeUsage of the result equals that of the input, so a
// runner can keep an agent's calls in bounded memory however many it makes.
void FoldLlmCalls(std::vector<v1::TraceEvent>& calls);

}  // namespace crucible::runner
