#include "storage/store.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include "base/fs.h"
#include "storage/key_codec.h"

namespace crucible::storage {

namespace {

namespace fs = std::filesystem;

// Column families, in the order of kCfNames.
enum Cf : size_t {
  kMeta,
  kSuites,
  kTasks,
  kRuns,
  kAttempts,
  kEvents,
  kEvidence,
  kScores,
  kVerdicts,
  kCfCount
};

constexpr std::array<const char*, kCfCount> kCfNames = {
    "default", "suites", "tasks", "runs", "attempts", "events", "evidence", "scores", "verdicts",
};

// Column families a database opened read-only may lack (it was last written
// by an older build): reads of them find nothing.
constexpr bool OptionalWhenReadOnly(size_t cf) { return cf == kVerdicts; }

constexpr char kSchemaVersionKey[] = "schema_version";

// Renders `s` for an error message: printable ASCII as is, anything else as \xNN.
std::string Printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\' && c != '\'') {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02x}", u);
    }
  }
  return out;
}

// Describes the key `key` of column family `cf` for people, e.g.
// "run 'r1' attempt 3". Falls back to the raw bytes when the key does not decode.
std::string DescribeKey(Cf cf, std::string_view key) {
  KeyDecoder d(key);
  std::string out;
  auto str = [&](const char* what) -> bool {
    auto s = d.Str();
    if (!s) return false;
    out += fmt::format("{}{} '{}'", out.empty() ? "" : " ", what, Printable(*s));
    return true;
  };
  auto u64 = [&](const char* what) -> bool {
    auto v = d.U64();
    if (!v) return false;
    out += fmt::format("{}{} {}", out.empty() ? "" : " ", what, *v);
    return true;
  };
  bool ok = true;
  switch (cf) {
    case kSuites:
      ok = str("suite");
      break;
    case kTasks:
      ok = str("suite") && str("task");
      break;
    case kRuns:
      ok = str("run");
      break;
    case kAttempts:
    case kEvidence:
    case kScores:
      ok = str("run") && u64("attempt");
      break;
    case kEvents:
      ok = str("run") && u64("attempt") && u64("seq");
      break;
    case kVerdicts:
      ok = str("run") && u64("attempt") && u64("stored_at_ms") && u64("seq") && u64("nonce");
      break;
    case kMeta:
    case kCfCount:
      return fmt::format("key '{}'", Printable(key));
  }
  if (!ok || !d.done()) return fmt::format("undecodable key '{}'", Printable(key));
  return out;
}

// Maps a RocksDB error to an Error; `context` names what was being done.
Error FromRocks(const rocksdb::Status& s, std::string_view context) {
  Code code = Code::kIoError;
  if (s.IsCorruption()) {
    code = Code::kCorruption;
  } else if (s.IsNotFound()) {
    code = Code::kNotFound;
  } else if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    code = Code::kUnavailable;
  } else if (s.IsInvalidArgument() || s.IsNotSupported()) {
    code = Code::kFailedPrecondition;
  }
  return Error(code, fmt::format("{}: {}", context, s.ToString()));
}

