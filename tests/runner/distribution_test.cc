// Repository distribution: a real coordinator (ROUTER, RocksDB) and a real
// runner (RunRunner, sandbox) on ipc://. The lease does not carry the
// coordinator's repository path, so the runner can only check out from its
// own cache, filled by one packfile per repository (or a clone URL).
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <thread>

#include <zmq.hpp>

#include "agent-runner/repo_cache.h"
#include "agent-runner/runner.h"
#include "base/fs.h"
#include "coordinator/coordinator.h"
#include "protocol/framing.h"
#include "tests/runner/value_tests.h"
#include "tests/support/timed_wait.h"
#include "tests/support/zmq_socket.h"
#include "tests/vcs/git_fixture.h"
#include "vcs/pack.h"

namespace crucible::runner {
namespace {

using crucible::testing::GitRepo;

std::string ValuePatch(int from, int to) {
  return "diff --git a/value.txt b/value.txt\n--- a/value.txt\n+++ b/value.txt\n@@ -1 +1 @@\n-" +
         std::to_string(from) + "\n+" + std::to_string(to) + "\n";
}

v1::ObjectsPack Part(const std::string& repo, const std::string& bytes, uint64_t offset,
                     uint64_t total) {
  v1::ObjectsPack p;
  p.set_repo_id(repo);
  p.set_pack(bytes);
  p.set_offset(offset);
  p.set_total_size(total);
  p.set_objects(3);
  return p;
}

TEST(PackAssembler, PutsChunksTogetherPerRepository) {
  PackAssembler a;
  EXPECT_FALSE(a.Add(Part("x", "PA", 0, 6)));
  EXPECT_FALSE(a.Add(Part("y", "ab", 0, 3)));  // another repository in between
  EXPECT_FALSE(a.Add(Part("x", "CK", 2, 6)));
  EXPECT_EQ(a.held("x"), 4u);
  auto x = a.Add(Part("x", "!!", 4, 6));
  ASSERT_TRUE(x);
  EXPECT_EQ(x->pack(), "PACK!!");
  EXPECT_EQ(x->objects(), 3u);
  EXPECT_EQ(a.held("x"), 0u);
  auto y = a.Add(Part("y", "c", 2, 3));
  ASSERT_TRUE(y);
  EXPECT_EQ(y->pack(), "abc");
}

TEST(PackAssembler, WholeAnswersAndErrorsPassStraightThrough) {
  PackAssembler a;
  auto old = a.Add(Part("x", "PACK", 0, 0));  // a coordinator that does not chunk
  ASSERT_TRUE(old);
  EXPECT_EQ(old->pack(), "PACK");
  auto one = a.Add(Part("x", "PACK", 0, 4));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->pack(), "PACK");
  EXPECT_FALSE(a.Add(Part("x", "PA", 0, 4)));
  v1::ObjectsPack error;
  error.set_repo_id("x");
  error.set_error("unknown repository id 'x'");
  auto e = a.Add(error);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->error(), "unknown repository id 'x'");
  EXPECT_EQ(a.held("x"), 0u);  // the error ended the unfinished pack
}

TEST(PackAssembler, ARestartBeginsAgainAndAGapDropsThePack) {
  PackAssembler a;
  EXPECT_FALSE(a.Add(Part("x", "OL", 0, 6)));
  // The coordinator answered again (after a reconnect): start over.
  EXPECT_FALSE(a.Add(Part("x", "PA", 0, 6)));
  EXPECT_FALSE(a.Add(Part("x", "CK", 2, 6)));
  auto x = a.Add(Part("x", "!!", 4, 6));
  ASSERT_TRUE(x);
  EXPECT_EQ(x->pack(), "PACK!!");
  // A chunk that does not continue what is held drops it; so does a chunk
  // of an answer never started.
  EXPECT_FALSE(a.Add(Part("x", "PA", 0, 6)));
  EXPECT_FALSE(a.Add(Part("x", "!!", 4, 6)));
  EXPECT_EQ(a.held("x"), 0u);
  EXPECT_FALSE(a.Add(Part("x", "CK", 2, 6)));
  EXPECT_EQ(a.held("x"), 0u);
  // More bytes than announced is an error, not a pack.
  EXPECT_FALSE(a.Add(Part("x", "PA", 0, 3)));
  auto over = a.Add(Part("x", "CK", 2, 3));
  ASSERT_TRUE(over);
  EXPECT_TRUE(over->pack().empty());
  EXPECT_NE(over->error().find("more pack bytes than it announced"), std::string::npos);
}

class DistributionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    auto dir = TempDir::Create("crucible-dist-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    auto store = storage::Store::Open(dir_->path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    AddSuite(repo_, "s");
  }

  // Suite `name` of two tasks on different commits of `repo_`: 1 -> 2, then 2 -> 3.
  void AddSuite(GitRepo& repo_, const std::string& name) {
    repo_.Write("run_tests.sh", kRunTests);
    repo_.Write("value.txt", "1\n");
    std::string c1 = repo_.Commit("one");
    repo_.Write("value.txt", "2\n");
    repo_.Write("tests/expected.txt", "2\n");
    std::string c2 = repo_.Commit("two");
    repo_.Write("value.txt", "3\n");
    repo_.Write("tests/expected.txt", "3\n");
    std::string c3 = repo_.Commit("three");
    std::vector<v1::GoldenTask> tasks(2);
    const std::string commits[] = {c1, c2, c3};
    for (int i = 0; i < 2; ++i) {
      auto& t = tasks[i];
      t.set_suite(name);
      t.set_id("t" + std::to_string(i));
      t.set_repo_path(repo_.path());
      t.set_base_commit(commits[i]);
      t.set_merged_commit(commits[i + 1]);
      t.set_intent("Increment the value.");
      t.set_source_patch(ValuePatch(i + 1, i + 2));
      t.set_test_patch(
          i == 0 ? "diff --git a/tests/expected.txt b/tests/expected.txt\nnew file mode 100644\n"
                   "--- /dev/null\n+++ b/tests/expected.txt\n@@ -0,0 +1 @@\n+2\n"
                 : "diff --git a/tests/expected.txt b/tests/expected.txt\n--- "
                   "a/tests/expected.txt\n+++ b/tests/expected.txt\n@@ -1 +1 @@\n-2\n+3\n");
      t.add_fail_to_pass("tests.check::test_value");
      t.set_test_cmd("sh run_tests.sh {junit}");
      t.set_test_timeout_s(30);
    }
    v1::Suite suite;
    suite.set_name(name);
    suite.set_repo_path(repo_.path());
    ASSERT_TRUE(store_->PutSuite(suite, tasks));
  }

  // Runs the oracle on both tasks with one runner; returns its status line.
  v1::RunnerStatus RunWith(const RunnerOptions& extra,
                           coordinator::CoordinatorOptions coptions = {}) {
    coptions.listen = "ipc://" + dir_->path() + "/c.sock";
    auto c = coordinator::Coordinator::Create(*store_, coptions);
    EXPECT_TRUE(c) << c.error().ToString();
    if (!c) return {};
    coordinator_ = std::move(*c);
    v1::AgentSpec oracle;
    oracle.set_name("oracle");
    oracle.set_command(agent_command_);
    auto run = coordinator_->SubmitRun("s", {oracle}, 1);
    EXPECT_TRUE(run) << run.error().ToString();
    if (!run) return {};
    RunnerOptions options = extra;
    options.coordinator = "ipc://" + dir_->path() + "/c.sock";
    options.name = "r1";
    options.workdir = workdir();
    options.slots = 1;
    options.stop = &stop_;
    std::thread runner([&] { EXPECT_TRUE(RunRunner(options)); });
    auto served = coordinator_->ServeUntilFinished(run->id(), {}, crucible::testing::GiveUpAfter());
    EXPECT_TRUE(served) << served.error().ToString();
    auto snapshot = coordinator_->Snapshot();
    stop_ = true;
    runner.join();
    auto attempts = store_->ListAttempts(run->id());
    EXPECT_TRUE(attempts);
    attempts_ = *attempts;
    for (const auto& a : *attempts) {
      if (!expect_done_) continue;
      EXPECT_EQ(a.state(), v1::Attempt::DONE) << a.error();
      auto score = store_->GetScore(run->id(), a.number());
      EXPECT_TRUE(score);
      if (score) {
        EXPECT_TRUE(score->completed()) << "attempt " << a.number() << ": " << score->reason();
      }
    }
    EXPECT_TRUE(snapshot);
    if (!snapshot || snapshot->runners_size() != 1) {
      ADD_FAILURE() << "expected one runner in status";
      return {};
    }
    return snapshot->runners(0);
  }

  std::string workdir() const { return dir_->path() + "/runner"; }

  GitRepo repo_;
  std::unique_ptr<TempDir> dir_;
  storage::StorePtr store_;
  std::unique_ptr<coordinator::Coordinator> coordinator_;
  std::atomic<bool> stop_{false};
  bool expect_done_ = true;
  std::string agent_command_ = "builtin:oracle";
  std::vector<v1::Attempt> attempts_;
};

