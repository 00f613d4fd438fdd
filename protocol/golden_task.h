// What a golden task's lists say about it, for the code that picks and
// reports tasks (the coordinator, reports, `crucible suite show`).
#pragma once

#include "protocol/crucible.pb.h"

namespace crucible::v1 {

// True when doing nothing completes `task`: it has no FAIL_TO_PASS test (the
// base commit already passes every test that decides it). Mining marks such
// tasks (GoldenTask.untestable); a task stored without the mark counts by
// its empty fail_to_pass.
inline bool IsUntestable(const GoldenTask& task) {
  return task.untestable() || task.fail_to_pass().empty();
}

// True when the environment check (docs/swebench.md "Environment check")
// found that the gold patch does not resolve `task`, or that its
// FAIL_TO_PASS tests pass without it: runs leave such tasks out unless asked.
inline bool IsEnvironmentMismatch(const GoldenTask& task) {
  return task.environment().status() == "mismatch";
}

// The command of an agent whose patches come from a predictions file
// (AgentSpec.predictions): "predictions:FILE".
inline constexpr const char* kPredictionsPrefix = "predictions:";
inline bool IsPredictionsAgent(const AgentSpec& agent) {
  return agent.command().starts_with(kPredictionsPrefix);
}

}  // namespace crucible::v1
