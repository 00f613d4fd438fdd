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

}  // namespace crucible::v1