TEST_F(DistributionTest, RunnerChecksOutFromItsCacheFilledByOnePack) {
  auto status = RunWith({});
  const std::string id = vcs::RepoId(repo_.path());
  // Two attempts on two different commits, one pack: the coordinator sent
  // the commits of every task of the repository the first time.
  EXPECT_EQ(status.pack_requests(), 1);
  EXPECT_EQ(std::vector<std::string>(status.repos().begin(), status.repos().end()),
            std::vector<std::string>{id});
  const std::string cache = workdir() + "/repos/" + id + ".git";
  auto held = vcs::HeldCommits(cache);
  ASSERT_TRUE(held) << held.error().ToString();
  EXPECT_FALSE(held->empty());
}

TEST_F(DistributionTest, RunnerGivenACloneUrlFetchesInsteadOfAskingForPacks) {
  RunnerOptions options;
  options.repo_urls["s"] = "file://" + repo_.path();
  auto status = RunWith(options);
  EXPECT_EQ(status.pack_requests(), 0);
  auto has =
      vcs::HasCommit(workdir() + "/repos/" + vcs::RepoId(repo_.path()) + ".git", repo_.Head());
  ASSERT_TRUE(has) << has.error().ToString();
  EXPECT_TRUE(*has);
}

TEST_F(DistributionTest, PackOverTheMessageLimitArrivesInChunks) {
  // The pack of the three commits is about 1 KiB; a 4500-byte message limit
  // leaves 404 bytes of pack per message, so it comes in several chunks.
  coordinator::CoordinatorOptions small;
  small.max_message_bytes = 4500;
  small.max_tries = 1;
  auto status = RunWith({}, small);
  EXPECT_EQ(status.pack_requests(), 1);
  ASSERT_EQ(attempts_.size(), 2u);
}

TEST_F(DistributionTest, EvidenceOverTheMessageLimitEndsTheAttemptSayingWhy) {
  // A 300 KiB change against a 64 KiB message limit: the result could never
  // be delivered, and its lease would stay taken forever.
  coordinator::CoordinatorOptions small;
  small.max_message_bytes = 64 << 10;
  small.max_tries = 1;
  expect_done_ = false;
  agent_command_ = "head -c 307200 /dev/zero | tr '\\0' 'a' | fold -w 100 > big.txt";
  RunWith({}, small);
  ASSERT_EQ(attempts_.size(), 2u);
  for (const auto& a : attempts_) {
    EXPECT_EQ(a.state(), v1::Attempt::DONE) << a.error();
    auto evidence = store_->GetEvidence(a.run_id(), a.number());
    ASSERT_TRUE(evidence) << evidence.error().ToString();
    EXPECT_NE(evidence->truncated().find("the final diff"), std::string::npos)
        << evidence->truncated();
    EXPECT_GT(evidence->diff_bytes(), 300000u);
    auto score = store_->GetScore(a.run_id(), a.number());
    ASSERT_TRUE(score);
    EXPECT_FALSE(score->completed());
  }
}

