// Where the coordinator sends attempts: runners prefer the repositories they
// hold (and take other work when theirs runs out), and attempts whose agent
// requires labels go only to runners that have them. Real ROUTER/DEALER
// sockets and a real RocksDB; the runners are played by the test.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <optional>
#include <thread>

#include <zmq.hpp>

#include "base/fs.h"
#include "coordinator/coordinator.h"
#include "protocol/framing.h"
#include "tests/coordinator/fake_peer.h"
#include "vcs/pack.h"

namespace crucible::coordinator {
namespace {

// A runner (or client) played by the test.
struct Peer : testing::FakePeer {
  using FakePeer::FakePeer;
  void Hello(int slots, const std::vector<std::string>& labels,
             const std::vector<std::string>& repos) {
    v1::Envelope env;
    env.mutable_hello()->set_slots(slots);
    for (const auto& l : labels) env.mutable_hello()->add_labels(l);
    for (const auto& r : repos) env.mutable_hello()->add_repos(r);
    Join(env);
  }
  void Finish(const v1::Lease& lease) {
    v1::Envelope result;
    result.mutable_result()->set_lease_id(lease.lease_id());
    auto* t = result.mutable_result()->mutable_evidence()->mutable_tests()->add_tests();
    t->set_id("tests.x::test");
    t->set_status(v1::TestOutcome::PASSED);
    Send(result);
    Expect(v1::Envelope::kAck);
  }
  v1::StatusReply Status() {
    v1::Envelope req;
    req.mutable_status_request();
    Send(req);
    return Expect(v1::Envelope::kStatusReply).status_reply();
  }
};

class SchedulingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("crucible-sched-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    auto store = storage::Store::Open(dir_->path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    // Two suites of four tasks, each mined from its own repository (the
    // coordinator only names them here: the runners are played by the test).
    for (const auto& [suite, repo] : {std::pair{"s1", kRepo1}, std::pair{"s2", kRepo2}}) {
      v1::Suite s;
      s.set_name(suite);
      s.set_repo_path(repo);
      std::vector<v1::GoldenTask> tasks(4);
      for (int i = 0; i < 4; ++i) {
        tasks[i].set_suite(suite);
        tasks[i].set_id("t" + std::to_string(i));
        tasks[i].set_repo_path(repo);
        tasks[i].add_fail_to_pass("tests.x::test");
      }
      ASSERT_TRUE(store_->PutSuite(s, tasks));
    }
    CoordinatorOptions options;
    options.listen = "ipc://" + dir_->path() + "/c.sock";
    auto c = Coordinator::Create(*store_, options);
    ASSERT_TRUE(c) << c.error().ToString();
    c_ = std::move(*c);
  }

  void Serve() {
    server_ = std::thread([this] { EXPECT_TRUE(c_->Serve([this] { return stop_.load(); })); });
  }

  void TearDown() override {
    stop_ = true;
    if (server_.joinable()) server_.join();
  }

  std::string endpoint() const { return "ipc://" + dir_->path() + "/c.sock"; }

  static v1::AgentSpec Agent(const std::string& name, std::vector<std::string> require = {}) {
    v1::AgentSpec a;
    a.set_name(name);
    a.set_command("builtin:noop");
    for (auto& r : require) a.add_require(r);
    return a;
  }

