// The coordinator over a real ROUTER socket and a real RocksDB; the runner
// side is played by the test through a real DEALER socket.
#include "coordinator/coordinator.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <zmq.hpp>

#include "base/fs.h"
#include "protocol/framing.h"
#include "tests/coordinator/fake_peer.h"
#include "tests/support/free_port.h"
#include "tests/support/timed_wait.h"

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
  struct FakeRunner : testing::FakePeer {
    using FakePeer::FakePeer;
    void Hello(int slots, const std::vector<std::string>& held = {}) {
      v1::Envelope env;
      env.mutable_hello()->set_slots(slots);
      for (const auto& h : held) env.mutable_hello()->add_held_leases(h);
      Join(env);
    }
    // Sends the result of `lease` and returns the coordinator's Ack.
    v1::Ack Result(const v1::Lease& lease, bool pass, const std::string& infra_error = "") {
      v1::Envelope result;
      result.mutable_result()->set_lease_id(lease.lease_id());
      result.mutable_result()->set_infra_error(infra_error);
      auto* t = result.mutable_result()->mutable_evidence()->mutable_tests()->add_tests();
      t->set_id(lease.task().fail_to_pass(0));
      t->set_status(pass ? v1::TestOutcome::PASSED : v1::TestOutcome::FAILED);
      Send(result);
      return Expect(v1::Envelope::kAck).ack();
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

TEST_F(CoordinatorTest, RunsTheDevSplitUnlessAskedForTheHeldOutOne) {
  auto tasks = store_->ListTasks("s");
  ASSERT_TRUE(tasks);
  (*tasks)[1].set_held_out(true);
  auto suite = store_->GetSuite("s");
  ASSERT_TRUE(suite);
  ASSERT_TRUE(store_->PutSuite(*suite, *tasks));
  auto c = Make();
  auto dev = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(dev) << dev.error().ToString();
  EXPECT_FALSE(dev->held_out());
  auto dev_attempts = store_->ListAttempts(dev->id());
  ASSERT_TRUE(dev_attempts);
  ASSERT_EQ(dev_attempts->size(), 2u);
  for (const auto& a : *dev_attempts) EXPECT_EQ(a.task_id(), "t0");
  auto held = c->SubmitRun("s", Agents(), 1, /*held_out=*/true);
  ASSERT_TRUE(held) << held.error().ToString();
  EXPECT_TRUE(held->held_out());
  auto held_attempts = store_->ListAttempts(held->id());
  ASSERT_TRUE(held_attempts);
  ASSERT_EQ(held_attempts->size(), 2u);
  for (const auto& a : *held_attempts) EXPECT_EQ(a.task_id(), "t1");
}

TEST_F(CoordinatorTest, OnlyTasksKeepsThoseTasksOfTheSplitAndNamesUnknownOnes) {
  auto c = Make();
  auto run = c->SubmitRun("s", Agents(), 1, false, false, {}, {}, {"t1"});
  ASSERT_TRUE(run) << run.error().ToString();
  auto attempts = store_->ListAttempts(run->id());
  ASSERT_TRUE(attempts);
  ASSERT_EQ(attempts->size(), 2u);
  for (const auto& a : *attempts) EXPECT_EQ(a.task_id(), "t1");
  auto unknown = c->SubmitRun("s", Agents(), 1, false, false, {}, {}, {"t0", "t7", "t9"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Code::kInvalidArgument);
  EXPECT_NE(unknown.error().message().find("no dev task t7, t9"), std::string::npos)
      << unknown.error().message();
}

TEST_F(CoordinatorTest, EachLeaseCarriesItsOwnPredictionAndClientsNeverSeeTheFile) {
  auto c = Make();
  v1::AgentSpec preds;
  preds.set_name("p");
  preds.set_command("predictions:/data/preds.jsonl");
  (*preds.mutable_predictions())["t0"].set_patch("diff --git a/x b/x\n-zero\n");
  (*preds.mutable_predictions())["t0"].set_line(1);
  (*preds.mutable_predictions())["t9"].set_patch("diff --git a/y b/y\n");
  (*preds.mutable_predictions())["t9"].set_line(4);
  // t1 has none: its lease carries no prediction (no submission).
  auto run = c->SubmitRun("s", {preds}, 1);
  ASSERT_TRUE(run) << run.error().ToString();
  // What a client is given holds the warning, not the patches.
  ASSERT_EQ(run->agents_size(), 1);
  EXPECT_EQ(run->agents(0).predictions_size(), 0);
  ASSERT_EQ(run->agents(0).prediction_warnings_size(), 1);
  EXPECT_EQ(run->agents(0).prediction_warnings(0),
            "/data/preds.jsonl:4: instance t9: unknown instance_id (suite 's' has no such task); "
            "left out");
  auto status = c->GetRunStatus(run->id());
  ASSERT_TRUE(status);
  EXPECT_EQ(status->run().agents(0).predictions_size(), 0);
  // The stored run keeps the known ones, so a resumed run still has them.
  auto stored = store_->GetRun(run->id());
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->agents(0).predictions_size(), 1);
  EXPECT_TRUE(stored->agents(0).predictions().contains("t0"));

  std::thread server([&] {
    auto st = c->ServeUntilFinished(run->id(), {}, testing::GiveUpAfter());
    EXPECT_TRUE(st) << st.error().ToString();
  });
  FakeRunner r(ctx_, endpoint_, "r1");
  r.Hello(1);
  std::map<std::string, std::string> got;
  for (int i = 0; i < 2; ++i) {
    auto lease = r.Expect(v1::Envelope::kLease).lease();
    EXPECT_EQ(lease.agent().predictions_size(), 0);
    EXPECT_EQ(lease.agent().command(), "predictions:/data/preds.jsonl");
    got[lease.task().id()] = lease.prediction();
    r.Finish(lease, true);
  }
  server.join();
  EXPECT_EQ(got["t0"], "diff --git a/x b/x\n-zero\n");
  EXPECT_EQ(got["t1"], "");
}

TEST_F(CoordinatorTest, TasksWithAnEnvironmentMismatchAreLeftOutUnlessAsked) {
  auto tasks = store_->ListTasks("s");
  ASSERT_TRUE(tasks);
  (*tasks)[1].mutable_environment()->set_status("mismatch");
  (*tasks)[1].mutable_environment()->add_failing(
      "FAIL_TO_PASS tests.x::test_1 failed with the gold patch");
  (*tasks)[0].mutable_environment()->set_status("ok");
  auto suite = store_->GetSuite("s");
  ASSERT_TRUE(suite);
  ASSERT_TRUE(store_->PutSuite(*suite, *tasks));
  auto c = Make();
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run) << run.error().ToString();
  EXPECT_FALSE(run->include_mismatched());
  ASSERT_EQ(run->mismatched_tasks_size(), 1);
  EXPECT_EQ(run->mismatched_tasks(0), "t1");
  auto attempts = store_->ListAttempts(run->id());
  ASSERT_TRUE(attempts);
  ASSERT_EQ(attempts->size(), 2u);
  for (const auto& a : *attempts) EXPECT_EQ(a.task_id(), "t0");

  auto all = c->SubmitRun("s", Agents(), 1, false, false, {}, {}, {}, /*include_mismatched=*/true);
  ASSERT_TRUE(all) << all.error().ToString();
  EXPECT_TRUE(all->include_mismatched());
  EXPECT_EQ(all->mismatched_tasks_size(), 1);
  auto all_attempts = store_->ListAttempts(all->id());
  ASSERT_TRUE(all_attempts);
  EXPECT_EQ(all_attempts->size(), 4u);

  // Nothing left to run: the error says why and how to run them anyway.
  auto none = c->SubmitRun("s", Agents(), 1, false, false, {}, {}, {"t1"});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("environment check"), std::string::npos)
      << none.error().message();
  EXPECT_NE(none.error().message().find("--include-mismatched"), std::string::npos);
}