// A large repository: its pack is built off the coordinator's loop (a status
// request sent after the pack request is answered first, and heartbeats are
// served meanwhile) and comes in chunks of at most 1 MiB that, put together,
// index into a cache holding the commit.
TEST_F(DistributionTest, LargePackIsBuiltOffTheLoopAndSentInChunks) {
  GitRepo big;
  std::mt19937_64 rng(7);
  std::string blob(24 << 20, '\0');  // incompressible: the pack is as large
  for (size_t i = 0; i + 8 <= blob.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(&blob[i], &v, 8);
  }
  big.Write("blob.bin", blob);
  const std::string c1 = big.Commit("big");
  big.Write("value.txt", "1\n");
  const std::string c2 = big.Commit("small");
  v1::GoldenTask task;
  task.set_suite("big");
  task.set_id("t0");
  task.set_repo_path(big.path());
  task.set_base_commit(c1);
  task.set_merged_commit(c2);
  task.add_fail_to_pass("tests.check::test_value");
  task.set_test_cmd("true");
  v1::Suite suite;
  suite.set_name("big");
  suite.set_repo_path(big.path());
  ASSERT_TRUE(store_->PutSuite(suite, {task}));

  coordinator::CoordinatorOptions options;
  options.listen = "ipc://" + dir_->path() + "/big.sock";
  auto c = coordinator::Coordinator::Create(*store_, options);
  ASSERT_TRUE(c) << c.error().ToString();
  v1::AgentSpec oracle;
  oracle.set_name("oracle");
  oracle.set_command("builtin:oracle");
  ASSERT_TRUE((*c)->SubmitRun("big", {oracle}, 1));
  std::atomic<bool> stop{false};
  std::thread server([&] { EXPECT_TRUE((*c)->Serve([&] { return stop.load(); })); });

  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::routing_id, "fake-runner");
  crucible::testing::BoundSocket(s);
  s.connect(options.listen);
  v1::Envelope hello;
  hello.mutable_hello()->set_runner_name("fake-runner");
  hello.mutable_hello()->set_slots(1);
  ASSERT_TRUE(protocol::Send(s, hello));
  v1::Envelope ask;
  ask.mutable_objects_request()->set_repo_id(vcs::RepoId(big.path()));
  ask.mutable_objects_request()->add_want(c1);
  ASSERT_TRUE(protocol::Send(s, ask));
  v1::Envelope status;
  status.mutable_status_request();
  ASSERT_TRUE(protocol::Send(s, status));

  PackAssembler assembler;
  std::optional<v1::ObjectsPack> whole;
  int chunks = 0;
  int status_before_chunk = -1;  // chunks received when the status reply came
  size_t largest = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!whole && std::chrono::steady_clock::now() < deadline) {
    auto msg = protocol::Receive(s, false, 250);
    if (!msg) {
      v1::Envelope hb;  // stay alive while the pack is built
      hb.mutable_heartbeat()->set_free_slots(0);
      ASSERT_TRUE(protocol::Send(s, hb));
      continue;
    }
    ASSERT_TRUE(msg->envelope) << msg->envelope.error().ToString();
    if (msg->envelope->has_status_reply() && status_before_chunk < 0) status_before_chunk = chunks;
    if (!msg->envelope->has_objects_pack()) continue;
    const auto& part = msg->envelope->objects_pack();
    ASSERT_TRUE(part.error().empty()) << part.error();
    ++chunks;
    largest = std::max(largest, part.pack().size());
    whole = assembler.Add(part);
  }
  stop = true;
  server.join();
  ASSERT_TRUE(whole) << "the pack did not arrive whole (" << chunks << " chunks)";
  EXPECT_EQ(status_before_chunk, 0) << "the status reply waited for the pack";
  EXPECT_GE(chunks, 24);
  EXPECT_LE(largest, size_t{1} << 20);
  EXPECT_EQ(whole->pack().size(), whole->total_size());
  const std::string cache = dir_->path() + "/cache.git";
  ASSERT_TRUE(vcs::InitBareRepository(cache));
  auto indexed = vcs::IndexPack(cache, whole->pack());
  ASSERT_TRUE(indexed) << indexed.error().ToString();
  auto has = vcs::HasCommit(cache, c1);
  ASSERT_TRUE(has) << has.error().ToString();
  EXPECT_TRUE(*has);
}