  static constexpr const char* kRepo1 = "/srv/repos/one";
  static constexpr const char* kRepo2 = "/srv/repos/two";
  std::unique_ptr<TempDir> dir_;
  storage::StorePtr store_;
  std::unique_ptr<Coordinator> c_;
  zmq::context_t ctx_;
  std::thread server_;
  std::atomic<bool> stop_{false};
};

TEST_F(SchedulingTest, RunnersKeepToTheirRepositoryAndStealWhenItRunsOut) {
  auto run1 = c_->SubmitRun("s1", {Agent("a")}, 1);
  auto run2 = c_->SubmitRun("s2", {Agent("a")}, 1);
  ASSERT_TRUE(run1 && run2);
  Serve();
  const std::string id1 = vcs::RepoId(kRepo1), id2 = vcs::RepoId(kRepo2);
  // The queue holds the four attempts of repository one, then those of two.
  Peer b(ctx_, endpoint(), "b");
  b.Hello(1, {}, {id2});
  auto held = b.Expect(v1::Envelope::kLease).lease();
  // B looked past repository one's attempts for the first of its own.
  EXPECT_EQ(held.repo_id(), id2);
  EXPECT_EQ(held.attempt().run_id(), run2->id());
  EXPECT_EQ(held.attempt().number(), 0u);
  EXPECT_EQ(held.repo_name(), "two");
  EXPECT_TRUE(held.task().repo_path().empty()) << "the coordinator's path is not sent";

  Peer a(ctx_, endpoint(), "a");
  a.Hello(1, {}, {id1});
  std::vector<std::pair<std::string, uint64_t>> done_by_a;
  for (int i = 0; i < 7; ++i) {
    auto lease = a.Expect(v1::Envelope::kLease).lease();
    done_by_a.emplace_back(lease.repo_id(), lease.attempt().number());
    a.Finish(lease);
  }
  // A did its own repository's attempts in queue order, then (B being busy)
  // took the rest of repository two's instead of idling.
  std::vector<std::pair<std::string, uint64_t>> want = {{id1, 0}, {id1, 1}, {id1, 2}, {id1, 3},
                                                        {id2, 1}, {id2, 2}, {id2, 3}};
  EXPECT_EQ(done_by_a, want);
  b.Finish(held);
  auto status = b.Status();
  for (const auto& r : status.runners()) {
    if (r.name() == "a") {
      // It holds repository two now too (it was leased attempts of it).
      EXPECT_EQ(std::vector<std::string>(r.repos().begin(), r.repos().end()),
                (std::vector<std::string>{id1, id2}));
    }
  }
  auto s1 = store_->ListAttempts(run1->id());
  auto s2 = store_->ListAttempts(run2->id());
  ASSERT_TRUE(s1 && s2);
  for (const auto& at : *s1) EXPECT_EQ(at.runner(), "a");
  EXPECT_EQ((*s2)[0].runner(), "b");
}

TEST_F(SchedulingTest, RequiredLabelsPickTheRunner) {
  auto run = c_->SubmitRun("s1", {Agent("gpu", {"gpu=yes"}), Agent("any")}, 1);
  ASSERT_TRUE(run) << run.error().ToString();
  Serve();
  Peer cpu(ctx_, endpoint(), "cpu");
  cpu.Hello(1, {"gpu=no", "zone=x"}, {});
  // Only the attempts of `any` fit this runner.
  for (int i = 0; i < 4; ++i) {
    auto lease = cpu.Expect(v1::Envelope::kLease).lease();
    EXPECT_EQ(lease.agent().name(), "any");
    cpu.Finish(lease);
  }
  EXPECT_FALSE(cpu.Wait(v1::Envelope::kLease, 5)) << "leased an attempt needing gpu=yes";
  auto status = cpu.Status();
  EXPECT_EQ(status.queue_length(), 4);
  EXPECT_EQ(status.waiting_for_labels(), 4);

  Peer gpu(ctx_, endpoint(), "gpu");
  gpu.Hello(1, {"zone=x", "gpu=yes"}, {});
  for (int i = 0; i < 4; ++i) {
    auto lease = gpu.Expect(v1::Envelope::kLease).lease();
    EXPECT_EQ(lease.agent().name(), "gpu");
    gpu.Finish(lease);
  }
  EXPECT_EQ(cpu.Status().waiting_for_labels(), 0);
  auto attempts = store_->ListAttempts(run->id());
  ASSERT_TRUE(attempts);
  for (const auto& at : *attempts) {
    EXPECT_EQ(at.state(), v1::Attempt::DONE);
    EXPECT_EQ(at.runner(), at.agent() == "gpu" ? "gpu" : "cpu") << at.number();
  }
  // The requirement is stored with the run, so a resumed run keeps it.
  auto stored = store_->GetRun(run->id());
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->agents(0).require_size(), 1);
  EXPECT_EQ(stored->agents(0).require(0), "gpu=yes");
}

TEST_F(SchedulingTest, MalformedRequirementIsRefused) {
  auto run = c_->SubmitRun("s1", {Agent("a", {"gpu"})}, 1);
  ASSERT_FALSE(run);
  EXPECT_EQ(run.error().code(), Code::kInvalidArgument);
  EXPECT_NE(run.error().message().find("'gpu'"), std::string::npos) << run.error().message();
}

TEST_F(SchedulingTest, SubmitRunRequirementsApplyToEveryAgent) {
  Serve();
  Peer client(ctx_, endpoint(), "client");
  v1::Envelope req;
  req.mutable_submit_run()->set_suite("s2");
  *req.mutable_submit_run()->add_agents() = Agent("a");
  req.mutable_submit_run()->set_samples(1);
  req.mutable_submit_run()->add_require("os=linux");
  client.Send(req);
  auto accepted = client.Expect(v1::Envelope::kRunAccepted).run_accepted().run();
  ASSERT_EQ(accepted.agents_size(), 1);
  ASSERT_EQ(accepted.agents(0).require_size(), 1);
  EXPECT_EQ(accepted.agents(0).require(0), "os=linux");
  EXPECT_EQ(client.Status().waiting_for_labels(), 4);
}

}  // namespace
}  // namespace crucible::coordinator
