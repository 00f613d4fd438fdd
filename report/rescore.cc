#include "report/rescore.h"

#include <map>
#include <optional>
#include <span>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

#include "scoring/score.h"

namespace crucible::report {

namespace {

std::string YesNo(bool b) { return b ? "yes" : "no"; }

std::string DimensionText(const v1::Dimension& d) {
  return d.measured() ? fmt::format("{:.2f}", d.value()) : "null";
}

std::string RegressionText(const v1::Score& s) {
  return s.regression_measured() ? YesNo(s.regression()) : "not measured";
}

// A violation or finding as a person reads it: "KIND FILE:LINE".
std::string Where(const std::string& file, int line) {
  return line > 0 ? fmt::format("{}:{}", file, line) : file;
}

// Appends "+ X" for the keys of `after` that `before` lacks (counted as
// multisets) and "- X" for the reverse.
void DiffMultiset(const std::map<std::string, int>& before, const std::map<std::string, int>& after,
                  std::vector<std::string>& out) {
  for (const auto& [key, n] : after) {
    auto it = before.find(key);
    for (int i = it == before.end() ? 0 : it->second; i < n; ++i) out.push_back("+ " + key);
  }
  for (const auto& [key, n] : before) {
    auto it = after.find(key);
    for (int i = it == after.end() ? 0 : it->second; i < n; ++i) out.push_back("- " + key);
  }
}

std::map<std::string, int> Violations(const v1::Score& s) {
  std::map<std::string, int> out;
  for (const auto& v : s.violations()) ++out[v.kind() + " " + Where(v.file(), v.line())];
  return out;
}

std::map<std::string, int> Findings(const v1::Score& s) {
  std::map<std::string, int> out;
  for (const auto& f : s.findings()) {
    ++out["finding " + f.rule() + " " + Where(f.file(), f.line())];
  }
  return out;
}

std::map<std::string, int> FailureModes(const v1::Score& s) {
  std::map<std::string, int> out;
  for (const auto& tag : s.failure_modes()) ++out["failure mode " + tag];
  return out;
}

}  // namespace

std::vector<std::string> DescribeScoreChange(const v1::Score& before, const v1::Score& after) {
  std::vector<std::string> out;
  if (before.completed() != after.completed()) {
    out.push_back(
        fmt::format("tests pass: {} -> {}", YesNo(before.completed()), YesNo(after.completed())));
  }
  if (before.strict_completed() != after.strict_completed()) {
    out.push_back(fmt::format("strict completion: {} -> {}", YesNo(before.strict_completed()),
                              YesNo(after.strict_completed())));
  }
  if (RegressionText(before) != RegressionText(after)) {
    out.push_back(
        fmt::format("regression: {} -> {}", RegressionText(before), RegressionText(after)));
  }
  DiffMultiset(Violations(before), Violations(after), out);
  DiffMultiset(Findings(before), Findings(after), out);
  const auto* descriptor = v1::Dimensions::descriptor();
  const auto* reflection = v1::Dimensions::GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    const auto& b =
        static_cast<const v1::Dimension&>(reflection->GetMessage(before.dimensions(), field));
    const auto& a =
        static_cast<const v1::Dimension&>(reflection->GetMessage(after.dimensions(), field));
    std::string bt = DimensionText(b), at = DimensionText(a);
    if (bt != at) out.push_back(fmt::format("{}: {} -> {}", field->name(), bt, at));
  }
  DiffMultiset(FailureModes(before), FailureModes(after), out);
  return out;
}