// The smallest key greater than every key starting with `prefix`, or "" when
// there is none (the prefix is all 0xff).
std::string PrefixSuccessor(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last != 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

std::string SuiteKey(std::string_view name) { return KeyEncoder().Str(name).Take(); }
std::string TaskKey(std::string_view suite, std::string_view id) {
  return KeyEncoder().Str(suite).Str(id).Take();
}
std::string RunKey(std::string_view id) { return KeyEncoder().Str(id).Take(); }
std::string AttemptKey(std::string_view run_id, uint64_t number) {
  return KeyEncoder().Str(run_id).U64(number).Take();
}
std::string EventKey(std::string_view run_id, uint64_t attempt, uint64_t seq) {
  return KeyEncoder().Str(run_id).U64(attempt).U64(seq).Take();
}

template <typename Msg>
Result<std::string> Serialize(const Msg& msg) {
  std::string out;
  if (!msg.SerializeToString(&out)) {
    return Fail(Code::kInvalidArgument, fmt::format("cannot serialize {} ({} bytes)",
                                                    msg.GetTypeName(), msg.ByteSizeLong()));
  }
  return out;
}

template <typename Msg>
Result<Msg> Parse(Cf cf, std::string_view key, std::string_view value) {
  Msg msg;
  bool ok = msg.ParseFromArray(value.data(), static_cast<int>(value.size()));
  if constexpr (std::is_same_v<Msg, v1::TraceChunk>) {
    // Schema version 1 stored one TraceEvent per key; it has no field 15.
    if (ok && msg.events_size() == 0) {
      ok = msg.add_events()->ParseFromArray(value.data(), static_cast<int>(value.size()));
    }
  }
  if (!ok) {
    return Fail(
        Code::kCorruption,
        fmt::format("corrupt record in column family '{}' ({}): {} bytes do not parse as {}",
                    kCfNames[cf], DescribeKey(cf, key), value.size(), msg.GetTypeName()));
  }
  return msg;
}

class RocksStore final : public Store {
 public:
  RocksStore(std::string dir, rocksdb::DB* db, bool read_only,
             std::vector<rocksdb::ColumnFamilyHandle*> handles,
             std::array<rocksdb::ColumnFamilyHandle*, kCfCount> cfs)
      : dir_(std::move(dir)),
        db_(db),
        read_only_(read_only),
        handles_(std::move(handles)),
        cfs_(cfs) {}

  ~RocksStore() override {
    // What group commit left in the log buffer.
    if (!read_only_) (void)db_->FlushWAL(/*sync=*/true);
    CloseDb(db_, handles_);
  }

  RocksStore(const RocksStore&) = delete;
  RocksStore& operator=(const RocksStore&) = delete;

  // Destroys `handles` and closes and deletes `db`.
  static void CloseDb(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
    if (db == nullptr) return;
    for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
    handles.clear();
    (void)db->Close();
    delete db;
  }

  // ---- suites and tasks

  Status PutSuite(const v1::Suite& suite, const std::vector<v1::GoldenTask>& tasks) override {
    if (suite.name().empty()) return Fail(Code::kInvalidArgument, "suite has no name");
    rocksdb::WriteBatch batch;
    CRUCIBLE_ASSIGN_OR_RETURN(std::string suite_value, Serialize(suite));
    CRUCIBLE_RETURN_IF_ERROR(
        FromRocksStatus(batch.Put(cfs_[kSuites], SuiteKey(suite.name()), suite_value), "PutSuite"));

    std::set<std::string> new_keys;
    for (const v1::GoldenTask& task : tasks) {
      if (task.id().empty()) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("suite '{}': a task has no id", Printable(suite.name())));
      }
      if (!task.suite().empty() && task.suite() != suite.name()) {
        return Fail(
            Code::kInvalidArgument,
            fmt::format("suite '{}': task '{}' belongs to suite '{}'", Printable(suite.name()),
                        Printable(task.id()), Printable(task.suite())));
      }
      std::string key = TaskKey(suite.name(), task.id());
      if (!new_keys.insert(key).second) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("suite '{}': task id '{}' appears twice", Printable(suite.name()),
                                Printable(task.id())));
      }
      std::string value;
      if (task.suite().empty()) {
        v1::GoldenTask copy = task;
        copy.set_suite(suite.name());
        CRUCIBLE_ASSIGN_OR_RETURN(value, Serialize(copy));
      } else {
        CRUCIBLE_ASSIGN_OR_RETURN(value, Serialize(task));
      }
      CRUCIBLE_RETURN_IF_ERROR(FromRocksStatus(batch.Put(cfs_[kTasks], key, value), "PutSuite"));
    }

    // Delete the old tasks that are not rewritten; under the lock so that two
    // PutSuite of one suite do not mix their task sets.
    std::lock_guard lock(write_mu_);
    std::string prefix = SuiteKey(suite.name());
    std::string upper = PrefixSuccessor(prefix);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kTasks]));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      std::string key = it->key().ToString();
      if (!new_keys.contains(key)) {
        CRUCIBLE_RETURN_IF_ERROR(FromRocksStatus(batch.Delete(cfs_[kTasks], key), "PutSuite"));
      }
    }
    if (!it->status().ok()) {
      return Fail(FromRocks(it->status(), fmt::format("database {}: scanning tasks of suite '{}'",
                                                      dir_, Printable(suite.name()))));
    }
    return Write(batch, /*sync=*/true,
                 [&] { return fmt::format("storing suite '{}'", Printable(suite.name())); });
  }

  Result<v1::Suite> GetSuite(std::string_view name) override {
    return Get<v1::Suite>(kSuites, SuiteKey(name),
                          fmt::format("suite '{}' not found", Printable(name)));
  }

  Result<std::vector<v1::Suite>> ListSuites() override { return Scan<v1::Suite>(kSuites, ""); }

  Result<std::vector<v1::GoldenTask>> ListTasks(std::string_view suite) override {
    CRUCIBLE_RETURN_IF_ERROR(GetSuite(suite));
    return Scan<v1::GoldenTask>(kTasks, SuiteKey(suite));
  }

  Result<v1::GoldenTask> GetTask(std::string_view suite, std::string_view task_id) override {
    return Get<v1::GoldenTask>(
        kTasks, TaskKey(suite, task_id),
        fmt::format("task '{}' of suite '{}' not found", Printable(task_id), Printable(suite)));
  }

  // ---- runs and attempts

  Status CreateRun(const v1::Run& run, const std::vector<v1::Attempt>& attempts) override {
    if (run.id().empty()) return Fail(Code::kInvalidArgument, "run has no id");
    rocksdb::WriteBatch batch;
    CRUCIBLE_ASSIGN_OR_RETURN(std::string run_value, Serialize(run));
    CRUCIBLE_RETURN_IF_ERROR(
        FromRocksStatus(batch.Put(cfs_[kRuns], RunKey(run.id()), run_value), "CreateRun"));
    std::set<uint64_t> numbers;
    for (const v1::Attempt& attempt : attempts) {
      if (attempt.run_id() != run.id()) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("run '{}': attempt {} belongs to run '{}'", Printable(run.id()),
                                attempt.number(), Printable(attempt.run_id())));
      }
      if (!numbers.insert(attempt.number()).second) {
        return Fail(Code::kInvalidArgument, fmt::format("run '{}': attempt {} appears twice",
                                                        Printable(run.id()), attempt.number()));
      }
      CRUCIBLE_ASSIGN_OR_RETURN(std::string value, Serialize(attempt));
      CRUCIBLE_RETURN_IF_ERROR(FromRocksStatus(
          batch.Put(cfs_[kAttempts], AttemptKey(run.id(), attempt.number()), value), "CreateRun"));
    }

    std::lock_guard lock(write_mu_);
    std::string existing;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_[kRuns], RunKey(run.id()), &existing);
    if (s.ok()) {
      return Fail(Code::kAlreadyExists,
                  fmt::format("run '{}' already exists", Printable(run.id())));
    }
    if (!s.IsNotFound()) {
      return Fail(
          FromRocks(s, fmt::format("database {}: reading run '{}'", dir_, Printable(run.id()))));
    }
    return Write(batch, /*sync=*/true,
                 [&] { return fmt::format("creating run '{}'", Printable(run.id())); });
  }

  Status PutRun(const v1::Run& run) override {
    if (run.id().empty()) return Fail(Code::kInvalidArgument, "run has no id");
    CRUCIBLE_ASSIGN_OR_RETURN(std::string value, Serialize(run));
    rocksdb::WriteBatch batch;
    CRUCIBLE_RETURN_IF_ERROR(
        FromRocksStatus(batch.Put(cfs_[kRuns], RunKey(run.id()), value), "PutRun"));
    return Write(batch, /*sync=*/true,
                 [&] { return fmt::format("storing run '{}'", Printable(run.id())); });
  }

  Result<v1::Run> GetRun(std::string_view run_id) override {
    return Get<v1::Run>(kRuns, RunKey(run_id),
                        fmt::format("run '{}' not found", Printable(run_id)));
  }

  Result<std::vector<v1::Run>> ListRuns() override {
    CRUCIBLE_ASSIGN_OR_RETURN(std::vector<v1::Run> runs, Scan<v1::Run>(kRuns, ""));
    std::stable_sort(runs.begin(), runs.end(), [](const v1::Run& a, const v1::Run& b) {
      if (a.created_at_ms() != b.created_at_ms()) return a.created_at_ms() < b.created_at_ms();
      return a.id() < b.id();
    });
    return runs;
  }

  Result<std::vector<v1::Attempt>> ListAttempts(std::string_view run_id) override {
    CRUCIBLE_RETURN_IF_ERROR(GetRun(run_id));
    return Scan<v1::Attempt>(kAttempts, RunKey(run_id));
  }

  Result<v1::Attempt> GetAttempt(std::string_view run_id, uint64_t number) override {
    return Get<v1::Attempt>(
        kAttempts, AttemptKey(run_id, number),
        fmt::format("attempt {} of run '{}' not found", number, Printable(run_id)));
  }

  Status UpdateAttempt(const v1::Attempt& attempt) override {
    if (attempt.run_id().empty()) return Fail(Code::kInvalidArgument, "attempt has no run id");
    CRUCIBLE_ASSIGN_OR_RETURN(std::string value, Serialize(attempt));
    rocksdb::WriteBatch batch;
    CRUCIBLE_RETURN_IF_ERROR(FromRocksStatus(
        batch.Put(cfs_[kAttempts], AttemptKey(attempt.run_id(), attempt.number()), value),
        "UpdateAttempt"));
    return Write(batch, /*sync=*/true, [&] {
      return fmt::format("storing attempt {} of run '{}'", attempt.number(),
                         Printable(attempt.run_id()));
    });
  }

  Status RestartAttempt(const v1::Attempt& attempt) override {
    if (attempt.run_id().empty()) return Fail(Code::kInvalidArgument, "attempt has no run id");
    CRUCIBLE_ASSIGN_OR_RETURN(std::string value, Serialize(attempt));
    std::string prefix = AttemptKey(attempt.run_id(), attempt.number());
    // Every event key of the attempt is prefix + 8 bytes of seq, so prefix +
    // nine 0xFF bytes is past the last of them.
    std::string end = prefix + std::string(9, '\xff');
    rocksdb::WriteBatch batch;
    CRUCIBLE_RETURN_IF_ERROR(
        FromRocksStatus(batch.Put(cfs_[kAttempts], prefix, value), "RestartAttempt"));
    CRUCIBLE_RETURN_IF_ERROR(
        FromRocksStatus(batch.DeleteRange(cfs_[kEvents], prefix, end), "RestartAttempt"));
    return Write(batch, /*sync=*/true, [&] {
      return fmt::format("restarting attempt {} of run '{}'", attempt.number(),
                         Printable(attempt.run_id()));
    });
  }

  // ---- evidence

  Status AppendEvents(std::string_view run_id, uint64_t attempt,
                      const std::vector<v1::TraceEvent>& events) override {
    return AppendEventRange(run_id, attempt, events);
  }

  Status AppendEvents(std::string_view run_id, uint64_t attempt,
                      const google::protobuf::RepeatedPtrField<v1::TraceEvent>& events) override {
    return AppendEventRange(run_id, attempt, events);
  }

  Result<std::vector<v1::TraceEvent>> ListEvents(std::string_view run_id,
                                                 uint64_t attempt) override {
    CRUCIBLE_ASSIGN_OR_RETURN(std::vector<v1::TraceChunk> chunks,
                              Scan<v1::TraceChunk>(kEvents, AttemptKey(run_id, attempt)));
    std::vector<v1::TraceEvent> events;
    for (v1::TraceChunk& chunk : chunks) {
      for (v1::TraceEvent& event : *chunk.mutable_events()) events.push_back(std::move(event));
    }
    // Batches arrive in order and do not overlap, so this is usually sorted
    // already. Where two batches hold the same seq, the one stored under the
    // greater key (the later batch) wins.
    std::stable_sort(
        events.begin(), events.end(),
        [](const v1::TraceEvent& a, const v1::TraceEvent& b) { return a.seq() < b.seq(); });
    std::vector<v1::TraceEvent> unique;
    unique.reserve(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      if (i + 1 < events.size() && events[i + 1].seq() == events[i].seq()) continue;
      unique.push_back(std::move(events[i]));
    }
    return unique;
  }

  Status FinishAttempt(const v1::Attempt& attempt, const v1::Evidence& evidence,
                       const v1::Score& score) override {
    if (attempt.run_id().empty()) return Fail(Code::kInvalidArgument, "attempt has no run id");
    std::string key = AttemptKey(attempt.run_id(), attempt.number());
    CRUCIBLE_ASSIGN_OR_RETURN(std::string attempt_value, Serialize(attempt));
    CRUCIBLE_ASSIGN_OR_RETURN(std::string evidence_value, Serialize(evidence));
    CRUCIBLE_ASSIGN_OR_RETURN(std::string score_value, Serialize(score));
    rocksdb::WriteBatch batch;
    CRUCIBLE_RETURN_IF_ERROR(
        FromRocksStatus(batch.Put(cfs_[kAttempts], key, attempt_value), "FinishAttempt"));
    CRUCIBLE_RETURN_IF_ERROR(
        FromRocksStatus(batch.Put(cfs_[kEvidence], key, evidence_value), "FinishAttempt"));
    CRUCIBLE_RETURN_IF_ERROR(
        FromRocksStatus(batch.Put(cfs_[kScores], key, score_value), "FinishAttempt"));
    return Write(batch, /*sync=*/true, [&] {
      return fmt::format("finishing attempt {} of run '{}'", attempt.number(),
                         Printable(attempt.run_id()));
    });
  }

  Status PutScore(std::string_view run_id, uint64_t attempt, const v1::Score& score) override {
    if (run_id.empty()) return Fail(Code::kInvalidArgument, "score has no run id");
    CRUCIBLE_ASSIGN_OR_RETURN(std::string value, Serialize(score));
    rocksdb::WriteBatch batch;
    CRUCIBLE_RETURN_IF_ERROR(
        FromRocksStatus(batch.Put(cfs_[kScores], AttemptKey(run_id, attempt), value), "PutScore"));
    return Write(batch, /*sync=*/true, [&] {
      return fmt::format("storing the score of attempt {} of run '{}'", attempt, Printable(run_id));
    });
  }

  Result<v1::Evidence> GetEvidence(std::string_view run_id, uint64_t attempt) override {
    return Get<v1::Evidence>(
        kEvidence, AttemptKey(run_id, attempt),
        fmt::format("no evidence for attempt {} of run '{}'", attempt, Printable(run_id)));
  }

  Result<v1::Score> GetScore(std::string_view run_id, uint64_t attempt) override {
    return Get<v1::Score>(
        kScores, AttemptKey(run_id, attempt),
        fmt::format("no score for attempt {} of run '{}'", attempt, Printable(run_id)));
  }

  // ---- people's verdicts

  Status AddVerdicts(const std::vector<v1::Verdict>& verdicts) override {
    // Check every verdict before writing any, reading each run's attempts once.
    std::map<std::string, std::vector<uint64_t>, std::less<>> numbers;  // run -> attempt numbers
    for (const v1::Verdict& v : verdicts) {
      if (v.run_id().empty()) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("verdict on attempt {} has no run id", v.attempt()));
      }
      if (v.verdict() != "accept" && v.verdict() != "reject" && v.verdict() != "needs-changes") {
        return Fail(Code::kInvalidArgument,
                    fmt::format("run '{}' attempt {}: verdict '{}' is not accept, reject or "
                                "needs-changes",
                                Printable(v.run_id()), v.attempt(), Printable(v.verdict())));
      }
      auto it = numbers.find(v.run_id());
      if (it == numbers.end()) {
        CRUCIBLE_ASSIGN_OR_RETURN(std::vector<v1::Attempt> attempts, ListAttempts(v.run_id()));
        std::vector<uint64_t> n;
        for (const auto& a : attempts) n.push_back(a.number());
        it = numbers.emplace(v.run_id(), std::move(n)).first;
      }
      const std::vector<uint64_t>& n = it->second;
      if (!std::binary_search(n.begin(), n.end(), v.attempt())) {
        return Fail(Code::kNotFound,
                    n.empty()
                        ? fmt::format("run '{}' has no attempts", Printable(v.run_id()))
                        : fmt::format("run '{}' has no attempt {} (its attempts are "
                                      "numbered {} to {})",
                                      Printable(v.run_id()), v.attempt(), n.front(), n.back()));
      }
    }
    if (verdicts.empty()) return {};
    if (cfs_[kVerdicts] == nullptr) {
      return Fail(Code::kFailedPrecondition, "storing verdicts: the database is open read-only");
    }
    // The time part of the keys never goes back within this process, so the
    // sequence number orders verdicts stored in one millisecond.
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    uint64_t stored_ms = std::max<uint64_t>(static_cast<uint64_t>(std::max<int64_t>(now_ms, 0)),
                                            last_verdict_ms_.load());
    last_verdict_ms_.store(stored_ms);
    rocksdb::WriteBatch batch;
    for (const v1::Verdict& v : verdicts) {
      CRUCIBLE_ASSIGN_OR_RETURN(std::string value, Serialize(v));
      std::string key = KeyEncoder()
                            .Str(v.run_id())
                            .U64(v.attempt())
                            .U64(stored_ms)
                            .U64(verdict_seq_.fetch_add(1))
                            .U64(verdict_nonce_)
                            .Take();
      CRUCIBLE_RETURN_IF_ERROR(
          FromRocksStatus(batch.Put(cfs_[kVerdicts], key, value), "AddVerdicts"));
    }
    return Write(batch, /*sync=*/true, [&] {
      return fmt::format("storing {} verdicts of run '{}'", verdicts.size(),
                         Printable(verdicts.front().run_id()));
    });
  }

  Result<std::vector<v1::Verdict>> ListVerdicts(std::string_view run_id) override {
    if (cfs_[kVerdicts] == nullptr) return std::vector<v1::Verdict>{};
    return Scan<v1::Verdict>(kVerdicts, RunKey(run_id));
  }

 private:
  Status FromRocksStatus(const rocksdb::Status& s, std::string_view what) const {
    if (s.ok()) return {};
    return Fail(FromRocks(s, fmt::format("database {}: {}", dir_, what)));
  }

  void SetGroupCommit(bool on) override {
    if (!on) (void)Sync();
    group_commit_ = on;
  }

  Status Sync() override {
    bool sync = unsynced_.exchange(false);
    if (!unflushed_.exchange(false) && !sync) return {};
    return FromRocksStatus(db_->FlushWAL(sync),
                           sync ? "syncing the write-ahead log" : "writing the write-ahead log");
  }

  // One batch of events is one value, a TraceChunk, under the seq of its
  // first event: trace ingestion is the coordinator's hottest path, and a key
  // per event cost a key, a memtable entry and a log record header for every
  // event. The chunk is written field by field, without copying the events
  // into a message first.
  template <typename Events>
  Status AppendEventRange(std::string_view run_id, uint64_t attempt, const Events& events) {
    if (run_id.empty()) return Fail(Code::kInvalidArgument, "trace events have no run id");
    if (events.empty()) return {};
    using google::protobuf::internal::WireFormatLite;
    size_t total = 0;
    for (const v1::TraceEvent& event : events) {
      size_t size = event.ByteSizeLong();
      if (size > static_cast<size_t>(INT32_MAX)) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("trace event {} is too large ({} bytes)", event.seq(), size));
      }
      total += WireFormatLite::TagSize(v1::TraceChunk::kEventsFieldNumber,
                                       WireFormatLite::TYPE_MESSAGE) +
               WireFormatLite::LengthDelimitedSize(size);
    }
    std::string value(total, '\0');
    auto* out = reinterpret_cast<uint8_t*>(value.data());
    for (const v1::TraceEvent& event : events) {
      out = WireFormatLite::WriteTagToArray(v1::TraceChunk::kEventsFieldNumber,
                                            WireFormatLite::WIRETYPE_LENGTH_DELIMITED, out);
      out = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
          static_cast<uint32_t>(event.GetCachedSize()), out);
      out = event.SerializeWithCachedSizesToArray(out);
    }
    rocksdb::WriteBatch batch;
    CRUCIBLE_RETURN_IF_ERROR(FromRocksStatus(
        batch.Put(cfs_[kEvents], EventKey(run_id, attempt, events.begin()->seq()), value),
        "AppendEvents"));
    return Write(batch, /*sync=*/false, [&] {
      return fmt::format("appending {} trace events of attempt {} of run '{}'", events.size(),
                         attempt, Printable(run_id));
    });
  }

  // Writes `batch` to the memtables and the write-ahead log's buffer in
  // memory (the database runs with manual_wal_flush). Without group commit the
  // buffer then goes to the file at once, and with `sync` to the disk. Under
  // group commit it stays in memory until Sync(), which writes what the loop
  // iteration gathered with one write(2) and, if any of it asked for `sync`,
  // one fsync.
  // `what()` names the write in an error ("storing run 'r1'"); a callable, so
  // that the text is built only when the write fails (attempt state changes
  // and trace batches are the coordinator's hot path).
  template <typename Describe>
  Status Write(rocksdb::WriteBatch& batch, bool sync, const Describe& what) {
    rocksdb::WriteOptions wo;
    bool deferred = group_commit_;
    wo.sync = sync && !deferred;
    rocksdb::Status s = db_->Write(wo, &batch);
    if (s.ok()) {
      if (deferred) {
        unflushed_ = true;
        if (sync) unsynced_ = true;
      } else if (!wo.sync) {
        s = db_->FlushWAL(/*sync=*/false);
      }
    }
    if (s.ok()) return {};
    if (s.IsNotSupported()) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("{}: the database is open read-only", what()));
    }
    return FromRocksStatus(s, what());
  }

  template <typename Msg>
  Result<Msg> Get(Cf cf, const std::string& key, std::string not_found) {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_[cf], key, &value);
    if (s.IsNotFound()) return Fail(Code::kNotFound, std::move(not_found));
    if (!s.ok()) {
      return Fail(FromRocks(
          s, fmt::format("database {}: reading {} {}", dir_, kCfNames[cf], DescribeKey(cf, key))));
    }
    return Parse<Msg>(cf, key, value);
  }

  // All records of `cf` whose key starts with `prefix`, in key order.
  template <typename Msg>
  Result<std::vector<Msg>> Scan(Cf cf, const std::string& prefix) {
    std::vector<Msg> out;
    std::string upper = PrefixSuccessor(prefix);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[cf]));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      rocksdb::Slice key = it->key();
      rocksdb::Slice value = it->value();
      CRUCIBLE_ASSIGN_OR_RETURN(Msg msg, Parse<Msg>(cf, std::string_view(key.data(), key.size()),
                                                    std::string_view(value.data(), value.size())));
      out.push_back(std::move(msg));
    }
    if (!it->status().ok()) {
      return Fail(
          FromRocks(it->status(), fmt::format("database {}: scanning {}", dir_, kCfNames[cf])));
    }
    return out;
  }

  const std::string dir_;
  rocksdb::DB* db_;
  const bool read_only_;
  std::atomic<bool> group_commit_ = false;
  // Under group commit: a write waits in the log buffer for Sync() (unflushed_),
  // and one of them asked to be synced (unsynced_).
  std::atomic<bool> unflushed_ = false;
  std::atomic<bool> unsynced_ = false;
  // Every open column family, including ones this build does not know.
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  // Crucible's column families, indexed by Cf; owned through handles_.
  std::array<rocksdb::ColumnFamilyHandle*, kCfCount> cfs_;
  // Serializes read-modify-write operations (CreateRun, PutSuite).
  std::mutex write_mu_;
  // The last components of verdict keys (see AddVerdicts): the greatest time
  // used so far, a sequence number, and a random number of this Store.
  std::atomic<uint64_t> last_verdict_ms_ = 0;
  std::atomic<uint64_t> verdict_seq_ = 0;
  const uint64_t verdict_nonce_ =
      std::random_device()() * (uint64_t{1} << 32) ^ std::random_device()();
};

