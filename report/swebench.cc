#include "report/swebench.h"

#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "protocol/golden_task.h"

namespace crucible::report {
namespace {

struct Outcome {
  std::set<std::string> submitted, completed, incomplete, empty, resolved, unresolved, error;
};

std::string FileName(const v1::AgentSpec& agent, const std::string& run_id) {
  std::string model = agent.model().empty() ? agent.name() : agent.model();
  std::string out;
  for (char c : model) {
    if (c == '/') {
      out += "__";
    } else {
      out += c;
    }
  }
  return out + "." + run_id + ".json";
}

// SWE-bench's resolution rule (swebench/harness/grading.py): every
// FAIL_TO_PASS test passed (a log preset maps XFAIL to passed), and every
// PASS_TO_PASS test passed or was skipped; a test missing from the outcomes
// fails either list. Crucible's own completion differs in one point: a
// skipped PASS_TO_PASS test breaks it. Tests that did not run (the test
// patch did not apply, an infrastructure error, a timeout) resolve nothing.
bool ResolvedByTheHarnessRule(const v1::GoldenTask& task, const v1::Evidence& ev) {
  const v1::TestRun& run = ev.tests();
  if (!ev.test_patch_error().empty() || !run.infra_error().empty() || run.timed_out() ||
      !run.report_found()) {
    return false;
  }
  std::map<std::string_view, v1::TestOutcome::Status> status;
  for (const auto& t : run.tests()) status[t.id()] = t.status();
  auto is = [&](const std::string& id, std::initializer_list<v1::TestOutcome::Status> ok) {
    auto it = status.find(id);
    return it != status.end() && std::find(ok.begin(), ok.end(), it->second) != ok.end();
  };
  for (const auto& id : task.fail_to_pass()) {
    if (!is(id, {v1::TestOutcome::PASSED})) return false;
  }
  for (const auto& id : task.pass_to_pass()) {
    if (!is(id, {v1::TestOutcome::PASSED, v1::TestOutcome::SKIPPED})) return false;
  }
  return true;
}

nlohmann::ordered_json Ids(const std::set<std::string>& ids) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& id : ids) out.push_back(id);
  return out;
}

}  // namespace

Result<std::vector<SwebenchReport>> SwebenchReports(storage::Store& store,
                                                    const std::string& run_id) {
  CRUCIBLE_ASSIGN_OR_RETURN(v1::Run run, store.GetRun(run_id));
  CRUCIBLE_ASSIGN_OR_RETURN(auto attempts, store.ListAttempts(run_id));
  std::map<std::string, Outcome> by_agent;
  std::map<std::string, std::vector<std::string>> differences;
  std::map<std::string, std::set<std::string>> tasks_of;
  const std::map<std::string, const v1::AgentSpec*> agents = [&] {
    std::map<std::string, const v1::AgentSpec*> m;
    for (const auto& a : run.agents()) m[a.name()] = &a;
    return m;
  }();
  for (const auto& attempt : attempts) {
    if (attempt.sample() != 0) continue;  // the first sample of each task
    const std::string& id = attempt.task_id();
    tasks_of[attempt.agent()].insert(id);
    Outcome& o = by_agent[attempt.agent()];
    auto spec = agents.find(attempt.agent());
    const bool predictions = spec != agents.end() && v1::IsPredictionsAgent(*spec->second);
    // The stored run keeps a predictions agent's map: a task it lacks was
    // never submitted.
    if (predictions && !spec->second->predictions().empty() &&
        !spec->second->predictions().contains(id)) {
      o.incomplete.insert(id);
      continue;
    }
    if (attempt.state() == v1::Attempt::FAILED) {
      o.submitted.insert(id);
      o.error.insert(id);
      continue;
    }
    if (attempt.state() != v1::Attempt::DONE) {
      o.incomplete.insert(id);
      continue;
    }
    o.submitted.insert(id);
    auto evidence = store.GetEvidence(run_id, attempt.number());
    auto score = store.GetScore(run_id, attempt.number());
    if (evidence && evidence->no_submission()) {
      o.empty.insert(id);
    } else if (!evidence || !score || !evidence->diff_error().empty()) {
      o.error.insert(id);
    } else {
      o.completed.insert(id);
      // The harness's rule over the recorded outcomes; Crucible's score
      // when the task is no longer stored.
      bool resolved = score->completed();
      if (auto task = store.GetTask(run.suite(), id); task) {
        resolved = ResolvedByTheHarnessRule(*task, *evidence);
        if (resolved != score->completed()) {
          differences[attempt.agent()].push_back(
              fmt::format("instance {}: {} by SWE-bench's rule, {} by Crucible's ({})", id,
                          resolved ? "resolved" : "unresolved",
                          score->completed() ? "completed" : "not completed",
                          score->completed() ? "passing tests" : score->reason()));
        }
      }
      (resolved ? o.resolved : o.unresolved).insert(id);
    }
  }
  std::vector<SwebenchReport> out;
  for (const auto& agent : run.agents()) {
    const Outcome& o = by_agent[agent.name()];
    nlohmann::ordered_json j;
    j["total_instances"] = tasks_of[agent.name()].size();
    j["submitted_instances"] = o.submitted.size();
    j["completed_instances"] = o.completed.size();
    j["resolved_instances"] = o.resolved.size();
    j["unresolved_instances"] = o.unresolved.size();
    j["empty_patch_instances"] = o.empty.size();
    j["error_instances"] = o.error.size();
    j["unstopped_instances"] = 0;
    j["completed_ids"] = Ids(o.completed);
    j["incomplete_ids"] = Ids(o.incomplete);
    j["empty_patch_ids"] = Ids(o.empty);
    j["submitted_ids"] = Ids(o.submitted);
    j["resolved_ids"] = Ids(o.resolved);
    j["unresolved_ids"] = Ids(o.unresolved);
    j["error_ids"] = Ids(o.error);
    j["unstopped_containers"] = nlohmann::ordered_json::array();
    j["unremoved_images"] = nlohmann::ordered_json::array();
    j["schema_version"] = 2;
    out.push_back({.agent = agent.name(),
                   .file_name = FileName(agent, run_id),
                   .json = j.dump(4, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                   .differences = std::move(differences[agent.name()])});
  }
  return out;
}

std::string SwebenchReportsByAgent(const std::vector<SwebenchReport>& reports) {
  nlohmann::ordered_json all = nlohmann::ordered_json::object();
  for (const auto& r : reports) all[r.agent] = nlohmann::ordered_json::parse(r.json);
  return all.dump(4, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace crucible::report
