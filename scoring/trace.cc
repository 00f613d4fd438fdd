#include "scoring/trace.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "scoring/commands.h"

namespace crucible::scoring::internal {

namespace {

using json = nlohmann::json;

constexpr const char* kHeld = "held";
constexpr const char* kFailed = "failed";
constexpr size_t kMaxContradictions = 10;

// The names of docs/agents.md whose attributes a check reads.
bool Relevant(std::string_view name) {
  return name == "plan" || name == "read_file" || name == "edit_file" || name == "run_tests" ||
         name == "revert" || name == "commit";
}

bool IsEdit(std::string_view name) { return name == "edit_file" || name == "revert"; }

struct Event {
  uint64_t seq = 0;
  int64_t ts = 0;
  std::string_view name;
  json attrs;                      // a plan's attributes (an object), else null
  std::vector<std::string> paths;  // "path" and "files"
  std::optional<bool> failed;      // a run_tests event's outcome
};

// "path" and "files" of `attrs`.
std::vector<std::string> Paths(const json& attrs) {
  std::vector<std::string> out;
  if (!attrs.is_object()) return out;
  if (auto it = attrs.find("path"); it != attrs.end() && it->is_string()) {
    out.push_back(NormalizePath(it->get_ref<const std::string&>()));
  }
  if (auto it = attrs.find("files"); it != attrs.end() && it->is_array()) {
    for (const auto& f : *it) {
      if (f.is_string()) out.push_back(NormalizePath(f.get_ref<const std::string&>()));
    }
  }
  return out;
}

// The strings of a plan's "text" and "steps" (strings, arrays of strings, or
// objects with "text"), appended to `out`.
void AppendText(const json& v, std::string& out) {
  if (v.is_string()) {
    out += v.get_ref<const std::string&>();
    out += '\n';
  } else if (v.is_array()) {
    for (const auto& x : v) AppendText(x, out);
  } else if (v.is_object()) {
    if (auto it = v.find("text"); it != v.end()) AppendText(*it, out);
  }
}

bool PathChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
         c == '/';
}

// True when `text` holds `word` bounded by characters that cannot be part
// of a path.
bool MentionsToken(std::string_view text, std::string_view word) {
  if (word.empty()) return false;
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
    bool starts = at == 0 || !PathChar(text[at - 1]);
    size_t end = at + word.size();
    // A sentence may end right after a file name ("edit a.py.").
    bool ends = end == text.size() || !PathChar(text[end]) ||
                (text[end] == '.' && (end + 1 == text.size() || !PathChar(text[end + 1])));
    if (starts && ends) return true;
  }
  return false;
}

// True when `text` holds something that reads as a file or directory name: a
// token with a '/' or a name with an extension ("pricing.py", "src/",
// "inventory/cli.py"), not a bare extension (".py") or a plain word.
bool TextNamesAFile(std::string_view text) {
  auto is_sep = [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || std::strchr(",;:()[]{}\"'`<>", c);
  };
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_sep(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !is_sep(text[i])) ++i;
    std::string_view token = text.substr(start, i - start);
    while (!token.empty() && (token.back() == '.' || token.back() == '!' || token.back() == '?')) {
      token.remove_suffix(1);
    }
    if (token.size() < 2) continue;
    if (token.find('/') != std::string_view::npos) return true;
    size_t dot = token.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == token.size()) continue;
    std::string_view ext = token.substr(dot + 1);
    if (ext.size() <= 5 && std::all_of(ext.begin(), ext.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c));
        })) {
      return true;
    }
  }
  return false;
}

struct Plan {
  bool found = false;
  bool has_fields = false;
  uint64_t seq = 0;
  std::vector<std::string> files;
  std::string text;

  bool Names(const std::string& path) const {
    for (const auto& f : files) {
      if (PlanNames(f, path)) return true;
    }
    if (MentionsToken(text, path)) return true;
    size_t slash = path.rfind('/');
    return slash != std::string::npos &&
           MentionsToken(text, std::string_view(path).substr(slash + 1));
  }

