// The HTML report (`crucible report RUN --html FILE`, docs/reports.md): one
// self-contained page, no network, no external scripts or fonts, inline SVG
// and a little plain JavaScript for sorting and folding.
//
// The page's structure is a contract with the browser test
// (tests/e2e/html_report_test) and with people's bookmarks:
//   #headline                 the headline sentence
//   #agents tr[data-agent=A]  one row per agent with its metrics and intervals
//   #grid                     the agent x task outcome grid; each cell is
//                             a.cell[data-agent][data-task][href="#attempt-N"]
//   section#attempt-N         one per attempt (N its number): .diff-agent and
//                             .diff-golden side by side, .tests, .violations,
//                             .timeline
#pragma once

#include <string>

#include "base/error.h"
#include "storage/store.h"

namespace crucible::report {

// The page of run `run_id` as stored in `store` (kNotFound for an unknown
// run; a run still in progress renders what is finished and says so).
Result<std::string> RenderRunHtml(storage::Store& store, const std::string& run_id);

}  // namespace crucible::report
