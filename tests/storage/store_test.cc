#include "storage/store.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include "base/fs.h"
#include "storage/key_codec.h"
#include "tests/support/timed_wait.h"

namespace crucible::storage {
namespace {

using ::testing::HasSubstr;

// Writes `key` = `value` into column family `cf` of the RocksDB database in
// `dir` through a raw handle (creating the database and the column family when
// missing), bypassing Store.
void RawPut(const std::string& dir, const std::string& cf, const std::string& key,
            const std::string& value) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(options, dir, &names).ok()) names = {"default"};
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, descriptors, &handles, &db);
  ASSERT_TRUE(s.ok()) << s.ToString();
  rocksdb::ColumnFamilyHandle* target = nullptr;
  for (auto* h : handles) {
    if (h->GetName() == cf) target = h;
  }
  if (target == nullptr) {
    s = db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), cf, &target);
    ASSERT_TRUE(s.ok()) << s.ToString();
    handles.push_back(target);
  }
  s = db->Put(rocksdb::WriteOptions(), target, key, value);
  EXPECT_TRUE(s.ok()) << s.ToString();
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
  delete db;
}

// Reads `key` of column family `cf` through a raw read-only handle, which
// works beside an open Store too. "" when missing.
std::string RawGet(const std::string& dir, const std::string& cf, const std::string& key) {
  rocksdb::DBOptions options;
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(options, dir, &names).ok()) return "";
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(options, dir, descriptors, &handles, &db);
  if (!s.ok()) {
    ADD_FAILURE() << s.ToString();
    return "";
  }
  std::string value;
  for (auto* h : handles) {
    if (h->GetName() == cf) (void)db->Get(rocksdb::ReadOptions(), h, key, &value);
  }
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  (void)db->Close();
  delete db;
  return value;
}

// Bytes that no protobuf parser accepts: a tag varint that never ends.
const std::string kGarbage = "\xff\xff\xff\xff\xff";

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("crucible-store-test-");
    ASSERT_TRUE(tmp.has_value()) << tmp.error().ToString();
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    dir_ = tmp_->path() + "/db";
    Reopen();
  }

  void Reopen() {
    store_.reset();
    auto store = Store::Open(dir_);
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    store_ = std::move(*store);
  }

  static v1::GoldenTask Task(const std::string& suite, const std::string& id) {
    v1::GoldenTask t;
    t.set_suite(suite);
    t.set_id(id);
    t.set_intent("do " + id);
    t.add_fail_to_pass("tests.test_x::test_" + id);
    return t;
  }

  static v1::Suite Suite(const std::string& name) {
    v1::Suite s;
    s.set_name(name);
    s.set_repo_path("/repos/" + name);
    s.set_test_cmd("pytest --junitxml={junit}");
    return s;
  }

  static v1::Run Run(const std::string& id, int64_t created_at_ms = 1000) {
    v1::Run r;
    r.set_id(id);
    r.set_suite("s");
    r.set_created_at_ms(created_at_ms);
    r.set_state(v1::Run::RUNNING);
    return r;
  }

  static v1::Attempt Attempt(const std::string& run_id, uint64_t number) {
    v1::Attempt a;
    a.set_run_id(run_id);
    a.set_number(number);
    a.set_task_id("t" + std::to_string(number));
    a.set_state(v1::Attempt::QUEUED);
    return a;
  }

  static v1::TraceEvent Event(uint64_t seq, const std::string& name) {
    v1::TraceEvent e;
    e.set_seq(seq);
    e.set_name(name);
    e.set_kind("TOOL");
    return e;
  }

  static std::vector<std::string> TaskIds(const std::vector<v1::GoldenTask>& tasks) {
    std::vector<std::string> ids;
    for (const auto& t : tasks) ids.push_back(t.id());
    return ids;
  }

  std::unique_ptr<TempDir> tmp_;
  std::string dir_;
  StorePtr store_;
};

TEST_F(StoreTest, SuiteAndTasksRoundTrip) {
  v1::Suite suite = Suite("flask");
  suite.set_task_count(3);
  ASSERT_TRUE(store_->PutSuite(
      suite, {Task("flask", "0003-c"), Task("flask", "0001-a"), Task("flask", "0002-b")}));

  auto got = store_->GetSuite("flask");
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->repo_path(), "/repos/flask");
  EXPECT_EQ(got->task_count(), 3);

  auto tasks = store_->ListTasks("flask");
  ASSERT_TRUE(tasks.has_value()) << tasks.error().ToString();
  EXPECT_EQ(TaskIds(*tasks), (std::vector<std::string>{"0001-a", "0002-b", "0003-c"}));
  EXPECT_EQ((*tasks)[1].intent(), "do 0002-b");
  ASSERT_EQ((*tasks)[1].fail_to_pass_size(), 1);

  auto task = store_->GetTask("flask", "0002-b");
  ASSERT_TRUE(task.has_value()) << task.error().ToString();
  EXPECT_EQ(task->fail_to_pass(0), "tests.test_x::test_0002-b");
}

TEST_F(StoreTest, PutSuiteReplacesAllTasks) {
  ASSERT_TRUE(store_->PutSuite(Suite("s"), {Task("s", "a"), Task("s", "b"), Task("s", "c")}));
  v1::GoldenTask b2 = Task("s", "b");
  b2.set_intent("new intent");
  ASSERT_TRUE(store_->PutSuite(Suite("s"), {b2, Task("s", "d")}));

  auto tasks = store_->ListTasks("s");
  ASSERT_TRUE(tasks.has_value()) << tasks.error().ToString();
  EXPECT_EQ(TaskIds(*tasks), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ((*tasks)[0].intent(), "new intent");
  auto gone = store_->GetTask("s", "a");
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code(), Code::kNotFound);

  // Replacing with no tasks empties the suite but keeps it.
  ASSERT_TRUE(store_->PutSuite(Suite("s"), {}));
  tasks = store_->ListTasks("s");
  ASSERT_TRUE(tasks.has_value());
  EXPECT_TRUE(tasks->empty());
}

