// The coordinator: owns the queue of attempts, leases them to runners over
// ZeroMQ, ingests trace events and results, scores and stores them.
//
// One thread: every method must be called from the thread that created the
// Coordinator.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "storage/store.h"

namespace crucible::coordinator {

struct CoordinatorOptions {
  std::string listen;  // ZeroMQ endpoint to bind, e.g. ipc:///tmp/x/coordinator.sock
  int heartbeat_ms = 1000;
  // A runner silent for this long is taken as dead and loses its leases.
  int runner_timeout_ms = 120'000;
  // An attempt whose runner failed or died this many times fails for good.
  int max_tries = 3;
};

struct RunProgress {
  size_t total = 0;
  size_t done = 0;    // finished with evidence
  size_t failed = 0;  // failed for infrastructure reasons
  size_t leased = 0;
  size_t runners = 0;  // runners connected
};

class Coordinator {
 public:
  // `store` must outlive the coordinator.
  static Result<std::unique_ptr<Coordinator>> Create(storage::Store& store,
                                                     CoordinatorOptions options);
  virtual ~Coordinator() = default;

  // Creates a run of every task of `suite` x `agents` x `samples`, its attempts
  // queued in task-major order (all agents and samples of task 1 first) so an
  // A/B comparison progresses over the same tasks together.
  // Errors: kNotFound for an unknown suite, kInvalidArgument for no agents,
  // duplicate agent names, samples < 1 or a suite without tasks.
  virtual Result<v1::Run> SubmitRun(const std::string& suite,
                                    const std::vector<v1::AgentSpec>& agents, int samples) = 0;

  // Serves runners until every attempt of `run_id` is done or failed. Attempts
  // left leased by an earlier coordinator go back to the queue. `progress` is
  // called whenever the counts change; `check` is called about every 100 ms
  // and stops serving with its error (e.g. "all runners exited").
  virtual Status ServeUntilFinished(const std::string& run_id,
                                    const std::function<void(const RunProgress&)>& progress,
                                    const std::function<Status()>& check) = 0;

  // The runner named `name` is gone (its process exited): its leases go back
  // to the queue, counting a try.
  virtual void RunnerLost(const std::string& name) = 0;

  // Tells every connected runner to exit.
  virtual void ShutdownRunners(const std::string& reason) = 0;
};

using CoordinatorPtr = std::unique_ptr<Coordinator>;

// A new run id: "r<UTC yyyymmdd-hhmmss>-<4 hex digits>".
std::string NewRunId();

}  // namespace crucible::coordinator
