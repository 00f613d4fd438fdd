#include "scoring/score.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "golden/rules.h"
#include "golden/test_run.h"
#include "golden/utf8.h"
#include "scoring/claims.h"
#include "scoring/scanners.h"
#include "scoring/trace.h"
#include "vcs/repo.h"

namespace crucible::scoring {

namespace {

// Counts the ids of `wanted` that passed; collects up to 3 that did not.
int CountPassed(const google::protobuf::RepeatedPtrField<std::string>& wanted,
                const std::unordered_map<std::string, v1::TestOutcome::Status>& outcomes,
                std::vector<std::string>* not_passed) {
  int passed = 0;
  for (const auto& id : wanted) {
    auto it = outcomes.find(id);
    if (it != outcomes.end() && it->second == v1::TestOutcome::PASSED) {
      ++passed;
    } else if (not_passed->size() < 3) {
      not_passed->push_back(id);
    }
  }
  return passed;
}

// `text` without whitespace, appended to `out`.
void AppendNonSpace(std::string_view text, std::string& out) {
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) out += c;
  }
}

}  // namespace

namespace {

std::vector<v1::FileChange> DescribeFiles(const std::vector<vcs::DiffFile>& files) {
  std::vector<v1::FileChange> out;
  out.reserve(files.size());
  for (const auto& f : files) {
    v1::FileChange c;
    c.set_path(golden::internal::EscapeInvalidUtf8(f.path));
    if (f.old_path != f.path) c.set_old_path(golden::internal::EscapeInvalidUtf8(f.old_path));
    c.set_status(std::string(1, f.status));
    c.set_added(f.added);
    c.set_removed(f.removed);
    c.set_binary(f.binary);
    for (const auto& h : f.hunks) {
      auto* hunk = c.add_hunks();
      hunk->set_old_start(h.old_start);
      hunk->set_old_lines(h.old_lines);
      hunk->set_new_start(h.new_start);
      hunk->set_new_lines(h.new_lines);
      std::vector<std::string_view> removed, added;
      int last_new = h.new_start - 1;  // new-file line of the previous context line
      for (const auto& l : h.lines) {
        if (l.origin == ' ') last_new = l.new_line;
        if (l.origin != ' ' && hunk->first_changed_line() == 0) {
          // A removal has no new line: it sits after the last context line.
          hunk->set_first_changed_line(l.origin == '+' ? l.new_line : std::max(1, last_new + 1));
        }
        if (l.origin == '-') removed.push_back(l.text);
        if (l.origin == '+') added.push_back(l.text);
      }
      hunk->set_added(static_cast<int>(added.size()));
      hunk->set_removed(static_cast<int>(removed.size()));
      hunk->set_whitespace_only(WhitespaceOnly(removed, added));
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

const std::vector<std::string>& DefaultAllowedPaths() {
  static const std::vector<std::string> paths = {"CHANGELOG*", "CHANGES*", "NEWS*", "HISTORY*"};
  return paths;
}

v1::ReviewRules RulesFor(const v1::Suite& suite) {
  v1::ReviewRules rules = suite.review();
  for (const auto& p : suite.banned_patterns()) rules.add_banned_patterns(p);
  if (rules.test_patterns().empty()) *rules.mutable_test_patterns() = suite.test_patterns();
  return rules;
}

bool WhitespaceOnly(std::span<const std::string_view> removed,
                    std::span<const std::string_view> added) {
  if (removed.empty() || added.empty()) return false;
  std::string before, after;
  for (auto line : removed) AppendNonSpace(line, before);
  for (auto line : added) AppendNonSpace(line, after);
  return before == after;
}

std::vector<v1::FileChange> DescribeChanges(std::string_view diff, std::string* error) {
  auto files = vcs::ParseDiff(diff);
  if (!files) {
    *error = files.error().message();
    return {};
  }
  return DescribeFiles(*files);
}

v1::Score ScoreAttempt(const v1::GoldenTask& task, const v1::Evidence& evidence) {
  static const v1::ReviewRules defaults;
  return ScoreAttempt(
      AttemptInput{.task = task, .evidence = evidence, .trace = {}, .rules = defaults});
}

namespace {

using Strings = std::vector<std::string>;
using internal::Join;
using internal::Null;
using internal::Value;

// What is known of a change (the agent's or the golden patch's).
struct Change {
  bool known = false;        // the list of files
  bool lines_known = false;  // their added and removed line counts
  bool hunks_known = false;  // their hunks
  std::vector<v1::FileChange> files;
  // The parsed diff, for the scanners; nullopt when it is not stored.
  std::optional<std::vector<vcs::DiffFile>> parsed;
};

// Where a hunk's change starts, for people: its first changed line when
// known, else the start of the hunk (of the old file when the new is empty).
int FirstChangedLine(const v1::Hunk& h) {
  if (h.first_changed_line() > 0) return h.first_changed_line();
  return h.new_start() > 0 ? h.new_start() : h.old_start();
}

class Scorer {
 public:
  explicit Scorer(const AttemptInput& in)
      : in_(in),
        task_(in.task),
        ev_(in.evidence),
        rules_(in.rules),
        test_patterns_(in.rules.test_patterns().empty() ? golden::DefaultTestPatterns()
                                                        : Strings(in.rules.test_patterns().begin(),
                                                                  in.rules.test_patterns().end())) {
    // The hidden test patch replaces its files before the tests run, so what
    // the agent's tree still says there (the old tests calling a name the
    // task renames, say) is the hidden tests' business, not a fault of the
    // agent: the golden patch itself would be flagged otherwise.
    facts_ = ev_.static_facts();
    if (auto hidden = vcs::PatchPaths(task_.test_patch()); hidden && !hidden->empty()) {
      const std::set<std::string> replaced(hidden->begin(), hidden->end());
      auto* refs = facts_.mutable_stale_references();
      refs->erase(std::remove_if(refs->begin(), refs->end(),
                                 [&](const auto& r) { return replaced.contains(r.file()); }),
                  refs->end());
      auto* imports = facts_.mutable_broken_imports();
      imports->erase(std::remove_if(imports->begin(), imports->end(),
                                    [&](const auto& i) { return replaced.contains(i.file()); }),
                     imports->end());
    }
  }

  v1::Score Run() {
    score_.set_scoring_version(kScoringVersion);
    score_.set_files_touched(ev_.files_touched_size());
    score_.set_wall_ms(ev_.wall_ms());
    Completion();
    AgentChange();
    GoldenChange();
    Violations();
    Regression();
    Rounds();
    Dimensions();
    Blast();
    FailureModes();
    *score_.mutable_judge() = ev_.judge_scores();
    return std::move(score_);
  }

 private:
  void Note(std::string what_why) { score_.add_not_measurable(std::move(what_why)); }

  bool IsTest(const std::string& path) const { return golden::AnyMatches(test_patterns_, path); }

  void Violation(std::string kind, std::string file, int line, std::string detail) {
    auto* v = score_.add_violations();
    v->set_kind(std::move(kind));
    v->set_file(std::move(file));
    v->set_line(line);
    v->set_detail(std::move(detail));
  }

  // Loose completion, as before scoring version 2.
  void Completion() {
    score_.set_f2p_total(task_.fail_to_pass_size());
    score_.set_p2p_total(task_.pass_to_pass_size());
    for (const auto& t : ev_.tests().tests()) outcomes_[t.id()] = t.status();
    Strings f2p_failed, p2p_failed;
    score_.set_f2p_passed(CountPassed(task_.fail_to_pass(), outcomes_, &f2p_failed));
    score_.set_p2p_passed(CountPassed(task_.pass_to_pass(), outcomes_, &p2p_failed));
    tests_ran_ = false;
    if (ev_.no_submission()) {
      // A predictions agent without a patch for the task: nothing was tested.
      score_.set_no_submission(true);
      score_.set_reason("no submission");
    } else if (!ev_.diff_error().empty()) {
      score_.set_reason("the agent's change was not tested: " + ev_.diff_error());
    } else if (!ev_.truncated().empty() && ev_.tests().tests().empty()) {
      score_.set_reason(ev_.truncated());
    } else if (!ev_.test_patch_error().empty()) {
      score_.set_reason("hidden test patch did not apply: " + ev_.test_patch_error());
    } else if (!ev_.tests().infra_error().empty()) {
      score_.set_reason("test run failed: " + ev_.tests().infra_error());
    } else if (ev_.tests().timed_out()) {
      score_.set_reason("test run timed out");
    } else {
      tests_ran_ = true;
      if (!f2p_failed.empty()) {
        score_.set_reason(fmt::format("{}/{} FAIL_TO_PASS tests pass; not passing: {}",
                                      score_.f2p_passed(), score_.f2p_total(),
                                      fmt::join(f2p_failed, ", ")));
      } else if (!p2p_failed.empty()) {
        score_.set_reason(fmt::format("{}/{} PASS_TO_PASS tests pass; broken: {}",
                                      score_.p2p_passed(), score_.p2p_total(),
                                      fmt::join(p2p_failed, ", ")));
      } else {
        score_.set_completed(true);
      }
    }
  }

  // The hunks are known when every text file with changed lines has them
  // (the evidence may have dropped them to fit the message limit).
  static bool HunksKnown(const std::vector<v1::FileChange>& files) {
    return std::all_of(files.begin(), files.end(), [](const v1::FileChange& f) {
      return f.binary() || f.added() + f.removed() == 0 || f.hunks_size() > 0;
    });
  }

  void AgentChange() {
    if (!ev_.final_diff().empty()) {
      auto parsed = vcs::ParseDiff(ev_.final_diff());
      if (parsed) {
        agent_.parsed = std::move(*parsed);
      } else {
        Note("diff: the agent's diff does not parse: " +
             golden::internal::ToValidUtf8(parsed.error().message()));
      }
    }
    if (ev_.changes_size() > 0) {
      agent_.files.assign(ev_.changes().begin(), ev_.changes().end());
      agent_.known = agent_.lines_known = true;
    } else if (agent_.parsed) {
      agent_.files = DescribeFiles(*agent_.parsed);  // evidence from before version 2
      agent_.known = agent_.lines_known = true;
    } else if (ev_.final_diff().empty() && ev_.diff_error().empty() && ev_.diff_bytes() == 0 &&
               ev_.files_touched().empty()) {
      agent_.known = agent_.lines_known = true;  // the agent changed nothing
    } else {
      if (!ev_.diff_error().empty()) {
        Note("diff: not stored: " + ev_.diff_error());
      } else if (!ev_.truncated().empty()) {
        Note("diff: not stored: " + ev_.truncated());
      } else if (ev_.final_diff().empty()) {
        Note("diff: the evidence holds only the list of files touched, not the diff");
      }
      for (const auto& path : ev_.files_touched()) agent_.files.emplace_back().set_path(path);
      agent_.known = !agent_.files.empty();
    }
    agent_.hunks_known = agent_.lines_known && HunksKnown(agent_.files);
    if (agent_.lines_known && !agent_.hunks_known) {
      Note("diff: the hunks are not stored" +
           (ev_.truncated().empty() ? std::string() : " (" + ev_.truncated() + ")") +
           "; reformatting is not measurable");
    }
    Strings binary;
    for (const auto& f : agent_.files) {
      if (f.binary()) binary.push_back(f.path());
      diff_files_.push_back(f.path());
      if (!f.old_path().empty()) diff_files_.push_back(f.old_path());
      if (f.status() == "A") added_files_.push_back(f.path());
      if (!f.binary() && !IsTest(f.path())) agent_source_lines_ += f.added() + f.removed();
    }
    if (!binary.empty()) {
      Note("diff: binary files, their lines not counted: " + Join(binary));
    }
  }

  void GoldenChange() {
    if (ev_.golden_changes_size() > 0) {
      golden_.files.assign(ev_.golden_changes().begin(), ev_.golden_changes().end());
    } else if (!task_.source_patch().empty()) {
      auto parsed = vcs::ParseDiff(task_.source_patch());
      if (parsed) {
        golden_.files = DescribeFiles(*parsed);
      } else {
        Note("golden patch: does not parse: " +
             golden::internal::ToValidUtf8(parsed.error().message()));
      }
    }
    for (const auto& f : golden_.files) {
      if (IsTest(f.path())) continue;
      golden_sources_.push_back(f.path());
      if (!f.binary()) golden_source_lines_ += f.added() + f.removed();
    }
    golden_.known = !golden_sources_.empty();
    if (!golden_.known) {
      Note(
          "golden patch: has no source file; replay, oversized, out_of_scope and the plan's golden "
          "part are not measurable");
    }
  }

  double OversizedFactor() const {
    return rules_.has_oversized_factor() ? rules_.oversized_factor() : kDefaultOversizedFactor;
  }

  void Violations() {
    // out_of_scope
    if (agent_.known && golden_.known) {
      const Strings allowed =
          rules_.allowed_paths().empty()
              ? DefaultAllowedPaths()
              : Strings(rules_.allowed_paths().begin(), rules_.allowed_paths().end());
      auto in_golden = [&](const std::string& p) {
        return std::find(golden_sources_.begin(), golden_sources_.end(), p) !=
               golden_sources_.end();
      };
      for (const auto& f : agent_.files) {
        if (IsTest(f.path()) || in_golden(f.path()) ||
            (!f.old_path().empty() && in_golden(f.old_path())) ||
            golden::AnyMatches(allowed, f.path())) {
          continue;
        }
        int line = 0;  // the first changed line (of the old file for a deletion)
        if (!f.hunks().empty()) line = FirstChangedLine(f.hunks(0));
        Violation("out_of_scope", f.path(), line,
                  fmt::format("{} is outside the task's scope: the golden patch changes {} and "
                              "the suite does not allow this path.",
                              f.path(), Join(golden_sources_)));
      }
    }
    // reformat
    if (agent_.hunks_known) {
      for (const auto& f : agent_.files) {
        for (const auto& h : f.hunks()) {
          if (!h.whitespace_only()) continue;
          ++reformat_hunks_;
          Violation("reformat", f.path(), FirstChangedLine(h),
                    fmt::format("The hunk at lines {}-{} changes only whitespace or line breaks.",
                                h.new_start(), h.new_start() + std::max(h.new_lines(), 1) - 1));
        }
      }
    }
    // oversized
    if (agent_.lines_known && golden_.known) {
      const int min_extra = rules_.has_oversized_min_extra_lines()
                                ? rules_.oversized_min_extra_lines()
                                : kDefaultOversizedMinExtraLines;
      if (agent_source_lines_ > OversizedFactor() * golden_source_lines_ &&
          agent_source_lines_ >= golden_source_lines_ + min_extra) {
        const v1::FileChange* largest = nullptr;
        for (const auto& f : agent_.files) {
          if (f.binary() || IsTest(f.path())) continue;
          if (!largest || f.added() + f.removed() > largest->added() + largest->removed())
            largest = &f;
        }
        Violation("oversized", largest ? largest->path() : "", 0,
                  fmt::format("The diff changes {} lines of source, more than {:g} times the "
                              "golden patch's {}.",
                              agent_source_lines_, OversizedFactor(), golden_source_lines_));
      }
    }
    // scanner
    if (agent_.parsed) {
      const Strings banned(rules_.banned_patterns().begin(), rules_.banned_patterns().end());
      auto scanners = Scanners::For(banned);
      if (!scanners) {
        Note("scanners: " + golden::internal::ToValidUtf8(scanners.error().message()));
      } else {
        for (auto& finding : (*scanners)->Scan(*agent_.parsed)) {
          if (finding.severity() == "error") {
            Violation("scanner", finding.file(), finding.line(),
                      fmt::format("Scanner rule {} matched an added line: {}.", finding.rule(),
                                  finding.match()));
          }
          *score_.add_findings() = std::move(finding);
        }
      }
    } else if (agent_.known && !agent_.files.empty()) {
      Note("scanners: the diff is not stored; its added lines were not scanned");
    }
    // stale_reference, broken_import
    const auto& facts = facts_;
    for (const auto& r : facts.stale_references()) {
      Violation("stale_reference", r.file(), r.line(),
                fmt::format("{}, removed or renamed in {}, is still referenced here.", r.symbol(),
                            r.defined_in().empty() ? "the diff" : r.defined_in()));
    }
    for (const auto& i : facts.broken_imports()) {
      Violation("broken_import", i.file(), i.line(),
                fmt::format("The import of {} does not resolve{}.", i.name(),
                            i.detail().empty() ? "" : ": " + i.detail()));
    }
  }

  void Regression() {
    score_.set_regression_total(task_.regression_tests_size());
    if (task_.regression_tests_size() > 0) {
      const auto& rt = ev_.regression_tests();
      if (!ev_.regression_error().empty()) {
        Note("regression tests: did not run: " + ev_.regression_error());
      } else if (!tests_ran_) {
        Note("regression tests: the tests did not run");
      } else if (!ev_.has_regression_tests()) {
        Note("regression tests: not in the evidence (stored before they existed)");
      } else if (!rt.infra_error().empty()) {
        Note("regression tests: the run failed: " + rt.infra_error());
      } else if (rt.timed_out()) {
        Note("regression tests: the run timed out");
      } else {
        std::unordered_map<std::string, v1::TestOutcome::Status> outcomes;
        for (const auto& t : rt.tests()) outcomes[t.id()] = t.status();
        score_.set_regression_passed(
            CountPassed(task_.regression_tests(), outcomes, &regression_failed_));
        regression_broken_ = score_.regression_total() - score_.regression_passed();
      }
    }
    score_.set_regression_measured(tests_ran_ && score_.f2p_passed() == score_.f2p_total());
    p2p_broken_ = tests_ran_ ? score_.p2p_total() - score_.p2p_passed() : 0;
    score_.set_regression(score_.regression_measured() &&
                          (p2p_broken_ > 0 || regression_broken_ > 0));
  }

  // Review rounds (docs/review-loop.md). Without them an attempt has one
  // round, merge-ready when it completes with no violation. With them, the
  // loop stopped at the first round whose CI passed and whose review had
  // nothing to say; that round is the merge-ready one if the final change
  // (that round's) also completes with no violation; otherwise never.
  void Rounds() {
    score_.set_rounds(std::max(1, ev_.rounds_size()));
    score_.set_rounds_allowed(
        ev_.rounds_size() == 0 ? 1 : std::max(ev_.rounds_allowed(), ev_.rounds_size()));
    DeriveMergeReadiness(score_, ev_);
  }

  v1::Dimension Replay() const {
    if (!tests_ran_) return Null("the tests did not run: " + score_.reason());
    if (!golden_.known) return Null("the golden patch has no source file");
    if (!agent_.hunks_known) return Null("the diff's hunks are not known");
    double value = 1.0;
    Strings why;
    const int failing =
        (score_.f2p_total() - score_.f2p_passed()) + p2p_broken_ + regression_broken_;
    if (failing > 0) {
      value -= 0.5;
      why.push_back(fmt::format("-0.5: {} tests the golden patch passes fail", failing));
    }
    if (reformat_hunks_ > 0) {
      value -= 0.3;
      why.push_back(fmt::format("-0.3: {} whitespace-only hunks", reformat_hunks_));
    }
    if (agent_source_lines_ > OversizedFactor() * golden_source_lines_) {
      value -= 0.2;
      why.push_back(fmt::format("-0.2: {} lines of source against the golden patch's {}",
                                agent_source_lines_, golden_source_lines_));
    }
    return Value(value, why.empty() ? std::string("like the golden patch") : Join(why, why.size()));
  }

  v1::Dimension Coherence() const {
    if (!ev_.has_static_facts()) return Null("the evidence has no static checks");
    const auto& facts = facts_;
    if (!facts.error().empty()) return Null("the static checks did not run: " + facts.error());
    if (agent_.known && !agent_.files.empty()) {
      bool all_unchecked =
          std::all_of(agent_.files.begin(), agent_.files.end(), [&](const auto& f) {
            return std::find(facts.not_checked().begin(), facts.not_checked().end(), f.path()) !=
                   facts.not_checked().end();
          });
      if (all_unchecked) return Null("no changed file is in a language the static checks cover");
    }
    // One stale reference per symbol, however many lines still use it; one
    // broken import per import statement.
    const int broken = facts.broken_imports_size();
    std::set<std::string> symbols;
    for (const auto& r : facts.stale_references())
      symbols.insert(r.defined_in() + ":" + r.symbol());
    const int stale = static_cast<int>(symbols.size());
    return Value(1.0 - 0.4 * broken - 0.6 * stale,
                 fmt::format("{} broken imports, {} stale references", broken, stale));
  }

  void Dimensions() {
    auto& d = *score_.mutable_dimensions();
    *d.mutable_replay() = Replay();
    *d.mutable_coherence() = Coherence();
    const Observed observed = ObservedKinds(ev_);
    internal::TraceInput ti{
        .trace = in_.trace,
        .diff_known = agent_.known,
        .diff_files = diff_files_,
        .added_files = added_files_,
        .golden_known = golden_.known,
        .golden_sources = golden_sources_,
        .observed_execs = observed.execs,
        .observed_writes = observed.writes,
        .test_cmd = observed.execs ? in_.task.test_cmd() : std::string(),  // placeholders kept
        .contradictions = {}};
    for (const auto& c : ev_.contradictions()) ti.contradictions.push_back(c.detail());
    auto ts = internal::ScoreTrace(ti);
    *score_.mutable_tool_calls() = std::move(ts.tool_calls);
    *d.mutable_tool_calls() = std::move(ts.tool_calls_dimension);
    *d.mutable_plan() = std::move(ts.plan);
    *d.mutable_rollback() = std::move(ts.rollback_dimension);
    if (ts.has_rollback) *score_.mutable_rollback() = std::move(ts.rollback);
    instruction_drift_ = ts.instruction_drift;
    for (auto& n : ts.not_measurable) Note(std::move(n));
  }

  // The module of `path`: the first of rules.modules that matches one of its
  // directories (the shortest) or the path itself; else its top-level
  // directory ("" at the root).
  std::string Module(const std::string& path) const {
    for (const auto& glob : rules_.modules()) {
      std::string g = glob;
      while (!g.empty() && g.back() == '/') g.pop_back();
      if (g.empty()) continue;
      for (size_t slash = path.find('/'); slash != std::string::npos;
           slash = path.find('/', slash + 1)) {
        if (golden::PathMatches(g, path.substr(0, slash))) return path.substr(0, slash);
      }
      if (golden::PathMatches(glob, path)) return glob;
    }
    size_t slash = path.find('/');
    return slash == std::string::npos ? std::string() : path.substr(0, slash);
  }

  void Blast() {
    auto& b = *score_.mutable_blast_radius();
    if (agent_.known) {
      std::set<std::string> modules;
      int lines = 0;
      for (const auto& f : agent_.files) {
        modules.insert(Module(f.path()));
        if (!f.binary()) lines += f.added() + f.removed();
      }
      b.set_files(static_cast<int>(agent_.files.size()));
      b.set_modules(static_cast<int>(modules.size()));
      b.set_lines(agent_.lines_known ? lines : 0);
    } else {
      b.set_files(ev_.files_touched_size());
    }
    b.set_broken_tests(p2p_broken_ + regression_broken_);
    if (agent_.known && golden_.known) {
      std::set<std::string> a, g(golden_sources_.begin(), golden_sources_.end());
      for (const auto& f : agent_.files) {
        if (!IsTest(f.path())) a.insert(f.path());
      }
      int both = 0;
      for (const auto& p : a) both += static_cast<int>(g.count(p));
      const size_t either = a.size() + g.size() - both;
      score_.set_golden_overlap(either ? static_cast<double>(both) / either : 0.0);
    }
  }

  void FailureModes() {
    const auto& facts = facts_;
    auto tag = [&](const char* t) { score_.add_failure_modes(t); };
    if (facts.stale_references_size() > 0) tag("context-blindness");
    if (facts.broken_imports_size() > 0) tag("hallucinated-api");
    if (instruction_drift_) tag("instruction-drift");
    if (score_.regression()) tag("silent-regression");
    if (score_.out_of_scope()) tag("scope-creep");
  }

  const AttemptInput& in_;
  const v1::GoldenTask& task_;
  const v1::Evidence& ev_;
  const v1::ReviewRules& rules_;
  const Strings test_patterns_;
  v1::Score score_;
  v1::StaticFacts facts_;  // the static facts outside the hidden test patch's files
  std::unordered_map<std::string, v1::TestOutcome::Status> outcomes_;
  bool tests_ran_ = false;
  Change agent_, golden_;
  Strings diff_files_, added_files_, golden_sources_;
  int agent_source_lines_ = 0, golden_source_lines_ = 0;
  int reformat_hunks_ = 0;
  Strings regression_failed_;
  int regression_broken_ = 0, p2p_broken_ = 0;
  bool instruction_drift_ = false;
};

}  // namespace

v1::Score ScoreAttempt(const AttemptInput& input) { return Scorer(input).Run(); }

void DeriveMergeReadiness(v1::Score& score, const v1::Evidence& evidence) {
  score.set_out_of_scope(
      std::any_of(score.violations().begin(), score.violations().end(),
                  [](const v1::Violation& v) { return v.kind() == "out_of_scope"; }));
  const bool clean = score.completed() && score.violations().empty();
  score.set_merge_ready_round(0);
  if (evidence.rounds_size() == 0) {
    if (clean) score.set_merge_ready_round(1);
  } else {
    const auto& last = evidence.rounds(evidence.rounds_size() - 1);
    if (clean && last.merge_ready()) score.set_merge_ready_round(last.number());
  }
  score.set_strict_completed(clean && score.merge_ready_round() == 1);
}

}  // namespace crucible::scoring