TEST_F(StoreTest, SuitesDoNotLeakIntoEachOther) {
  // "a" is a prefix of "ab" and "a\0"; each suite must see only its tasks.
  std::string a0("a\0", 2);
  ASSERT_TRUE(store_->PutSuite(Suite("a"), {Task("a", "1"), Task("a", "2")}));
  ASSERT_TRUE(store_->PutSuite(Suite("ab"), {Task("ab", "3")}));
  ASSERT_TRUE(store_->PutSuite(Suite(a0), {Task(a0, "4")}));
  // Replacing "a" must not delete the tasks of "ab" or "a\0".
  ASSERT_TRUE(store_->PutSuite(Suite("a"), {Task("a", "5")}));

  auto a = store_->ListTasks("a");
  auto ab = store_->ListTasks("ab");
  auto a0_tasks = store_->ListTasks(a0);
  ASSERT_TRUE(a.has_value() && ab.has_value() && a0_tasks.has_value());
  EXPECT_EQ(TaskIds(*a), (std::vector<std::string>{"5"}));
  EXPECT_EQ(TaskIds(*ab), (std::vector<std::string>{"3"}));
  EXPECT_EQ(TaskIds(*a0_tasks), (std::vector<std::string>{"4"}));

  auto suites = store_->ListSuites();
  ASSERT_TRUE(suites.has_value());
  std::vector<std::string> names;
  for (const auto& s : *suites) names.push_back(s.name());
  EXPECT_EQ(names, (std::vector<std::string>{"a", a0, "ab"}));
}

TEST_F(StoreTest, PutSuiteFillsAndChecksTaskSuite) {
  v1::GoldenTask t = Task("", "x");
  ASSERT_TRUE(store_->PutSuite(Suite("s"), {t}));
  auto got = store_->GetTask("s", "x");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->suite(), "s");

  auto wrong = store_->PutSuite(Suite("s"), {Task("other", "y")});
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code(), Code::kInvalidArgument);
  auto dup = store_->PutSuite(Suite("s"), {Task("s", "y"), Task("s", "y")});
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code(), Code::kInvalidArgument);
  // A refused PutSuite changes nothing.
  auto tasks = store_->ListTasks("s");
  ASSERT_TRUE(tasks.has_value());
  EXPECT_EQ(TaskIds(*tasks), (std::vector<std::string>{"x"}));
}

TEST_F(StoreTest, UnknownNamesAreNotFoundAndNamed) {
  auto suite = store_->GetSuite("nosuch-suite");
  ASSERT_FALSE(suite.has_value());
  EXPECT_EQ(suite.error().code(), Code::kNotFound);
  EXPECT_THAT(suite.error().message(), HasSubstr("nosuch-suite"));

  auto tasks = store_->ListTasks("nosuch-suite");
  ASSERT_FALSE(tasks.has_value());
  EXPECT_EQ(tasks.error().code(), Code::kNotFound);
  EXPECT_THAT(tasks.error().message(), HasSubstr("nosuch-suite"));

  auto run = store_->GetRun("nosuch-run");
  ASSERT_FALSE(run.has_value());
  EXPECT_EQ(run.error().code(), Code::kNotFound);
  EXPECT_THAT(run.error().message(), HasSubstr("nosuch-run"));

  auto attempts = store_->ListAttempts("nosuch-run");
  ASSERT_FALSE(attempts.has_value());
  EXPECT_EQ(attempts.error().code(), Code::kNotFound);

  auto attempt = store_->GetAttempt("nosuch-run", 3);
  ASSERT_FALSE(attempt.has_value());
  EXPECT_EQ(attempt.error().code(), Code::kNotFound);

  auto evidence = store_->GetEvidence("nosuch-run", 3);
  ASSERT_FALSE(evidence.has_value());
  EXPECT_EQ(evidence.error().code(), Code::kNotFound);
  auto score = store_->GetScore("nosuch-run", 3);
  ASSERT_FALSE(score.has_value());
  EXPECT_EQ(score.error().code(), Code::kNotFound);

  auto events = store_->ListEvents("nosuch-run", 3);
  ASSERT_TRUE(events.has_value());
  EXPECT_TRUE(events->empty());
}

TEST_F(StoreTest, AttemptsComeInNumberOrder) {
  ASSERT_TRUE(store_->CreateRun(Run("r"), {Attempt("r", 256), Attempt("r", 2), Attempt("r", 10),
                                           Attempt("r", 0), Attempt("r", 1)}));
  auto attempts = store_->ListAttempts("r");
  ASSERT_TRUE(attempts.has_value()) << attempts.error().ToString();
  std::vector<uint64_t> numbers;
  for (const auto& a : *attempts) numbers.push_back(a.number());
  EXPECT_EQ(numbers, (std::vector<uint64_t>{0, 1, 2, 10, 256}));
  EXPECT_EQ((*attempts)[3].task_id(), "t10");

  auto run = store_->GetRun("r");
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->state(), v1::Run::RUNNING);
}

TEST_F(StoreTest, RunsDoNotLeakIntoEachOther) {
  ASSERT_TRUE(store_->CreateRun(Run("a"), {Attempt("a", 0), Attempt("a", 1)}));
  ASSERT_TRUE(store_->CreateRun(Run("ab"), {Attempt("ab", 0)}));
  auto a = store_->ListAttempts("a");
  auto ab = store_->ListAttempts("ab");
  ASSERT_TRUE(a.has_value() && ab.has_value());
  EXPECT_EQ(a->size(), 2u);
  ASSERT_EQ(ab->size(), 1u);
  EXPECT_EQ((*ab)[0].run_id(), "ab");
}

