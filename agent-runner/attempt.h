// Performing one attempt: an agent on one golden task, in a sandbox.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::runner {

struct AttemptContext {
  // Scratch directory of this attempt (created if missing; the caller removes
  // it). Holds the workspace, its git metadata, the task file and the trace.
  std::string workdir;
  // Receives every trace event, the agent's and the runner's own, in order.
  // `seq` is not set; the caller numbers them.
  std::function<void(v1::TraceEvent)> emit;
  // Called about every 100 ms while the agent runs.
  std::function<void()> tick;
  // Wall-clock limit of the agent when its spec has none.
  std::chrono::seconds default_agent_timeout{900};
};

// Runs `agent` on `task`:
//  1. checks out the base commit into a fresh workspace (no .git inside);
//  2. runs the agent: builtin:oracle applies the golden source patch,
//     builtin:noop changes nothing, any other command runs in the sandbox with
//     /workspace, $CRUCIBLE_TASK and $CRUCIBLE_TRACE, while its trace is read
//     and forwarded to ctx.emit;
//  3. takes the final diff, applies the hidden test patch and runs the test
//     command in the sandbox.
// Returns the evidence, whatever the agent did. Returns an Error only for an
// infrastructure failure (workspace or sandbox could not be set up), naming it.
Result<v1::Evidence> PerformAttempt(const v1::GoldenTask& task, const v1::AgentSpec& agent,
                                    const AttemptContext& ctx);

}  // namespace crucible::runner
