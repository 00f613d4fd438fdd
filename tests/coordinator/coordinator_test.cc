// The coordinator over a real ROUTER socket and a real RocksDB; the runner
// side is played by the test through a real DEALER socket.
#include "coordinator/coordinator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include <zmq.hpp>

#include "base/fs.h"
#include "protocol/framing.h"

namespace crucible::coordinator {
namespace {

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("crucible-coord-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    auto store = storage::Store::Open(dir_->path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    v1::Suite suite;
    suite.set_name("s");
    suite.set_task_count(2);
    std::vector<v1::GoldenTask> tasks(2);
    for (int i = 0; i < 2; ++i) {
      tasks[i].set_suite("s");
      tasks[i].set_id("t" + std::to_string(i));
      tasks[i].add_fail_to_pass("tests.x::test_" + std::to_string(i));
    }
    ASSERT_TRUE(store_->PutSuite(suite, tasks));
    endpoint_ = "ipc://" + dir_->path() + "/c.sock";
  }

  std::unique_ptr<Coordinator> Make(CoordinatorOptions extra = {}) {
    extra.listen = endpoint_;
    auto c = Coordinator::Create(*store_, extra);
    EXPECT_TRUE(c) << c.error().ToString();
    return c ? std::move(*c) : nullptr;
  }

  static std::vector<v1::AgentSpec> Agents() {
    std::vector<v1::AgentSpec> agents(2);
    agents[0].set_name("a");
    agents[0].set_command("builtin:oracle");
    agents[1].set_name("b");
    agents[1].set_command("builtin:noop");
    return agents;
  }

  // A runner played by the test.
  struct FakeRunner {
    FakeRunner(zmq::context_t& ctx, const std::string& endpoint, const std::string& name)
        : socket(ctx, zmq::socket_type::dealer) {
      socket.set(zmq::sockopt::routing_id, name);
      socket.set(zmq::sockopt::linger, 0);
      socket.connect(endpoint);
    }
    void Send(const v1::Envelope& env) { ASSERT_TRUE(protocol::Send(socket, env)); }
    v1::Envelope Expect(v1::Envelope::BodyCase what) {
      for (int i = 0; i < 100; ++i) {
        auto msg = protocol::Receive(socket, false, 100);
        if (!msg) continue;
        EXPECT_TRUE(msg->envelope);
        if (msg->envelope && msg->envelope->body_case() == what) return *msg->envelope;
      }
      ADD_FAILURE() << "no message of type " << what;
      return {};
    }
    void Hello(int slots) {
      v1::Envelope env;
      env.mutable_hello()->set_slots(slots);
      Send(env);
      Expect(v1::Envelope::kWelcome);
    }
    void Finish(const v1::Lease& lease, bool pass) {
      v1::Envelope trace;
      trace.mutable_trace()->set_lease_id(lease.lease_id());
      auto* ev = trace.mutable_trace()->add_events();
      ev->set_seq(0);
      ev->set_kind("TOOL");
      ev->set_name("edit_file");
      Send(trace);
      Expect(v1::Envelope::kAck);
      v1::Envelope result;
      result.mutable_result()->set_lease_id(lease.lease_id());
      auto* t = result.mutable_result()->mutable_evidence()->mutable_tests()->add_tests();
      t->set_id(lease.task().fail_to_pass(0));
      t->set_status(pass ? v1::TestOutcome::PASSED : v1::TestOutcome::FAILED);
      Send(result);
      Expect(v1::Envelope::kAck);
    }
    zmq::socket_t socket;
  };

  std::unique_ptr<TempDir> dir_;
  storage::StorePtr store_;
  std::string endpoint_;
  zmq::context_t ctx_;
};

TEST_F(CoordinatorTest, SubmitRunQueuesAttemptsTaskMajor) {
  auto c = Make();
  auto run = c->SubmitRun("s", Agents(), 2);
  ASSERT_TRUE(run) << run.error().ToString();
  EXPECT_EQ(run->attempt_count(), 8);
  auto attempts = store_->ListAttempts(run->id());
  ASSERT_TRUE(attempts);
  ASSERT_EQ(attempts->size(), 8u);
  // Task-major: both agents and samples of t0 before any attempt of t1.
  for (int i = 0; i < 4; ++i) EXPECT_EQ((*attempts)[i].task_id(), "t0");
  for (int i = 4; i < 8; ++i) EXPECT_EQ((*attempts)[i].task_id(), "t1");
  EXPECT_EQ((*attempts)[0].agent(), "a");
  EXPECT_EQ((*attempts)[1].agent(), "b");
  for (const auto& a : *attempts) EXPECT_EQ(a.state(), v1::Attempt::QUEUED);
}

TEST_F(CoordinatorTest, SubmitRunRejectsBadInput) {
  auto c = Make();
  auto unknown = c->SubmitRun("nope", Agents(), 1);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Code::kNotFound);
  EXPECT_NE(unknown.error().message().find("nope"), std::string::npos);
  auto dup = Agents();
  dup[1].set_name("a");
  EXPECT_FALSE(c->SubmitRun("s", dup, 1));
  EXPECT_FALSE(c->SubmitRun("s", {}, 1));
  EXPECT_FALSE(c->SubmitRun("s", Agents(), 0));
}