TEST_F(CoordinatorTest, HeldOutRunOfAnUnsplitSuiteSaysHowToSplit) {
  auto c = Make();
  auto run = c->SubmitRun("s", Agents(), 1, /*held_out=*/true);
  ASSERT_FALSE(run);
  EXPECT_NE(run.error().message().find("suite split"), std::string::npos) << run.error().message();
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

TEST_F(CoordinatorTest, ReviewRoundsComeFromTheAgentElseTheSuiteAndTravelInTheLease) {
  auto suite = store_->GetSuite("s");
  ASSERT_TRUE(suite);
  suite->mutable_review()->set_rounds(3);
  suite->mutable_review()->add_allowed_paths("docs/*");
  auto tasks = store_->ListTasks("s");
  ASSERT_TRUE(tasks);
  ASSERT_TRUE(store_->PutSuite(*suite, *tasks));
  auto c = Make();
  auto agents = Agents();
  agents[1].set_rounds(2);  // its own wins; agent a takes the suite's
  v1::ReviewerSpec reviewer;
  reviewer.set_name("style");
  reviewer.set_command("true");
  auto run = c->SubmitRun("s", agents, 1, false, false, {}, {reviewer});
  ASSERT_TRUE(run) << run.error().ToString();
  ASSERT_EQ(run->agents_size(), 2);
  EXPECT_EQ(run->agents(0).rounds(), 3);
  EXPECT_EQ(run->agents(1).rounds(), 2);
  ASSERT_EQ(run->reviewers_size(), 1);
  auto stored = store_->GetRun(run->id());
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->agents(0).rounds(), 3);
  EXPECT_EQ(stored->reviewers(0).name(), "style");

  std::thread server([&] {
    auto st = c->ServeUntilFinished(run->id(), {}, testing::GiveUpAfter());
    EXPECT_TRUE(st) << st.error().ToString();
  });
  FakeRunner r(ctx_, endpoint_, "r1");
  r.Hello(1);
  v1::Envelope hb;
  hb.mutable_heartbeat()->set_free_slots(1);
  r.Send(hb);
  for (int i = 0; i < 4; ++i) {
    auto lease = r.Expect(v1::Envelope::kLease).lease();
    EXPECT_EQ(lease.agent().rounds(), lease.agent().name() == "a" ? 3 : 2);
    ASSERT_EQ(lease.reviewers_size(), 1);
    EXPECT_EQ(lease.reviewers(0).command(), "true");
    EXPECT_EQ(lease.review().rounds(), 3);
    ASSERT_EQ(lease.review().allowed_paths_size(), 1);
    EXPECT_EQ(lease.review().allowed_paths(0), "docs/*");
    r.Finish(lease, true);
  }
  server.join();
}