// Two repositories, two runners whose caches (from an earlier session, kept
// in their work directories) hold one each: each keeps to its own.
TEST_F(DistributionTest, RunnersPreferTheRepositoryTheirCacheHolds) {
  GitRepo other;
  AddSuite(other, "s2");
  coordinator::CoordinatorOptions options;
  options.listen = "ipc://" + dir_->path() + "/c.sock";
  auto c = coordinator::Coordinator::Create(*store_, options);
  ASSERT_TRUE(c) << c.error().ToString();
  coordinator_ = std::move(*c);
  v1::AgentSpec oracle;
  oracle.set_name("oracle");
  oracle.set_command("builtin:oracle");
  auto start = [&](const std::string& name, std::atomic<bool>& stop) {
    RunnerOptions o;
    o.coordinator = "ipc://" + dir_->path() + "/c.sock";
    o.name = name;
    o.workdir = dir_->path() + "/" + name;
    o.stop = &stop;
    return std::thread([o] { EXPECT_TRUE(RunRunner(o)); });
  };
  // The earlier session: runner a alone on s, runner b alone on s2.
  for (const auto& [suite, name] : {std::pair{"s", "a"}, std::pair{"s2", "b"}}) {
    auto run = coordinator_->SubmitRun(suite, {oracle}, 1);
    ASSERT_TRUE(run);
    std::atomic<bool> stop{false};
    auto t = start(name, stop);
    EXPECT_TRUE(coordinator_->ServeUntilFinished(run->id(), {}, crucible::testing::GiveUpAfter()));
    stop = true;
    t.join();
  }
  // Both together on both suites (four attempts each), queued s first.
  auto run1 = coordinator_->SubmitRun("s", {oracle}, 2);
  auto run2 = coordinator_->SubmitRun("s2", {oracle}, 2);
  ASSERT_TRUE(run1 && run2);
  std::atomic<bool> stop{false};
  auto ta = start("a", stop);
  auto tb = start("b", stop);
  EXPECT_TRUE(coordinator_->ServeUntilFinished(run1->id(), {}, crucible::testing::GiveUpAfter()));
  EXPECT_TRUE(coordinator_->ServeUntilFinished(run2->id(), {}, crucible::testing::GiveUpAfter()));
  auto snapshot = coordinator_->Snapshot();
  stop = true;
  ta.join();
  tb.join();
  ASSERT_TRUE(snapshot);
  const std::string id1 = vcs::RepoId(repo_.path()), id2 = vcs::RepoId(other.path());
  for (const auto& r : snapshot->runners()) {
    // Each announced its cache; at most one pack each, when it took over
    // the other's repository at the end instead of idling.
    EXPECT_LE(r.pack_requests(), 1) << r.name();
    EXPECT_NE(std::find(r.repos().begin(), r.repos().end(), r.name() == "a" ? id1 : id2),
              r.repos().end())
        << r.name();
  }
  auto own = [&](const std::string& run_id, const std::string& runner) {
    auto attempts = store_->ListAttempts(run_id);
    EXPECT_TRUE(attempts);
    int n = 0;
    for (const auto& a : *attempts) {
      EXPECT_EQ(a.state(), v1::Attempt::DONE);
      n += a.runner() == runner ? 1 : 0;
    }
    return n;
  };
  EXPECT_GE(own(run1->id(), "a"), 3);
  EXPECT_GE(own(run2->id(), "b"), 3);
}

}  // namespace
}  // namespace crucible::runner