rocksdb::DBOptions MakeDbOptions() {
  rocksdb::DBOptions options;
  options.create_if_missing = false;
  options.create_missing_column_families = false;
  options.keep_log_file_num = 4;
  // The write-ahead log is written by Write() or Sync() (see there), not by
  // every write: under group commit the coordinator's loop iteration then
  // costs one write(2) instead of one per state change and trace batch.
  options.manual_wal_flush = true;
  // The events memtable (below) does not take concurrent inserts.
  options.allow_concurrent_memtable_write = false;
  return options;
}

// Trace events arrive by the hundred thousand per second and are read back
// rarely, in order: their memtable is a vector, appended to in O(1) and
// sorted once when flushed, instead of a skip list that pays a search per
// insert (a third of the coordinator's time when ingesting traces).
// The first component of a key (the run id of an attempt's key, the suite of
// a task's), with its terminator: the prefix under which RocksDB keeps a
// memtable insert hint.
class FirstComponent final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "crucible.FirstComponent"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    for (size_t i = 0; i + 1 < key.size(); ++i) {
      if (key[i] == '\x00' && key[i + 1] == '\x01') return rocksdb::Slice(key.data(), i + 2);
    }
    return key;
  }
  bool InDomain(const rocksdb::Slice&) const override { return true; }
};

