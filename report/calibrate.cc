#include "report/calibrate.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "scoring/calibration.h"
#include "scoring/score.h"

namespace crucible::report {

std::vector<v1::AgentSpec> CalibrationAgents() {
  std::vector<v1::AgentSpec> agents;
  for (const auto& e : scoring::Expectations()) {
    v1::AgentSpec a;
    a.set_name(e.agent);
    a.set_command("builtin:" + e.agent);
    agents.push_back(std::move(a));
  }
  return agents;
}

const std::vector<std::string>& CalibrationColumns() {
  static const std::vector<std::string> columns = {
      "completion", "strict",  "regression",      "replay",       "tool_calls",
      "coherence",  "plan",    "rollback",        "out_of_scope", "reformat",
      "oversized",  "scanner", "stale_reference", "broken_import"};
  return columns;
}

namespace {

const std::vector<std::string>& DimensionNames() {
  static const std::vector<std::string> names = {"replay", "tool_calls", "coherence", "plan",
                                                 "rollback"};
  return names;
}

const std::vector<std::string>& ViolationKinds() {
  static const std::vector<std::string> kinds = {
      "out_of_scope", "reformat", "oversized", "scanner", "stale_reference", "broken_import"};
  return kinds;
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string JoinTasks(const std::vector<std::string>& tasks) {
  return fmt::format("{}", fmt::join(tasks, ", "));
}

const v1::Dimension* DimensionOf(const v1::Score& s, std::string_view name) {
  const auto& d = s.dimensions();
  if (name == "replay") return &d.replay();
  if (name == "tool_calls") return &d.tool_calls();
  if (name == "coherence") return &d.coherence();
  if (name == "plan") return &d.plan();
  if (name == "rollback") return &d.rollback();
  return nullptr;
}

// The score as it would be with the checks of `switch_off` off: their
// violations dropped and strict completion recomputed as scoring/score.cc
// computes it (Rounds()), or their dimension unmeasured.
v1::Score SwitchOff(v1::Score score, const v1::Evidence& evidence,
                    const std::vector<std::string>& switch_off) {
  if (switch_off.empty()) return score;
  auto* violations = score.mutable_violations();
  const int before = violations->size();
  violations->erase(
      std::remove_if(violations->begin(), violations->end(),
                     [&](const v1::Violation& v) { return Contains(switch_off, v.kind()); }),
      violations->end());
  if (violations->size() != before) scoring::DeriveMergeReadiness(score, evidence);
  for (const auto& name : DimensionNames()) {
    if (!Contains(switch_off, name)) continue;
    auto* dims = score.mutable_dimensions();
    v1::Dimension* d = name == "replay"       ? dims->mutable_replay()
                       : name == "tool_calls" ? dims->mutable_tool_calls()
                       : name == "coherence"  ? dims->mutable_coherence()
                       : name == "plan"       ? dims->mutable_plan()
                                              : dims->mutable_rollback();
    d->set_measured(false);
    d->set_value(0);
    d->set_reason("switched off (--switch-off " + name + ")");
  }
  return score;
}

// Why a violation column could not be measured on this score ("" when it
// could): the notes of scoring/score.cc that say the diff, the golden patch
// or the scanners were not read.
std::string ViolationUnmeasured(const v1::Score& s, std::string_view kind) {
  for (const auto& n : s.not_measurable()) {
    const bool diff_unread = n.starts_with("diff: not stored") ||
                             n.starts_with("diff: the agent's diff does not parse") ||
                             n.starts_with("diff: the evidence holds only");
    if (diff_unread && kind != "scanner") return n;
    if (n.starts_with("golden patch:") && (kind == "out_of_scope" || kind == "oversized")) {
      return n;
    }
    if (n.starts_with("scanners:") && kind == "scanner") return n;
  }
  return "";
}

// One column on one score: measured or why not, and caught or why not.
struct Reading {
  bool measured = false;
  bool caught = false;
  std::string why;  // not measured: why; measured and not caught: what the score says
};

Reading Read(const v1::Score& s, const std::string& column,
             const std::vector<std::string>& switch_off) {
  Reading r;
  if (column == "completion") {
    r.measured = true;
    r.caught = !s.completed();
    r.why = "the tests pass";
  } else if (column == "strict") {
    r.measured = true;
    r.caught = !s.strict_completed();
    r.why = "strictly completed";
  } else if (column == "regression") {
    r.measured = s.regression_measured();
    r.caught = r.measured && s.regression();
    r.why = r.measured
                ? fmt::format(
                      "no PASS_TO_PASS or regression test broke ({} of {} "
                      "PASS_TO_PASS, {} of {} regression tests pass)",
                      s.p2p_passed(), s.p2p_total(), s.regression_passed(), s.regression_total())
                : "not measured (the FAIL_TO_PASS tests did not all pass, or the tests "
                  "did not run)";
  } else if (const v1::Dimension* d = DimensionOf(s, column)) {
    r.measured = d->measured();
    r.caught = r.measured && d->value() < 1.0;
    r.why = r.measured
                ? fmt::format("{:.2f}", d->value())
                : "not measured (" + (d->reason().empty() ? "no reason stored" : d->reason()) + ")";
  } else {
    std::string unmeasured = ViolationUnmeasured(s, column);
    r.measured = unmeasured.empty();
    r.caught =
        r.measured && std::any_of(s.violations().begin(), s.violations().end(),
                                  [&](const v1::Violation& v) { return v.kind() == column; });
    r.why = !r.measured                    ? "not measured (" + unmeasured + ")"
            : Contains(switch_off, column) ? "no " + column + " violation (switched off)"
                                           : "no " + column + " violation";
  }
  return r;
}

const char* StateName(v1::Attempt::State s) {
  switch (s) {
    case v1::Attempt::QUEUED:
      return "queued";
    case v1::Attempt::LEASED:
      return "leased";
    case v1::Attempt::RUNNING:
      return "running";
    case v1::Attempt::DONE:
      return "done";
    case v1::Attempt::FAILED:
      return "infra-failed";
    default:
      return "unknown state";
  }
}

// Columns with the tasks where something happened, in column order.
using ColumnTasks = std::map<std::string, std::vector<std::string>>;

void AddProblems(const ColumnTasks& by_column, const std::string& agent,
                 const std::function<std::string(const std::string&, const std::string&)>& what,
                 std::vector<CalibrationProblem>& out) {
  for (const auto& column : CalibrationColumns()) {
    auto it = by_column.find(column);
    if (it == by_column.end() || it->second.empty()) continue;
    out.push_back({agent, column, it->second, what(column, JoinTasks(it->second))});
  }
}

}  // namespace

Result<Calibration> Calibrate(storage::Store& store, const std::string& run_id,
                              const CalibrateOptions& options) {
  for (const auto& name : options.switch_off) {
    if (!Contains(ViolationKinds(), name) && !Contains(DimensionNames(), name)) {
      std::vector<std::string> valid = ViolationKinds();
      valid.insert(valid.end(), DimensionNames().begin(), DimensionNames().end());
      return Fail(Code::kInvalidArgument, fmt::format("--switch-off '{}': not a check; one of {}",
                                                      name, fmt::join(valid, ", ")));
    }
  }
  CRUCIBLE_ASSIGN_OR_RETURN(v1::Run run, store.GetRun(run_id));
  std::vector<std::string> missing;
  for (const auto& a : CalibrationAgents()) {
    if (std::none_of(run.agents().begin(), run.agents().end(),
                     [&](const v1::AgentSpec& r) { return r.name() == a.name(); })) {
      missing.push_back(a.name());
    }
  }
  if (!missing.empty()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("run {} is not a calibration run: it has no agent {} (`crucible "
                            "calibrate --suite S` makes one)",
                            run_id, fmt::join(missing, ", ")));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(auto attempts, store.ListAttempts(run_id));

  Calibration cal;
  cal.run_id = run_id;
  cal.suite = run.suite();
  // The first attempt of each (task, agent), tasks in attempt order.
  std::map<std::pair<std::string, std::string>, const v1::Attempt*> first;
  for (const auto& a : attempts) {
    if (!Contains(cal.tasks, a.task_id())) cal.tasks.push_back(a.task_id());
    first.emplace(std::make_pair(a.task_id(), a.agent()), &a);
  }
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  for (const auto& task : cal.tasks) {
    auto& tc = cal.per_task[task];
    tc.set_run_id(run_id);
    tc.set_at_ms(now_ms);
  }

  const auto& columns = CalibrationColumns();
  for (const auto& e : scoring::Expectations()) {
    CalibrationRow row;
    row.agent = e.agent;
    row.meant = e.meant;
    row.allowed = e.allowed;
    row.cells.resize(columns.size());
    const bool oracle = e.agent == "oracle";
    const bool noop = e.agent == "noop";
    ColumnTasks flagged, escaped, crossed;
    for (const auto& task : cal.tasks) {
      v1::TaskCalibration::Entry entry;
      entry.set_agent(e.agent);
      auto it = first.find({task, e.agent});
      const v1::Attempt* attempt = it == first.end() ? nullptr : it->second;
      std::string incomplete;
      v1::Score score;
      v1::Evidence evidence;
      if (attempt == nullptr) {
        incomplete = fmt::format("{} {} {}: no attempt", run_id, task, e.agent);
      } else if (attempt->state() != v1::Attempt::DONE) {
        incomplete =
            fmt::format("{}/{} {} {}: {}", run_id, attempt->number(), task, e.agent,
                        attempt->error().empty() ? StateName(attempt->state()) : attempt->error());
      } else {
        auto s = store.GetScore(run_id, attempt->number());
        auto ev = store.GetEvidence(run_id, attempt->number());
        if (!s || !ev) {
          incomplete = fmt::format("{}/{} {} {}: {}", run_id, attempt->number(), task, e.agent,
                                   !s ? s.error().message() : ev.error().message());
        } else {
          evidence = std::move(*ev);
          score = SwitchOff(std::move(*s), evidence, options.switch_off);
          ++cal.timing.attempts;
          cal.timing.attempt_ms += evidence.wall_ms();
          cal.timing.test_run_ms += evidence.tests().wall_ms() +
                                    evidence.regression_tests().wall_ms() +
                                    evidence.mutation().search_ms();
          cal.timing.search_ms += evidence.mutation().search_ms();
        }
      }
      if (!incomplete.empty()) {
        cal.incomplete.push_back(incomplete);
        entry.set_outcome("failed");
        entry.set_detail(incomplete);
        *cal.per_task[task].add_entries() = std::move(entry);
        continue;
      }
      if (evidence.has_mutation() && !evidence.mutation().applicable()) {
        row.not_applicable.emplace_back(task, evidence.mutation().reason());
        entry.set_outcome("n/a");
        entry.set_detail(evidence.mutation().reason());
        *cal.per_task[task].add_entries() = std::move(entry);
        continue;
      }
      ++row.applicable;
      std::vector<std::string> caught_by, escapes;
      for (size_t c = 0; c < columns.size(); ++c) {
        const std::string& column = columns[c];
        Reading r = Read(score, column, options.switch_off);
        auto& cell = row.cells[c];
        if (r.measured) ++cell.measured;
        if (r.caught) {
          ++cell.caught;
          cell.caught_tasks.push_back(task);
          caught_by.push_back(column);
        }
        const bool meant = Contains(e.meant, column);
        if (oracle && r.caught) {
          flagged[column].push_back(task);
          escapes.push_back(column + ": " + r.why);
        } else if (noop && meant && !r.caught) {
          flagged[column].push_back(task);
        } else if (!oracle && !noop && meant && !r.caught) {
          escaped[column].push_back(task);
          escapes.push_back(column + ": " + r.why);
        } else if (r.caught && !meant && !Contains(e.allowed, column) && !oracle) {
          crossed[column].push_back(task);
          entry.add_crossed(column);
        }
      }
      if (oracle) {
        entry.set_outcome(caught_by.empty() ? "ok" : "flagged");
        if (!caught_by.empty()) {
          std::vector<std::string> detail;
          for (const auto& c : caught_by) {
            Reading r = Read(score, c, options.switch_off);
            detail.push_back(c == "completion" ? "not completed (" + score.reason() + ")"
                             : c == "strict"   ? "not strictly completed"
                                               : c + (r.why.empty() ? "" : " " + r.why));
          }
          entry.set_detail("the oracle was flagged: " + fmt::format("{}", fmt::join(detail, "; ")));
        }
      } else if (noop) {
        const bool completes = !Contains(caught_by, "completion");
        entry.set_outcome(completes ? "flagged" : "ok");
        if (completes) {
          entry.set_detail(
              "the noop completes the task: its FAIL_TO_PASS tests pass with no change");
        }
      } else {
        entry.set_outcome(escapes.empty() ? "caught" : "escaped");
        if (!escapes.empty()) {
          entry.set_detail(fmt::format("{} escaped {}", e.agent, fmt::join(escapes, "; ")));
        }
      }
      *cal.per_task[task].add_entries() = std::move(entry);
    }
    if (oracle) {
      AddProblems(
          flagged, e.agent,
          [](const std::string& column, const std::string& tasks) {
            return fmt::format("the oracle was flagged by {} on tasks {}", column, tasks);
          },
          cal.failures);
    } else if (noop) {
      AddProblems(
          flagged, e.agent,
          [](const std::string&, const std::string& tasks) {
            return fmt::format("the noop completes tasks {}", tasks);
          },
          cal.failures);
    } else {
      AddProblems(
          escaped, e.agent,
          [&](const std::string& column, const std::string& tasks) {
            // Where the column could not be measured, say so.
            const size_t c = std::find(columns.begin(), columns.end(), column) - columns.begin();
            const int unmeasured = row.applicable - row.cells[c].measured;
            return fmt::format(
                "{} escaped {} on tasks {}{}", e.agent, column, tasks,
                unmeasured > 0 ? fmt::format(" ({} not measured on {} of them)", column, unmeasured)
                               : "");
          },
          cal.failures);
    }
    AddProblems(
        crossed, e.agent,
        [&](const std::string& column, const std::string& tasks) {
          return fmt::format("{} was caught by {}, a score not meant for it, on tasks {}", e.agent,
                             column, tasks);
        },
        cal.crossed);
    cal.rows.push_back(std::move(row));
  }
  for (auto& [task, tc] : cal.per_task) {
    bool failed = false, escapes = false;
    for (const auto& entry : tc.entries()) {
      failed |= entry.outcome() == "failed";
      escapes |= entry.outcome() == "escaped" || entry.outcome() == "flagged";
    }
    tc.set_status(failed ? "incomplete" : escapes ? "escapes" : "calibrated");
  }
  return cal;
}

namespace {

const char* ShortHeader(std::string_view column) {
  static const std::map<std::string_view, const char*> headers = {{"completion", "compl"},
                                                                  {"strict", "strict"},
                                                                  {"regression", "regr"},
                                                                  {"replay", "replay"},
                                                                  {"tool_calls", "tools"},
                                                                  {"coherence", "coher"},
                                                                  {"plan", "plan"},
                                                                  {"rollback", "rollb"},
                                                                  {"out_of_scope", "scope"},
                                                                  {"reformat", "reform"},
                                                                  {"oversized", "oversz"},
                                                                  {"scanner", "scan"},
                                                                  {"stale_reference", "stale"},
                                                                  {"broken_import", "import"}};
  auto it = headers.find(column);
  return it == headers.end() ? "?" : it->second;
}

std::string CellText(const CalibrationCell& cell) {
  return cell.measured == 0 ? "n/a" : fmt::format("{}/{}", cell.caught, cell.measured);
}

}  // namespace

std::string RenderCalibrationTable(const Calibration& cal) {
  const auto& columns = CalibrationColumns();
  size_t label = 5;
  for (const auto& row : cal.rows) label = std::max(label, row.agent.size());
  // Each column as wide as its header or its widest cell.
  std::vector<size_t> width(columns.size());
  for (size_t c = 0; c < columns.size(); ++c) {
    width[c] = std::string_view(ShortHeader(columns[c])).size();
    for (const auto& row : cal.rows) {
      const size_t mark = Contains(row.meant, columns[c]) ? 1 : 0;
      width[c] = std::max(width[c], CellText(row.cells[c]).size() + mark);
    }
  }
  std::string out = fmt::format("calibration of run {} (suite {}, {} tasks)\n\n", cal.run_id,
                                cal.suite, cal.tasks.size());
  out += fmt::format("{:<{}}", "agent", label);
  for (size_t c = 0; c < columns.size(); ++c) {
    out += fmt::format(" {:>{}}", ShortHeader(columns[c]), width[c]);
  }
  out += "\n";
  for (const auto& row : cal.rows) {
    out += fmt::format("{:<{}}", row.agent, label);
    for (size_t c = 0; c < columns.size(); ++c) {
      std::string text = CellText(row.cells[c]);
      if (Contains(row.meant, columns[c])) text += "*";
      out += fmt::format(" {:>{}}", text, width[c]);
    }
    out += "\n";
  }
  out +=
      "\nk/n: caught on k of the n tasks where the fault applies and the score was measured;\n"
      "*: a score meant for the agent, which must catch it on every such task\n";
  // Not applicable: per agent, the tasks sharing a reason on one line.
  std::string na;
  for (const auto& row : cal.rows) {
    std::vector<std::pair<std::string, std::vector<std::string>>> by_reason;
    for (const auto& [task, reason] : row.not_applicable) {
      auto it = std::find_if(by_reason.begin(), by_reason.end(),
                             [&](const auto& r) { return r.first == reason; });
      if (it == by_reason.end()) {
        by_reason.push_back({reason, {task}});
      } else {
        it->second.push_back(task);
      }
    }
    for (const auto& [reason, tasks] : by_reason) {
      na += fmt::format("  {} on {}: {}\n", row.agent, JoinTasks(tasks), reason);
    }
    if (row.applicable == 0 && !row.not_applicable.empty()) {
      na += fmt::format("  ({} applies to no task: its scores are not calibrated by this run)\n",
                        row.agent);
    }
  }
  if (!na.empty()) out += "\nnot applicable:\n" + na;
  if (!cal.incomplete.empty()) {
    out += "\nattempts that did not finish:\n";
    for (const auto& i : cal.incomplete) out += "  " + i + "\n";
  }
  if (!cal.failures.empty()) {
    out += "\nfailures:\n";
    for (const auto& f : cal.failures) out += "  " + f.what + "\n";
  }
  if (!cal.crossed.empty()) {
    out += "\nwarnings (crossed wires):\n";
    for (const auto& c : cal.crossed) out += "  " + c.what + "\n";
  }
  if (cal.timing.attempt_ms > 0) {
    const auto& t = cal.timing;
    out += fmt::format(
        "\nrunner time: {:.1f} s in {} attempts, {:.1f} s ({:.0f}%) of it in test runs "
        "(silent-regression's search {:.1f} s)\n",
        t.attempt_ms / 1000.0, t.attempts, t.test_run_ms / 1000.0,
        100.0 * static_cast<double>(t.test_run_ms) / static_cast<double>(t.attempt_ms),
        t.search_ms / 1000.0);
  }
  if (cal.ok()) {
    out +=
        "\ncalibration passed: nothing flagged the oracle, the noop completed no task, and "
        "every mutant\nwas caught by each score meant for it wherever it applies\n";
  } else {
    std::vector<std::string> why;
    if (!cal.failures.empty()) why.push_back(fmt::format("{} failure(s)", cal.failures.size()));
    if (!cal.incomplete.empty()) {
      why.push_back(fmt::format("{} attempt(s) did not finish", cal.incomplete.size()));
    }
    out += fmt::format("\ncalibration FAILED: {}\n", fmt::join(why, ", "));
  }
  return out;
}

std::string RenderCalibrationJson(const Calibration& cal) {
  nlohmann::json j;
  j["run"] = cal.run_id;
  j["suite"] = cal.suite;
  j["tasks"] = cal.tasks;
  j["columns"] = CalibrationColumns();
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : cal.rows) {
    nlohmann::json r;
    r["agent"] = row.agent;
    r["meant"] = row.meant;
    r["allowed"] = row.allowed;
    r["applicable"] = row.applicable;
    nlohmann::json na = nlohmann::json::array();
    for (const auto& [task, reason] : row.not_applicable) {
      na.push_back({{"task", task}, {"reason", reason}});
    }
    r["not_applicable"] = std::move(na);
    nlohmann::json cells = nlohmann::json::object();
    for (size_t c = 0; c < row.cells.size() && c < CalibrationColumns().size(); ++c) {
      cells[CalibrationColumns()[c]] = {{"caught", row.cells[c].caught},
                                        {"measured", row.cells[c].measured},
                                        {"tasks", row.cells[c].caught_tasks}};
    }
    r["cells"] = std::move(cells);
    rows.push_back(std::move(r));
  }
  j["rows"] = std::move(rows);
  auto problems = [](const std::vector<CalibrationProblem>& list) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : list) {
      out.push_back(
          {{"agent", p.agent}, {"column", p.column}, {"tasks", p.tasks}, {"what", p.what}});
    }
    return out;
  };
  j["failures"] = problems(cal.failures);
  j["crossed"] = problems(cal.crossed);
  j["incomplete"] = cal.incomplete;
  j["timing"] = {{"attempts", cal.timing.attempts},
                 {"attempt_ms", cal.timing.attempt_ms},
                 {"test_run_ms", cal.timing.test_run_ms},
                 {"search_ms", cal.timing.search_ms}};
  j["ok"] = cal.ok();
  return j.dump(2) + "\n";
}

