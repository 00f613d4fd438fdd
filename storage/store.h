// Crucible's RocksDB database: the one place evidence lives.
//
// One RocksDB database with the column families suites, tasks, runs, attempts,
// events, evidence and scores (plus "default", which holds metadata such as the
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

// Version of the on-disk layout this build reads and writes.
inline constexpr uint32_t kSchemaVersion = 1;

struct OpenOptions {
  // Create the database when `dir` does not exist or is empty.
  bool create_if_missing = true;
};

class Store {
 public:
  // Opens (or creates) the database in `dir`.
  //
  // Errors, each naming `dir`:
  //  - kFailedPrecondition: `dir` exists, is not empty and is not a Crucible
  //    database (no RocksDB files, or a RocksDB database without Crucible's
  //    schema version);
  //  - kVersionMismatch: the stored schema version is newer than kSchemaVersion
  //    ("database schema 7 is newer than this build's 1; upgrade crucible");
  //  - kNotFound: `dir` does not exist and create_if_missing is false;
  //  - kIoError: RocksDB refused (message from RocksDB, e.g. the lock is held).
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, OpenOptions options = {});

  virtual ~Store() = default;

  // ---- suites and tasks
  // Stores `suite` and replaces all its tasks with `tasks`, atomically.
  virtual Status PutSuite(const v1::Suite& suite, const std::vector<v1::GoldenTask>& tasks) = 0;
  // kNotFound: "suite 'NAME' not found".
  virtual Result<v1::Suite> GetSuite(std::string_view name) = 0;
  virtual Result<std::vector<v1::Suite>> ListSuites() = 0;
  // Tasks of `suite` in id order. kNotFound when the suite does not exist.
  virtual Result<std::vector<v1::GoldenTask>> ListTasks(std::string_view suite) = 0;
  virtual Result<v1::GoldenTask> GetTask(std::string_view suite, std::string_view task_id) = 0;

  // ---- runs and attempts
  // Stores a new run with all its attempts (queued), atomically and synced.
  // kAlreadyExists when a run with this id exists.
  virtual Status CreateRun(const v1::Run& run, const std::vector<v1::Attempt>& attempts) = 0;
  virtual Status PutRun(const v1::Run& run) = 0;
  // kNotFound: "run 'ID' not found".
  virtual Result<v1::Run> GetRun(std::string_view run_id) = 0;
  // All runs, oldest first.
  virtual Result<std::vector<v1::Run>> ListRuns() = 0;
  // Attempts of `run_id` in attempt-number order.
  virtual Result<std::vector<v1::Attempt>> ListAttempts(std::string_view run_id) = 0;
  virtual Result<v1::Attempt> GetAttempt(std::string_view run_id, uint64_t number) = 0;
  // Writes one attempt state change, synced.
  virtual Status UpdateAttempt(const v1::Attempt& attempt) = 0;

  // ---- evidence
  // Appends trace events of one attempt. Each event's `seq` is its key, so
  // writing the same seq twice keeps one copy. Not synced.
  virtual Status AppendEvents(std::string_view run_id, uint64_t attempt,
                              const std::vector<v1::TraceEvent>& events) = 0;
  // Events of one attempt in seq order.
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
};

using StorePtr = std::unique_ptr<Store>;

}  // namespace crucible::storage
