// `crucible report RUN --format swebench`: per agent, the run summary
// SWE-bench's harness writes (docs/swebench.md "Grading a predictions file").
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "storage/store.h"

namespace crucible::report {

struct SwebenchReport {
  std::string agent;
  // The harness's file name: MODEL.RUN.json with MODEL the agent's model
  // (model_name_or_path; the agent's name without one), '/' as "__".
  std::string file_name;
  // The summary, as the harness's make_run_report writes it: total_instances,
  // submitted_instances, completed_instances, resolved_instances,
  // unresolved_instances, empty_patch_instances, error_instances,
  // unstopped_instances (0), completed_ids, incomplete_ids, empty_patch_ids,
  // submitted_ids, resolved_ids, unresolved_ids, error_ids,
  // unstopped_containers and unremoved_images (empty), schema_version (2).
  std::string json;
  // Instances where SWE-bench's resolution rule and Crucible's completion
  // disagree (a skipped PASS_TO_PASS test keeps an instance resolved there),
  // each "instance ID: resolved by SWE-bench's rule, not completed by
  // Crucible's (REASON)". The summary follows the harness's rule.
  std::vector<std::string> differences = {};
};

// One report per agent of `run_id`, in run order, from the first sample of
// each task (Attempt.sample 0). Per task: resolved by SWE-bench's rule over
// the recorded test outcomes (see `differences`; Crucible's completion when
// the task is no longer stored); unresolved = tested and not resolved; empty patch = no submission
// with a (blank) prediction; incomplete = a predictions agent's file had no entry for the task, or
// the attempt has not finished; error = the attempt failed (infrastructure) or the agent's change
// was not tested (a patch that does not apply: the harness gets no test report for it either).
// completed = resolved + unresolved. submitted: every task but the incomplete ones. kNotFound for
// an unknown run.
Result<std::vector<SwebenchReport>> SwebenchReports(storage::Store& store,
                                                    const std::string& run_id);

// One JSON object keyed by agent name, each value an agent's summary.
std::string SwebenchReportsByAgent(const std::vector<SwebenchReport>& reports);

}  // namespace crucible::report