TEST_F(CoordinatorTest, ReviewRoundsAndReviewersAreChecked) {
  auto c = Make();
  auto agents = Agents();
  agents[0].set_rounds(11);
  auto many = c->SubmitRun("s", agents, 1);
  ASSERT_FALSE(many);
  EXPECT_NE(many.error().message().find("agent 'a': 11 review rounds"), std::string::npos)
      << many.error().message();
  v1::ReviewerSpec nameless;
  nameless.set_command("true");
  auto bad = c->SubmitRun("s", Agents(), 1, false, false, {}, {nameless});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("expected NAME=COMMAND"), std::string::npos);
  v1::ReviewerSpec one;
  one.set_name("x");
  one.set_command("true");
  auto twice = c->SubmitRun("s", Agents(), 1, false, false, {}, {one, one});
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message().find("reviewer name 'x' given twice"), std::string::npos);
  // Without rounds anywhere, an agent has one.
  auto plain = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->agents(0).rounds(), 1);
}

TEST_F(CoordinatorTest, LeasesScoresAndStoresEveryAttemptOnce) {
  auto c = Make();
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run);
  std::atomic<bool> served{false};
  std::thread server([&] {
    auto st = c->ServeUntilFinished(run->id(), {}, testing::GiveUpAfter());
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
  std::thread server(
      [&] { EXPECT_TRUE(c->ServeUntilFinished(run->id(), {}, testing::GiveUpAfter())); });

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
  auto give_up = testing::GiveUpAfter();
  std::thread server([&] {
    auto check = [&]() -> Status {
      if (lost.exchange(false)) {
        c->RunnerLost("dead");
        lost_handled = true;
      }
      return give_up();
    };
    EXPECT_TRUE(c->ServeUntilFinished(run->id(), {}, check));
  });
  dead.Hello(1);
  auto stale = dead.Expect(v1::Envelope::kLease).lease();
  lost = true;  // the embedding process saw the runner exit
  for (int i = 0; i < 1000 && !lost_handled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(lost_handled) << "the serving loop did not call its check within 10 s";

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
  std::thread server(
      [&] { EXPECT_TRUE(c->ServeUntilFinished(run_id, {}, testing::GiveUpAfter())); });
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

CoordinatorOptions Fast() {
  CoordinatorOptions o;
  o.heartbeat_ms = 100;
  o.liveness = 3;
  o.grace_ms = 100;
  o.lease_ms = 400;
  return o;
}

TEST_F(CoordinatorTest, UnrenewedLeaseExpiresAndItsLateResultIsIgnoredOnceLeasedAgain) {
  auto c = Make(Fast());
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run);
  std::thread server(
      [&] { EXPECT_TRUE(c->ServeUntilFinished(run->id(), {}, testing::GiveUpAfter())); });
  FakeRunner r(ctx_, endpoint_, "r1");
  r.Hello(1);
  // Heartbeats that do not list the lease do not renew it.
  auto first = r.Expect(v1::Envelope::kLease).lease();
  auto again = r.Expect(v1::Envelope::kLease).lease();
  EXPECT_EQ(again.attempt().number(), first.attempt().number());
  EXPECT_NE(again.lease_id(), first.lease_id());
  auto late = r.Result(first, true);
  EXPECT_TRUE(late.ignored()) << "a result under a lease that was replaced must not count";
  EXPECT_TRUE(late.result());
  EXPECT_FALSE(r.Result(again, true).ignored());
  for (int i = 0; i < 3; ++i) r.Finish(r.Expect(v1::Envelope::kLease).lease(), true);
  server.join();
  auto a = store_->GetAttempt(run->id(), first.attempt().number());
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state(), v1::Attempt::DONE);
  EXPECT_EQ(a->lease_id(), again.lease_id());
  EXPECT_EQ(a->tries(), 1);
  EXPECT_NE(a->error().find("lease expired"), std::string::npos) << a->error();
}

TEST_F(CoordinatorTest, SilentRunnerComingBackClaimsItsExpiredLeaseOnce) {
  auto c = Make(Fast());
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run);
  std::thread server(
      [&] { EXPECT_TRUE(c->ServeUntilFinished(run->id(), {}, testing::GiveUpAfter())); });
  FakeRunner r(ctx_, endpoint_, "frozen");
  r.Hello(1);
  auto lease = r.Expect(v1::Envelope::kLease).lease();
  // Frozen: nothing sent for liveness x heartbeat + grace + lease.
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  for (;;) {  // drain the coordinator's heartbeats
    auto m = protocol::Receive(r.socket, false, 0);
    if (!m) break;
  }
  r.joined = false;
  r.Hello(1, {lease.lease_id()});
  EXPECT_FALSE(r.Result(lease, true).ignored()) << "nobody else had it: the result counts";
  std::set<uint64_t> seen{lease.attempt().number()};
  for (int i = 0; i < 3; ++i) {
    auto l = r.Expect(v1::Envelope::kLease).lease();
    EXPECT_TRUE(seen.insert(l.attempt().number()).second) << "attempt leased twice";
    r.Finish(l, true);
  }
  server.join();
  auto attempts = store_->ListAttempts(run->id());
  ASSERT_TRUE(attempts);
  for (const auto& a : *attempts) EXPECT_EQ(a.state(), v1::Attempt::DONE);
  EXPECT_EQ((*attempts)[lease.attempt().number()].tries(), 1);
}