Status StoreTaskCalibration(storage::Store& store, const Calibration& cal) {
  CRUCIBLE_ASSIGN_OR_RETURN(v1::Suite suite, store.GetSuite(cal.suite));
  CRUCIBLE_ASSIGN_OR_RETURN(auto tasks, store.ListTasks(cal.suite));
  for (auto& t : tasks) {
    auto it = cal.per_task.find(t.id());
    if (it != cal.per_task.end()) *t.mutable_calibration() = it->second;
  }
  return store.PutSuite(suite, tasks);
}

std::vector<std::string> EnvironmentCheck::mismatched() const {
  std::vector<std::string> out;
  for (const auto& t : tasks) {
    auto it = per_task.find(t);
    if (it != per_task.end() && it->second.status() == "mismatch") out.push_back(t);
  }
  return out;
}

std::vector<std::string> EnvironmentCheck::unchecked() const {
  std::vector<std::string> out;
  for (const auto& t : tasks) {
    auto it = per_task.find(t);
    if (it == per_task.end() || it->second.status().empty()) out.push_back(t);
  }
  return out;
}

std::vector<v1::AgentSpec> EnvironmentAgents() {
  std::vector<v1::AgentSpec> agents;
  for (const char* name : {"oracle", "noop"}) {
    v1::AgentSpec a;
    a.set_name(name);
    a.set_command(std::string("builtin:") + name);
    agents.push_back(std::move(a));
  }
  return agents;
}

