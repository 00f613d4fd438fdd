// The file faults of the calibration mutants (mutants_internal.h).
#include <fmt/format.h>

#include "agent-runner/mutants_internal.h"

namespace crucible::runner::internal {

namespace {

v1::Mutation NotYet(const char* kind) {
  v1::Mutation m;
  m.set_kind(kind);
  m.set_applicable(false);
  m.set_reason("not implemented yet");
  return m;
}

}  // namespace

v1::Mutation ScopeCreep(const FaultInput&) { return NotYet("scope-creep"); }
v1::Mutation Reformat(const FaultInput&) { return NotYet("reformat"); }
v1::Mutation Oversized(const FaultInput&) { return NotYet("oversized"); }
v1::Mutation HallucinatedApi(const FaultInput&) { return NotYet("hallucinated-api"); }
v1::Mutation StaleRename(const FaultInput&) { return NotYet("stale-rename"); }
v1::Mutation Secret(const FaultInput&) { return NotYet("secret"); }

}  // namespace crucible::runner::internal
