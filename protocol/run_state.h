// What a run's and an attempt's states mean, for the code that schedules and
// reports them (the coordinator, reports, the CLI, the status page).
#pragma once

#include "protocol/crucible.pb.h"

namespace crucible::v1 {

// True when `attempt` will not change any more: DONE (evidence and score
// stored) or FAILED (an infrastructure failure, not the agent's).
inline bool IsSettled(const Attempt& attempt) {
  return attempt.state() == Attempt::DONE || attempt.state() == Attempt::FAILED;
}

// "running", "finished", "cancelled" or "unknown".
inline const char* RunStateName(Run::State state) {
  switch (state) {
    case Run::RUNNING:
      return "running";
    case Run::FINISHED:
      return "finished";
    case Run::CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

}  // namespace crucible::v1
