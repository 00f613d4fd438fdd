// The runner daemon: takes leases from a coordinator and performs attempts.
#pragma once

#include <string>

#include "base/error.h"

namespace crucible::runner {

struct RunnerOptions {
  std::string coordinator;  // ZeroMQ endpoint, e.g. ipc:///tmp/x/coordinator.sock
  std::string name;         // shown in status and stored with attempts
  std::string workdir;      // scratch space; one subdirectory per attempt
  int slots = 1;            // attempts at once (this build performs one at a time)
  int heartbeat_ms = 1000;
  // Give up when the coordinator has not answered Hello for this long.
  int connect_timeout_ms = 30'000;
};

// Connects to the coordinator, announces itself and performs leased attempts
// one after another until the coordinator sends Shutdown. Trace events are
// streamed while the agent runs; the evidence is sent when the attempt ends.
// Returns an Error when the coordinator cannot be reached or refuses us.
Status RunRunner(const RunnerOptions& options);

}  // namespace crucible::runner