TEST_F(CoordinatorTest, AttemptFailingTooOftenFailsWithItsHistory) {
  auto opts = Fast();
  opts.max_tries = 2;
  auto c = Make(opts);
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run);
  std::thread server(
      [&] { EXPECT_TRUE(c->ServeUntilFinished(run->id(), {}, testing::GiveUpAfter())); });
  FakeRunner r(ctx_, endpoint_, "r1");
  r.Hello(1);
  int leases = 0;
  for (int i = 0; i < 5; ++i) {
    auto l = r.Expect(v1::Envelope::kLease).lease();
    ++leases;
    if (l.attempt().number() == 0) {
      r.Result(l, false, "sandbox could not start");
    } else {
      r.Finish(l, true);
    }
  }
  server.join();
  EXPECT_EQ(leases, 5);
  auto a = store_->GetAttempt(run->id(), 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state(), v1::Attempt::FAILED);
  EXPECT_EQ(a->tries(), 2);
  EXPECT_NE(a->error().find("try 1 on r1: sandbox could not start"), std::string::npos)
      << a->error();
  EXPECT_NE(a->error().find("try 2 on r1"), std::string::npos) << a->error();
}

TEST_F(CoordinatorTest, RunnerClaimsItsLeaseBackFromARestartedCoordinator) {
  std::string run_id;
  v1::Lease held;
  FakeRunner r(ctx_, endpoint_, "r1");
  {
    auto c = Make(Fast());
    auto run = c->SubmitRun("s", Agents(), 1);
    ASSERT_TRUE(run);
    run_id = run->id();
    std::atomic<bool> stop{false};
    std::thread server([&] {
      EXPECT_FALSE(c->ServeUntilFinished(run_id, {}, [&]() -> Status {
        if (stop) return Fail(Code::kUnavailable, "killed");
        return {};
      }));
    });
    r.Hello(1);
    held = r.Expect(v1::Envelope::kLease).lease();
    stop = true;
    server.join();
  }
  auto c = Make(Fast());
  std::thread server(
      [&] { EXPECT_TRUE(c->ServeUntilFinished(run_id, {}, testing::GiveUpAfter())); });
  r.joined = false;
  r.Hello(1, {held.lease_id()});
  r.Finish(held, true);
  for (int i = 0; i < 3; ++i) {
    auto l = r.Expect(v1::Envelope::kLease).lease();
    EXPECT_NE(l.attempt().number(), held.attempt().number()) << "a claimed attempt ran again";
    r.Finish(l, true);
  }
  server.join();
  auto a = store_->GetAttempt(run_id, held.attempt().number());
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state(), v1::Attempt::DONE);
  EXPECT_EQ(a->tries(), 0);
}