TEST_F(CoordinatorTest, LeasesScoresAndStoresEveryAttemptOnce) {
  auto c = Make();
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run);
  std::atomic<bool> served{false};
  std::thread server([&] {
    auto st = c->ServeUntilFinished(run->id(), {}, {});
    EXPECT_TRUE(st) << st.error().ToString();
    served = true;
  });
  FakeRunner r(ctx_, endpoint_, "r1");
  r.Hello(1);
  v1::Envelope hb;
  hb.mutable_heartbeat()->set_free_slots(1);
  r.Send(hb);
  std::set<uint64_t> seen;
  for (int i = 0; i < 4; ++i) {
    auto lease = r.Expect(v1::Envelope::kLease).lease();
    EXPECT_TRUE(seen.insert(lease.attempt().number()).second) << "attempt leased twice";
    r.Finish(lease, lease.agent().name() == "a");
  }
  server.join();
  EXPECT_TRUE(served);
  auto stored = store_->GetRun(run->id());
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->state(), v1::Run::FINISHED);
  auto attempts = store_->ListAttempts(run->id());
  ASSERT_TRUE(attempts);
  for (const auto& a : *attempts) {
    EXPECT_EQ(a.state(), v1::Attempt::DONE);
    auto score = store_->GetScore(run->id(), a.number());
    ASSERT_TRUE(score);
    EXPECT_EQ(score->completed(), a.agent() == "a");
    auto events = store_->ListEvents(run->id(), a.number());
    ASSERT_TRUE(events);
    EXPECT_EQ(events->size(), 1u);
  }
}

TEST_F(CoordinatorTest, MalformedMessagesAreAnsweredAndServingGoesOn) {
  auto c = Make();
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run);
  std::thread server([&] { EXPECT_TRUE(c->ServeUntilFinished(run->id(), {}, {})); });

  FakeRunner bad(ctx_, endpoint_, "bad");
  bad.socket.send(zmq::str_buffer("garbage"), zmq::send_flags::none);
  auto err = bad.Expect(v1::Envelope::kError);
  EXPECT_NE(err.error().message().find("expected 2 frames"), std::string::npos);
  // Talking before hello is refused too.
  v1::Envelope hb;
  hb.mutable_heartbeat()->set_free_slots(1);
  bad.Send(hb);
  EXPECT_NE(bad.Expect(v1::Envelope::kError).error().message().find("hello"), std::string::npos);

  FakeRunner good(ctx_, endpoint_, "good");
  good.Hello(1);
  for (int i = 0; i < 4; ++i) good.Finish(good.Expect(v1::Envelope::kLease).lease(), true);
  server.join();
}

TEST_F(CoordinatorTest, LostRunnerLeasesGoBackAndLateResultIsIgnored) {
  auto c = Make();
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run);
  FakeRunner dead(ctx_, endpoint_, "dead");
  std::atomic<bool> lost{false};
  std::atomic<bool> lost_handled{false};
  std::thread server([&] {
    auto check = [&]() -> Status {
      if (lost.exchange(false)) {
        c->RunnerLost("dead");
        lost_handled = true;
      }
      return {};
    };
    EXPECT_TRUE(c->ServeUntilFinished(run->id(), {}, check));
  });
  dead.Hello(1);
  auto stale = dead.Expect(v1::Envelope::kLease).lease();
  lost = true;  // the embedding process saw the runner exit
  while (!lost_handled) std::this_thread::sleep_for(std::chrono::milliseconds(10));

  FakeRunner alive(ctx_, endpoint_, "alive");
  alive.Hello(1);
  std::map<uint64_t, int> leased;
  for (int i = 0; i < 4; ++i) {
    auto lease = alive.Expect(v1::Envelope::kLease).lease();
    ++leased[lease.attempt().number()];
    if (i == 0) {
      // The stale runner's late result must not count.
      v1::Envelope result;
      result.mutable_result()->set_lease_id(stale.lease_id());
      dead.Send(result);
    }
    alive.Finish(lease, false);
  }
  server.join();
  EXPECT_EQ(leased.size(), 4u);
  EXPECT_EQ(leased[stale.attempt().number()], 1);
  auto a = store_->GetAttempt(run->id(), stale.attempt().number());
  ASSERT_TRUE(a);
  EXPECT_EQ(a->runner(), "alive");
  EXPECT_EQ(a->tries(), 1);
}

TEST_F(CoordinatorTest, RestartedCoordinatorResumesWithoutRerunningFinishedAttempts) {
  std::string run_id;
  uint64_t finished_number = 0;
  {
    auto c = Make();
    auto run = c->SubmitRun("s", Agents(), 1);
    ASSERT_TRUE(run);
    run_id = run->id();
    std::atomic<bool> stop{false};
    std::thread server([&] {
      auto st = c->ServeUntilFinished(run_id, {}, [&]() -> Status {
        if (stop) return Fail(Code::kUnavailable, "test stops the coordinator");
        return {};
      });
      EXPECT_FALSE(st);
    });
    FakeRunner r(ctx_, endpoint_, "r1");
    r.Hello(1);
    auto lease = r.Expect(v1::Envelope::kLease).lease();
    finished_number = lease.attempt().number();
    r.Finish(lease, true);
    r.Expect(v1::Envelope::kLease);  // a second attempt is leased, then the coordinator dies
    stop = true;
    server.join();
  }
  auto c = Make();
  std::thread server([&] { EXPECT_TRUE(c->ServeUntilFinished(run_id, {}, {})); });
  FakeRunner r(ctx_, endpoint_, "r2");
  r.Hello(1);
  for (int i = 0; i < 3; ++i) {
    auto lease = r.Expect(v1::Envelope::kLease).lease();
    EXPECT_NE(lease.attempt().number(), finished_number) << "a finished attempt ran again";
    r.Finish(lease, true);
  }
  server.join();
  auto attempts = store_->ListAttempts(run_id);
  ASSERT_TRUE(attempts);
  for (const auto& a : *attempts) EXPECT_EQ(a.state(), v1::Attempt::DONE);
}

}  // namespace
}  // namespace crucible::coordinator