namespace {

const char* OutcomeWord(v1::TestOutcome::Status s) {
  switch (s) {
    case v1::TestOutcome::PASSED:
      return "passed";
    case v1::TestOutcome::FAILED:
      return "failed";
    case v1::TestOutcome::ERROR:
      return "errored";
    case v1::TestOutcome::SKIPPED:
      return "was skipped";
    default:
      return "did not run";
  }
}

// One agent's finished attempt on a task, or why there is none.
struct Finished {
  const v1::Attempt* attempt = nullptr;
  v1::Score score;
  v1::Evidence evidence;
  std::string unfinished;  // set when the attempt did not finish
};

Finished ReadFinished(storage::Store& store, const std::string& run_id, const v1::Attempt* attempt,
                      const std::string& task, const std::string& agent) {
  Finished f;
  f.attempt = attempt;
  if (attempt == nullptr) {
    f.unfinished = fmt::format("the {} has no attempt on {} in run {}", agent, task, run_id);
  } else if (attempt->state() != v1::Attempt::DONE) {
    f.unfinished =
        fmt::format("the {}'s attempt {}/{} did not finish ({})", agent, run_id, attempt->number(),
                    attempt->error().empty() ? StateName(attempt->state()) : attempt->error());
  } else {
    auto s = store.GetScore(run_id, attempt->number());
    auto ev = store.GetEvidence(run_id, attempt->number());
    if (!s || !ev) {
      f.unfinished =
          fmt::format("the {}'s attempt {}/{} has no {}: {}", agent, run_id, attempt->number(),
                      !s ? "score" : "evidence", !s ? s.error().message() : ev.error().message());
    } else {
      f.score = std::move(*s);
      f.evidence = std::move(*ev);
    }
  }
  return f;
}

// Why the attempt's hidden tests did not run ("" when they did), as scoring
// says it (Score.reason) for the same cases.
std::string TestsDidNotRun(const Finished& f) {
  const v1::Evidence& ev = f.evidence;
  if (!ev.diff_error().empty() || !ev.test_patch_error().empty() ||
      !ev.tests().infra_error().empty() || ev.tests().timed_out() ||
      (!ev.truncated().empty() && ev.tests().tests().empty())) {
    return f.score.reason().empty() ? "the tests did not run" : f.score.reason();
  }
  return "";
}

v1::TaskEnvironment Decide(const v1::GoldenTask* task, const Finished& oracle,
                           const Finished& noop) {
  v1::TaskEnvironment env;
  std::vector<std::string> details;
  bool mismatch = false;
  if (oracle.unfinished.empty() && !oracle.score.completed()) {
    mismatch = true;
    const std::string why = TestsDidNotRun(oracle);
    if (!why.empty()) {
      env.add_failing("the tests did not run with the gold patch: " + why);
    } else if (task != nullptr) {
      std::map<std::string, v1::TestOutcome::Status> by_id;
      for (const auto& t : oracle.evidence.tests().tests()) by_id[t.id()] = t.status();
      auto list = [&](const auto& ids, const char* name) {
        for (const auto& id : ids) {
          auto it = by_id.find(id);
          const auto st = it == by_id.end() ? v1::TestOutcome::UNKNOWN : it->second;
          if (st == v1::TestOutcome::PASSED) continue;
          env.add_failing(fmt::format("{} {} {} with the gold patch", name, id, OutcomeWord(st)));
        }
      };
      list(task->fail_to_pass(), "FAIL_TO_PASS");
      list(task->pass_to_pass(), "PASS_TO_PASS");
    }
    if (env.failing().empty()) env.add_failing("the gold patch: " + oracle.score.reason());
    details.push_back("the gold patch does not resolve it (" + oracle.score.reason() + ")");
  }
  if (noop.unfinished.empty() && TestsDidNotRun(noop).empty() && task != nullptr) {
    std::set<std::string> passed;
    for (const auto& t : noop.evidence.tests().tests()) {
      if (t.status() == v1::TestOutcome::PASSED) passed.insert(t.id());
    }
    std::vector<std::string> without;
    for (const auto& id : task->fail_to_pass()) {
      if (passed.contains(id)) without.push_back(id);
    }
    for (const auto& id : without) {
      env.add_failing(fmt::format("FAIL_TO_PASS {} passed without it", id));
    }
    if (!without.empty()) {
      mismatch = true;
      details.push_back(fmt::format("{} of its {} FAIL_TO_PASS tests pass without the gold patch",
                                    without.size(), task->fail_to_pass_size()));
    }
  }
  if (mismatch) {
    env.set_status("mismatch");
    env.set_detail(fmt::format("{}", fmt::join(details, "; ")));
    return env;
  }
  // Neither attempt showed a mismatch: ok only when both could.
  std::vector<std::string> unknown;
  if (!oracle.unfinished.empty()) unknown.push_back(oracle.unfinished);
  if (!noop.unfinished.empty()) unknown.push_back(noop.unfinished);
  if (noop.unfinished.empty() && !TestsDidNotRun(noop).empty()) {
    unknown.push_back("the noop's tests did not run: " + TestsDidNotRun(noop));
  }
  if (task == nullptr) unknown.push_back("the task is no longer in the suite");
  if (!unknown.empty()) {
    env.set_detail(fmt::format("not checked (infrastructure): {}", fmt::join(unknown, "; ")));
    return env;
  }
  env.set_status("ok");
  return env;
}

}  // namespace

