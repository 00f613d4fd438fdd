// Private to agent-runner/mutants*.cc: the faults, each applied to a tree
// that already holds the golden patch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::runner::internal {

struct FaultInput {
  const v1::GoldenTask& task;
  // The workspace's root on disk: the base commit with the golden patch.
  std::string root;
  // The suite's review bar: test patterns (else the defaults) and allowed
  // paths (else the defaults), so a fault lands where scoring will look.
  const v1::ReviewRules& rules;
  // The golden patch's source (non-test) files, new paths, sorted.
  std::vector<std::string> golden_sources;
};

// File faults (mutants_diff.cc). Each edits files under in.root and returns
// the Mutation (kind, file, line, description), or applicable = false with
// the reason when the task offers no place for the fault; then nothing under
// in.root was changed.
v1::Mutation ScopeCreep(const FaultInput& in);
v1::Mutation Reformat(const FaultInput& in);
v1::Mutation Oversized(const FaultInput& in);
v1::Mutation HallucinatedApi(const FaultInput& in);
v1::Mutation StaleRename(const FaultInput& in);
v1::Mutation Secret(const FaultInput& in);

// silent-regression (mutant_regression.cc): tries small mutations of code
// outside the golden hunks against the task's tests (hidden test patch
// applied, in the sandbox) and keeps the first that fails a PASS_TO_PASS
// test while every FAIL_TO_PASS test passes. `repo` and `scratch` as in
// MutantContext.
struct RegressionSearch {
  const std::string& repo;
  std::string scratch;
  uint64_t quota_bytes = 0;
  std::function<void()> tick;
};
Result<v1::Mutation> SilentRegression(const FaultInput& in, const RegressionSearch& search);

}  // namespace crucible::runner::internal