TEST_F(CoordinatorTest, DaemonServesSeveralRunsAndAnswersClients) {
  auto c = Make(Fast());
  std::atomic<bool> stop{false};
  std::thread server([&] { EXPECT_TRUE(c->Serve([&] { return stop.load(); })); });
  FakeRunner client(ctx_, endpoint_, "client-1");
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    v1::Envelope submit;
    submit.mutable_submit_run()->set_suite("s");
    for (const auto& a : Agents()) *submit.mutable_submit_run()->add_agents() = a;
    submit.mutable_submit_run()->set_samples(1);
    client.Send(submit);
    ids.push_back(client.Expect(v1::Envelope::kRunAccepted).run_accepted().run().id());
  }
  // A bad submission is answered with an error naming the suite.
  v1::Envelope bad;
  bad.mutable_submit_run()->set_suite("ghost");
  *bad.mutable_submit_run()->add_agents() = Agents()[0];
  bad.mutable_submit_run()->set_samples(1);
  client.Send(bad);
  EXPECT_NE(client.Expect(v1::Envelope::kError).error().message().find("ghost"), std::string::npos);

  v1::Envelope watch;
  watch.mutable_watch_run()->set_run_id(ids[0]);
  client.Send(watch);
  auto first = client.Expect(v1::Envelope::kRunUpdate).run_update();
  EXPECT_EQ(first.status().run().attempt_count(), 4);
  EXPECT_FALSE(first.finished());

  FakeRunner r(ctx_, endpoint_, "r1");
  r.Hello(2);
  v1::Envelope status;
  status.mutable_status_request();
  client.Send(status);
  auto reply = client.Expect(v1::Envelope::kStatusReply).status_reply();
  EXPECT_EQ(reply.runs_size(), 2);
  ASSERT_EQ(reply.runners_size(), 1);
  EXPECT_EQ(reply.runners(0).slots(), 2);

  std::set<std::pair<std::string, uint64_t>> seen;
  for (int i = 0; i < 8; ++i) {
    auto l = r.Expect(v1::Envelope::kLease).lease();
    EXPECT_TRUE(seen.emplace(l.attempt().run_id(), l.attempt().number()).second);
    r.Finish(l, true);
  }
  bool finished = false;
  for (int i = 0; i < 20 && !finished; ++i) {
    auto u = client.Expect(v1::Envelope::kRunUpdate).run_update();
    finished = u.finished();
    if (finished) {
      EXPECT_EQ(u.status().done(), 4);
    }
  }
  EXPECT_TRUE(finished);
  client.Send(status);
  reply = client.Expect(v1::Envelope::kStatusReply).status_reply();
  EXPECT_EQ(reply.runs_size(), 0) << "finished runs are no longer active";
  EXPECT_EQ(reply.queue_length(), 0);
  stop = true;
  server.join();
  for (const auto& id : ids) {
    auto run = store_->GetRun(id);
    ASSERT_TRUE(run);
    EXPECT_EQ(run->state(), v1::Run::FINISHED);
  }
}

