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
#include "report/compare.h"
#include "report/trend.h"
#include "storage/store.h"

namespace crucible::report {

// Text as HTML (and XML) text or attribute value: markup characters escaped,
// control characters other than tab and line feed and bytes that are not
// UTF-8 shown as U+FFFD, so that nothing stored can become markup and a page
// stays well-formed. Quotes may stay as they are in text (`quotes` false),
// never in an attribute value. Every page Crucible serves uses it.
std::string HtmlEscape(std::string_view in, bool quotes = true);

// The page of run `run_id` as stored in `store` (kNotFound for an unknown
// run; a run still in progress renders what is finished and says so).
Result<std::string> RenderRunHtml(storage::Store& store, const std::string& run_id);

// The page of a comparison (`crucible compare ... --html FILE`), in the same
// style: #headline (each comparison's closing sentence), #sides tr[data-side]
// (one row per side: run, agent, attempts, pass@k), and per comparison a
// section.comparison[data-a][data-b] holding table.metrics with one
// tr[data-metric=NAME] per metric (both values, the difference drawn as its
// 95% interval against zero, p-values) and .flips (the attempts "RUN/N" of
// each pair that flipped).
std::string RenderComparisonHtml(const Comparison& comparison);

// The trend page (`crucible report --suite S --trend --html FILE`): #headline,
// one SVG line chart per headline rate (svg#trend-strict, svg#trend-loose:
// one polyline.agent[data-agent] per agent, each run a point with its Wilson
// interval) and #trend with one tr[data-run][data-agent] per run and agent.
std::string RenderTrendHtml(const Trend& trend);

}  // namespace crucible::report
