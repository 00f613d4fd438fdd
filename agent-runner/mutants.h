// Calibration mutants (docs/scoring.md "Calibration"): builtin agents that
// apply the golden patch plus exactly one fault each, with a trace that says
// what they did, so `crucible calibrate` can show that every score catches
// the fault it names.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::vcs {
class Workspace;
}

namespace crucible::runner {

// K for a command "builtin:mutant-K" naming a kind of
// scoring::MutantKinds() (scoring/calibration.h); empty otherwise.
std::string_view MutantKind(std::string_view command);

struct MutantContext {
  const v1::GoldenTask& task;
  // The base commit, checked out; the mutant writes its change here.
  vcs::Workspace& ws;
  // The repository the workspace was checked out from (for scratch trees).
  const std::string& repo;
  // A directory the mutant may create and use (removed by the caller).
  std::string scratch;
  // When > 0, scratch trees are tmpfs of at most this many bytes.
  uint64_t quota_bytes = 0;
  // The suite's review bar (test patterns, allowed paths); default rules
  // take every default.
  const v1::ReviewRules& rules;
  // Receives the trace: the agent's events (source "agent") an agent making
  // this change would have written, and the runner's "mutant" event.
  std::function<void(v1::TraceEvent)> emit;
  // Called now and then during long work (silent-regression's search).
  std::function<void()> tick;
};

// Applies the golden patch and the fault of `kind` to ctx.ws and emits the
// trace. When the task offers no place for the fault, the change is the
// golden patch alone and the result has applicable = false with the reason.
// Errors: kInvalidArgument for an unknown kind; the golden patch not applying
// (as for builtin:oracle) and infrastructure failures, named.
Result<v1::Mutation> RunMutant(std::string_view kind, const MutantContext& ctx);

}  // namespace crucible::runner
