// One attempt in full for `crucible show RUN/N` (docs/reports.md, "Listing
// runs and drilling down"): pure rendering of a report::AttemptDetail.
#pragma once

#include <string>

#include "report/report.h"

namespace crucible::report {

struct ShowOptions {
  // Terminal columns: the two diffs go side by side per file from
  // kSideBySideColumns on, else one after the other.
  int columns = 80;
  // Trace events shown at each end of a longer trace ("... N events ...").
  int trace_ends = 15;
};

inline constexpr int kSideBySideColumns = 160;

// The attempt as text: a heading (RUN/N, state, agent, task, sample, rounds;
// "still running" for an attempt not finished), the task's intent, scores
// (loose/strict, the five dimensions, blast radius, merge_ready_round,
// judges, cost), the latest verdict, test outcomes (FAIL_TO_PASS,
// PASS_TO_PASS, regression: failing ones first), violations and scanner
// findings with file:line, the agent's diff beside the golden diff (files
// only one side touched are marked), and a compact trace timeline.
std::string RenderShow(const v1::Run& run, const AttemptDetail& detail,
                       const ShowOptions& options = {});

// The same as one JSON object: attempt_id "RUN/N", run, number, state,
// finished, agent, task, sample, intent, rounds, scores {...} (null without
// a score), verdict (null), tests [{group, id, status}], violations,
// findings, diff {agent, golden, files [{path, agent, golden}]}, events
// [{offset_ms, kind, name, summary}] (all of them).
std::string RenderShowJson(const v1::Run& run, const AttemptDetail& detail);

// Splits a unified diff (git format) into its files, in order: the path
// (the "b/" side, or "a/" for a deletion) and the file's part of the text.
struct FileDiff {
  std::string path;
  std::string text;
};
std::vector<FileDiff> SplitDiff(const std::string& diff);

}  // namespace crucible::report