TEST_F(StoreTest, CreateRunRefusesExistingRun) {
  v1::Run run = Run("r");
  ASSERT_TRUE(store_->CreateRun(run, {Attempt("r", 0)}));
  v1::Run again = Run("r");
  again.set_samples(99);
  auto st = store_->CreateRun(again, {Attempt("r", 0), Attempt("r", 1)});
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), Code::kAlreadyExists);
  EXPECT_THAT(st.error().message(), HasSubstr("'r'"));
  // Nothing of the refused run was written.
  auto got = store_->GetRun("r");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->samples(), 0);
  auto attempts = store_->ListAttempts("r");
  ASSERT_TRUE(attempts.has_value());
  EXPECT_EQ(attempts->size(), 1u);

  auto mismatched = store_->CreateRun(Run("q"), {Attempt("r", 5)});
  ASSERT_FALSE(mismatched.has_value());
  EXPECT_EQ(mismatched.error().code(), Code::kInvalidArgument);
}

TEST_F(StoreTest, ConcurrentCreateRunHasOneWinner) {
  constexpr int kThreads = 8;
  std::atomic<int> created{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      v1::Run run = Run("race");
      run.set_samples(i);
      auto st = store_->CreateRun(run, {Attempt("race", 0)});
      if (st.has_value()) {
        ++created;
      } else if (st.error().code() == Code::kAlreadyExists) {
        ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
}

TEST_F(StoreTest, ListRunsOldestFirst) {
  ASSERT_TRUE(store_->CreateRun(Run("zeta", 100), {}));
  ASSERT_TRUE(store_->CreateRun(Run("alpha", 300), {}));
  ASSERT_TRUE(store_->CreateRun(Run("beta", 200), {}));
  ASSERT_TRUE(store_->CreateRun(Run("gamma", 200), {}));
  auto runs = store_->ListRuns();
  ASSERT_TRUE(runs.has_value()) << runs.error().ToString();
  std::vector<std::string> ids;
  for (const auto& r : *runs) ids.push_back(r.id());
  EXPECT_EQ(ids, (std::vector<std::string>{"zeta", "beta", "gamma", "alpha"}));
}

TEST_F(StoreTest, PutRunAndUpdateAttempt) {
  ASSERT_TRUE(store_->CreateRun(Run("r"), {Attempt("r", 0), Attempt("r", 1)}));
  v1::Run run = Run("r");
  run.set_state(v1::Run::FINISHED);
  run.set_finished_at_ms(5000);
  ASSERT_TRUE(store_->PutRun(run));
  v1::Attempt a = Attempt("r", 1);
  a.set_state(v1::Attempt::LEASED);
  a.set_runner("runner-1");
  ASSERT_TRUE(store_->UpdateAttempt(a));

  auto got_run = store_->GetRun("r");
  ASSERT_TRUE(got_run.has_value());
  EXPECT_EQ(got_run->state(), v1::Run::FINISHED);
  EXPECT_EQ(got_run->finished_at_ms(), 5000);
  auto got = store_->GetAttempt("r", 1);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->state(), v1::Attempt::LEASED);
  EXPECT_EQ(got->runner(), "runner-1");
  auto other = store_->GetAttempt("r", 0);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->state(), v1::Attempt::QUEUED);
}

