#include "report/html.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "report/report.h"
#include "stats/stats.h"

namespace crucible::report {

std::string HtmlEscape(std::string_view in, bool quotes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(in.size() + in.size() / 8);
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += quotes ? "&quot;" : "\"";
          break;
        case '\'':
          out += quotes ? "&#39;" : "'";
          break;
        case '\t':
        case '\n':
          out += static_cast<char>(c);
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out += kReplacement;
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: its length from the lead byte, then continuation
    // bytes, no overlong form, no surrogate, nothing above U+10FFFF.
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= in.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(in[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok) {
      ok = !(len == 3 && cp < 0x800) && !(len == 4 && cp < 0x10000) && cp <= 0x10FFFF &&
           !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0xFFFE && cp != 0xFFFF;
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

namespace {

// What the page shows of one attempt at most; the rest is one
// `crucible show RUN/N` away.
constexpr int kMaxDiffLines = 120;
constexpr size_t kMaxDiffBytes = 12'000;
constexpr size_t kMaxEvents = 25;
constexpr int kMaxTests = 40;
constexpr int kMaxFindings = 30;

// Agent colours, in the order the agents appear in the run (then again).
constexpr std::array<std::string_view, 8> kPalette = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string_view Colour(size_t agent_index) { return kPalette[agent_index % kPalette.size()]; }

std::string Esc(std::string_view in, bool quotes = true) { return HtmlEscape(in, quotes); }

std::string Pct(double rate) { return fmt::format("{:.1f}%", 100.0 * rate); }

std::string Points(double diff) { return fmt::format("{:.0f}", 100.0 * diff); }

// As HTML text.
std::string PValue(double p) {
  if (p < 0.001) return "p &lt; 0.001";
  if (p < 0.01) return fmt::format("p = {:.3f}", p);
  return fmt::format("p = {:.2f}", p);
}

std::string Usd(double usd) {
  return usd < 1 ? fmt::format("${:.4f}", usd) : fmt::format("${:.2f}", usd);
}

std::string Duration(int64_t ms) {
  if (ms < 1000) return fmt::format("{} ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f} s", ms / 1000.0);
  return fmt::format("{}m{:02}s", ms / 60'000, (ms / 1000) % 60);
}

// "2026-11-30 22:17 UTC".
std::string UtcTime(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min);
}

std::string AttemptId(const v1::Attempt& a) { return fmt::format("{}/{}", a.run_id(), a.number()); }

enum class Outcome { kStrict, kLoose, kFailed, kInfra, kPending };

Outcome OutcomeOf(const AttemptView& v) {
  if (v.attempt.state() == v1::Attempt::FAILED) return Outcome::kInfra;
  if (!v.score) return Outcome::kPending;
  if (v.score->strict_completed()) return Outcome::kStrict;
  if (v.score->completed()) return Outcome::kLoose;
  return Outcome::kFailed;
}

// CSS class, grid letter and words of each outcome.
struct OutcomeStyle {
  std::string_view css;
  std::string_view letter;
  std::string_view words;
};

OutcomeStyle StyleOf(Outcome o) {
  switch (o) {
    case Outcome::kStrict:
      return {"o-strict", "S", "strict completion"};
    case Outcome::kLoose:
      return {"o-loose", "L", "loose only: the tests pass, the review bar does not"};
    case Outcome::kFailed:
      return {"o-failed", "F", "failed"};
    case Outcome::kInfra:
      return {"o-infra", "I", "infrastructure failure"};
    case Outcome::kPending:
      break;
  }
  return {"o-pending", "\xC2\xB7", "not finished"};
}

// The attempt sections are most of a large run's page (3,000 of them for 5
// agents x 200 tasks x 3 samples): content-visibility lets the browser skip
// laying out those off screen, so opening one from the grid does not lay out
// the whole page again.
constexpr std::string_view kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1400px;
padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
#headline{font-size:1.2em;background:#f4f8ff;border-left:4px solid #1f77b4;padding:.6em 1em}
.banner{background:#fff4e0;border-left:4px solid #e69500;padding:.5em 1em}
table{border-collapse:collapse;font-size:.92em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right;vertical-align:middle}
td:first-child,th:first-child{text-align:left;white-space:nowrap}
.wide{overflow-x:auto}#agents{font-size:.88em}#agents td,#agents th{padding:.2em .45em}
section.attempt h4{margin:.6em 0 .2em;font-size:.95em}
table.sortable th{cursor:pointer;background:#f6f6f6}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.4em;border-radius:2px}
.ci{white-space:nowrap}.ci svg{vertical-align:middle;margin-right:.4em}
.muted{color:#777}.small{font-size:.85em}
#grid td{padding:.1em .3em}#grid th{font-weight:normal;font-size:.85em}
#grid td.task{font-family:monospace;font-size:.85em;max-width:22em;overflow:hidden;
text-overflow:ellipsis;white-space:nowrap}
a.cell{display:inline-block;width:1.3em;height:1.3em;line-height:1.3em;text-align:center;
margin:0 1px;border-radius:3px;font-size:.75em;text-decoration:none;color:#111}
.o-strict{background:#2e9d4a;color:#fff}.o-loose{background:#b5de8c}
.o-failed{background:#e0655c;color:#fff}.o-infra{background:#9a8fc7;color:#fff}
.o-pending{background:#fff;border:1px dashed #aaa}
a.cell.o-strict,a.cell.o-failed,a.cell.o-infra{color:#fff}
.legend span.key{display:inline-block;margin-right:1.2em}
.legend span.box{display:inline-block;width:1em;height:1em;vertical-align:middle;margin-right:.3em;
border-radius:2px}
section.attempt{margin:.3em 0;content-visibility:auto;contain-intrinsic-size:auto 1.9em}
section.attempt summary{cursor:pointer;padding:.2em .4em;background:#fafafa;border:1px solid #eee}
section.attempt:target summary{background:#fff4c0}
.sbs{display:flex;gap:1em}.sbs>div{flex:1;min-width:0}
pre.diff{font-size:.8em;background:#fbfbfb;border:1px solid #eee;padding:.4em;overflow:auto;
max-height:32em;margin:.2em 0}
pre.diff span,pre.diff ins,pre.diff del{display:block;white-space:pre;text-decoration:none}
pre.diff ins{background:#e6ffed}pre.diff del{background:#ffeef0}.hunk{color:#6f42c1}
.meta{color:#777}
.cut{color:#a15c00;font-size:.85em}
ol.events{font-family:monospace;font-size:.8em;max-height:20em;overflow:auto;padding-left:3.5em}
.tag{display:inline-block;background:#eef;border-radius:3px;padding:0 .4em;margin:0 .2em;
font-size:.85em}
.t-pass{color:#1a7f37}.t-fail{color:#cf222e}
svg text{font-family:system-ui,sans-serif}
)";

// Sorting of table.sortable by a header click (numbers by their data-v),
// and unfolding of the attempt a link points at.
constexpr std::string_view kScript = R"(
(function(){
function reveal(){var id=decodeURIComponent(location.hash.slice(1));if(!id)return;
var el=document.getElementById(id);if(!el)return;
var d=el.tagName==='DETAILS'?el:el.querySelector('details');
if(d&&!d.open){d.open=true;el.scrollIntoView();}}
window.addEventListener('hashchange',reveal);reveal();
function key(td){var v=td.getAttribute('data-v');if(v!==null&&v!=='')return parseFloat(v);
return td.textContent.trim().toLowerCase();}
document.querySelectorAll('table.sortable').forEach(function(t){
t.querySelectorAll('thead th').forEach(function(th,i){th.title='sort';
th.addEventListener('click',function(){var body=t.tBodies[0];
var rows=Array.prototype.slice.call(body.rows);var dir=th.getAttribute('data-dir')==='a'?-1:1;
th.setAttribute('data-dir',dir===1?'a':'d');
rows.sort(function(x,y){var a=key(x.cells[i]),b=key(y.cells[i]);
if(typeof a==='number'&&isNaN(a))return 1;if(typeof b==='number'&&isNaN(b))return -1;
return a===b?0:(a>b?dir:-dir);});
rows.forEach(function(r){body.appendChild(r);});});});});
document.addEventListener('toggle',function(ev){var d=ev.target;if(!d.open)return;
d.querySelectorAll('.golden-ref:not(.copied)').forEach(function(p){
var from=document.getElementById(p.getAttribute('data-from'));if(!from)return;
var src=from.querySelector('.diff-golden');if(!src)return;var box=p.parentNode;
Array.prototype.slice.call(src.children).forEach(function(c){
if(c.tagName!=='H4')box.appendChild(c.cloneNode(true));});p.className='golden-ref copied muted small';});
},true);
function all(open){document.querySelectorAll('section.attempt details').forEach(function(d){
d.open=open;});}
var o=document.getElementById('open-all'),c=document.getElementById('close-all');
if(o){o.hidden=false;o.addEventListener('click',function(){all(true);});}
if(c){c.hidden=false;c.addEventListener('click',function(){all(false);});}
})();
)";

// The page's head, up to <body>, with `title` (text).
std::string PageStart(const std::string& title) {
  return fmt::format(
      "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head>"
      "<meta charset=\"utf-8\"/><meta name=\"viewport\" content=\"width=device-width\"/>"
      "<title>{}</title><style>{}</style></head>\n<body>\n",
      Esc(title), kStyle);
}

std::string PageEnd() {
  return fmt::format("<script>//<![CDATA[{}//]]></script>\n</body></html>\n", kScript);
}

// A small horizontal bar of `rate` with its Wilson interval on a 0-100% axis.
std::string IntervalBar(int successes, int n, std::string_view colour) {
  constexpr double kW = 90;
  if (n == 0) return "<span class=\"muted\">no attempt</span>";
  const double rate = static_cast<double>(successes) / n;
  const stats::Interval ci = stats::Wilson(successes, n);
  return fmt::format(
      "<span class=\"ci\"><svg width=\"{w}\" height=\"14\" viewBox=\"0 0 {w} 14\" "
      "role=\"img\"><title>{pct}, {s} of {n}; 95% CI {lo}% to {hi}%</title>"
      "<rect x=\"0\" y=\"6\" width=\"{w}\" height=\"2\" fill=\"#e4e4e4\"/>"
      "<rect x=\"{x0:.1f}\" y=\"3\" width=\"{cw:.1f}\" height=\"8\" fill=\"{c}\" "
      "fill-opacity=\"0.35\"/><circle cx=\"{x:.1f}\" cy=\"7\" r=\"3.5\" fill=\"{c}\"/></svg>"
      "{pct} <span class=\"muted small\">{lo}\xE2\x80\x93{hi}</span></span>",
      fmt::arg("w", kW), fmt::arg("pct", Pct(rate)), fmt::arg("n", n),
      fmt::arg("lo", fmt::format("{:.0f}", 100 * ci.low)),
      fmt::arg("hi", fmt::format("{:.0f}", 100 * ci.high)), fmt::arg("x0", ci.low * kW),
      fmt::arg("cw", std::max(1.0, (ci.high - ci.low) * kW)), fmt::arg("c", colour),
      fmt::arg("x", rate * kW), fmt::arg("s", successes));
}

// An optional number as a sortable table cell.
std::string Cell(std::optional<double> v, const std::string& text) {
  if (!v) return "<td data-v=\"\" class=\"muted\">\xE2\x80\x93</td>";
  return fmt::format("<td data-v=\"{}\">{}</td>", *v, text);
}

// One (task, sample) pair of two agents' settled attempts.
struct PairCounts {
  int pairs = 0;
  int only_a = 0;
  int only_b = 0;
  std::vector<double> a_by_task;  // per task: mean strict completion over its paired samples
  std::vector<double> b_by_task;
};

PairCounts Pair(const std::vector<const AttemptView*>& a,
                const std::vector<const AttemptView*>& b) {
  std::map<std::pair<std::string, int>, bool> a_strict;
  for (const auto* v : a) {
    a_strict[{v->attempt.task_id(), v->attempt.sample()}] = OutcomeOf(*v) == Outcome::kStrict;
  }
  PairCounts out;
  std::map<std::string, std::pair<double, double>> sums;  // task -> (a, b)
  std::map<std::string, int> samples;
  for (const auto* v : b) {
    auto it = a_strict.find({v->attempt.task_id(), v->attempt.sample()});
    if (it == a_strict.end()) continue;
    const bool sa = it->second;
    const bool sb = OutcomeOf(*v) == Outcome::kStrict;
    ++out.pairs;
    if (sa && !sb) ++out.only_a;
    if (sb && !sa) ++out.only_b;
    auto& s = sums[v->attempt.task_id()];
    s.first += sa ? 1 : 0;
    s.second += sb ? 1 : 0;
    ++samples[v->attempt.task_id()];
  }
  for (const auto& [task, s] : sums) {
    out.a_by_task.push_back(s.first / samples[task]);
    out.b_by_task.push_back(s.second / samples[task]);
  }
  return out;
}

// The headline sentence: which agent is best on strict completion, with its
// interval and the difference to the others, or that they cannot be told
// apart and what difference the run could have detected.
std::string Headline(const v1::Run& run, const std::vector<AgentRow>& rows,
                     const std::map<std::string, std::vector<const AttemptView*>>& settled) {
  std::vector<const AgentRow*> ranked;
  for (const auto& r : rows) {
    if (r.finished > 0) ranked.push_back(&r);
  }
  if (ranked.empty()) {
    return "No attempt of this run is scored yet: there is nothing to compare.";
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const AgentRow* x, const AgentRow* y) {
    return x->strict_completion_rate > y->strict_completion_rate;
  });
  auto rate_with_ci = [](const AgentRow& r) {
    const auto ci = stats::Wilson(r.strict_completed, r.attempts);
    return fmt::format("{} (95% CI {} to {}, {} of {} attempts)", Pct(r.strict_completion_rate),
                       Pct(ci.low), Pct(ci.high), r.strict_completed, r.attempts);
  };
  const AgentRow& best = *ranked.front();
  if (ranked.size() == 1) {
    return fmt::format("<b>{}</b> completes {} strictly.", Esc(best.agent), rate_with_ci(best));
  }
  // The best against every other agent: paired by task and sample, McNemar's
  // exact test, Holm-corrected when there are more than two agents.
  std::vector<PairCounts> pairs;
  std::vector<double> p;
  for (size_t i = 1; i < ranked.size(); ++i) {
    pairs.push_back(Pair(settled.at(ranked[i]->agent), settled.at(best.agent)));
    p.push_back(stats::McNemarExact(pairs.back().only_b, pairs.back().only_a));
  }
  const std::vector<double> adjusted = stats::Holm(p);
  const bool corrected = adjusted.size() > 1;
  const std::string unit = run.samples() > 1 ? "task and sample pairs" : "tasks";
  // The closest agent the best is not significantly better than, if any.
  for (size_t i = 0; i < adjusted.size(); ++i) {
    if (adjusted[i] < 0.05) continue;
    const AgentRow& other = *ranked[i + 1];
    const PairCounts& pc = pairs[i];
    const auto diff = stats::PairedBootstrap(pc.a_by_task, pc.b_by_task);
    const double detectable = stats::MinimumDetectable(
        pc.pairs, stats::PairedBinarySd(pc.pairs, pc.only_b, pc.only_a, best.strict_completion_rate,
                                        other.strict_completion_rate));
    std::string detect =
        std::isfinite(detectable)
            ? fmt::format("differences under {} points are not detectable with {} {}",
                          Points(std::min(detectable, 1.0)), pc.pairs, unit)
            : "no task was attempted by both";
    return fmt::format(
        "<b>{}</b> and <b>{}</b> cannot be told apart on strict completion: {} against {}; "
        "difference {} points (95% CI {} to {}, {}{}); {}.",
        Esc(best.agent), Esc(other.agent), rate_with_ci(best), rate_with_ci(other),
        Points(diff.value), Points(diff.ci.low), Points(diff.ci.high), PValue(adjusted[i]),
        corrected ? ", Holm-corrected" : "", detect);
  }
  const AgentRow& second = *ranked[1];
  const auto diff = stats::PairedBootstrap(pairs[0].a_by_task, pairs[0].b_by_task);
  return fmt::format(
      "<b>{}</b> is best on strict completion: {}, {} points more than <b>{}</b> (95% CI {} to "
      "{}, {}{}){}.",
      Esc(best.agent), rate_with_ci(best), Points(diff.value), Esc(second.agent),
      Points(diff.ci.low), Points(diff.ci.high), PValue(adjusted[0]),
      corrected ? ", Holm-corrected" : "",
      ranked.size() > 2 ? ", and significantly more than every other agent" : "");
}

void AgentsTable(std::string& h, const std::vector<AgentRow>& rows,
                 const std::map<std::string, size_t>& agent_index) {
  h += "<h2>Agents</h2>\n<div class=\"wide\"><table id=\"agents\" "
       "class=\"sortable\"><thead><tr><th>agent</th>"
       "<th>attempts</th><th>finished</th><th>infra failed</th><th>strict completion</th>"
       "<th>loose completion</th><th>regressions</th><th>out of scope</th>"
       "<th>review loops</th><th>median wall</th><th>cost</th><th>cost per strict "
       "completion</th></tr></thead>\n<tbody>\n";
  for (const auto& r : rows) {
    const auto colour = Colour(agent_index.at(r.agent));
    std::optional<double> strict, loose;
    if (r.attempts > 0) {
      strict = r.strict_completion_rate;
      loose = r.completion_rate;
    }
    h += fmt::format(
        "<tr data-agent=\"{a}\"><td><span class=\"swatch\" style=\"background:{c}\"></span>{a}"
        "</td><td data-v=\"{n}\">{n}</td><td data-v=\"{f}\">{f}</td><td data-v=\"{iv}\">{i}</td>",
        fmt::arg("a", Esc(r.agent)), fmt::arg("c", colour), fmt::arg("n", r.attempts),
        fmt::arg("f", r.finished), fmt::arg("iv", r.infra_failed),
        fmt::arg("i", r.no_submission == 0
                          ? std::to_string(r.infra_failed)
                          : fmt::format("{} <span class=\"muted small\">no submission: {}</span>",
                                        r.infra_failed, r.no_submission)));
    h += Cell(strict, IntervalBar(r.strict_completed, r.attempts, colour));
    h += Cell(loose, IntervalBar(r.completed, r.attempts, colour));
    h += Cell(r.regression_rate, r.regression_rate
                                     ? fmt::format("{} <span class=\"muted small\">of {}</span>",
                                                   Pct(*r.regression_rate), r.regression_measured)
                                     : "");
    h += Cell(r.out_of_scope_rate, r.out_of_scope_rate ? Pct(*r.out_of_scope_rate) : "");
    h += Cell(r.review_loops_mean,
              r.review_loops_mean ? fmt::format("{:.2f}", *r.review_loops_mean) : "");
    h += Cell(r.finished > 0 ? std::optional<double>(static_cast<double>(r.median_wall_ms))
                             : std::nullopt,
              Duration(r.median_wall_ms));
    h += Cell(r.cost_usd,
              r.cost_usd ? Usd(*r.cost_usd) + (r.cost_partial_attempts > 0 ? "*" : "") : "");
    h += Cell(r.cost_per_completion_usd,
              r.cost_per_completion_usd ? Usd(*r.cost_per_completion_usd) : "");
    h += "</tr>\n";
  }
  h += "</tbody></table></div>\n<p class=\"muted small\">Rates are over each agent's finished "
       "attempts on testable tasks, with Wilson 95% intervals (the band, and its bounds in "
       "points; the dot is the rate). "
       "* some LLM calls had no price: the cost is a lower bound. Click a column to sort.</p>\n";
}

// The five dimensions side by side: per dimension, one bar per agent.
void DimensionsChart(std::string& h, const std::vector<AgentRow>& rows,
                     const std::map<std::string, size_t>& agent_index) {
  h += "<h2>The five dimensions</h2>\n";
  const double bar = 16, gap = 28, top = 16, plot = 140, left = 34;
  const double group = bar * static_cast<double>(rows.size()) + gap;
  const double width = left + group * static_cast<double>(kDimensionNames.size()) + 10;
  const double height = top + plot + 40;
  h += fmt::format(
      "<svg id=\"dimensions\" width=\"{w:.0f}\" height=\"{h:.0f}\" viewBox=\"0 0 {w:.0f} "
      "{h:.0f}\" role=\"img\"><title>Mean of each dimension per agent (0 to 1)</title>",
      fmt::arg("w", width), fmt::arg("h", height));
  for (double y : {0.0, 0.5, 1.0}) {
    const double py = top + plot * (1 - y);
    h += fmt::format(
        "<line x1=\"{l}\" y1=\"{y:.1f}\" x2=\"{r:.0f}\" y2=\"{y:.1f}\" stroke=\"#ddd\"/>"
        "<text x=\"{tx}\" y=\"{ty:.1f}\" font-size=\"10\" text-anchor=\"end\">{v}</text>",
        fmt::arg("l", left), fmt::arg("y", py), fmt::arg("r", width - 10), fmt::arg("tx", left - 4),
        fmt::arg("ty", py + 3), fmt::arg("v", y));
  }
  for (size_t d = 0; d < kDimensionNames.size(); ++d) {
    const double gx = left + gap / 2 + group * static_cast<double>(d);
    for (size_t i = 0; i < rows.size(); ++i) {
      const DimensionMean& m = rows[i].dimensions[d];
      const double x = gx + bar * static_cast<double>(i);
      const auto colour = Colour(agent_index.at(rows[i].agent));
      if (!m.mean) {
        h += fmt::format(
            "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"middle\" "
            "fill=\"#999\">\xE2\x80\x93<title>{}: {} not measured</title></text>",
            x + bar / 2, top + plot - 2, Esc(rows[i].agent), kDimensionNames[d]);
        continue;
      }
      const double bh = std::max(1.0, plot * std::clamp(*m.mean, 0.0, 1.0));
      h += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\">"
          "<title>{}: {} {:.2f} ({} of {} attempts measured)</title></rect>",
          x + 1, top + plot - bh, bar - 2, bh, colour, Esc(rows[i].agent), kDimensionNames[d],
          *m.mean, m.covered, m.of);
    }
    h += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
        gx + bar * static_cast<double>(rows.size()) / 2, top + plot + 16, kDimensionNames[d]);
  }
  h += "</svg>\n<p class=\"legend small\">";
  for (const auto& r : rows) {
    h += fmt::format(
        "<span class=\"key\"><span class=\"box\" style=\"background:{}\"></span>{}</span>",
        Colour(agent_index.at(r.agent)), Esc(r.agent));
  }
  h += "</p>\n<table class=\"sortable\" id=\"dimension-table\"><thead><tr><th>agent</th>";
  for (auto name : kDimensionNames) h += fmt::format("<th>{}</th>", name);
  h += "</tr></thead><tbody>\n";
  for (const auto& r : rows) {
    h += fmt::format("<tr><td>{}</td>", Esc(r.agent));
    for (const auto& m : r.dimensions) {
      h += Cell(m.mean, m.mean ? fmt::format("{:.2f} <span class=\"muted small\">({}/{})</span>",
                                             *m.mean, m.covered, m.of)
                               : "");
    }
    h += "</tr>\n";
  }
  h += "</tbody></table>\n<p class=\"muted small\">Each mean is over the attempts that measured "
       "the dimension (covered/scored): not measured is not zero. \xE2\x80\x93: none "
       "measured.</p>\n";
}

void Legend(std::string& h) {
  h += "<p class=\"legend small\">";
  for (Outcome o :
       {Outcome::kStrict, Outcome::kLoose, Outcome::kFailed, Outcome::kInfra, Outcome::kPending}) {
    const auto s = StyleOf(o);
    h += fmt::format("<span class=\"key\"><span class=\"box {}\"></span>{} {}</span>", s.css,
                     s.letter, s.words);
  }
  h += "</p>\n";
}

// The agent x task grid: one row per task, one column per agent, one cell
// per sample, each a link to its attempt's section.
void Grid(std::string& h, const v1::Run& run, const std::vector<AttemptView>& attempts,
          const std::vector<std::string>& agents) {
  h += "<h2>Tasks</h2>\n";
  Legend(h);
  std::vector<std::string> tasks;
  std::map<std::string, std::map<std::string, std::vector<const AttemptView*>>> cells;
  for (const auto& v : attempts) {
    auto& by_agent = cells[v.attempt.task_id()];
    if (by_agent.empty()) tasks.push_back(v.attempt.task_id());
    by_agent[v.attempt.agent()].push_back(&v);
  }
  const std::set<std::string> untestable(run.untestable_tasks().begin(),
                                         run.untestable_tasks().end());
  h += "<table id=\"grid\" class=\"sortable\"><thead><tr><th>task</th>";
  for (const auto& a : agents) h += fmt::format("<th data-agent=\"{0}\">{0}</th>", Esc(a));
  h += "<th>strict</th></tr></thead>\n<tbody>\n";
  for (const auto& task : tasks) {
    const auto& by_agent = cells[task];
    const bool apart = untestable.contains(task);
    h += fmt::format("<tr data-task=\"{0}\"><td class=\"task\" title=\"{0}\">{0}{1}</td>",
                     Esc(task), apart ? " <span class=\"muted\">(untestable)</span>" : "");
    int strict = 0, settled = 0;
    for (const auto& agent : agents) {
      auto it = by_agent.find(agent);
      if (it == by_agent.end()) {
        h += "<td data-v=\"\"></td>";
        continue;
      }
      auto list = it->second;
      std::sort(list.begin(), list.end(), [](const AttemptView* x, const AttemptView* y) {
        return x->attempt.sample() < y->attempt.sample();
      });
      int agent_strict = 0;
      std::string links;
      for (const auto* v : list) {
        const Outcome o = OutcomeOf(*v);
        const auto s = StyleOf(o);
        if (o == Outcome::kStrict) ++agent_strict;
        if (o != Outcome::kPending) ++settled;
        links += fmt::format(
            "<a class=\"cell {css}\" data-agent=\"{a}\" data-task=\"{t}\" "
            "data-sample=\"{smp}\" href=\"#attempt-{n}\" title=\"{id} {a} sample {smp}: {w}\">"
            "{l}</a>",
            fmt::arg("css", s.css), fmt::arg("a", Esc(agent)), fmt::arg("t", Esc(task)),
            fmt::arg("smp", v->attempt.sample()), fmt::arg("n", v->attempt.number()),
            fmt::arg("id", Esc(AttemptId(v->attempt))), fmt::arg("w", s.words),
            fmt::arg("l", s.letter));
      }
      strict += agent_strict;
      h += fmt::format("<td data-v=\"{}\">{}</td>", agent_strict, links);
    }
    h += fmt::format("<td data-v=\"{0}\">{0}/{1}</td></tr>\n", strict, settled);
  }
  h += "</tbody></table>\n";
}

void FailureModes(std::string& h, const std::vector<AgentRow>& rows) {
  h += "<h2>Failure modes</h2>\n";
  std::set<std::string> modes, kinds;
  for (const auto& r : rows) {
    for (const auto& [m, n] : r.failure_modes) modes.insert(m);
    for (const auto& [k, n] : r.violations) kinds.insert(k);
  }
  auto table = [&](const std::string& id, const std::string& what,
                   const std::set<std::string>& keys,
                   std::map<std::string, int> AgentRow::*counts) {
    if (keys.empty()) {
      h += fmt::format("<p id=\"{}\" class=\"muted\">No {}.</p>\n", id, what);
      return;
    }
    h += fmt::format("<table id=\"{}\" class=\"sortable\"><thead><tr><th>{}</th>", id, what);
    for (const auto& r : rows) h += fmt::format("<th>{}</th>", Esc(r.agent));
    h += "</tr></thead><tbody>\n";
    for (const auto& key : keys) {
      h += fmt::format("<tr><td>{}</td>", Esc(key));
      for (const auto& r : rows) {
        auto it = (r.*counts).find(key);
        const int n = it == (r.*counts).end() ? 0 : it->second;
        h += n == 0 ? "<td data-v=\"0\" class=\"muted\">0</td>"
                    : fmt::format("<td data-v=\"{0}\">{0}</td>", n);
      }
      h += "</tr>\n";
    }
    h += "</tbody></table>\n";
  };
  h += "<h3>Attempts with each failure mode</h3>\n";
  table("failure-modes", "failure modes", modes, &AgentRow::failure_modes);
  h += "<h3>Violations of the review bar, by kind</h3>\n";
  table("violations", "violations", kinds, &AgentRow::violations);
}

// Mean cost per attempt against strict completion, one point per agent with
// its Wilson interval.
void CostScatter(std::string& h, const std::vector<AgentRow>& rows,
                 const std::map<std::string, size_t>& agent_index) {
  h += "<h2>Cost against strict completion</h2>\n";
  struct Point {
    const AgentRow* row;
    double cost;
  };
  std::vector<Point> points;
  std::vector<std::string> without;
  for (const auto& r : rows) {
    if (r.cost_usd && r.attempts > 0) {
      points.push_back({&r, *r.cost_usd / r.attempts});
    } else {
      without.push_back(Esc(r.agent));
    }
  }
  if (points.empty()) {
    h +=
        "<p id=\"cost\" class=\"muted\">No cost reported: no attempt made a priced LLM call.</p>\n";
    return;
  }
  double max_cost = 0;
  for (const auto& p : points) max_cost = std::max(max_cost, p.cost);
  if (max_cost <= 0) max_cost = 1e-6;
  max_cost *= 1.15;
  const double left = 60, top = 14, w = 460, hgt = 240;
  h += fmt::format(
      "<svg id=\"cost\" width=\"{W:.0f}\" height=\"{H:.0f}\" viewBox=\"0 0 {W:.0f} {H:.0f}\" "
      "role=\"img\"><title>Mean cost per attempt against strict completion, per agent</title>"
      "<rect x=\"{l}\" y=\"{t}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#ccc\"/>",
      fmt::arg("W", left + w + 120), fmt::arg("H", top + hgt + 44), fmt::arg("l", left),
      fmt::arg("t", top), fmt::arg("w", w), fmt::arg("h", hgt));
  for (double y : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    const double py = top + hgt * (1 - y);
    h += fmt::format(
        "<line x1=\"{l}\" y1=\"{y:.1f}\" x2=\"{r}\" y2=\"{y:.1f}\" stroke=\"#eee\"/>"
        "<text x=\"{tx}\" y=\"{ty:.1f}\" font-size=\"10\" text-anchor=\"end\">{v:.0f}%</text>",
        fmt::arg("l", left), fmt::arg("y", py), fmt::arg("r", left + w), fmt::arg("tx", left - 4),
        fmt::arg("ty", py + 3), fmt::arg("v", 100 * y));
  }
  for (double x : {0.0, 0.5, 1.0}) {
    h += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
        left + w * x, top + hgt + 14, Usd(max_cost * x));
  }
  h += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"middle\">mean cost per "
      "attempt (USD)</text><text x=\"12\" y=\"{:.1f}\" font-size=\"11\" "
      "transform=\"rotate(-90 12 {:.1f})\" text-anchor=\"middle\">strict completion</text>",
      left + w / 2, top + hgt + 34, top + hgt / 2, top + hgt / 2);
  for (const auto& p : points) {
    const auto& r = *p.row;
    const auto ci = stats::Wilson(r.strict_completed, r.attempts);
    const double x = left + w * p.cost / max_cost;
    const auto colour = Colour(agent_index.at(r.agent));
    h += fmt::format(
        "<g><title>{a}: {cost} per attempt{partial}, strict completion {pct} (95% CI {lo} to "
        "{hi})</title><line x1=\"{x:.1f}\" y1=\"{y0:.1f}\" x2=\"{x:.1f}\" y2=\"{y1:.1f}\" "
        "stroke=\"{c}\" stroke-width=\"2\"/><circle cx=\"{x:.1f}\" cy=\"{y:.1f}\" r=\"5\" "
        "fill=\"{c}\"/><text x=\"{tx:.1f}\" y=\"{ty:.1f}\" font-size=\"11\">{a}</text></g>",
        fmt::arg("a", Esc(r.agent)), fmt::arg("cost", Usd(p.cost)),
        fmt::arg("partial", r.cost_partial_attempts > 0 ? " (lower bound)" : ""),
        fmt::arg("pct", Pct(r.strict_completion_rate)), fmt::arg("lo", Pct(ci.low)),
        fmt::arg("hi", Pct(ci.high)), fmt::arg("x", x), fmt::arg("y0", top + hgt * (1 - ci.low)),
        fmt::arg("y1", top + hgt * (1 - ci.high)), fmt::arg("c", colour),
        fmt::arg("y", top + hgt * (1 - r.strict_completion_rate)), fmt::arg("tx", x + 8),
        fmt::arg("ty", top + hgt * (1 - r.strict_completion_rate) + 4));
  }
  h += "</svg>\n";
  if (!without.empty()) {
    std::string names;
    for (const auto& n : without) names += (names.empty() ? "" : ", ") + n;
    h += fmt::format("<p class=\"muted small\">No cost reported for {}.</p>\n", names);
  }
}

// A unified diff, its added and removed lines marked, cut after
// kMaxDiffLines lines or kMaxDiffBytes bytes.
std::string Diff(std::string_view diff, const std::string& attempt_id, std::string_view what) {
  if (diff.empty()) return fmt::format("<p class=\"muted\">{}</p>", what);
  std::string out = "<pre class=\"diff\">";
  size_t pos = 0, bytes = 0;
  int lines = 0;
  while (pos < diff.size()) {
    size_t end = diff.find('\n', pos);
    if (end == std::string_view::npos) end = diff.size();
    if (lines >= kMaxDiffLines || bytes >= kMaxDiffBytes) break;
    std::string_view line = diff.substr(pos, end - pos);
    // Added and removed lines as <ins> and <del>: the shortest markup, as
    // the diffs make most of a large page.
    std::string_view open = "<span>", close = "</span>";
    if (line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff ") ||
        line.starts_with("index ")) {
      open = "<span class=\"meta\">";
    } else if (line.starts_with("+")) {
      open = "<ins>";
      close = "</ins>";
    } else if (line.starts_with("-")) {
      open = "<del>";
      close = "</del>";
    } else if (line.starts_with("@@")) {
      open = "<span class=\"hunk\">";
    }
    out += open;
    out += Esc(line, /*quotes=*/false);
    out += close;
    bytes += line.size() + 1;
    ++lines;
    pos = end + 1;
  }
  out += "</pre>";
  if (pos < diff.size()) {
    const auto total = static_cast<size_t>(std::count(diff.begin(), diff.end(), '\n')) +
                       (diff.back() == '\n' ? 0 : 1);
    out += fmt::format(
        "<p class=\"cut\">Cut after {} of {} lines ({} of {} bytes): the whole diff is in "
        "<code>crucible show {}</code>.</p>",
        lines, total, std::min(pos, diff.size()), diff.size(), Esc(attempt_id));
  }
  return out;
}

std::string_view TestStatus(v1::TestOutcome::Status s) {
  switch (s) {
    case v1::TestOutcome::PASSED:
      return "passed";
    case v1::TestOutcome::FAILED:
      return "failed";
    case v1::TestOutcome::ERROR:
      return "error";
    case v1::TestOutcome::SKIPPED:
      return "skipped";
    default:
      return "unknown";
  }
}

void Tests(std::string& h, const AttemptView& v, const std::optional<v1::Evidence>& ev,
           const std::optional<v1::GoldenTask>& task, const std::string& id) {
  h += "<div class=\"tests\"><h4>Tests</h4>";
  if (v.score) {
    const auto& s = *v.score;
    h += fmt::format("<p>FAIL_TO_PASS {}/{} passed, PASS_TO_PASS {}/{} passed", s.f2p_passed(),
                     s.f2p_total(), s.p2p_passed(), s.p2p_total());
    if (s.regression_measured()) {
      h += fmt::format(", regression tests {}/{} passed", s.regression_passed(),
                       s.regression_total());
    }
    h += ".";
    if (!s.reason().empty()) h += fmt::format(" <span class=\"muted\">{}</span>", Esc(s.reason()));
    h += "</p>";
  }
  if (!ev) {
    h += "<p class=\"muted\">No evidence stored (the attempt has not finished).</p></div>";
    return;
  }
  const auto& run = ev->tests();
  if (!ev->test_patch_error().empty()) {
    h += fmt::format("<p>The hidden test patch did not apply: {}</p>", Esc(ev->test_patch_error()));
  }
  if (!run.infra_error().empty()) {
    h += fmt::format("<p>The test harness failed: {}</p>", Esc(run.infra_error()));
  }
  if (run.timed_out()) h += "<p>The tests timed out.</p>";
  std::set<std::string> f2p;
  if (task) f2p.insert(task->fail_to_pass().begin(), task->fail_to_pass().end());
  std::vector<const v1::TestOutcome*> tests;
  for (const auto& t : run.tests()) tests.push_back(&t);
  // Failures first, then the FAIL_TO_PASS tests, then the rest by id.
  std::stable_sort(tests.begin(), tests.end(), [&](const auto* x, const auto* y) {
    auto rank = [&](const v1::TestOutcome* t) {
      return (t->status() == v1::TestOutcome::PASSED ? 2 : 0) + (f2p.contains(t->id()) ? 0 : 1);
    };
    return rank(x) < rank(y);
  });
  if (tests.empty()) {
    h += "<p class=\"muted\">No test outcome recorded.</p>";
  } else {
    h += "<ul class=\"small\">";
    int shown = 0;
    for (const auto* t : tests) {
      if (shown++ == kMaxTests) break;
      const bool pass = t->status() == v1::TestOutcome::PASSED;
      h += fmt::format(
          "<li class=\"{}\">{} <code>{}</code>{}{}</li>", pass ? "t-pass" : "t-fail",
          TestStatus(t->status()), Esc(t->id()),
          f2p.contains(t->id()) ? " <span class=\"tag\">FAIL_TO_PASS</span>" : "",
          t->message().empty() || pass
              ? ""
              : fmt::format(" <span class=\"muted\">{}</span>", Esc(t->message().substr(0, 300))));
    }
    h += "</ul>";
    if (tests.size() > static_cast<size_t>(kMaxTests)) {
      h += fmt::format(
          "<p class=\"cut\">{} more tests (all passed first are cut): "
          "<code>crucible show {}</code>.</p>",
          tests.size() - kMaxTests, Esc(id));
    }
  }
  h += "</div>";
}

void Violations(std::string& h, const AttemptView& v, const std::string& id) {
  h += "<div class=\"violations\"><h4>Violations and scanner findings</h4>";
  if (!v.score) {
    h += "<p class=\"muted\">Not scored.</p></div>";
    return;
  }
  const auto& s = *v.score;
  if (s.violations().empty() && s.findings().empty()) {
    h += "<p class=\"muted\">None.</p></div>";
    return;
  }
  h += "<ul class=\"small\">";
  int shown = 0;
  for (const auto& x : s.violations()) {
    if (shown++ == kMaxFindings) break;
    h += fmt::format("<li><span class=\"tag\">{}</span> <code>{}{}</code> {}</li>", Esc(x.kind()),
                     Esc(x.file()), x.line() > 0 ? fmt::format(":{}", x.line()) : "",
                     Esc(x.detail()));
  }
  for (const auto& f : s.findings()) {
    if (shown++ == kMaxFindings) break;
    h += fmt::format("<li><span class=\"tag\">{} {}</span> <code>{}{}</code> <code>{}</code></li>",
                     Esc(f.severity()), Esc(f.rule()), Esc(f.file()),
                     f.line() > 0 ? fmt::format(":{}", f.line()) : "", Esc(f.match()));
  }
  h += "</ul>";
  const int total = s.violations_size() + s.findings_size();
  if (total > kMaxFindings) {
    h += fmt::format("<p class=\"cut\">{} more: <code>crucible show {}</code>.</p>",
                     total - kMaxFindings, Esc(id));
  }
  h += "</div>";
}

void Timeline(std::string& h, const std::vector<v1::TraceEvent>& events, const std::string& id) {
  h += "<div class=\"timeline\"><h4>Trace</h4>";
  if (events.empty()) {
    h += "<p class=\"muted\">No trace event stored.</p></div>";
    return;
  }
  int64_t t0 = events.front().ts_ns(), t1 = t0;
  for (const auto& e : events) {
    if (e.ts_ns() > 0 && (t0 <= 0 || e.ts_ns() < t0)) t0 = e.ts_ns();
    t1 = std::max(t1, e.ts_ns());
  }
  // A strip of every event (up to a few hundred) over the attempt's time,
  // coloured by kind, then the first events as a list.
  auto kind_colour = [](std::string_view kind) -> std::string_view {
    if (kind == "LLM") return "#9467bd";
    if (kind == "TOOL") return "#1f77b4";
    if (kind == "RUNNER") return "#7f7f7f";
    if (kind == "CHAIN") return "#2ca02c";
    return "#ff7f0e";
  };
  const double span = t1 > t0 ? static_cast<double>(t1 - t0) : 1.0;
  h += "<svg width=\"600\" height=\"14\" viewBox=\"0 0 600 14\" role=\"img\"><title>events over "
       "time, coloured by kind (LLM, TOOL, AGENT, RUNNER)</title>"
       "<rect x=\"0\" y=\"6\" width=\"600\" height=\"2\" fill=\"#eee\"/>";
  std::map<std::string_view, std::string> ticks;  // colour -> path
  const size_t strip = std::min<size_t>(events.size(), 400);
  for (size_t i = 0; i < strip; ++i) {
    const auto& e = events[i];
    const double x = e.ts_ns() > 0 ? 598.0 * static_cast<double>(e.ts_ns() - t0) / span : 0;
    ticks[kind_colour(e.kind())] += fmt::format("M{:.1f} 1v12", std::max(0.0, x) + 1);
  }
  for (const auto& [colour, path] : ticks) {
    h += fmt::format("<path d=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>", path, colour);
  }
  h += "</svg><ol class=\"events\" start=\"0\">";
  for (size_t i = 0; i < events.size() && i < kMaxEvents; ++i) {
    const auto& e = events[i];
    const double at = e.ts_ns() > 0 ? static_cast<double>(e.ts_ns() - t0) / 1e9 : 0;
    std::string attrs = e.attrs_json();
    if (attrs == "{}") attrs.clear();
    if (attrs.size() > 100) attrs = attrs.substr(0, 100) + "\xE2\x80\xA6";
    h += fmt::format("<li>+{:.1f}s <b>{}</b> {} <span class=\"muted\">{}</span></li>", at,
                     Esc(e.kind()), Esc(e.name()), Esc(attrs, /*quotes=*/false));
  }
  h += "</ol>";
  if (events.size() > kMaxEvents) {
    h += fmt::format(
        "<p class=\"cut\">First {} of {} events; the whole trace: <code>crucible "
        "trace {}</code>, <code>crucible show {}</code>.</p>",
        kMaxEvents, events.size(), Esc(id), Esc(id));
  }
  h += "</div>";
}

void AttemptSection(std::string& h, const AttemptView& v, const std::optional<v1::Evidence>& ev,
                    const std::optional<v1::GoldenTask>& task,
                    const std::vector<v1::TraceEvent>& events,
                    std::optional<uint64_t> golden_shown_in) {
  const std::string id = AttemptId(v.attempt);
  const Outcome o = OutcomeOf(v);
  const auto style = StyleOf(o);
  h += fmt::format(
      "<section class=\"attempt\" id=\"attempt-{n}\" data-agent=\"{a}\" data-task=\"{t}\">"
      "<details><summary><span class=\"box {css}\" style=\"display:inline-block;width:.8em;"
      "height:.8em\"></span> <b>{id}</b> {a} on <code>{t}</code>, sample {s}: {w}</summary>",
      fmt::arg("n", v.attempt.number()), fmt::arg("a", Esc(v.attempt.agent())),
      fmt::arg("t", Esc(v.attempt.task_id())), fmt::arg("css", style.css), fmt::arg("id", Esc(id)),
      fmt::arg("s", v.attempt.sample()), fmt::arg("w", style.words));
  h += fmt::format("<p class=\"small\">Attempt <code>{}</code>", Esc(id));
  if (v.score) {
    const int files = v.score->files_touched();
    h += fmt::format(", {} file{} touched, {}", files, files == 1 ? "" : "s",
                     Duration(v.score->wall_ms()));
    if (!v.score->failure_modes().empty()) {
      h += "; failure modes";
      for (const auto& m : FailureModesOf(v))
        h += fmt::format(" <span class=\"tag\">{}</span>", Esc(m));
    }
  }
  if (v.usage) {
    h += fmt::format("; {} LLM calls, {} tokens in, {} out", v.usage->llm_calls(),
                     v.usage->tokens_in(), v.usage->tokens_out());
    if (v.usage->cost_usd() > 0) h += ", " + Usd(v.usage->cost_usd());
  }
  if (v.verdict) {
    h += fmt::format("; verdict <b>{}</b> by {}", Esc(v.verdict->verdict()),
                     Esc(v.verdict->reviewer()));
    if (!v.verdict->note().empty()) h += fmt::format(" ({})", Esc(v.verdict->note()));
  }
  h += ".</p>";
  if (o == Outcome::kInfra && !v.attempt.error().empty()) {
    h += fmt::format("<p>Infrastructure failure: {}</p>", Esc(v.attempt.error()));
  }
  if (task && !task->intent().empty()) {
    std::string intent = task->intent().substr(0, 600);
    if (task->intent().size() > 600) intent += "\xE2\x80\xA6";
    h += fmt::format("<p class=\"small\"><b>Intent:</b> {}</p>", Esc(intent));
  }
  h += "<div class=\"sbs\"><div class=\"diff-agent\"><h4>The agent's diff</h4>";
  if (ev) {
    if (!ev->diff_error().empty()) {
      h += fmt::format("<p>The diff could not be taken: {}</p>", Esc(ev->diff_error()));
    }
    if (!ev->truncated().empty()) {
      h += fmt::format("<p class=\"cut\">Stored cut: {}</p>", Esc(ev->truncated()));
    }
    h += Diff(ev->final_diff(), id, "The agent changed nothing.");
  } else {
    h += "<p class=\"muted\">Not finished: no diff yet.</p>";
  }
  h += "</div><div class=\"diff-golden\"><h4>The golden diff</h4>";
  if (task && golden_shown_in) {
    // Shown once per task: the script copies it here when the section opens.
    h += fmt::format(
        "<p class=\"golden-ref\" data-from=\"attempt-{0}\">The golden diff of this task is "
        "shown with attempt <a href=\"#attempt-{0}\">{1}/{0}</a>.</p>",
        *golden_shown_in, Esc(v.attempt.run_id()));
  } else if (task) {
    h += Diff(task->source_patch(), id, "The golden change has no source diff.");
  } else {
    h += "<p class=\"muted\">The golden task is no longer stored: its diff is unknown.</p>";
  }
  h += "</div></div>";
  Tests(h, v, ev, task, id);
  Violations(h, v, id);
  Timeline(h, events, id);
  h += "</details></section>\n";
}

}  // namespace

Result<std::string> RenderRunHtml(storage::Store& store, const std::string& run_id) {
  CRUCIBLE_ASSIGN_OR_RETURN(RunView view, LoadRun(store, run_id));
  const v1::Run& run = view.run;

  // What is finished: attempts with a score or failed for the
  // infrastructure; the rest shows in the grid as not finished.
  std::vector<AttemptView> settled_views;
  for (const auto& v : view.attempts) {
    if (OutcomeOf(v) != Outcome::kPending) settled_views.push_back(v);
  }
  const size_t pending = view.attempts.size() - settled_views.size();
  const std::vector<AgentRow> rows = Summarize(run, settled_views, view.contained_files);
  std::vector<std::string> agents;
  std::map<std::string, size_t> agent_index;
  for (const auto& r : rows) {
    agent_index.emplace(r.agent, agents.size());
    agents.push_back(r.agent);
  }
  const std::set<std::string> untestable(run.untestable_tasks().begin(),
                                         run.untestable_tasks().end());
  std::map<std::string, std::vector<const AttemptView*>> settled;
  for (const auto& a : agents) settled[a];
  for (const auto& v : settled_views) {
    if (!untestable.contains(v.attempt.task_id())) settled[v.attempt.agent()].push_back(&v);
  }

  std::string h;
  h.reserve(64 * 1024 + view.attempts.size() * 4096);
  h += PageStart("Crucible report: run " + run.id());
  std::set<std::string> tasks;
  for (const auto& v : view.attempts) tasks.insert(v.attempt.task_id());
  h += fmt::format(
      "<h1>Run <code>{}</code></h1>\n<p class=\"muted\">Suite <b>{}</b>{}, {} agents, {} tasks, "
      "{} sample{} each: {} attempts{}.</p>\n",
      Esc(run.id()), Esc(run.suite()), run.held_out() ? " (held-out split)" : "", agents.size(),
      tasks.size(), std::max(1, run.samples()), run.samples() > 1 ? "s" : "", view.attempts.size(),
      run.created_at_ms() > 0 ? ", started " + UtcTime(run.created_at_ms()) : "");
  if (pending > 0) {
    h += fmt::format(
        "<p id=\"progress\" class=\"banner\">{}: {} of {} attempts are finished; this page "
        "shows those, and the others as not finished.</p>\n",
        run.state() == v1::Run::CANCELLED ? "Run cancelled" : "Run in progress",
        view.attempts.size() - pending, view.attempts.size());
  }
  if (!run.untestable_tasks().empty()) {
    h += fmt::format("<p class=\"muted small\">{}</p>\n", Esc(DescribeUntestable(run)));
  }
  if (!run.mismatched_tasks().empty()) {
    h += fmt::format("<p class=\"muted small\">{}</p>\n", Esc(DescribeMismatched(run)));
  }
  h += fmt::format("<p id=\"headline\">{}</p>\n", Headline(run, rows, settled));
  AgentsTable(h, rows, agent_index);
  DimensionsChart(h, rows, agent_index);
  CostScatter(h, rows, agent_index);
  FailureModes(h, rows);
  Grid(h, run, view.attempts, agents);

  h += "<h2>Attempts</h2>\n<p class=\"muted small\">Each attempt is folded: click it, or a cell "
       "of the grid, to open it. <button id=\"open-all\" type=\"button\" hidden=\"hidden\">open "
       "all</button> <button id=\"close-all\" type=\"button\" hidden=\"hidden\">close "
       "all</button></p>\n";
  // Each task's golden task, and the attempt whose section shows its diff.
  struct Golden {
    std::optional<v1::GoldenTask> task;
    std::optional<uint64_t> shown_in;
  };
  std::map<std::string, Golden> golden;
  for (const auto& v : view.attempts) {
    std::optional<v1::Evidence> ev;
    if (auto e = store.GetEvidence(run.id(), v.attempt.number())) {
      ev = std::move(*e);
    } else if (e.error().code() != Code::kNotFound) {
      return Fail(e.error());
    }
    auto [it, inserted] = golden.try_emplace(v.attempt.task_id());
    if (inserted) {
      if (auto t = store.GetTask(run.suite(), v.attempt.task_id())) {
        it->second.task = std::move(*t);
      } else if (t.error().code() != Code::kNotFound) {
        return Fail(t.error());
      }
    }
    CRUCIBLE_ASSIGN_OR_RETURN(std::vector<v1::TraceEvent> events,
                              store.ListEvents(run.id(), v.attempt.number()));
    AttemptSection(h, v, ev, it->second.task, events, it->second.shown_in);
    if (!it->second.shown_in) it->second.shown_in = v.attempt.number();
  }
  h += "<p class=\"muted small\">Written by <code>crucible report --html</code>. Every attempt "
       "id opens in full with <code>crucible show RUN/N</code>.</p>\n";
  h += PageEnd();
  return h;
}

}  // namespace crucible::report

namespace crucible::report {

namespace {

// A metric's value as shown: rates in percent, dimensions as means from 0
// to 1, cost in dollars.
std::string MetricValue(const MetricComparison& m, std::optional<double> v) {
  if (!v) return "\xE2\x80\x93";
  if (m.name == "cost_per_attempt") return Usd(*v);
  if (m.binary) return Pct(*v);
  return fmt::format("{:.2f}", *v);
}

// A difference as shown: points (hundredths) for rates and dimensions,
// dollars for cost.
std::string MetricDifference(const MetricComparison& m, double d) {
  if (m.name == "cost_per_attempt") return fmt::format("{}{:.4f} $", d >= 0 ? "+" : "", d);
  return fmt::format("{}{:.1f}", d >= 0 ? "+" : "", 100 * d);
}

// The difference's 95% interval against zero: green when B is
// significantly better, red when significantly worse, grey otherwise.
std::string DifferenceBar(const MetricComparison& m) {
  constexpr double kW = 160;
  const auto& d = m.difference;
  double range = std::max({std::abs(d.ci.low), std::abs(d.ci.high), std::abs(d.value)});
  if (range <= 0) range = m.name == "cost_per_attempt" ? 0.01 : 0.05;
  range *= 1.1;
  auto x = [&](double v) { return kW / 2 + (kW / 2) * v / range; };
  const bool better = (d.value > 0) == m.higher_is_better;
  const std::string_view colour = !m.significant ? "#999" : better ? "#2e9d4a" : "#d62728";
  return fmt::format(
      "<svg width=\"{w}\" height=\"14\" viewBox=\"0 0 {w} 14\" role=\"img\"><title>B - A: {v}, 95% "
      "CI {lo} to {hi}</title><line x1=\"{mid}\" y1=\"0\" x2=\"{mid}\" y2=\"14\" stroke=\"#bbb\"/>"
      "<rect x=\"{x0:.1f}\" y=\"4\" width=\"{cw:.1f}\" height=\"6\" fill=\"{c}\" "
      "fill-opacity=\"0.4\"/><circle cx=\"{xv:.1f}\" cy=\"7\" r=\"3.5\" fill=\"{c}\"/></svg>",
      fmt::arg("w", kW), fmt::arg("v", MetricDifference(m, d.value)),
      fmt::arg("lo", MetricDifference(m, d.ci.low)), fmt::arg("hi", MetricDifference(m, d.ci.high)),
      fmt::arg("mid", kW / 2), fmt::arg("x0", x(d.ci.low)),
      fmt::arg("cw", std::max(1.0, x(d.ci.high) - x(d.ci.low))), fmt::arg("c", colour),
      fmt::arg("xv", x(d.value)));
}

std::string FlipList(const std::vector<Flip>& flips) {
  constexpr size_t kMaxFlips = 50;
  if (flips.empty()) return "<span class=\"muted\">none</span>";
  std::string out;
  for (size_t i = 0; i < flips.size() && i < kMaxFlips; ++i) {
    const auto& f = flips[i];
    out +=
        fmt::format("{}<code>{}</code>{} (<code>{}</code> / <code>{}</code>)", i == 0 ? "" : ", ",
                    Esc(f.task_id), f.sample > 0 ? fmt::format(" sample {}", f.sample) : "",
                    Esc(f.a_attempt), Esc(f.b_attempt));
  }
  if (flips.size() > kMaxFlips) out += fmt::format(" and {} more", flips.size() - kMaxFlips);
  return out;
}

}  // namespace

std::string RenderComparisonHtml(const Comparison& c) {
  const std::string kDash = "\xE2\x80\x93";  // a metric no pair measured
  std::string h = PageStart("Crucible comparison");
  h += "<h1>Comparison</h1>\n";
  for (const auto& note : c.notes) {
    h += fmt::format("<p class=\"banner\">{}</p>\n", Esc(note));
  }
  h += "<div id=\"headline\">";
  for (const auto& sc : c.comparisons) h += fmt::format("<p>{}</p>", Esc(sc.sentence));
  h += "</div>\n<h2>Sides</h2>\n<div class=\"wide\"><table id=\"sides\"><thead><tr><th>side</th>"
       "<th>suite</th><th>attempts</th><th>finished</th><th>infra failed</th><th>tasks</th>"
       "<th>samples</th><th>pass@k / pass^k (loose)</th></tr></thead><tbody>\n";
  for (size_t i = 0; i < c.sides.size(); ++i) {
    const auto& s = c.sides[i];
    std::string passk;
    for (const auto& p : s.pass_k) {
      passk += fmt::format("{}k={}: {} / {}", passk.empty() ? "" : "; ", p.k, Pct(p.pass_at_k),
                           Pct(p.pass_hat_k));
    }
    h += fmt::format(
        "<tr data-side=\"{n}\"><td><span class=\"swatch\" style=\"background:{c}\"></span>{l} "
        "<b>{n}</b>{r}</td><td>{s}</td><td>{a}</td><td>{f}</td><td>{i}</td><td>{t}</td>"
        "<td>{m}</td><td>{p}</td></tr>\n",
        fmt::arg("n", Esc(SideName(s))), fmt::arg("c", Colour(i)),
        fmt::arg("l",
                 i == 0 ? "A" : fmt::format("B{}", c.sides.size() > 2 ? std::to_string(i) : "")),
        fmt::arg("r", s.run_running ? " <span class=\"muted\">(running)</span>" : ""),
        fmt::arg("s", Esc(s.suite)), fmt::arg("a", s.attempts), fmt::arg("f", s.finished),
        fmt::arg("i", s.infra_failed), fmt::arg("t", s.tasks), fmt::arg("m", s.samples),
        fmt::arg("p", passk.empty() ? "\xE2\x80\x93" : passk));
  }
  h += "</tbody></table></div>\n";
  for (const auto& sc : c.comparisons) {
    const auto& a = c.sides.at(sc.a);
    const auto& b = c.sides.at(sc.b);
    h += fmt::format(
        "<section class=\"comparison\" data-a=\"{a}\" data-b=\"{b}\"><h2>{b} against {a}</h2>\n"
        "<p class=\"muted small\">{p} pairs over {t} tasks.{lo}</p>\n",
        fmt::arg("a", Esc(SideName(a))), fmt::arg("b", Esc(SideName(b))), fmt::arg("p", sc.pairs),
        fmt::arg("t", sc.tasks),
        fmt::arg("lo", sc.left_out_not_finished + sc.left_out_infra_failed + sc.a_tasks_not_in_b +
                                   sc.b_tasks_not_in_a >
                               0
                           ? fmt::format(" Left out: {} pairs not finished, {} failed for the "
                                         "infrastructure, {} tasks only in A, {} only in B.",
                                         sc.left_out_not_finished, sc.left_out_infra_failed,
                                         sc.a_tasks_not_in_b, sc.b_tasks_not_in_a)
                           : ""));
    h += "<div class=\"wide\"><table class=\"metrics sortable\"><thead><tr><th>metric</th>"
         "<th>A</th><th>B</th><th>B \xE2\x88\x92 A</th><th>95% CI</th><th></th><th>p</th>"
         "<th>pairs</th><th>detectable</th></tr></thead><tbody>\n";
    for (const auto& m : sc.metrics) {
      auto ci = [&](const std::optional<stats::Interval>& i) {
        return i ? fmt::format(" <span class=\"muted small\">{:.0f}\xE2\x80\x93{:.0f}</span>",
                               100 * i->low, 100 * i->high)
                 : std::string();
      };
      h += fmt::format(
          "<tr data-metric=\"{n}\"{hl}><td>{n}</td><td>{a}{aci}</td><td>{b}{bci}</td>"
          "<td data-v=\"{dv}\">{d}</td><td>{ci}</td><td>{bar}</td><td data-v=\"{pv}\">"
          "{p}</td><td>{pairs}</td><td>{md}</td></tr>\n",
          fmt::arg("n", Esc(m.name)),
          fmt::arg("hl", m.name == sc.headline_metric ? " class=\"headline-metric\"" : ""),
          fmt::arg("a", MetricValue(m, m.a)), fmt::arg("aci", ci(m.a_ci)),
          fmt::arg("b", MetricValue(m, m.b)), fmt::arg("bci", ci(m.b_ci)),
          fmt::arg("dv", m.difference.value),
          fmt::arg("d", m.pairs > 0 ? MetricDifference(m, m.difference.value) : kDash),
          fmt::arg("ci", m.pairs > 0 ? MetricDifference(m, m.difference.ci.low) + " to " +
                                           MetricDifference(m, m.difference.ci.high)
                                     : kDash),
          fmt::arg("bar", m.pairs > 0 ? DifferenceBar(m) : ""), fmt::arg("pv", m.p_adjusted),
          fmt::arg("p", m.pairs == 0 ? "\xE2\x80\x93"
                                     : PValue(m.p_adjusted) + (c.holm ? " (Holm)" : "") +
                                           (m.significant ? " *" : "")),
          fmt::arg("pairs", m.pairs),
          fmt::arg("md", m.minimum_detectable ? MetricDifference(m, *m.minimum_detectable).substr(1)
                                              : "\xE2\x80\x93"));
    }
    h += "</tbody></table></div>\n<p class=\"muted small\">Differences are B \xE2\x88\x92 A in "
         "points (hundredths; dollars for cost), with the paired bootstrap 95% interval over "
         "tasks; p from McNemar's exact test for rates and the sign test for means; * "
         "significant at 0.05; detectable: the smallest difference the pairs detect at 80% "
         "power.</p>\n";
    for (const auto& m : sc.metrics) {
      if (!m.binary || (m.flips_to_a.empty() && m.flips_to_b.empty())) continue;
      h += fmt::format(
          "<div class=\"flips small\" data-metric=\"{}\"><b>{}</b>: only A ({}): {}<br/>only B "
          "({}): {}</div>\n",
          Esc(m.name), Esc(m.name), m.flips_to_a.size(), FlipList(m.flips_to_a),
          m.flips_to_b.size(), FlipList(m.flips_to_b));
    }
    h += "</section>\n";
  }
  h += "<p class=\"muted small\">Written by <code>crucible compare --html</code>. Each attempt "
       "id opens in full with <code>crucible show RUN/N</code>.</p>\n";
  h += PageEnd();
  return h;
}

namespace {

// One line chart of a rate per agent over the runs, with Wilson intervals.
void TrendChart(std::string& h, const Trend& t, const std::string& id, const std::string& title,
                int TrendPoint::*successes, double TrendPoint::*rate,
                stats::Interval TrendPoint::*ci) {
  const double left = 44, top = 12, w = std::max(320.0, 60.0 * static_cast<double>(t.runs.size())),
               hgt = 200;
  h += fmt::format(
      "<h3>{}</h3>\n<svg id=\"{}\" width=\"{:.0f}\" height=\"{:.0f}\" viewBox=\"0 0 "
      "{:.0f} {:.0f}\" role=\"img\"><title>{} per run, with 95% intervals</title>",
      title, id, left + w + 20, top + hgt + 50, left + w + 20, top + hgt + 50, title);
  for (double y : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    const double py = top + hgt * (1 - y);
    h += fmt::format(
        "<line x1=\"{l}\" y1=\"{y:.1f}\" x2=\"{r:.0f}\" y2=\"{y:.1f}\" stroke=\"#eee\"/>"
        "<text x=\"{tx}\" y=\"{ty:.1f}\" font-size=\"10\" text-anchor=\"end\">{v:.0f}%</text>",
        fmt::arg("l", left), fmt::arg("y", py), fmt::arg("r", left + w), fmt::arg("tx", left - 4),
        fmt::arg("ty", py + 3), fmt::arg("v", 100 * y));
  }
  const size_t n = t.runs.size();
  auto x = [&](size_t i) {
    return n <= 1 ? left + w / 2 : left + 10 + (w - 20) * static_cast<double>(i) / (n - 1);
  };
  for (size_t i = 0; i < n; ++i) {
    const auto& run = t.runs[i];
    h += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"9\" text-anchor=\"end\" "
        "transform=\"rotate(-30 {:.1f} {:.1f})\">{}</text>",
        x(i), top + hgt + 14, x(i), top + hgt + 14,
        Esc(run.created_at_ms > 0 ? UtcTime(run.created_at_ms).substr(5, 11) : run.run_id));
  }
  for (size_t a = 0; a < t.agents.size(); ++a) {
    const auto& agent = t.agents[a];
    const auto colour = Colour(a);
    std::string points, marks;
    for (size_t i = 0; i < n; ++i) {
      for (const auto& p : t.runs[i].agents) {
        if (p.agent != agent || p.attempts == 0) continue;
        const double px = x(i), py = top + hgt * (1 - p.*rate);
        points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", px, py);
        marks += fmt::format(
            "<g><title>{ag} in {run}: {pct} ({s} of {n}), 95% CI {lo} to {hi}{running}</title>"
            "<line x1=\"{x:.1f}\" y1=\"{y0:.1f}\" x2=\"{x:.1f}\" y2=\"{y1:.1f}\" stroke=\"{c}\" "
            "stroke-opacity=\"0.5\" stroke-width=\"3\"/><circle cx=\"{x:.1f}\" cy=\"{y:.1f}\" "
            "r=\"3.5\" fill=\"{fill}\" stroke=\"{c}\"/></g>",
            fmt::arg("ag", Esc(agent)), fmt::arg("run", Esc(t.runs[i].run_id)),
            fmt::arg("pct", Pct(p.*rate)), fmt::arg("s", p.*successes), fmt::arg("n", p.attempts),
            fmt::arg("lo", Pct((p.*ci).low)), fmt::arg("hi", Pct((p.*ci).high)),
            fmt::arg("running", t.runs[i].running ? " (running)" : ""), fmt::arg("x", px),
            fmt::arg("y0", top + hgt * (1 - (p.*ci).low)),
            fmt::arg("y1", top + hgt * (1 - (p.*ci).high)), fmt::arg("c", colour),
            fmt::arg("y", py), fmt::arg("fill", t.runs[i].running ? "#fff" : colour));
      }
    }
    h += fmt::format(
        "<polyline class=\"agent\" data-agent=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"2\"/>{}",
        Esc(agent), points, colour, marks);
  }
  h += "</svg>\n";
}

}  // namespace

std::string RenderTrendHtml(const Trend& t) {
  std::string h = PageStart("Crucible trend: suite " + t.suite);
  h += fmt::format("<h1>Suite <code>{}</code> over time</h1>\n", Esc(t.suite));
  int running = 0;
  for (const auto& r : t.runs) running += r.running ? 1 : 0;
  h += fmt::format(
      "<p id=\"headline\">{} runs{} of suite <b>{}</b>, oldest first; {} agents. Each point is "
      "a run's rate with its Wilson 95% interval{}.</p>\n",
      t.runs.size(),
      t.runs_total > static_cast<int>(t.runs.size())
          ? fmt::format(" (the last of {})", t.runs_total)
          : "",
      Esc(t.suite), t.agents.size(),
      running > 0 ? fmt::format("; {} still running (hollow points: what finished so far)", running)
                  : "");
  h += "<p class=\"legend small\">";
  for (size_t a = 0; a < t.agents.size(); ++a) {
    h += fmt::format(
        "<span class=\"key\"><span class=\"box\" style=\"background:{}\"></span>{}</span>",
        Colour(a), Esc(t.agents[a]));
  }
  h += "</p>\n";
  TrendChart(h, t, "trend-strict", "Strict completion", &TrendPoint::strict_completed,
             &TrendPoint::strict_rate, &TrendPoint::strict_ci);
  TrendChart(h, t, "trend-loose", "Loose completion", &TrendPoint::completed,
             &TrendPoint::loose_rate, &TrendPoint::loose_ci);
  h += "<h2>Runs</h2>\n<div class=\"wide\"><table id=\"trend\" class=\"sortable\"><thead><tr>"
       "<th>run</th><th>started</th><th>agent</th><th>attempts</th><th>finished</th>"
       "<th>strict completion</th><th>loose completion</th><th>regressions</th><th>review "
       "loops</th><th>cost per strict completion</th></tr></thead><tbody>\n";
  for (const auto& r : t.runs) {
    for (size_t a = 0; a < r.agents.size(); ++a) {
      const auto& p = r.agents[a];
      size_t colour = 0;
      for (size_t k = 0; k < t.agents.size(); ++k) {
        if (t.agents[k] == p.agent) colour = k;
      }
      h += fmt::format(
          "<tr data-run=\"{run}\" data-agent=\"{ag}\"><td>{run}{running}</td><td>{at}</td>"
          "<td>{ag}</td><td>{n}</td><td>{f}</td>",
          fmt::arg("run", Esc(r.run_id)),
          fmt::arg("running", r.running ? " <span class=\"muted\">(running)</span>" : ""),
          fmt::arg("at", r.created_at_ms > 0 ? UtcTime(r.created_at_ms) : ""),
          fmt::arg("ag", Esc(p.agent)), fmt::arg("n", p.attempts), fmt::arg("f", p.finished));
      std::optional<double> strict, loose;
      if (p.attempts > 0) {
        strict = p.strict_rate;
        loose = p.loose_rate;
      }
      h += Cell(strict, IntervalBar(p.strict_completed, p.attempts, Colour(colour)));
      h += Cell(loose, IntervalBar(p.completed, p.attempts, Colour(colour)));
      h += Cell(p.regression_rate, p.regression_rate ? Pct(*p.regression_rate) : "");
      h += Cell(p.review_loops_mean,
                p.review_loops_mean ? fmt::format("{:.2f}", *p.review_loops_mean) : "");
      h += Cell(p.cost_per_completion_usd,
                p.cost_per_completion_usd ? Usd(*p.cost_per_completion_usd) : "");
      h += "</tr>\n";
    }
  }
  h += "</tbody></table></div>\n<p class=\"muted small\">Written by <code>crucible report "
       "--suite S --trend --html</code>.</p>\n";
  h += PageEnd();
  return h;
}

}  // namespace crucible::report
