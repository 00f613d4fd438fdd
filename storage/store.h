// Crucible's RocksDB database: the one place evidence lives.
//
// One RocksDB database with the column families suites, tasks, runs, attempts,
// events, evidence, scores and verdicts (plus "default", which holds metadata such as the
// schema version). Values are serialized crucible.v1 messages; keys use the
// order-preserving encoding of storage/key_codec.h so that range scans return
// tasks, attempts and events in order.
//
// Every state change is one atomic WriteBatch. Attempt state changes and run
// creation are written with sync=true; trace events are not synced (they are
// group-committed by RocksDB's WAL and synced by the next state change).
//
// Thread safety: a Store may be used from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::storage {

// Version of the on-disk layout this build writes. It reads every older one
// too, and opening an older database for writing marks it with this version.
//  1: one trace event per key of the events column family;
//  2: one trace batch per key (v1::TraceChunk), under the seq of its first
//     event;
//  3: evidence with per-file changes, static facts, regression tests and
//     judge scores, scores of scoring version 2. Values of version 2 read as
//     before: scoring derives what older evidence lacks, and `crucible
//     rescore` brings older scores to the current version.
//     Still version 3, since: the column family "verdicts" (people's
//     verdicts, `crucible review`). Not a new version: older builds open
//     column families they do not know and leave them alone, so nothing they
//     read changes meaning; this build creates "verdicts" when it opens an
//     older database for writing, and reads one opened read-only without it
//     as having no verdicts.
inline constexpr uint32_t kSchemaVersion = 3;

struct OpenOptions {
  // Create the database when `dir` does not exist or is empty.
  bool create_if_missing = true;
  // Open an existing database for reading only, beside a process that has it
  // open for writing (a coordinator daemon, say): no lock is taken, reads see
  // the database as it was when opened, and every write fails with
  // kFailedPrecondition. Implies create_if_missing = false.
  bool read_only = false;
};

class Store {
 public:
  // Opens (or creates) the database in `dir`.
  //
  // Errors, each naming `dir`:
  //  - kFailedPrecondition: `dir` is not a directory, or exists, is not empty
  //    and is not a Crucible database ("DIR is not a Crucible database (no
  //    RocksDB files)", "DIR is a RocksDB database but not a Crucible one (no
  //    schema version)"); the data in such a directory is not changed;
  //  - kVersionMismatch: the stored schema version is newer than kSchemaVersion
  //    ("database DIR has schema version 7, newer than this build's 2; upgrade
  //    crucible");
  //  - kCorruption: the stored schema version is not a number, or RocksDB
  //    found its files corrupt;
  //  - kNotFound: `dir` does not exist (or is empty) and create_if_missing is
  //    false;
  //  - kUnavailable: another process (or another Store in this one) has the
  //    database open; RocksDB's message plus "(is another crucible process
  //    using it?)";
  //  - kIoError: RocksDB or the file system refused (message from RocksDB).
  //
  // An existing database is opened with all its column families, including
  // ones this build does not know; missing Crucible column families are
  // created.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, OpenOptions options = {});

  virtual ~Store() = default;

  // Every record read back is parsed; a value that does not parse yields
  // kCorruption naming the column family and the key ("corrupt record in
  // column family 'runs' (run 'r1'): ..."). A listing fails as a whole when
  // one of its records is corrupt; other records stay readable one by one.

  // ---- suites and tasks
  // Stores `suite` and replaces all its tasks with `tasks`, atomically.
  // A task with an empty `suite` field is stored with suite.name().
  // kInvalidArgument (and nothing written) for an empty suite name, a task
  // without id, a task of another suite or a task id given twice.
  virtual Status PutSuite(const v1::Suite& suite, const std::vector<v1::GoldenTask>& tasks) = 0;
  // kNotFound: "suite 'NAME' not found".
  virtual Result<v1::Suite> GetSuite(std::string_view name) = 0;
  virtual Result<std::vector<v1::Suite>> ListSuites() = 0;
  // Tasks of `suite` in id order. kNotFound when the suite does not exist.
  virtual Result<std::vector<v1::GoldenTask>> ListTasks(std::string_view suite) = 0;
  virtual Result<v1::GoldenTask> GetTask(std::string_view suite, std::string_view task_id) = 0;

