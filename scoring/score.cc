#include "scoring/score.h"

#include <cctype>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "golden/utf8.h"
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
  std::vector<v1::FileChange> out;
  auto files = vcs::ParseDiff(diff);
  if (!files) {
    *error = files.error().message();
    return out;
  }
  out.reserve(files->size());
  for (const auto& f : *files) {
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
      for (const auto& l : h.lines) {
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

v1::Score ScoreAttempt(const v1::GoldenTask& task, const v1::Evidence& evidence) {
  static const v1::ReviewRules defaults;
  return ScoreAttempt(
      AttemptInput{.task = task, .evidence = evidence, .trace = {}, .rules = defaults});
}

v1::Score ScoreAttempt(const AttemptInput& input) {
  const v1::GoldenTask& task = input.task;
  const v1::Evidence& evidence = input.evidence;
  v1::Score score;
  score.set_scoring_version(kScoringVersion);
  score.set_files_touched(evidence.files_touched_size());
  score.set_wall_ms(evidence.wall_ms());
  score.set_f2p_total(task.fail_to_pass_size());
  score.set_p2p_total(task.pass_to_pass_size());

  std::unordered_map<std::string, v1::TestOutcome::Status> outcomes;
  for (const auto& t : evidence.tests().tests()) outcomes[t.id()] = t.status();

  std::vector<std::string> f2p_failed;
  std::vector<std::string> p2p_failed;
  score.set_f2p_passed(CountPassed(task.fail_to_pass(), outcomes, &f2p_failed));
  score.set_p2p_passed(CountPassed(task.pass_to_pass(), outcomes, &p2p_failed));

  if (!evidence.diff_error().empty()) {
    score.set_reason("the agent's change was not tested: " + evidence.diff_error());
  } else if (!evidence.truncated().empty() && evidence.tests().tests().empty()) {
    score.set_reason(evidence.truncated());
  } else if (!evidence.test_patch_error().empty()) {
    score.set_reason("hidden test patch did not apply: " + evidence.test_patch_error());
  } else if (!evidence.tests().infra_error().empty()) {
    score.set_reason("test run failed: " + evidence.tests().infra_error());
  } else if (evidence.tests().timed_out()) {
    score.set_reason("test run timed out");
  } else if (!f2p_failed.empty()) {
    score.set_reason(fmt::format("{}/{} FAIL_TO_PASS tests pass; not passing: {}",
                                 score.f2p_passed(), score.f2p_total(),
                                 fmt::join(f2p_failed, ", ")));
  } else if (!p2p_failed.empty()) {
    score.set_reason(fmt::format("{}/{} PASS_TO_PASS tests pass; broken: {}", score.p2p_passed(),
                                 score.p2p_total(), fmt::join(p2p_failed, ", ")));
  } else {
    score.set_completed(true);
  }
  return score;
}

}  // namespace crucible::scoring