Result<EnvironmentCheck> CheckEnvironment(storage::Store& store, const std::string& run_id) {
  CRUCIBLE_ASSIGN_OR_RETURN(v1::Run run, store.GetRun(run_id));
  std::vector<std::string> missing;
  for (const auto& a : EnvironmentAgents()) {
    if (std::none_of(run.agents().begin(), run.agents().end(),
                     [&](const v1::AgentSpec& r) { return r.name() == a.name(); })) {
      missing.push_back(a.name());
    }
  }
  if (!missing.empty()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("run {} is not an environment check: it has no agent {} (`crucible "
                            "calibrate --environment --suite S` makes one)",
                            run_id, fmt::join(missing, ", ")));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(auto attempts, store.ListAttempts(run_id));
  CRUCIBLE_ASSIGN_OR_RETURN(auto tasks, store.ListTasks(run.suite()));
  std::map<std::string, const v1::GoldenTask*> task_by_id;
  for (const auto& t : tasks) task_by_id[t.id()] = &t;

  EnvironmentCheck check;
  check.run_id = run_id;
  check.suite = run.suite();
  std::map<std::pair<std::string, std::string>, const v1::Attempt*> first;
  for (const auto& a : attempts) {
    if (!Contains(check.tasks, a.task_id())) check.tasks.push_back(a.task_id());
    first.emplace(std::make_pair(a.task_id(), a.agent()), &a);
  }
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  auto find = [&](const std::string& task, const std::string& agent) -> const v1::Attempt* {
    auto it = first.find({task, agent});
    return it == first.end() ? nullptr : it->second;
  };
  for (const auto& task : check.tasks) {
    Finished oracle = ReadFinished(store, run_id, find(task, "oracle"), task, "oracle");
    Finished noop = ReadFinished(store, run_id, find(task, "noop"), task, "noop");
    auto it = task_by_id.find(task);
    v1::TaskEnvironment env = Decide(it == task_by_id.end() ? nullptr : it->second, oracle, noop);
    env.set_run_id(run_id);
    env.set_at_ms(now_ms);
    check.per_task[task] = std::move(env);
  }
  return check;
}

