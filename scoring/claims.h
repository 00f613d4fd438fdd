// Claims of an agent's trace that what the harness itself saw contradicts:
// a `run_tests` with no test runner executed around it, an `edit_file` of a
// file nothing wrote and the final diff does not change (docs/scoring.md,
// "Observed and claimed").
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "protocol/crucible.pb.h"

namespace crucible::scoring {

// How long after a `run_tests` claim the test runner it claims may start: an
// agent may write the claim just before it runs the command.
inline constexpr int64_t kClaimSlackNs = int64_t{5'000'000'000};

// At most this many contradictions are returned.
inline constexpr size_t kMaxClaimContradictions = 50;

// Which kinds of observation the harness had while the agent ran, from the
// evidence: execs when it counts an observed exec (the agent's own command
// is one) and no observation warning speaks of exec; writes when it counts
// an observed exec or write and no warning speaks of writes (or fanotify).
// Evidence of builtin agents and of runners without observation has
// neither.
struct Observed {
  bool execs = false;
  bool writes = false;
};
Observed ObservedKinds(const v1::Evidence& evidence);

// The agent's claims (source "agent") that the runner's `exec` and
// `file_write` events (source "runner") contradict, in trace order:
//  - a `run_tests` claim at time t is backed by an observed exec whose argv
//    LooksLikeTestRun(argv, test_cmd), at a time after the previous
//    `run_tests` claim and at most t + kClaimSlackNs, not already backing an
//    earlier claim (the earliest such exec is taken); a claim without one is
//    contradicted;
//  - an `edit_file` claim naming a path (attrs.path, attrs.files) that no
//    `file_write` event names and the final diff (evidence.files_touched,
//    evidence.changes) does not change is contradicted.
// Nothing is judged for a kind the harness did not observe (ObservedKinds),
// so evidence without observations (builtin agents, older runners) has none.
std::vector<v1::Contradiction> FindContradictions(std::span<const v1::TraceEvent> trace,
                                                  const v1::Evidence& evidence,
                                                  std::string_view test_cmd);

}  // namespace crucible::scoring
