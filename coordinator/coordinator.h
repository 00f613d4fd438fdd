// The coordinator: owns the queue of attempts of every active run, leases them
// to runners over ZeroMQ, ingests trace events and results, scores and stores
// them, and answers clients (submit, status, cancel, watch).
//
// One ROUTER socket serves runners and clients alike. Runners start with Hello;
// clients send SubmitRun, StatusRequest, CancelRun or WatchRun and need no
// Hello. The same code serves the daemon (`crucible coordinator`, many runs,
// tcp://) and the embedded default of `crucible run` (one run, ipc://).
//
// Leases: every attempt is handed out under a lease with a deadline of
// lease_ms, renewed by runner heartbeats that list the lease. A runner silent
// for liveness x heartbeat_ms is taken as gone; its leases expire grace_ms
// later unless it comes back (Hello listing them) first. An expired lease puts
// its attempt back in the queue, counting a try; after max_tries the attempt
// fails as an infrastructure error with the history of its tries. A late
// result under an expired lease counts once when the attempt was not leased
// again since, and is ignored otherwise.
//
// One thread: every method must be called from the thread that created the
// Coordinator.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "coordinator/otlp_export.h"
#include "protocol/crucible.pb.h"
#include "protocol/curve.h"
#include "storage/store.h"

namespace crucible::coordinator {

struct CoordinatorOptions {
  std::string listen;  // ZeroMQ endpoint to bind, e.g. ipc:///tmp/x/coordinator.sock
  int heartbeat_ms = 1000;
  // A runner that sent nothing for liveness x heartbeat_ms is taken as gone.
  int liveness = 3;
  // Its leases go back to the queue this long after that, unless it returns.
  int grace_ms = 1000;
  // Deadline of a lease, renewed by every heartbeat that lists it.
  int lease_ms = 10'000;
  // An attempt whose runner failed, died or timed out this many times fails.
  int max_tries = 3;
  // Larger messages are refused by ZeroMQ (ZMQ_MAXMSGSIZE) and the peer is
  // disconnected.
  int64_t max_message_bytes = 256ll << 20;
  // Agent trace events kept per attempt (told to runners in Welcome); the
  // runner drops the excess, counts it and says so with a marker event. The
  // coordinator stores no event with a seq beyond this plus a margin for the
  // runner's own events. 0: no limit.
  uint64_t agent_event_budget = 100'000;
  // Trace batches a runner may have sent and not had acknowledged.
  int max_unacked_batches = 16;
  // CurveZMQ: with a key pair (its secret key) the ROUTER is a CURVE server:
  // traffic is encrypted and a ZAP handler lets in only clients whose public
  // key is in authorized_keys (at least one). Without: neither encryption nor
  // authentication (the CLI allows that only on loopback or --insecure).
  std::optional<protocol::CurveKeyPair> curve;
  std::vector<protocol::AuthorizedKey> authorized_keys;
  // Finished attempts' spans pushed over OTLP/HTTP (otlp.endpoint empty:
  // none); see otlp_export.h.
  OtlpExportOptions otlp;
};

// Totals since the coordinator started (for metrics; see http_status.h).
struct CoordinatorCounters {
  uint64_t messages_received = 0;
  uint64_t malformed_messages = 0;  // undecodable, or unexpected from a runner
  uint64_t runs_submitted = 0;
  uint64_t runs_finished = 0;
  uint64_t leases_granted = 0;
  uint64_t results_accepted = 0;        // attempts done, late results included
  uint64_t late_results_accepted = 0;   // under an expired lease, attempt not leased again
  uint64_t stale_messages_ignored = 0;  // traces and results under a stale lease
  uint64_t retries = 0;                 // tries that ended without a result and were queued again
  uint64_t attempts_failed = 0;         // failed for good (infrastructure errors)
  uint64_t trace_batches = 0;
  uint64_t trace_events_stored = 0;
  uint64_t trace_events_dropped = 0;  // beyond the per-attempt budget
  uint64_t refused_connections = 0;   // CurveZMQ handshakes with an unauthorized key
  OtlpExportCounters otlp;            // with an OTLP endpoint
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
  // Binds options.listen. `store` must outlive the coordinator.
  static Result<std::unique_ptr<Coordinator>> Create(storage::Store& store,
                                                     CoordinatorOptions options);
  virtual ~Coordinator() = default;