  // ---- runs and attempts
  // Stores a new run with all its attempts (queued), atomically and synced.
  // kAlreadyExists when a run with this id exists. kInvalidArgument for an
  // empty run id, an attempt whose run_id is not run.id() or an attempt
  // number given twice.
  virtual Status CreateRun(const v1::Run& run, const std::vector<v1::Attempt>& attempts) = 0;
  virtual Status PutRun(const v1::Run& run) = 0;
  // kNotFound: "run 'ID' not found".
  virtual Result<v1::Run> GetRun(std::string_view run_id) = 0;
  // All runs, oldest first (by created_at_ms, then id).
  virtual Result<std::vector<v1::Run>> ListRuns() = 0;
  // Attempts of `run_id` in attempt-number order. kNotFound when the run
  // does not exist.
  virtual Result<std::vector<v1::Attempt>> ListAttempts(std::string_view run_id) = 0;
  virtual Result<v1::Attempt> GetAttempt(std::string_view run_id, uint64_t number) = 0;
  // Writes one attempt state change, synced. The key is (run_id, number).
  virtual Status UpdateAttempt(const v1::Attempt& attempt) = 0;

  // Writes `attempt` (a new try of an attempt that ran before) and removes the
  // trace events of its earlier tries, in one synced batch, so its trace is
  // only ever the trace of one try. The earlier tries stay described in
  // attempt.error.
  virtual Status RestartAttempt(const v1::Attempt& attempt) = 0;

  // ---- evidence
  // Appends trace events of one attempt, as one record keyed by the seq of
  // the first event: writing a batch again (a runner's resend) replaces it.
  // Not synced.
  virtual Status AppendEvents(std::string_view run_id, uint64_t attempt,
                              const std::vector<v1::TraceEvent>& events) = 0;
  // The same for the events of a received message, without copying them.
  virtual Status AppendEvents(std::string_view run_id, uint64_t attempt,
                              const google::protobuf::RepeatedPtrField<v1::TraceEvent>& events) = 0;
  // Events of one attempt in seq order, one per seq (where two batches hold
  // the same seq, the batch with the greater first seq wins); empty when there
  // are none (the attempt's existence is not checked).
  virtual Result<std::vector<v1::TraceEvent>> ListEvents(std::string_view run_id,
                                                         uint64_t attempt) = 0;
  // Stores the final state of an attempt with its evidence and score in one
  // synced batch.
  virtual Status FinishAttempt(const v1::Attempt& attempt, const v1::Evidence& evidence,
                               const v1::Score& score) = 0;
  // Replaces the score of an attempt (rescoring).
  virtual Status PutScore(std::string_view run_id, uint64_t attempt, const v1::Score& score) = 0;
  // kNotFound when the attempt has no evidence (yet).
  virtual Result<v1::Evidence> GetEvidence(std::string_view run_id, uint64_t attempt) = 0;
  virtual Result<v1::Score> GetScore(std::string_view run_id, uint64_t attempt) = 0;

  // ---- people's verdicts (`crucible review`, docs/review-loop.md)
  // Appends `verdicts` (of any runs and attempts) in one synced batch: all of
  // them or none. Append-only: a later verdict on an attempt never replaces
  // an earlier one; which one counts is the reader's choice (the report takes
  // the latest). Each is keyed by (run, attempt, the time it was stored, a
  // sequence number of this process, a random number), so the verdicts of an
  // attempt list in the order they were added, also within one millisecond,
  // and two processes adding at once never overwrite each other.
  // Errors, with nothing written:
  //  - kInvalidArgument: an empty run id, a verdict other than "accept",
  //    "reject" or "needs-changes" (naming it and its run and attempt);
  //  - kNotFound: "run 'R' not found", "run 'R' has no attempt 7 (its
  //    attempts are numbered 0 to 5)".
  virtual Status AddVerdicts(const std::vector<v1::Verdict>& verdicts) = 0;
  // Every verdict of `run_id`, by attempt, then in the order they were added;
  // empty when there are none (the run's existence is not checked).
  virtual Result<std::vector<v1::Verdict>> ListVerdicts(std::string_view run_id) = 0;

  // ---- group commit
  // With group commit on, writes are applied at once (reads see them) but
  // their write-ahead log records wait in memory: Sync() writes them all to
  // the log file with one write(2) and, when one of them is documented as
  // synced above, makes them durable with one fsync. A caller that
  // acknowledges a write to someone else (the coordinator acknowledging a
  // result) calls Sync() first; it then pays one fsync per batch of writes
  // instead of one per write. A process killed before Sync() loses the writes
  // since the last one. Off by default; turning it off calls Sync().
  virtual void SetGroupCommit(bool on) = 0;
  // Writes (and, for synced writes, makes durable) every write so far. Cheap
  // when nothing is waiting.
  virtual Status Sync() = 0;
};

using StorePtr = std::unique_ptr<Store>;

}  // namespace crucible::storage