rocksdb::ColumnFamilyOptions CfOptions(std::string_view name) {
  rocksdb::ColumnFamilyOptions options;
  if (name == kCfNames[kEvents]) {
    options.memtable_factory.reset(new rocksdb::VectorRepFactory());
  } else {
    // Attempts are written in number order within a run, so each insert
    // starts its skip-list search where the previous one of the run ended.
    options.memtable_insert_with_hint_prefix_extractor = std::make_shared<FirstComponent>();
  }
  return options;
}

// Parses the stored schema version; kCorruption when it is not a decimal number.
Result<uint32_t> ParseSchemaVersion(const std::string& dir, const std::string& value) {
  uint32_t version = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), version);
  if (ec != std::errc() || end != value.data() + value.size() || version == 0) {
    return Fail(Code::kCorruption, fmt::format("database {} has an unreadable schema version '{}'",
                                               dir, Printable(value)));
  }
  return version;
}

Error OpenError(const std::string& dir, const rocksdb::Status& s) {
  std::string message = s.ToString();
  // RocksDB reports a held lock as an I/O error on the LOCK file, both for
  // another process ("While lock file") and for this one ("lock hold by
  // current process").
  if (s.IsIOError() && message.find("/LOCK") != std::string::npos) {
    return Error(Code::kUnavailable,
                 fmt::format("cannot open database {}: {} (is another crucible process using it?)",
                             dir, message));
  }
  return FromRocks(s, fmt::format("cannot open database {}", dir));
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, OpenOptions options) {
  std::error_code ec;
  fs::file_status st = fs::status(dir, ec);
  bool exists = false;
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Fail(Code::kIoError, fmt::format("cannot access database {}: {}", dir, ec.message()));
  }
  if (!ec && fs::exists(st)) {
    if (!fs::is_directory(st)) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("{} is not a Crucible database (it is not a directory)", dir));
    }
    exists = true;
  }

  bool empty = true;
  if (exists) {
    fs::directory_iterator entries(dir, ec);
    if (ec) {
      return Fail(Code::kIoError,
                  fmt::format("cannot list database directory {}: {}", dir, ec.message()));
    }
    empty = entries == fs::directory_iterator();
  }

  rocksdb::DBOptions db_options = MakeDbOptions();
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  bool creating = false;
  if (!exists || empty) {
    if (!options.create_if_missing || options.read_only) {
      return Fail(Code::kNotFound, fmt::format("database {} does not exist{}", dir,
                                               exists ? " (empty directory)" : ""));
    }
    if (!exists) CRUCIBLE_RETURN_IF_ERROR(MakeDirs(dir));
    creating = true;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.error_if_exists = true;
    for (const char* name : kCfNames) {
      descriptors.emplace_back(name, CfOptions(name));
    }
  } else {
    if (!fs::exists(fs::path(dir) / "CURRENT", ec)) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("{} is not a Crucible database (no RocksDB files)", dir));
    }
    std::vector<std::string> names;
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, dir, &names);
    if (!s.ok()) return Fail(OpenError(dir, s));
    // Open exactly the existing column families: a foreign database is not
    // changed before its schema version is checked.
    for (const std::string& name : names) {
      descriptors.emplace_back(name, CfOptions(name));
    }
  }

  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s =
      options.read_only ? rocksdb::DB::OpenForReadOnly(db_options, dir, descriptors, &handles, &db)
                        : rocksdb::DB::Open(db_options, dir, descriptors, &handles, &db);
  if (!s.ok()) return Fail(OpenError(dir, s));

  // From here on every early return must close the database.
  auto fail = [&](Error error) -> Result<std::unique_ptr<Store>> {
    RocksStore::CloseDb(db, handles);
    return Fail(std::move(error));
  };

  auto find_handle = [&](std::string_view name) -> rocksdb::ColumnFamilyHandle* {
    for (auto* h : handles) {
      if (h->GetName() == name) return h;
    }
    return nullptr;
  };

  rocksdb::ColumnFamilyHandle* meta = find_handle(kCfNames[kMeta]);
  if (meta == nullptr) {
    return fail(Error(Code::kInternal, fmt::format("database {}: no default column family", dir)));
  }

  if (creating) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db->Put(wo, meta, kSchemaVersionKey, std::to_string(kSchemaVersion));
    if (!s.ok()) return fail(FromRocks(s, fmt::format("database {}: writing schema version", dir)));
  } else {
    std::string value;
    s = db->Get(rocksdb::ReadOptions(), meta, kSchemaVersionKey, &value);
    if (s.IsNotFound()) {
      return fail(Error(Code::kFailedPrecondition,
                        fmt::format("{} is a RocksDB database but not a Crucible one (no schema "
                                    "version)",
                                    dir)));
    }
    if (!s.ok()) return fail(FromRocks(s, fmt::format("database {}: reading schema version", dir)));
    auto version = ParseSchemaVersion(dir, value);
    if (!version) return fail(version.error());
    if (*version > kSchemaVersion) {
      return fail(Error(Code::kVersionMismatch,
                        fmt::format("database {} has schema version {}, newer than this build's "
                                    "{}; upgrade crucible",
                                    dir, *version, kSchemaVersion)));
    }
    // Create the column families this build knows and the database lacks.
    for (size_t i = 0; i < kCfCount; ++i) {
      const char* name = kCfNames[i];
      if (find_handle(name) != nullptr) continue;
      if (options.read_only && OptionalWhenReadOnly(i)) continue;
      if (options.read_only) {
        return fail(Error(Code::kFailedPrecondition,
                          fmt::format("database {} lacks column family {}; open it once for "
                                      "writing to upgrade it",
                                      dir, name)));
      }
      rocksdb::ColumnFamilyHandle* h = nullptr;
      s = db->CreateColumnFamily(CfOptions(name), name, &h);
      if (!s.ok()) {
        return fail(FromRocks(s, fmt::format("database {}: creating column family {}", dir, name)));
      }
      handles.push_back(h);
    }
    // Version 1 stored one trace event per key; version 2 one trace batch per
    // key (TraceChunk). This build reads both, so upgrading is only marking
    // the database, after which older builds refuse it instead of misreading
    // its batches.
    if (*version < kSchemaVersion && !options.read_only) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      s = db->Put(wo, meta, kSchemaVersionKey, std::to_string(kSchemaVersion));
      if (!s.ok()) {
        return fail(FromRocks(s, fmt::format("database {}: upgrading the schema version", dir)));
      }
    }
  }

  std::array<rocksdb::ColumnFamilyHandle*, kCfCount> cfs{};
  for (size_t i = 0; i < kCfCount; ++i) {
    cfs[i] = find_handle(kCfNames[i]);
    if (cfs[i] == nullptr && !(options.read_only && OptionalWhenReadOnly(i))) {
      return fail(Error(Code::kInternal,
                        fmt::format("database {}: column family {} missing", dir, kCfNames[i])));
    }
  }
  return std::unique_ptr<Store>(
      new RocksStore(dir, db, options.read_only, std::move(handles), cfs));
}

}  // namespace crucible::storage