  // Creates a run of every task of `suite` x `agents` x `samples`, its attempts
  // queued in task-major order (all agents and samples of task 1 first) so an
  // A/B comparison progresses over the same tasks together. The run is active
  // (its attempts are handed out) from now on. The tasks are the suite's dev
  // split (every task of a suite never split), or with `held_out` its
  // held-out split (`crucible suite split`). Untestable tasks (no
  // FAIL_TO_PASS test: doing nothing completes them, v1::IsUntestable) are
  // left out unless `include_untestable`; either way their ids are recorded
  // in run.untestable_tasks, so reports can say what was left out or count
  // those tasks apart.
  // Errors: kNotFound for an unknown suite, kInvalidArgument for no agents,
  // duplicate agent names, samples < 1 or no task in the chosen split (or
  // only untestable ones, when they are left out), and for judges without a
  // name or command or with a name given twice, and the same for reviewers,
  // and for an agent's rounds above scoring::kMaxReviewRounds. `judges` run after
  // every attempt's tests (v1::JudgeSpec); `reviewers` in stage 2 of every
  // review round (v1::ReviewerSpec). An agent without rounds gets the
  // suite's (ReviewRules.rounds), else one. `only_tasks`, when not empty,
  // keeps only those tasks of the chosen split (kInvalidArgument naming an id
  // the split does not have). Tasks whose environment check found a
  // mismatch (v1::IsEnvironmentMismatch) are left out like untestable ones
  // unless `include_mismatched`, and recorded in run.mismatched_tasks.
  // A predictions agent's (v1::IsPredictionsAgent) patches for ids the
  // suite does not have are dropped, each with a warning in its
  // prediction_warnings. The run stored keeps the predictions; the Run
  // returned here and sent to clients (RunAccepted, RunStatus) does not.
  virtual Result<v1::Run> SubmitRun(const std::string& suite,
                                    const std::vector<v1::AgentSpec>& agents, int samples,
                                    bool held_out = false, bool include_untestable = false,
                                    const std::vector<v1::JudgeSpec>& judges = {},
                                    const std::vector<v1::ReviewerSpec>& reviewers = {},
                                    const std::vector<std::string>& only_tasks = {},
                                    bool include_mismatched = false) = 0;

  // Makes a stored run active again: its unfinished attempts are queued, and
  // attempts left leased by an earlier coordinator keep their lease for one
  // grace period (liveness x heartbeat + grace) so that their runner can
  // claim them back, then return to the queue. A finished or cancelled run
  // is returned as it is; an active one is left alone. kNotFound for an
  // unknown run.
  virtual Result<v1::Run> ResumeRun(const std::string& run_id) = 0;

  // Resumes every run stored as RUNNING (the daemon does this on start).
  // Returns how many.
  virtual Result<size_t> ResumeAllRuns() = 0;

  // Serves runners and clients until every attempt of `run_id` is done or
  // failed (resuming the run first when it is not active). `progress` is
  // called whenever its counts change; `check` is called about every 100 ms
  // and stops serving with its error (e.g. "all runners exited").
  // kFailedPrecondition when the run was cancelled.
  virtual Status ServeUntilFinished(const std::string& run_id,
                                    const std::function<void(const RunProgress&)>& progress,
                                    const std::function<Status()>& check) = 0;

  // Serves every run, runner and client until `stop` returns true (it is
  // called about every 100 ms).
  virtual Status Serve(const std::function<bool()>& stop) = 0;

  // Stops handing out attempts of `run_id` and marks it CANCELLED; results
  // still in flight are ignored. kNotFound for an unknown run.
  virtual Status CancelRun(const std::string& run_id) = 0;

  // The runner named `name` is gone (its process exited): its leases go back
  // to the queue at once, counting a try.
  virtual void RunnerLost(const std::string& name) = 0;

  // Tells every connected runner to exit.
  virtual void ShutdownRunners(const std::string& reason) = 0;

  // Counts of the run, active or stored; kNotFound for an unknown run.
  virtual Result<v1::RunStatus> GetRunStatus(const std::string& run_id) = 0;

  // Messages that could not be decoded, since the start.
  virtual uint64_t malformed_messages() const = 0;

  // CURVE connection attempts refused (unknown key or no CURVE), since the
  // start; 0 without CurveZMQ.
  virtual uint64_t refused_connections() const = 0;

  // Replaces the authorized client keys; later handshakes are checked
  // against them (connections already in are kept). kFailedPrecondition
  // without CurveZMQ, kInvalidArgument for an empty list.
  virtual Status SetAuthorizedKeys(const std::vector<protocol::AuthorizedKey>& keys) = 0;

  virtual CoordinatorCounters counters() const = 0;

  // What `crucible status` shows: the active runs (or only `run_id`, active or
  // stored), the connected runners and the queue length. kNotFound for an
  // unknown `run_id`.
  virtual Result<v1::StatusReply> Snapshot(const std::string& run_id = "") = 0;
};

using CoordinatorPtr = std::unique_ptr<Coordinator>;

// A new run id: "r<UTC yyyymmdd-hhmmss>-<4 hex digits>".
std::string NewRunId();

// True when `endpoint` can only be reached from this machine: ipc://,
// inproc://, or tcp:// on 127.0.0.0/8, ::1 or localhost.
bool IsLocalEndpoint(const std::string& endpoint);

}  // namespace crucible::coordinator