TEST_F(StoreTest, EventsInSeqOrderPerAttempt) {
  ASSERT_TRUE(store_->CreateRun(Run("a"), {Attempt("a", 1), Attempt("a", 10)}));
  ASSERT_TRUE(store_->AppendEvents("a", 1, {Event(2, "edit"), Event(0, "plan")}));
  // The events of a received batch, as the coordinator stores them.
  v1::TraceBatch received;
  *received.add_events() = Event(256, "late");
  *received.add_events() = Event(1, "read");
  ASSERT_TRUE(store_->AppendEvents("a", 1, received.events()));
  // A batch written again (a runner's resend) replaces the stored one.
  ASSERT_TRUE(store_->AppendEvents("a", 1, {Event(2, "edit"), Event(0, "plan")}));
  // A seq held by two batches is listed once, from the later batch.
  ASSERT_TRUE(store_->AppendEvents("a", 1, {Event(3, "test"), Event(2, "edit-again")}));
  ASSERT_TRUE(store_->AppendEvents("a", 10, {Event(0, "other-attempt")}));
  ASSERT_TRUE(store_->AppendEvents("ab", 1, {Event(0, "other-run")}));
  ASSERT_TRUE(store_->AppendEvents("a", 1, std::vector<v1::TraceEvent>{}));

  auto events = store_->ListEvents("a", 1);
  ASSERT_TRUE(events.has_value()) << events.error().ToString();
  std::vector<std::string> names;
  std::vector<uint64_t> seqs;
  for (const auto& e : *events) {
    names.push_back(e.name());
    seqs.push_back(e.seq());
  }
  EXPECT_EQ(seqs, (std::vector<uint64_t>{0, 1, 2, 3, 256}));
  EXPECT_EQ(names, (std::vector<std::string>{"plan", "read", "edit-again", "test", "late"}));

  auto ten = store_->ListEvents("a", 10);
  ASSERT_TRUE(ten.has_value());
  ASSERT_EQ(ten->size(), 1u);
  EXPECT_EQ((*ten)[0].name(), "other-attempt");
  auto ab = store_->ListEvents("ab", 1);
  ASSERT_TRUE(ab.has_value());
  ASSERT_EQ(ab->size(), 1u);
  EXPECT_EQ((*ab)[0].name(), "other-run");
  auto none = store_->ListEvents("a", 2);
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

TEST_F(StoreTest, FinishAttemptStoresAttemptEvidenceAndScore) {
  ASSERT_TRUE(store_->CreateRun(Run("r"), {Attempt("r", 0), Attempt("r", 1)}));
  auto before = store_->GetEvidence("r", 0);
  ASSERT_FALSE(before.has_value());
  EXPECT_EQ(before.error().code(), Code::kNotFound);

  v1::Attempt done = Attempt("r", 0);
  done.set_state(v1::Attempt::DONE);
  v1::Evidence evidence;
  evidence.set_final_diff("--- a\n+++ b\n");
  evidence.mutable_tests()->set_exit_code(1);
  evidence.mutable_tests()->add_tests()->set_id("t::x");
  v1::Score score;
  score.set_completed(true);
  score.set_f2p_passed(2);
  score.set_f2p_total(2);
  ASSERT_TRUE(store_->FinishAttempt(done, evidence, score));

  auto a = store_->GetAttempt("r", 0);
  auto e = store_->GetEvidence("r", 0);
  auto s = store_->GetScore("r", 0);
  ASSERT_TRUE(a.has_value() && e.has_value() && s.has_value());
  EXPECT_EQ(a->state(), v1::Attempt::DONE);
  EXPECT_EQ(e->final_diff(), "--- a\n+++ b\n");
  ASSERT_EQ(e->tests().tests_size(), 1);
  EXPECT_EQ(e->tests().tests(0).id(), "t::x");
  EXPECT_TRUE(s->completed());
  EXPECT_EQ(s->f2p_passed(), 2);
  // The other attempt is untouched.
  EXPECT_FALSE(store_->GetEvidence("r", 1).has_value());

  // Rescoring replaces the score only.
  v1::Score rescored;
  rescored.set_completed(false);
  rescored.set_reason("rescored");
  ASSERT_TRUE(store_->PutScore("r", 0, rescored));
  auto s2 = store_->GetScore("r", 0);
  ASSERT_TRUE(s2.has_value());
  EXPECT_FALSE(s2->completed());
  EXPECT_EQ(s2->reason(), "rescored");
  EXPECT_TRUE(store_->GetEvidence("r", 0).has_value());
}

TEST_F(StoreTest, FinishAttemptIsAtomicForReaders) {
  constexpr uint64_t kAttempts = 200;
  std::vector<v1::Attempt> attempts;
  for (uint64_t i = 0; i < kAttempts; ++i) attempts.push_back(Attempt("r", i));
  ASSERT_TRUE(store_->CreateRun(Run("r"), attempts));

  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::atomic<int> seen_done{0};
  std::thread reader([&] {
    while (!stop.load()) {
      for (uint64_t i = 0; i < kAttempts; ++i) {
        // Evidence first: once it is visible, the score and the DONE state
        // written in the same batch must be visible too.
        if (!store_->GetEvidence("r", i).has_value()) continue;
        ++seen_done;
        auto s = store_->GetScore("r", i);
        auto a = store_->GetAttempt("r", i);
        if (!s.has_value() || !a.has_value() || a->state() != v1::Attempt::DONE) ++torn;
      }
    }
  });
  for (uint64_t i = 0; i < kAttempts; ++i) {
    v1::Attempt done = Attempt("r", i);
    done.set_state(v1::Attempt::DONE);
    v1::Score score;
    score.set_wall_ms(static_cast<int64_t>(i));
    bool finished = store_->FinishAttempt(done, v1::Evidence(), score).has_value();
    EXPECT_TRUE(finished) << "attempt " << i;
    if (!finished) break;  // the reader still has to be stopped and joined
  }
  stop = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(seen_done.load(), 0);
}

TEST_F(StoreTest, ReopenPreservesData) {
  ASSERT_TRUE(store_->PutSuite(Suite("s"), {Task("s", "t1")}));
  ASSERT_TRUE(store_->CreateRun(Run("r"), {Attempt("r", 0)}));
  ASSERT_TRUE(store_->AppendEvents("r", 0, {Event(0, "plan"), Event(1, "edit")}));
  v1::Score score;
  score.set_completed(true);
  v1::Attempt done = Attempt("r", 0);
  done.set_state(v1::Attempt::DONE);
  ASSERT_TRUE(store_->FinishAttempt(done, v1::Evidence(), score));

  Reopen();
  Reopen();  // twice: the second open sees a database this build reopened

  auto tasks = store_->ListTasks("s");
  ASSERT_TRUE(tasks.has_value());
  EXPECT_EQ(TaskIds(*tasks), (std::vector<std::string>{"t1"}));
  auto a = store_->GetAttempt("r", 0);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->state(), v1::Attempt::DONE);
  auto events = store_->ListEvents("r", 0);
  ASSERT_TRUE(events.has_value());
  EXPECT_EQ(events->size(), 2u);
  auto s = store_->GetScore("r", 0);
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->completed());
}

TEST_F(StoreTest, GroupCommitWritesSurviveAKillAfterSync) {
  ASSERT_TRUE(store_->PutSuite(Suite("s"), {Task("s", "t1")}));
  store_.reset();
  // A child process plays the coordinator: group commit on, a run created and
  // its attempt finished, one Sync(), then killed without closing the database.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto store = Store::Open(dir_);
    if (!store) ::_exit(2);
    (*store)->SetGroupCommit(true);
    v1::Attempt done = Attempt("r", 0);
    done.set_state(v1::Attempt::DONE);
    v1::Score score;
    score.set_completed(true);
    if (!(*store)->CreateRun(Run("r"), {Attempt("r", 0)}) ||
        !(*store)->AppendEvents("r", 0, {Event(0, "plan")}) ||
        !(*store)->FinishAttempt(done, v1::Evidence(), score) || !(*store)->Sync() ||
        !(*store)->Sync()) {
      ::_exit(3);
    }
    ::raise(SIGKILL);
  }
  int status = 0;
  ASSERT_TRUE(crucible::testing::WaitPid(pid, &status)) << "the child did not end; killed";
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  Reopen();
  auto a = store_->GetAttempt("r", 0);
  ASSERT_TRUE(a.has_value()) << a.error().ToString();
  EXPECT_EQ(a->state(), v1::Attempt::DONE);
  auto events = store_->ListEvents("r", 0);
  ASSERT_TRUE(events.has_value());
  EXPECT_EQ(events->size(), 1u);
  EXPECT_TRUE(store_->GetScore("r", 0).has_value());
}