std::string RenderEnvironmentTable(const EnvironmentCheck& check) {
  const auto mismatched = check.mismatched();
  const auto unchecked = check.unchecked();
  std::string out = fmt::format(
      "environment check of run {} (suite {}, {} tasks): {} ok, {} mismatch, {} not "
      "checked\n",
      check.run_id, check.suite, check.tasks.size(),
      check.tasks.size() - mismatched.size() - unchecked.size(), mismatched.size(),
      unchecked.size());
  if (!mismatched.empty()) {
    out += "\nenvironment mismatch (runs leave these tasks out; --include-mismatched runs them):\n";
    for (const auto& t : mismatched) {
      const auto& env = check.per_task.at(t);
      out += fmt::format("  {}: {}\n", t, env.detail());
      for (const auto& f : env.failing()) out += "    " + f + "\n";
    }
  }
  if (!unchecked.empty()) {
    out += "\nnot checked (status left unset):\n";
    for (const auto& t : unchecked) {
      auto it = check.per_task.find(t);
      out += fmt::format("  {}: {}\n", t, it == check.per_task.end() ? "" : it->second.detail());
    }
  }
  out +=
      mismatched.empty()
          ? "\nenvironment check passed: the gold patch resolves every checked task and no "
            "FAIL_TO_PASS test passes without it\n"
          : fmt::format("\nenvironment check FAILED: {} task(s) mismatched\n", mismatched.size());
  return out;
}