TEST_F(CoordinatorTest, CancelledRunHandsOutNothingMore) {
  auto c = Make(Fast());
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run);
  ASSERT_TRUE(c->CancelRun(run->id()));
  auto st = c->ServeUntilFinished(run->id(), {}, testing::GiveUpAfter());
  EXPECT_FALSE(st);
  auto stored = store_->GetRun(run->id());
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->state(), v1::Run::CANCELLED);
  EXPECT_FALSE(c->CancelRun("r-none"));
}

using testing::FreePort;

TEST_F(CoordinatorTest, BadInputOverTcpIsAnsweredAndEveryoneElseIsServed) {
  auto opts = Fast();
  opts.listen = "tcp://127.0.0.1:" + std::to_string(FreePort());
  opts.max_message_bytes = 64 << 10;
  auto created = Coordinator::Create(*store_, opts);
  ASSERT_TRUE(created) << created.error().ToString();
  auto& c = *created;
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run);
  std::thread server(
      [&] { EXPECT_TRUE(c->ServeUntilFinished(run->id(), {}, testing::GiveUpAfter())); });

  FakeRunner bad(ctx_, opts.listen, "bad");
  // Garbage: one frame that is not a Crucible message.
  bad.socket.send(zmq::str_buffer("garbage"), zmq::send_flags::none);
  EXPECT_NE(bad.Expect(v1::Envelope::kError).error().message().find("expected 2 frames"),
            std::string::npos);
  // A truncated protobuf behind a valid header.
  v1::Envelope hello;
  hello.mutable_hello()->set_runner_name(std::string(200, 'x'));
  auto frames = protocol::Encode(hello);
  std::string cut = frames[1].to_string().substr(0, 20);
  bad.socket.send(frames[0], zmq::send_flags::sndmore);
  bad.socket.send(zmq::buffer(cut), zmq::send_flags::none);
  EXPECT_NE(bad.Expect(v1::Envelope::kError).error().message().find("not a crucible.v1.Envelope"),
            std::string::npos);
  // An older protocol version.
  auto old = protocol::Encode(hello, /*version=*/0);
  bad.socket.send(old[0], zmq::send_flags::sndmore);
  bad.socket.send(old[1], zmq::send_flags::none);
  EXPECT_NE(bad.Expect(v1::Envelope::kError).error().message().find("protocol version 0"),
            std::string::npos);
  // An oversized message: ZeroMQ drops the connection, nobody answers.
  FakeRunner huge(ctx_, opts.listen, "huge");
  v1::Envelope big;
  big.mutable_hello()->set_runner_name(std::string(1 << 20, 'y'));
  huge.Send(big);
  auto none = protocol::Receive(huge.socket, false, 300);
  EXPECT_FALSE(none.has_value()) << "an oversized message must not be served";

  FakeRunner good(ctx_, opts.listen, "good");
  good.Hello(1);
  for (int i = 0; i < 4; ++i) good.Finish(good.Expect(v1::Envelope::kLease).lease(), true);
  server.join();
  EXPECT_GE(c->malformed_messages(), 3u);
  auto attempts = store_->ListAttempts(run->id());
  ASSERT_TRUE(attempts);
  for (const auto& a : *attempts) EXPECT_EQ(a.state(), v1::Attempt::DONE);
}

