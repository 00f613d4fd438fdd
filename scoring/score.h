// Scoring: a pure function of a golden task and the evidence of one attempt.
//
// Nothing here runs an agent or reads a clock; `crucible rescore` can recompute
// every score from stored evidence.
#pragma once

#include "protocol/crucible.pb.h"

namespace crucible::scoring {

// Scores one attempt. `completed` is true when the hidden test patch applied,
// the test run had no infrastructure error, and every FAIL_TO_PASS and
// PASS_TO_PASS test of `task` passed. `reason` says why not, naming the first
// tests that did not pass.
v1::Score ScoreAttempt(const v1::GoldenTask& task, const v1::Evidence& evidence);

}  // namespace crucible::scoring
