// silent-regression: the search for a mutation that breaks a PASS_TO_PASS
// test while every FAIL_TO_PASS test passes (mutants_internal.h).
#include <fmt/format.h>

#include "agent-runner/mutants_internal.h"

namespace crucible::runner::internal {

Result<v1::Mutation> SilentRegression(const FaultInput&, const RegressionSearch&) {
  v1::Mutation m;
  m.set_kind("silent-regression");
  m.set_applicable(false);
  m.set_reason("not implemented yet");
  return m;
}

}  // namespace crucible::runner::internal