Result<RescoreSummary> RescoreRun(storage::Store& store, const std::string& run_id,
                                  const RescoreOptions& options) {
  CRUCIBLE_ASSIGN_OR_RETURN(v1::Run run, store.GetRun(run_id));
  auto context = [&](const Error& e) {
    return Error(e.code(), fmt::format("rescoring run '{}': {}", run_id, e.message()));
  };
  auto attempts = store.ListAttempts(run_id);
  if (!attempts) return Fail(context(attempts.error()));
  v1::ReviewRules rules;
  if (auto suite = store.GetSuite(run.suite())) {
    rules = scoring::RulesFor(*suite);
  } else if (suite.error().code() != Code::kNotFound) {
    return Fail(context(suite.error()));
  }

  RescoreSummary summary;
  summary.run_id = run_id;
  summary.scoring_version = scoring::kScoringVersion;
  summary.dry_run = options.dry_run;
  size_t total = 0;
  for (const auto& a : *attempts) total += a.state() == v1::Attempt::DONE;

  // Batch the synced writes: one fsync per kSyncEvery scores instead of one
  // per score. A crash before a Sync loses only new scores; the old ones stay.
  constexpr size_t kSyncEvery = 512;
  if (!options.dry_run) store.SetGroupCommit(true);
  size_t stored = 0;
  auto finish = [&]() -> Status {
    if (options.dry_run) return {};
    Status st = store.Sync();
    store.SetGroupCommit(false);
    return st;
  };

  std::unordered_map<std::string, Result<v1::GoldenTask>> tasks;
  size_t done = 0;
  for (const auto& attempt : *attempts) {
    if (attempt.state() != v1::Attempt::DONE) continue;
    if (options.progress) options.progress(done, total);
    ++done;
    auto skip = [&](const Error& e) {
      summary.skipped.push_back({.number = attempt.number(),
                                 .task_id = attempt.task_id(),
                                 .reason = e.message(),
                                 .error = e.code() != Code::kNotFound});
    };
    auto task_it = tasks.find(attempt.task_id());
    if (task_it == tasks.end()) {
      task_it =
          tasks.emplace(attempt.task_id(), store.GetTask(run.suite(), attempt.task_id())).first;
    }
    if (!task_it->second) {
      skip(task_it->second.error());
      continue;
    }
    auto evidence = store.GetEvidence(run_id, attempt.number());
    if (!evidence) {
      skip(evidence.error());
      continue;
    }
    auto before = store.GetScore(run_id, attempt.number());
    if (!before && before.error().code() != Code::kNotFound) {
      skip(before.error());
      continue;
    }
    // As the coordinator scores: a trace that cannot be read is scored as
    // none, and said so.
    auto trace = store.ListEvents(run_id, attempt.number());
    const std::vector<v1::TraceEvent> no_events;
    v1::Score after = scoring::ScoreAttempt(
        scoring::AttemptInput{.task = *task_it->second,
                              .evidence = *evidence,
                              .trace = trace ? std::span<const v1::TraceEvent>(*trace) : no_events,
                              .rules = rules});
    if (!trace) after.add_not_measurable("trace: " + trace.error().message());

    if (!options.dry_run) {
      if (Status st = store.PutScore(run_id, attempt.number(), after); !st) {
        (void)finish();
        return Fail(st.error().code(),
                    fmt::format("rescoring run '{}': attempt {}: {}; {} scores stored before it, "
                                "the others keep their old scores",
                                run_id, attempt.number(), st.error().message(), stored));
      }
      if (++stored % kSyncEvery == 0) {
        if (Status st = store.Sync(); !st) {
          (void)finish();
          return Fail(context(st.error()));
        }
      }
    }
    ++summary.rescored;
    auto changes = DescribeScoreChange(before ? *before : v1::Score(), after);
    if (!changes.empty()) {
      summary.changed.push_back({.number = attempt.number(),
                                 .agent = attempt.agent(),
                                 .task_id = attempt.task_id(),
                                 .sample = attempt.sample(),
                                 .changes = std::move(changes)});
    }
  }
  if (options.progress) options.progress(done, total);
  if (Status st = finish(); !st) return Fail(context(st.error()));
  return summary;
}

std::string RenderRescore(const RescoreSummary& summary) {
  std::string out;
  for (const auto& c : summary.changed) {
    out += fmt::format("attempt {} (agent {}, task {}, sample {}): {}\n", c.number, c.agent,
                       c.task_id, c.sample, fmt::join(c.changes, "; "));
  }
  for (const auto& s : summary.skipped) {
    out += fmt::format("attempt {} (task {}) skipped, its old score kept: {}\n", s.number,
                       s.task_id, s.reason);
  }
  out += fmt::format("{} {} attempt{} of run {} with scoring version {}: {} changed",
                     summary.dry_run ? "would rescore" : "rescored", summary.rescored,
                     summary.rescored == 1 ? "" : "s", summary.run_id, summary.scoring_version,
                     summary.changed.size());
  if (!summary.skipped.empty()) out += fmt::format(", {} skipped", summary.skipped.size());
  if (summary.dry_run) out += " (dry run: nothing stored)";
  return out + "\n";
}

}  // namespace crucible::report
