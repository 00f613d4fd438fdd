#include "scoring/score.h"

#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

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

}  // namespace

v1::Score ScoreAttempt(const v1::GoldenTask& task, const v1::Evidence& evidence) {
  v1::Score score;
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
