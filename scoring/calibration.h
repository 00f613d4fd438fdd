// What calibration expects of each score (docs/scoring.md "Calibration"):
// the mutants' kinds, and for the oracle, the noop and each mutant, the
// columns of the calibration matrix that must catch it and those that may.
// The runner (agent-runner/mutants.h) makes the faults; report/calibrate.h
// reads the scores against this table.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "protocol/crucible.pb.h"

namespace crucible::scoring {

// "scope-creep", "reformat", "oversized", "silent-regression",
// "hallucinated-api", "stale-rename", "secret", "pile-on", "blind",
// "off-plan". The agent command of kind K is "builtin:mutant-K".
const std::vector<std::string>& MutantKinds();

struct Expectation {
  std::string agent;  // "oracle", "noop" or "mutant-KIND"
  std::string fault;  // one sentence: what the agent does
  // Columns (report::CalibrationColumns) that must catch it on every task
  // where it applies; none for the oracle, which nothing may flag.
  std::vector<std::string> meant;
  // Columns that may also catch it, because docs/scoring.md defines them
  // so (a violation fails strict completion; a failed test lowers replay, so
  // does a diff over twice the golden patch's lines, even a small one).
  std::vector<std::string> allowed;
};

// One per calibration agent: oracle, noop, then the mutants in
// MutantKinds() order.
const std::vector<Expectation>& Expectations();

// A mutant's record (Evidence.mutation) as one JSON object with its proto
// field names, invalid UTF-8 replaced: the runner's "mutant" event and
// `crucible show --format json` both print it.
std::string MutationJson(const v1::Mutation& m);

}  // namespace crucible::scoring