TEST_F(StoreTest, SecondOpenOfALockedDatabaseIsRefused) {
  auto second = Store::Open(dir_);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), Code::kUnavailable) << second.error().ToString();
  EXPECT_THAT(second.error().message(), HasSubstr(dir_));
  EXPECT_THAT(second.error().message(), HasSubstr("is another crucible process using it?"));
  // The first store still works, and the database opens once it is closed.
  ASSERT_TRUE(store_->PutRun(Run("r")));
  Reopen();
  EXPECT_TRUE(store_->GetRun("r").has_value());
}

TEST_F(StoreTest, CorruptValueIsReportedAndOtherRecordsStayReadable) {
  ASSERT_TRUE(store_->CreateRun(Run("good"), {Attempt("good", 0)}));
  ASSERT_TRUE(store_->PutSuite(Suite("s"), {Task("s", "ok")}));
  store_.reset();
  RawPut(dir_, "runs", KeyEncoder().Str("bad").Take(), kGarbage);
  RawPut(dir_, "tasks", KeyEncoder().Str("s").Str("broken").Take(), kGarbage);
  Reopen();

  auto bad = store_->GetRun("bad");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Code::kCorruption);
  EXPECT_THAT(bad.error().message(), HasSubstr("runs"));
  EXPECT_THAT(bad.error().message(), HasSubstr("run 'bad'"));

  auto good = store_->GetRun("good");
  ASSERT_TRUE(good.has_value()) << good.error().ToString();
  EXPECT_TRUE(store_->ListAttempts("good").has_value());

  auto runs = store_->ListRuns();
  ASSERT_FALSE(runs.has_value());
  EXPECT_EQ(runs.error().code(), Code::kCorruption);

  auto broken = store_->GetTask("s", "broken");
  ASSERT_FALSE(broken.has_value());
  EXPECT_EQ(broken.error().code(), Code::kCorruption);
  EXPECT_THAT(broken.error().message(), HasSubstr("suite 's' task 'broken'"));
  auto ok = store_->GetTask("s", "ok");
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  auto tasks = store_->ListTasks("s");
  ASSERT_FALSE(tasks.has_value());
  EXPECT_EQ(tasks.error().code(), Code::kCorruption);

  // Replacing the suite drops the corrupt task.
  ASSERT_TRUE(store_->PutSuite(Suite("s"), {Task("s", "ok")}));
  EXPECT_TRUE(store_->ListTasks("s").has_value());
}

TEST_F(StoreTest, NewerSchemaIsAVersionMismatch) {
  store_.reset();
  RawPut(dir_, "default", "schema_version", "4");
  auto store = Store::Open(dir_);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), Code::kVersionMismatch);
  EXPECT_EQ(store.error().message(), "database " + dir_ +
                                         " has schema version 4, newer than this build's 3; "
                                         "upgrade crucible");
  // The refused open left the database openable by a build that knows it.
  EXPECT_EQ(RawGet(dir_, "default", "schema_version"), "4");
  RawPut(dir_, "default", "schema_version", "3");
  Reopen();
}

// Schema version 2 evidence has no per-file changes, static facts or
// regression tests, and its scores no scoring version: it reads as it was
// stored, and the database is marked version 3 when opened for writing.
TEST_F(StoreTest, SchemaVersion2EvidenceReadsAsStoredAndTheDatabaseIsUpgraded) {
  ASSERT_TRUE(store_->CreateRun(Run("r"), {Attempt("r", 0)}));
  v1::Evidence old;
  old.set_final_diff("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-1\n+2\n");
  old.add_files_touched("x");
  v1::Score score;
  score.set_completed(true);
  auto done = Attempt("r", 0);
  done.set_state(v1::Attempt::DONE);
  ASSERT_TRUE(store_->FinishAttempt(done, old, score));
  store_.reset();
  RawPut(dir_, "default", "schema_version", "2");
  Reopen();
  EXPECT_EQ(RawGet(dir_, "default", "schema_version"), "3");
  auto evidence = store_->GetEvidence("r", 0);
  ASSERT_TRUE(evidence.has_value()) << evidence.error().ToString();
  EXPECT_EQ(evidence->SerializeAsString(), old.SerializeAsString());
  EXPECT_TRUE(evidence->changes().empty());
  auto stored = store_->GetScore("r", 0);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->scoring_version(), 0u) << "scored before versions existed";
}