TEST_F(CoordinatorTest, RandomFramesNeverStopTheCoordinator) {
  auto c = Make(Fast());
  auto run = c->SubmitRun("s", Agents(), 1);
  ASSERT_TRUE(run);
  std::thread server(
      [&] { EXPECT_TRUE(c->ServeUntilFinished(run->id(), {}, testing::GiveUpAfter())); });
  std::mt19937 rng(12345);
  FakeRunner fuzz(ctx_, endpoint_, "fuzz");
  v1::Envelope valid;
  valid.mutable_trace()->set_lease_id("nope");
  valid.mutable_trace()->add_events()->set_name("x");
  std::string valid_payload = valid.SerializeAsString();
  auto random_bytes = [&](size_t n) {
    std::string b(n, '\0');
    for (auto& ch : b) ch = static_cast<char>(rng());
    return b;
  };
  for (int i = 0; i < 300; ++i) {
    std::vector<std::string> frames;
    switch (rng() % 4) {
      case 0:  // random frames
        for (unsigned f = 0, n = rng() % 4; f < n; ++f) frames.push_back(random_bytes(rng() % 64));
        break;
      case 1:  // valid header, random payload
        frames.push_back(protocol::Encode(valid)[0].to_string());
        frames.push_back(random_bytes(rng() % 128));
        break;
      case 2: {  // valid header, a valid payload with bytes flipped or cut
        frames.push_back(protocol::Encode(valid)[0].to_string());
        std::string p = valid_payload;
        if (rng() % 2) {
          p = p.substr(0, rng() % p.size());
        } else {
          p[rng() % p.size()] ^= static_cast<char>(1 + rng() % 255);
        }
        frames.push_back(p);
        break;
      }
      default: {  // a header with bytes flipped
        std::string h = protocol::Encode(valid)[0].to_string();
        h[rng() % h.size()] ^= static_cast<char>(1 + rng() % 255);
        frames.push_back(h);
        frames.push_back(valid_payload);
        break;
      }
    }
    if (frames.empty()) frames.push_back("");
    for (size_t f = 0; f < frames.size(); ++f) {
      fuzz.socket.send(zmq::buffer(frames[f]),
                       f + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  // Everyone else is still served.
  FakeRunner good(ctx_, endpoint_, "good");
  good.Hello(1);
  for (int i = 0; i < 4; ++i) good.Finish(good.Expect(v1::Envelope::kLease).lease(), true);
  server.join();
  EXPECT_GT(c->malformed_messages(), 100u);
}

TEST(LocalEndpoint, LoopbackAndIpcOnly) {
  EXPECT_TRUE(IsLocalEndpoint("tcp://127.0.0.1:7400"));
  EXPECT_TRUE(IsLocalEndpoint("tcp://localhost:7400"));
  EXPECT_TRUE(IsLocalEndpoint("tcp://[::1]:7400"));
  EXPECT_TRUE(IsLocalEndpoint("ipc:///tmp/x.sock"));
  EXPECT_FALSE(IsLocalEndpoint("tcp://0.0.0.0:7400"));
  EXPECT_FALSE(IsLocalEndpoint("tcp://*:7400"));
  EXPECT_FALSE(IsLocalEndpoint("tcp://10.0.0.1:7400"));
}

}  // namespace
}  // namespace crucible::coordinator
