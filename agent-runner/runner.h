// The runner daemon: takes leases from a coordinator and performs attempts.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/curve.h"

namespace crucible::runner {

struct RunnerOptions {
  std::string coordinator;  // ZeroMQ endpoint, e.g. tcp://farm:7400 or ipc:///tmp/x/c.sock
  std::string name;         // its ZeroMQ identity; shown in status and stored with attempts
  std::string workdir;      // scratch space; one subdirectory per attempt
  int slots = 1;            // attempts at once, one worker thread each
  // Size cap of each attempt's workspace (a tmpfs; needs root); 0: none.
  uint64_t workspace_quota_bytes = 0;
  std::vector<std::string> labels;  // "key=value", announced in Hello
  // Clone URLs by repository id or suite name (`--repo-url`): such
  // repositories are fetched into <workdir>/repos/<id>.git from there
  // instead of as packs from the coordinator.
  std::map<std::string, std::string> repo_urls;
  // Until the coordinator's Welcome says otherwise.
  int heartbeat_ms = 1000;
  // The coordinator is taken as gone after liveness x heartbeat_ms of silence;
  // the runner then reconnects, with capped exponential backoff.
  int liveness = 3;
  int max_backoff_ms = 5000;
  // Give up when no coordinator has answered Hello for this long (0: never).
  int connect_timeout_ms = 0;
  // CurveZMQ: the runner's key pair and the coordinator's public key. With
  // them the connection is encrypted and the coordinator checks our key.
  std::optional<protocol::CurveClientKeys> curve;
  // Set (e.g. by a SIGTERM handler) to stop: leases not finished are handed
  // back as infrastructure errors and RunRunner returns.
  const std::atomic<bool>* stop = nullptr;
};

// Connects to the coordinator, announces itself and performs leased attempts
// until the coordinator sends Shutdown or `stop` is set.
//
// ZeroMQ I/O runs on the calling thread; attempts run on `slots` worker
// threads that hand trace batches and results to it over inproc://. Heartbeats
// (listing the leases held, which renews them) go out every heartbeat_ms
// whatever the workers do. Trace batches and results are kept until the
// coordinator acknowledges them and are sent again after a reconnect; Hello
// after a reconnect lists the leases still held, so a restarted coordinator
// gives them back instead of running them again.
//
// Returns an Error when the endpoint is invalid or connect_timeout_ms passed
// without a Welcome. Returns true in *busy_workers (when given) if a worker
// was still performing an attempt on return; the caller should then exit the
// process rather than unwind.
Status RunRunner(const RunnerOptions& options, bool* busy_workers = nullptr);

}  // namespace crucible::runner