// Schema version 1 stored one TraceEvent per key. Such a database keeps its
// traces readable, takes new batches beside them, and is marked version 2 when
// opened for writing (so that a version-1 build refuses it rather than
// misreading batches; today the current version); opening it read-only
// leaves it as it is.
TEST_F(StoreTest, SchemaVersion1TracesStayReadableAndTheDatabaseIsUpgraded) {
  store_.reset();
  auto tmp = TempDir::Create("crucible-store-v1-");
  ASSERT_TRUE(tmp.has_value());
  std::string old_dir = tmp->path() + "/db";
  ASSERT_TRUE(Store::Open(old_dir).has_value());  // every column family
  RawPut(old_dir, "default", "schema_version", "1");
  RawPut(old_dir, "runs", KeyEncoder().Str("old").Take(), Run("old").SerializeAsString());
  for (uint64_t seq : {0, 1, 2}) {
    RawPut(old_dir, "events", KeyEncoder().Str("old").U64(0).U64(seq).Take(),
           Event(seq, "v1-" + std::to_string(seq)).SerializeAsString());
  }
  // A version-1 event with every field at its default is an empty value.
  RawPut(old_dir, "events", KeyEncoder().Str("old").U64(1).U64(0).Take(), "");

  {
    auto ro = Store::Open(old_dir, OpenOptions{.read_only = true});
    ASSERT_TRUE(ro.has_value()) << ro.error().ToString();
    auto events = (*ro)->ListEvents("old", 0);
    ASSERT_TRUE(events.has_value()) << events.error().ToString();
    EXPECT_EQ(events->size(), 3u);
  }
  EXPECT_EQ(RawGet(old_dir, "default", "schema_version"), "1");

  auto store = Store::Open(old_dir);
  ASSERT_TRUE(store.has_value()) << store.error().ToString();
  EXPECT_EQ(RawGet(old_dir, "default", "schema_version"), "3");
  ASSERT_TRUE((*store)->AppendEvents("old", 0, {Event(3, "v2-3"), Event(4, "v2-4")}));
  auto events = (*store)->ListEvents("old", 0);
  ASSERT_TRUE(events.has_value()) << events.error().ToString();
  std::vector<std::string> names;
  for (const auto& e : *events) names.push_back(e.name());
  EXPECT_EQ(names, (std::vector<std::string>{"v1-0", "v1-1", "v1-2", "v2-3", "v2-4"}));
  auto empty = (*store)->ListEvents("old", 1);
  ASSERT_TRUE(empty.has_value()) << empty.error().ToString();
  ASSERT_EQ(empty->size(), 1u);
  EXPECT_EQ((*empty)[0].seq(), 0u);
}

TEST_F(StoreTest, CorruptTraceBatchIsCorruptionNamingItsKey) {
  ASSERT_TRUE(store_->AppendEvents("r", 0, {Event(0, "plan")}));
  ASSERT_TRUE(store_->AppendEvents("r", 1, {Event(0, "plan")}));
  store_.reset();
  RawPut(dir_, "events", KeyEncoder().Str("r").U64(0).U64(7).Take(), kGarbage);
  Reopen();
  auto events = store_->ListEvents("r", 0);
  ASSERT_FALSE(events.has_value());
  EXPECT_EQ(events.error().code(), Code::kCorruption);
  EXPECT_THAT(events.error().message(), HasSubstr("events"));
  EXPECT_THAT(events.error().message(), HasSubstr("run 'r' attempt 0 seq 7"));
  // The other attempt's trace is untouched.
  auto other = store_->ListEvents("r", 1);
  ASSERT_TRUE(other.has_value()) << other.error().ToString();
  EXPECT_EQ(other->size(), 1u);
}

TEST_F(StoreTest, UnreadableSchemaVersionIsCorruption) {
  store_.reset();
  RawPut(dir_, "default", "schema_version", "one");
  auto store = Store::Open(dir_);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), Code::kCorruption);
  EXPECT_THAT(store.error().message(), HasSubstr(dir_));
}

TEST_F(StoreTest, UnknownColumnFamiliesAreKeptAndMissingOnesCreated) {
  ASSERT_TRUE(store_->PutRun(Run("r")));
  store_.reset();
  RawPut(dir_, "from-the-future", "k", "v");
  Reopen();
  EXPECT_TRUE(store_->GetRun("r").has_value());

  // A Crucible database that lacks some column families (e.g. written by an
  // older build) gets them on open.
  auto tmp = TempDir::Create("crucible-store-test-");
  ASSERT_TRUE(tmp.has_value());
  std::string old_dir = tmp->path() + "/db";
  RawPut(old_dir, "default", "schema_version", "1");
  RawPut(old_dir, "runs", KeyEncoder().Str("old").Take(), Run("old").SerializeAsString());
  auto store = Store::Open(old_dir);
  ASSERT_TRUE(store.has_value()) << store.error().ToString();
  EXPECT_TRUE((*store)->GetRun("old").has_value());
  ASSERT_TRUE((*store)->CreateRun(Run("new"), {Attempt("new", 0)}));
  ASSERT_TRUE((*store)->AppendEvents("new", 0, {Event(0, "plan")}));
  EXPECT_EQ((*store)->ListEvents("new", 0)->size(), 1u);
}

v1::Verdict MakeVerdict(const std::string& run, uint64_t attempt, const std::string& verdict,
                        const std::string& note = "") {
  v1::Verdict v;
  v.set_run_id(run);
  v.set_attempt(attempt);
  v.set_verdict(verdict);
  v.set_note(note);
  v.set_reviewer("ana");
  v.set_at_ms(1000);
  return v;
}

std::vector<std::string> Notes(const std::vector<v1::Verdict>& verdicts) {
  std::vector<std::string> notes;
  for (const auto& v : verdicts) notes.push_back(std::to_string(v.attempt()) + ":" + v.note());
  return notes;
}