  // A plan that names no file ("rename X to Y everywhere") cannot be held
  // against the diff's files: that is not measurable, not drift.
  bool NamesAnyFile() const { return !files.empty() || TextNamesAFile(text); }
};

// Whether a run_tests event failed; nullopt when it has none of the fields
// that say (docs/agents.md).
std::optional<bool> RunFailed(const json& attrs) {
  if (!attrs.is_object()) return std::nullopt;
  bool known = false;
  bool failed = false;
  if (auto it = attrs.find("failed"); it != attrs.end() && it->is_number()) {
    known = true;
    failed |= it->get<double>() > 0;
  }
  if (auto it = attrs.find("passed"); it != attrs.end()) {
    if (it->is_boolean()) {
      known = true;
      failed |= !it->get<bool>();
    } else if (it->is_number()) {
      known = true;
    }
  }
  if (auto it = attrs.find("ok"); it != attrs.end() && it->is_boolean()) {
    known = true;
    failed |= !it->get<bool>();
  }
  if (auto it = attrs.find("exit_code"); it != attrs.end() && it->is_number()) {
    known = true;
    failed |= it->get<double>() != 0;
  }
  if (!known) return std::nullopt;
  return failed;
}

struct Check {
  bool held = false;
  std::string reason;  // why it failed
};

// "tests after last edit" from what the harness saw (input.observed_execs):
// the last edit is the last observed write of a file the final diff changes
// (when writes were observed), else the last claimed edit at
// `claimed_edit_ts`; the check holds when an observed test-runner exec comes
// after it. nullopt when no edit is known.
std::optional<Check> ObservedTestsAfterEdit(const TraceInput& input,
                                            std::optional<int64_t> claimed_edit_ts) {
  std::optional<int64_t> edit_ts;
  std::string edit_path;
  if (input.observed_writes && input.diff_known) {
    std::set<std::string> diff(input.diff_files.begin(), input.diff_files.end());
    for (const auto& ev : input.trace) {
      if (ev.source() != "runner" || ev.name() != "file_write") continue;
      for (const auto& p : EventPaths(ev)) {
        if (!diff.count(p) || (edit_ts && ev.ts_ns() < *edit_ts)) continue;
        edit_ts = ev.ts_ns();
        edit_path = p;
      }
    }
  }
  const bool observed_edit = edit_ts.has_value();
  if (!edit_ts) edit_ts = claimed_edit_ts;
  if (!edit_ts) return std::nullopt;
  for (const auto& ev : input.trace) {
    if (ev.ts_ns() > *edit_ts && IsTestRunExec(ev, input.test_cmd))
      return Check{.held = true, .reason = {}};
  }
  return Check{
      .held = false,
      .reason =
          observed_edit
              ? "no test runner was executed after the last observed write (of " + edit_path + ")"
              : std::string("no test runner was executed after the last claimed edit")};
}

}  // namespace

std::string NormalizePath(std::string_view path) {
  if (path.starts_with("/workspace/")) path.remove_prefix(11);
  while (path.starts_with("./")) path.remove_prefix(2);
  return std::string(path);
}

std::vector<std::string> EventPaths(const v1::TraceEvent& ev) {
  if (ev.attrs_json().empty()) return {};
  return Paths(json::parse(ev.attrs_json(), nullptr, /*allow_exceptions=*/false));
}

bool IsTestRunExec(const v1::TraceEvent& ev, std::string_view test_cmd) {
  if (ev.source() != "runner" || ev.name() != "exec" || ev.attrs_json().empty()) return false;
  json attrs = json::parse(ev.attrs_json(), nullptr, /*allow_exceptions=*/false);
  if (!attrs.is_object()) return false;
  auto it = attrs.find("argv");
  if (it == attrs.end() || !it->is_array()) return false;
  std::vector<std::string> argv;
  for (const auto& a : *it) {
    if (a.is_string()) argv.push_back(a.get<std::string>());
  }
  return !argv.empty() && LooksLikeTestRun(argv, test_cmd);
}