std::string RenderEnvironmentJson(const EnvironmentCheck& check) {
  nlohmann::json j;
  j["run"] = check.run_id;
  j["suite"] = check.suite;
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& t : check.tasks) {
    auto it = check.per_task.find(t);
    if (it == check.per_task.end()) continue;
    const auto& env = it->second;
    tasks.push_back(
        {{"task", t},
         {"status", env.status()},
         {"failing", std::vector<std::string>(env.failing().begin(), env.failing().end())},
         {"detail", env.detail()}});
  }
  j["tasks"] = std::move(tasks);
  j["mismatched"] = check.mismatched();
  j["unchecked"] = check.unchecked();
  j["ok"] = check.ok();
  return j.dump(2) + "\n";
}

Status StoreTaskEnvironment(storage::Store& store, const EnvironmentCheck& check) {
  CRUCIBLE_ASSIGN_OR_RETURN(v1::Suite suite, store.GetSuite(check.suite));
  CRUCIBLE_ASSIGN_OR_RETURN(auto tasks, store.ListTasks(check.suite));
  for (auto& t : tasks) {
    auto it = check.per_task.find(t.id());
    if (it != check.per_task.end()) *t.mutable_environment() = it->second;
  }
  return store.PutSuite(suite, tasks);
}

}  // namespace crucible::report