TEST_F(StoreTest, VerdictsListByAttemptThenInTheOrderAdded) {
  ASSERT_TRUE(store_->CreateRun(Run("r"), {Attempt("r", 0), Attempt("r", 1), Attempt("r", 2)}));
  ASSERT_TRUE(store_->CreateRun(Run("other"), {Attempt("other", 0)}));
  // Many calls within one millisecond, and several verdicts per batch: the
  // order added survives, whatever the notes' own order.
  ASSERT_TRUE(store_->AddVerdicts({MakeVerdict("r", 2, "reject", "z"),
                                   MakeVerdict("r", 0, "needs-changes", "y"),
                                   MakeVerdict("other", 0, "accept", "o")}));
  std::vector<std::string> want = {"0:y"};
  for (int i = 0; i < 50; ++i) {
    const std::string note = std::string(1, static_cast<char>('x' - i % 20)) + std::to_string(i);
    ASSERT_TRUE(store_->AddVerdicts({MakeVerdict("r", 0, i % 2 ? "accept" : "reject", note)}));
    want.push_back("0:" + note);
  }
  ASSERT_TRUE(store_->AddVerdicts({MakeVerdict("r", 2, "accept", "a")}));
  want.push_back("2:z");
  want.push_back("2:a");
  auto got = store_->ListVerdicts("r");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(Notes(*got), want);
  // Every field round-trips; other runs do not leak in.
  EXPECT_EQ((*got)[0].reviewer(), "ana");
  EXPECT_EQ((*got)[0].run_id(), "r");
  EXPECT_EQ(Notes(*store_->ListVerdicts("other")), std::vector<std::string>{"0:o"});
  EXPECT_TRUE(store_->ListVerdicts("none")->empty());

  // Append-only across a reopen: nothing is replaced, the order stays.
  Reopen();
  ASSERT_TRUE(store_->AddVerdicts({MakeVerdict("r", 0, "accept", "after")}));
  want.insert(want.begin() + 51, "0:after");
  EXPECT_EQ(Notes(*store_->ListVerdicts("r")), want);
}

TEST_F(StoreTest, ABatchOfVerdictsWithOneBadVerdictWritesNothing) {
  ASSERT_TRUE(store_->CreateRun(Run("r"), {Attempt("r", 0), Attempt("r", 1)}));
  ASSERT_TRUE(store_->AddVerdicts({MakeVerdict("r", 0, "accept", "kept")}));

  auto unknown =
      store_->AddVerdicts({MakeVerdict("r", 1, "accept"), MakeVerdict("r", 7, "reject")});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Code::kNotFound);
  EXPECT_EQ(unknown.error().message(),
            "run 'r' has no attempt 7 (its attempts are numbered 0 to 1)");

  auto no_run =
      store_->AddVerdicts({MakeVerdict("r", 1, "accept"), MakeVerdict("gone", 0, "reject")});
  ASSERT_FALSE(no_run);
  EXPECT_EQ(no_run.error().code(), Code::kNotFound);
  EXPECT_THAT(no_run.error().message(), HasSubstr("run 'gone' not found"));

  auto bad = store_->AddVerdicts({MakeVerdict("r", 1, "accept"), MakeVerdict("r", 0, "maybe")});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(bad.error().message(), HasSubstr("verdict 'maybe' is not accept, reject or"));

  auto no_id = store_->AddVerdicts({MakeVerdict("", 0, "accept")});
  ASSERT_FALSE(no_id);
  EXPECT_EQ(no_id.error().code(), Code::kInvalidArgument);

  EXPECT_EQ(Notes(*store_->ListVerdicts("r")), std::vector<std::string>{"0:kept"});
  EXPECT_TRUE(store_->AddVerdicts({}));
}

TEST_F(StoreTest, CorruptVerdictIsCorruptionNamingItsKey) {
  ASSERT_TRUE(store_->CreateRun(Run("r"), {Attempt("r", 0)}));
  ASSERT_TRUE(store_->AddVerdicts({MakeVerdict("r", 0, "accept")}));
  store_.reset();
  RawPut(dir_, "verdicts", KeyEncoder().Str("r").U64(0).U64(5).U64(6).U64(7).Take(), kGarbage);
  Reopen();
  auto got = store_->ListVerdicts("r");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Code::kCorruption);
  EXPECT_THAT(got.error().message(), HasSubstr("verdicts"));
  EXPECT_THAT(got.error().message(), HasSubstr("run 'r' attempt 0 stored_at_ms 5 seq 6"));
}

TEST_F(StoreTest, ADatabaseWithoutVerdictsReadsAsNoneReadOnlyAndGetsThemOnWrite) {
  // A database last written by a build before verdicts existed.
  auto tmp = TempDir::Create("crucible-store-test-");
  ASSERT_TRUE(tmp.has_value());
  std::string old_dir = tmp->path() + "/db";
  RawPut(old_dir, "default", "schema_version", "3");
  for (const char* cf : {"suites", "tasks", "attempts", "events", "evidence", "scores"}) {
    RawPut(old_dir, cf, "\x01", "");
  }
  RawPut(old_dir, "runs", KeyEncoder().Str("old").Take(), Run("old").SerializeAsString());
  RawPut(old_dir, "attempts", KeyEncoder().Str("old").U64(0).Take(),
         Attempt("old", 0).SerializeAsString());
  {
    auto reader = Store::Open(old_dir, OpenOptions{.create_if_missing = false, .read_only = true});
    ASSERT_TRUE(reader) << reader.error().ToString();
    auto none = (*reader)->ListVerdicts("old");
    ASSERT_TRUE(none) << none.error().ToString();
    EXPECT_TRUE(none->empty());
    auto write = (*reader)->AddVerdicts({MakeVerdict("old", 0, "accept")});
    ASSERT_FALSE(write);
    EXPECT_EQ(write.error().code(), Code::kFailedPrecondition);
  }
  auto store = Store::Open(old_dir);
  ASSERT_TRUE(store) << store.error().ToString();
  ASSERT_TRUE((*store)->AddVerdicts({MakeVerdict("old", 0, "accept", "n")}));
  EXPECT_EQ(Notes(*(*store)->ListVerdicts("old")), std::vector<std::string>{"0:n"});
}

class OpenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("crucible-open-test-");
    ASSERT_TRUE(tmp.has_value()) << tmp.error().ToString();
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
  }
  std::unique_ptr<TempDir> tmp_;
};