v1::Dimension Null(std::string reason) {
  v1::Dimension d;
  d.set_measured(false);
  d.set_reason(std::move(reason));
  return d;
}

v1::Dimension Value(double value, std::string reason) {
  v1::Dimension d;
  d.set_measured(true);
  d.set_value(std::clamp(value, 0.0, 1.0));
  d.set_reason(std::move(reason));
  return d;
}

std::string Join(const std::vector<std::string>& items, size_t at_most) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < at_most; ++i) {
    if (i) out += ", ";
    out += items[i];
  }
  if (items.size() > at_most) out += fmt::format(" and {} more", items.size() - at_most);
  return out;
}

bool PlanNames(std::string_view name, std::string_view path) {
  std::string n = NormalizePath(name);
  if (n.empty()) return false;
  if (n.back() == '/') return path.starts_with(n) || path.find("/" + n) != std::string_view::npos;
  if (n == path) return true;
  return path.size() > n.size() && path.ends_with(n) && path[path.size() - n.size() - 1] == '/';
}

TraceScores ScoreTrace(const TraceInput& input) {
  TraceScores out;
  auto note = [&](std::string s) { out.not_measurable.push_back(std::move(s)); };

  // The agent's events, with the attributes of those a check reads.
  std::vector<Event> events;
  std::optional<std::string> disorder;
  int64_t last_ts = 0;
  uint64_t last_seq = 0;
  int bad_attrs = 0;
  for (const auto& ev : input.trace) {
    if (ev.source() != "agent") continue;
    if (!events.empty() && !disorder) {
      if (ev.seq() <= last_seq) {
        disorder = fmt::format("event seq {} comes after seq {}", ev.seq(), last_seq);
      } else if (ev.ts_ns() < last_ts) {
        disorder = fmt::format("event seq {} ({}) has a time before that of seq {}", ev.seq(),
                               ev.name(), last_seq);
      }
    }
    last_ts = ev.ts_ns();
    last_seq = ev.seq();
    Event e;
    e.seq = ev.seq();
    e.ts = ev.ts_ns();
    e.name = ev.name();
    if (Relevant(ev.name()) && !ev.attrs_json().empty()) {
      json attrs = json::parse(ev.attrs_json(), nullptr, /*allow_exceptions=*/false);
      if (attrs.is_discarded() || !attrs.is_object()) {
        ++bad_attrs;
      } else {
        e.paths = Paths(attrs);
        if (e.name == "run_tests") e.failed = RunFailed(attrs);
        if (e.name == "plan") e.attrs = std::move(attrs);
      }
    }
    events.push_back(std::move(e));
  }
  if (bad_attrs)
    note(fmt::format("trace: {} agent events have attrs that are not a JSON object", bad_attrs));

  auto& tc = out.tool_calls;
  // Claims the harness contradicts (Evidence.contradictions) come first; each
  // counts as a failed check.
  for (const auto& c : input.contradictions) {
    if (static_cast<size_t>(tc.contradictions_size()) < kMaxContradictions)
      tc.add_contradictions(c);
  }
  const int contradicted = static_cast<int>(input.contradictions.size());
  auto contradicted_reason = [&] {
    return fmt::format("{} claims the harness contradicts: {}", contradicted,
                       Join(input.contradictions, 1));
  };
  if (events.empty()) {
    const char* why = "the trace has no agent event";
    // What the harness saw still measures whether tests ran after the edits.
    auto observed =
        input.observed_execs ? ObservedTestsAfterEdit(input, std::nullopt) : std::optional<Check>();
    if (observed) tc.set_tests_after_last_edit(observed->held ? kHeld : kFailed);
    const int measured = (observed ? 1 : 0) + contradicted;
    const int held = observed && observed->held ? 1 : 0;
    std::string reason = fmt::format("{} of {} measurable checks hold; {}", held, measured, why);
    if (contradicted) reason += "; " + contradicted_reason();
    if (observed && !observed->held) reason += "; " + observed->reason;
    out.tool_calls_dimension =
        measured ? Value(static_cast<double>(held) / measured, reason) : Null(why);
    out.plan = Null(why);
    out.rollback_dimension = Null(why);
    return out;
  }
  if (disorder)
    note("trace: events out of order (" + *disorder + "); the timeline is not measurable");

  std::set<std::string> diff_files(input.diff_files.begin(), input.diff_files.end());
  std::set<std::string> added(input.added_files.begin(), input.added_files.end());

  // ---- the plan
  Plan plan;
  for (const auto& e : events) {
    if (e.name != "plan") continue;
    if (!plan.found) plan.seq = e.seq;
    plan.found = true;
    if (!e.attrs.is_object()) continue;
    for (const char* key : {"files", "path", "text", "steps"}) {
      if (e.attrs.contains(key)) plan.has_fields = true;
    }
    for (const auto& p : e.paths) plan.files.push_back(p);
    for (const char* key : {"text", "steps"}) {
      if (auto it = e.attrs.find(key); it != e.attrs.end()) AppendText(*it, plan.text);
    }
  }
  std::vector<std::string> unplanned;  // changed files the plan does not name
  if (!plan.found) {
    out.plan = Null("no plan event in the trace");
  } else if (!plan.has_fields) {
    out.plan =
        Null(fmt::format("the plan event (seq {}) has none of files, path, text, steps", plan.seq));
    note("plan: " + out.plan.reason());
  } else if (!plan.NamesAnyFile()) {
    out.plan = Null(fmt::format(
        "the plan (seq {}) names no file, so it cannot be compared with the diff", plan.seq));
  } else {
    for (const auto& f : input.diff_files) {
      if (!plan.Names(f)) unplanned.push_back(f);
    }
    std::vector<std::string> left_out;
    for (const auto& f : input.golden_sources) {
      if (!plan.Names(f)) left_out.push_back(f);
    }
    double value = 1.0;
    std::vector<std::string> why;
    if (input.diff_known && !unplanned.empty()) {
      value -= 0.5;
      why.push_back("-0.5: the diff changes files the plan did not name: " + Join(unplanned));
    }
    if (input.golden_known && !left_out.empty()) {
      value -= 0.3;
      why.push_back("-0.3: the plan leaves out files the golden patch needed: " + Join(left_out));
    }
    if (!input.golden_known)
      note("plan: the golden part is not measurable: the golden patch has no source file");
    if (!input.diff_known && !input.golden_known) {
      out.plan = Null("neither the diff nor the golden patch's source files are known");
    } else {
      out.plan = Value(
          value, why.empty() ? std::string("the plan names every changed and every golden file")
                             : Join(why, why.size()));
    }
    out.instruction_drift = input.diff_known && !unplanned.empty();
  }

  // ---- tool calls
  std::vector<std::string> reasons;
  // Every edited file was read before its first edit; files the diff adds
  // need no read.
  {
    std::set<std::string> read, checked;
    std::vector<std::string> unread;
    bool any_edit = false;
    int unnamed = 0;
    for (const auto& e : events) {
      if (e.name == "read_file") {
        read.insert(e.paths.begin(), e.paths.end());
      } else if (e.name == "edit_file") {
        any_edit = true;
        const auto& paths = e.paths;
        if (paths.empty()) ++unnamed;
        for (const auto& p : paths) {
          if (added.count(p) || !checked.insert(p).second) continue;
          if (!read.count(p)) unread.push_back(p);
        }
      }
    }
    if (unnamed)
      note(fmt::format("tool calls: {} edit_file events name no path or files", unnamed));
    if (!any_edit) {
      reasons.push_back("read before edit: no edit_file event");
    } else if (disorder) {
      reasons.push_back("read before edit: trace events out of order");
    } else if (checked.empty() && unread.empty()) {
      reasons.push_back("read before edit: no edit_file event names an existing file");
    } else if (unread.empty()) {
      tc.set_read_before_edit(kHeld);
    } else {
      tc.set_read_before_edit(kFailed);
      reasons.push_back("edited before any read_file: " + Join(unread));
    }
  }
  // Edits stayed on the files the plan named: every file the final diff
  // changes (what the harness saw, not the edit_file claims) is named.
  if (!plan.found || !plan.has_fields || !plan.NamesAnyFile()) {
    reasons.push_back("edits on plan: no plan event naming files");
  } else if (!input.diff_known) {
    reasons.push_back("edits on plan: the diff is not known");
  } else if (diff_files.empty()) {
    reasons.push_back("edits on plan: the diff changes nothing");
  } else if (unplanned.empty()) {
    tc.set_edits_on_plan(kHeld);
  } else {
    tc.set_edits_on_plan(kFailed);
    reasons.push_back("changed outside the plan: " + Join(unplanned));
  }
  // The agent's tests ran after its final edit.
  {
    std::optional<size_t> last_edit;
    for (size_t i = 0; i < events.size(); ++i) {
      if (IsEdit(events[i].name)) last_edit = i;
    }
    std::optional<Check> observed;
    if (input.observed_execs) {
      observed = ObservedTestsAfterEdit(input, last_edit && !disorder
                                                   ? std::optional<int64_t>(events[*last_edit].ts)
                                                   : std::nullopt);
    }
    if (observed) {
      tc.set_tests_after_last_edit(observed->held ? kHeld : kFailed);
      if (!observed->held) reasons.push_back(observed->reason);
    } else if (!last_edit) {
      reasons.push_back("tests after last edit: no edit_file event");
    } else if (disorder) {
      reasons.push_back("tests after last edit: trace events out of order");
    } else {
      bool ran = std::any_of(events.begin() + static_cast<std::ptrdiff_t>(*last_edit) + 1,
                             events.end(), [](const Event& e) { return e.name == "run_tests"; });
      tc.set_tests_after_last_edit(ran ? kHeld : kFailed);
      if (!ran)
        reasons.push_back(
            fmt::format("no run_tests after the last edit (seq {})", events[*last_edit].seq));
    }
  }
  // A commit held exactly the changed files: the files the agent's commit
  // events name, together, are the files the final diff changes.
  {
    bool any_commit = false;
    std::set<std::string> committed;
    for (const auto& e : events) {
      if (e.name != "commit") continue;
      any_commit = true;
      committed.insert(e.paths.begin(), e.paths.end());
    }
    if (!any_commit) {
      reasons.push_back("commit matches diff: no commit event");
    } else if (committed.empty()) {
      reasons.push_back("commit matches diff: no commit event names path or files");
      note("tool calls: the commit events name no path or files");
    } else if (!input.diff_known) {
      reasons.push_back("commit matches diff: the diff is not known");
    } else if (committed == diff_files) {
      tc.set_commit_matches_diff(kHeld);
    } else {
      tc.set_commit_matches_diff(kFailed);
      std::vector<std::string> extra, missing;
      std::set_difference(committed.begin(), committed.end(), diff_files.begin(), diff_files.end(),
                          std::back_inserter(extra));
      std::set_difference(diff_files.begin(), diff_files.end(), committed.begin(), committed.end(),
                          std::back_inserter(missing));
      std::string why = "the commits do not hold exactly the changed files:";
      if (!extra.empty()) why += " not in the diff: " + Join(extra) + ";";
      if (!missing.empty()) why += " not committed: " + Join(missing) + ";";
      why.pop_back();
      reasons.push_back(why);
      for (const auto& f : extra) {
        if (static_cast<size_t>(tc.contradictions_size()) < kMaxContradictions) {
          tc.add_contradictions("a commit event names " + f +
                                ", which the final diff does not change");
        }
      }
    }
  }
  // Claims the harness contradicts: files the diff changes that no edit
  // event names (when the agent reports its edits at all).
  if (input.diff_known) {
    std::set<std::string> claimed;
    bool reports_edits = false;
    for (const auto& e : events) {
      if (!IsEdit(e.name)) continue;
      for (const auto& p : e.paths) {
        reports_edits = true;
        claimed.insert(p);
      }
    }
    if (reports_edits) {
      for (const auto& f : diff_files) {
        if (claimed.count(f) || static_cast<size_t>(tc.contradictions_size()) >= kMaxContradictions)
          continue;
        tc.add_contradictions("the final diff changes " + f + ", which no edit_file event names");
      }
    }
  }
  {
    int held = 0, measured = 0;
    for (const std::string* s : {&tc.read_before_edit(), &tc.edits_on_plan(),
                                 &tc.tests_after_last_edit(), &tc.commit_matches_diff()}) {
      if (s->empty()) continue;
      ++measured;
      if (*s == kHeld) ++held;
    }
    std::string why = fmt::format("{} of {} measurable checks hold", held, measured);
    if (contradicted) why += "; " + contradicted_reason();
    if (!reasons.empty()) why += "; " + Join(reasons, reasons.size());
    // A contradicted claim counts as one more check that failed.
    measured += contradicted;
    out.tool_calls_dimension =
        measured ? Value(static_cast<double>(held) / measured, why) : Null(why);
  }

  // ---- rollback: for each failed test run, the edits before the next run.
  {
    int runs = 0, unknown = 0, failures = 0, edits = 0, reverted = 0;
    bool open = false;           // a failed run waits for the next run
    bool open_reverted = false;  // and a revert followed it
    bool open_counted = false;   // and an edit (or the end) followed it
    int open_edits = 0;
    auto close = [&] {
      if (open && open_counted) {
        ++failures;
        edits += open_edits;
        if (open_reverted) ++reverted;
      }
      open = open_reverted = open_counted = false;
      open_edits = 0;
    };
    for (const auto& e : events) {
      if (e.name == "run_tests") {
        close();
        ++runs;
        if (!e.failed) {
          ++unknown;
        } else if (*e.failed) {
          open = true;
        }
      } else if (open && IsEdit(e.name)) {
        open_counted = true;
        ++open_edits;
        if (e.name == "revert") open_reverted = true;
      }
    }
    if (open) open_counted = true;  // a failed run at the end counts
    close();
    if (unknown) {
      note(fmt::format("rollback: {} run_tests events have none of failed, passed, ok, exit_code",
                       unknown));
    }
    if (disorder) {
      out.rollback_dimension = Null("trace events out of order");
    } else if (runs == 0) {
      out.rollback_dimension = Null("no run_tests event in the trace");
    } else if (failures == 0) {
      out.rollback_dimension = Null("the agent's tests never failed");
    } else {
      out.has_rollback = true;
      auto& rb = out.rollback;
      rb.set_failures(failures);
      rb.set_edits_per_failure(static_cast<double>(edits) / failures);
      rb.set_revert_ratio(static_cast<double>(reverted) / failures);
      rb.set_pile_on(rb.edits_per_failure() > 2 && reverted == 0);
      double value = rb.edits_per_failure() <= 2
                         ? 1.0
                         : std::max(rb.revert_ratio(), 2.0 / rb.edits_per_failure());
      out.rollback_dimension = Value(
          value,
          fmt::format("{} failed test runs, {:.2f} edits per failure, {} followed by a "
                      "revert{}",
                      failures, rb.edits_per_failure(), reverted, rb.pile_on() ? "; pile-on" : ""));
    }
  }
  return out;
}

}  // namespace crucible::scoring::internal
