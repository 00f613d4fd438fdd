// The trace dimensions of one attempt (tool calls, plan, rollback), from the
// agent's events of its trace (docs/agents.md "Trace events", docs/scoring.md).
// Private to scoring/.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/crucible.pb.h"

namespace crucible::scoring::internal {

struct TraceInput {
  // The attempt's trace in seq order; only source == "agent" events count.
  std::span<const v1::TraceEvent> trace;
  // What the harness saw: the files the final diff changes (both paths of a
  // rename) and those it adds; diff_known false when the diff is not known.
  bool diff_known = false;
  std::vector<std::string> diff_files;
  std::vector<std::string> added_files;
  // The golden patch's source files; golden_known false when it has none.
  bool golden_known = false;
  std::vector<std::string> golden_sources;
  // What the harness observed while the agent ran (claims.h ObservedKinds):
  // the runner's `exec` and `file_write` events of `trace` are used only for
  // a kind it observed. test_cmd: the suite's test command, to recognise a
  // test run among the execs.
  bool observed_execs = false;
  bool observed_writes = false;
  std::string test_cmd;
  // Evidence.contradictions: the agent's claims the harness contradicts.
  std::vector<std::string> contradictions;
};

struct TraceScores {
  v1::ToolCalls tool_calls;
  v1::Dimension tool_calls_dimension;
  v1::Dimension plan;
  v1::Dimension rollback_dimension;
  v1::Rollback rollback;
  bool has_rollback = false;
  // The diff changes files the agent's plan did not name.
  bool instruction_drift = false;
  std::vector<std::string> not_measurable;  // "what: why"
};

TraceScores ScoreTrace(const TraceInput& input);

// True when `name`, a file as a plan names it, names `path`: the same path,
// a path ending in "/" + name, or a directory ("dir/") holding it.
bool PlanNames(std::string_view name, std::string_view path);

// A path as an agent or the runner names it, relative to the workspace: a
// "/workspace/" or "./" prefix dropped.
std::string NormalizePath(std::string_view path);

// The paths (attrs "path" and "files", normalized) of an event's attributes.
std::vector<std::string> EventPaths(const v1::TraceEvent& ev);

// True for a runner `exec` event whose attrs.argv LooksLikeTestRun.
bool IsTestRunExec(const v1::TraceEvent& ev, std::string_view test_cmd);

// A dimension not measured, and why; one measured (clamped to 0..1), and how.
v1::Dimension Null(std::string reason);
v1::Dimension Value(double value, std::string reason);

// "a, b, c and 2 more": at most `at_most` items, for sentences.
std::string Join(const std::vector<std::string>& items, size_t at_most = 3);

}  // namespace crucible::scoring::internal