TEST_F(OpenTest, CreatesMissingAndEmptyDirectories) {
  std::string nested = tmp_->path() + "/a/b/db";
  auto store = Store::Open(nested);
  ASSERT_TRUE(store.has_value()) << store.error().ToString();

  std::string empty = tmp_->path() + "/empty";
  ASSERT_TRUE(MakeDirs(empty));
  auto store2 = Store::Open(empty);
  ASSERT_TRUE(store2.has_value()) << store2.error().ToString();
}

TEST_F(OpenTest, MissingDirectoryWithoutCreateIsNotFound) {
  std::string dir = tmp_->path() + "/nope";
  auto store = Store::Open(dir, OpenOptions{.create_if_missing = false});
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), Code::kNotFound);
  EXPECT_THAT(store.error().message(), HasSubstr(dir));
}

TEST_F(OpenTest, DirectoryWithOtherFilesIsRefused) {
  std::string dir = tmp_->path() + "/project";
  ASSERT_TRUE(MakeDirs(dir + "/src"));
  ASSERT_TRUE(WriteFile(dir + "/README.md", "hello\n"));
  ASSERT_TRUE(WriteFile(dir + "/src/main.py", "print(1)\n"));
  auto store = Store::Open(dir);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(store.error().message(), dir + " is not a Crucible database (no RocksDB files)");
  // Nothing was written into it.
  EXPECT_FALSE(ReadFile(dir + "/CURRENT").has_value());
  EXPECT_FALSE(ReadFile(dir + "/LOCK").has_value());
}

TEST_F(OpenTest, RegularFileIsRefused) {
  std::string file = tmp_->path() + "/file.db";
  ASSERT_TRUE(WriteFile(file, "not a database"));
  auto store = Store::Open(file);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), Code::kFailedPrecondition);
  EXPECT_THAT(store.error().message(), HasSubstr(file));
  auto content = ReadFile(file);
  ASSERT_TRUE(content.has_value());
  EXPECT_EQ(*content, "not a database");
}

TEST_F(OpenTest, ForeignRocksDbIsRefused) {
  std::string dir = tmp_->path() + "/foreign";
  RawPut(dir, "default", "some", "data");
  auto store = Store::Open(dir);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(store.error().message(),
            dir + " is a RocksDB database but not a Crucible one (no schema version)");
  // It was not turned into one: the next open refuses it the same way, and no
  // Crucible column family was added.
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"default"}));
  auto again = Store::Open(dir);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace crucible::storage

namespace crucible::storage {
namespace {

TEST(RestartAttempt, DropsTheEarlierTrysEventsAndNoOtherAttempts) {
  auto dir = TempDir::Create("crucible-store-restart-");
  ASSERT_TRUE(dir);
  auto store = Store::Open(dir->path() + "/db");
  ASSERT_TRUE(store) << store.error().ToString();
  v1::Run run;
  run.set_id("r");
  std::vector<v1::Attempt> attempts(3);
  for (uint64_t i = 0; i < 3; ++i) {
    attempts[i].set_run_id("r");
    attempts[i].set_number(i);
  }
  ASSERT_TRUE((*store)->CreateRun(run, attempts));
  for (uint64_t a = 0; a < 3; ++a) {
    std::vector<v1::TraceEvent> events(5);
    for (uint64_t s = 0; s < 5; ++s) events[s].set_seq(s);
    events[4].set_seq(~uint64_t{0});  // the largest seq is covered too
    ASSERT_TRUE((*store)->AppendEvents("r", a, events));
  }
  v1::Attempt retry = attempts[1];
  retry.set_tries(1);
  retry.set_error("try 1 on r1: lease expired");
  ASSERT_TRUE((*store)->RestartAttempt(retry));
  auto none = (*store)->ListEvents("r", 1);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  for (uint64_t a : {0u, 2u}) {
    auto kept = (*store)->ListEvents("r", a);
    ASSERT_TRUE(kept);
    EXPECT_EQ(kept->size(), 5u) << "attempt " << a;
  }
  auto stored = (*store)->GetAttempt("r", 1);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->tries(), 1);
}

}  // namespace
}  // namespace crucible::storage

namespace crucible::storage {
namespace {

TEST(ReadOnlyOpen, ReadsBesideAWriterAndRefusesWrites) {
  auto dir = TempDir::Create("crucible-store-ro-");
  ASSERT_TRUE(dir);
  std::string db = dir->path() + "/db";
  auto writer = Store::Open(db);
  ASSERT_TRUE(writer) << writer.error().ToString();
  v1::Suite suite;
  suite.set_name("s");
  std::vector<v1::GoldenTask> tasks(1);
  tasks[0].set_id("t1");
  ASSERT_TRUE((*writer)->PutSuite(suite, tasks));

  // A second read-write open is refused while the writer holds the lock...
  auto second = Store::Open(db);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Code::kUnavailable);
  // ...but a reader is not.
  auto reader = Store::Open(db, OpenOptions{.create_if_missing = false, .read_only = true});
  ASSERT_TRUE(reader) << reader.error().ToString();
  auto got = (*reader)->ListTasks("s");
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].id(), "t1");
  auto write = (*reader)->PutSuite(suite, {});
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(write.error().message().find("read-only"), std::string::npos)
      << write.error().message();
  // The writer's data is untouched by the refused write.
  auto still = (*writer)->ListTasks("s");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->size(), 1u);
}

TEST(ReadOnlyOpen, MissingDatabaseIsNotCreated) {
  auto dir = TempDir::Create("crucible-store-ro-");
  ASSERT_TRUE(dir);
  auto reader =
      Store::Open(dir->path() + "/none", OpenOptions{.create_if_missing = true, .read_only = true});
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code(), Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir->path() + "/none"));
}

}  // namespace
}  // namespace crucible::storage
