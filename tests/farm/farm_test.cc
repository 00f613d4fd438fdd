// The farm through the real crucible binary on tcp://127.0.0.1: a coordinator
// daemon and three runner daemons finish a run of 160 attempts while a runner
// is killed, the coordinator is killed and restarted, or a runner is frozen
// past its lease; every attempt ends done exactly once with its evidence,
// score and a gap-free trace in storage.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/farm/farm_support.h"
#include "tests/support/free_port.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using testing::Crucible;
using testing::Daemon;
using testing::Quote;
using testing::Sh;
using Output = testing::CommandOutput;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

using testing::FreePort;

class Farm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    auto dir = TempDir::Create("crucible-farm-");
    ASSERT_TRUE(dir);
    dir_ = new TempDir(std::move(*dir));
    db_ = dir_->path() + "/db";
    mine_ = new Output(testing::MineFixtureSuite(dir_->path() + "/repo", db_, "fx"));
  }
  static void TearDownTestSuite() {
    delete mine_;
    delete dir_;
  }

  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "runners need root for the sandbox (CI runs as root)";
    }
    ASSERT_EQ(mine_->status, 0) << mine_->text;
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreePort());
    logs_ = dir_->path() + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(MakeDirs(logs_));
  }

  void StartCoordinator(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"coordinator", "--listen",       endpoint_, "--db",
                                     db_,           "--heartbeat-ms", "200",     "--liveness",
                                     "3",           "--grace-ms",     "300",     "--lease-ms",
                                     "2000"};
    args.insert(args.end(), extra.begin(), extra.end());
    coordinator_ = std::make_unique<Daemon>(args, logs_ + "/coordinator.log");
    // Ready when it answers.
    for (int i = 0; i < 100; ++i) {
      if (Crucible("status --coordinator " + endpoint_).status == 0) return;
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "coordinator did not come up: " << ReadLog("coordinator.log");
  }

  void StartRunners() {
    for (int i = 0; i < 3; ++i) {
      std::string name = "farm-" + std::to_string(i + 1);
      runners_.push_back(std::make_unique<Daemon>(
          std::vector<std::string>{"runner", "--coordinator", endpoint_, "--workdir",
                                   logs_ + "/" + name, "--name", name, "--label", "rack=" + name},
          logs_ + "/" + name + ".log"));
    }
  }

  std::string Submit() {
    auto out = Crucible(
        "run --suite fx --agent builtin:oracle --agent builtin:noop --samples 40 "
        "--detach --coordinator " +
        endpoint_);
    EXPECT_EQ(out.status, 0) << out.text;
    std::string id = out.text.substr(0, out.text.find('\n'));
    EXPECT_TRUE(id.starts_with("r")) << out.text;
    return id;
  }

  // Attempts of `run` done so far, from `crucible status` (-1: no answer).
  int Done(const std::string& run) {
    auto out = Crucible("status " + run + " --coordinator " + endpoint_);
    std::smatch m;
    static const std::regex done(" done (\\d+) ");
    if (out.status != 0 || !std::regex_search(out.text, m, done)) return -1;
    return std::stoi(m[1]);
  }

  void WaitForDone(const std::string& run, int n) {
    auto deadline = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < deadline) {
      if (Done(run) >= n) return;
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "run " << run << " did not reach " << n << " done attempts";
  }

  // `crucible wait` until the run ends, then everything stops cleanly.
  void FinishAndStop(const std::string& run) {
    // Generous: 160 attempts on a machine that may be busy with other work.
    auto waited = Sh("timeout 200 " + std::string(CRUCIBLE_BIN) + " wait -q " + run +
                     " --coordinator " + endpoint_);
    EXPECT_EQ(waited.status, 0) << waited.text << ReadLog("coordinator.log");
    EXPECT_NE(waited.text.find("finished: done 160, infra-failed 0 of 160"), std::string::npos)
        << waited.text;
    for (auto& r : runners_) r->Signal(SIGTERM);
    for (auto& r : runners_) {
      if (r->running()) {
        EXPECT_EQ(r->Wait(milliseconds(10'000)), 0) << "runner exit on SIGTERM";
      }
    }
    coordinator_->Signal(SIGTERM);
    EXPECT_EQ(coordinator_->Wait(milliseconds(10'000)), 0) << ReadLog("coordinator.log");
  }

  // Every attempt done once, with evidence, a score and a complete trace.
  void CheckStored(const std::string& run_id) {
    auto store = storage::Store::Open(db_);
    ASSERT_TRUE(store) << store.error().ToString();
    auto run = (*store)->GetRun(run_id);
    ASSERT_TRUE(run);
    EXPECT_EQ(run->state(), v1::Run::FINISHED);
    auto attempts = (*store)->ListAttempts(run_id);
    ASSERT_TRUE(attempts);
    ASSERT_EQ(attempts->size(), 160u);
    for (const auto& a : *attempts) {
      ASSERT_EQ(a.state(), v1::Attempt::DONE) << "attempt " << a.number() << ": " << a.error();
      EXPECT_LT(a.tries(), 3) << a.error();
      auto evidence = (*store)->GetEvidence(run_id, a.number());
      ASSERT_TRUE(evidence) << "attempt " << a.number();
      auto score = (*store)->GetScore(run_id, a.number());
      ASSERT_TRUE(score) << "attempt " << a.number();
      EXPECT_EQ(score->completed(), a.agent() == "oracle") << "attempt " << a.number();
      auto events = (*store)->ListEvents(run_id, a.number());
      ASSERT_TRUE(events);
      ASSERT_FALSE(events->empty()) << "attempt " << a.number() << " has no trace";
      for (size_t i = 0; i < events->size(); ++i) {
        ASSERT_EQ((*events)[i].seq(), i) << "trace of attempt " << a.number() << " has a gap";
      }
      EXPECT_GT(evidence->tests().tests_size(), 0) << "attempt " << a.number();
    }
  }

  std::string ReadLog(const std::string& name) {
    auto text = ReadFile(logs_ + "/" + name);
    return text ? "\n--- " + name + ":\n" + *text : "";
  }

  static inline TempDir* dir_ = nullptr;
  static inline Output* mine_ = nullptr;
  static inline std::string db_;
  std::string endpoint_;
  std::string logs_;
  std::unique_ptr<Daemon> coordinator_;
  std::vector<std::unique_ptr<Daemon>> runners_;
};

TEST_F(Farm, RunnerKilledMidRun) {
  StartCoordinator();
  StartRunners();
  std::string run = Submit();
  WaitForDone(run, 10);
  runners_[0]->Kill();  // always busy while the queue is not empty
  FinishAndStop(run);
  CheckStored(run);
}

TEST_F(Farm, CoordinatorKilledAndRestarted) {
  StartCoordinator();
  StartRunners();
  std::string run = Submit();
  WaitForDone(run, 20);
  coordinator_->Kill();
  std::this_thread::sleep_for(milliseconds(300));
  StartCoordinator();
  FinishAndStop(run);
  CheckStored(run);
  auto log = ReadLog("coordinator.log");
  EXPECT_NE(log.find("1 runs resumed"), std::string::npos) << log;
  // Runners busy at the kill finished their attempts and claimed them back.
  EXPECT_NE(log.find("claiming"), std::string::npos) << log;
}

TEST_F(Farm, RunnerFrozenPastItsLease) {
  StartCoordinator();
  StartRunners();
  std::string run = Submit();
  WaitForDone(run, 10);
  runners_[1]->Signal(SIGSTOP);
  std::this_thread::sleep_for(milliseconds(2500));  // > lease (2 s) and liveness + grace
  runners_[1]->Signal(SIGCONT);
  FinishAndStop(run);
  CheckStored(run);
  auto log = ReadLog("coordinator.log");
  EXPECT_NE(log.find("runner farm-2 silent"), std::string::npos) << log;
  auto first = log.find("runner farm-2 joined");
  EXPECT_NE(log.find("runner farm-2 joined", first + 1), std::string::npos)
      << "the frozen runner came back" << log;
}

TEST_F(Farm, ChattyAgentIsHeldToItsEventBudget) {
  // An agent that writes 3000 trace events; the coordinator keeps 500 per
  // attempt and lets a runner have 2 batches unacknowledged.
  std::string agent = dir_->path() + "/chatty.sh";
  ASSERT_TRUE(WriteFile(agent,
                        "#!/bin/sh\ni=0\nwhile [ $i -lt 3000 ]; do\n"
                        "  echo '{\"kind\":\"TOOL\",\"name\":\"read_file\",\"attrs\":{}}'\n"
                        "  i=$((i+1))\ndone >> \"$CRUCIBLE_TRACE\"\n"));
  ASSERT_EQ(::chmod(agent.c_str(), 0755), 0);
  StartCoordinator({"--agent-event-budget", "500", "--max-unacked-batches", "2"});
  StartRunners();
  auto out = Crucible("run --suite fx --agent " + Quote("chatty=" + agent) +
                      " --samples 2 --detach --coordinator " + endpoint_);
  ASSERT_EQ(out.status, 0) << out.text;
  std::string run = out.text.substr(0, out.text.find('\n'));
  auto waited = Sh("timeout 60 " + std::string(CRUCIBLE_BIN) + " wait -q " + run +
                   " --coordinator " + endpoint_);
  EXPECT_EQ(waited.status, 0) << waited.text << ReadLog("coordinator.log");
  for (auto& r : runners_) r->Signal(SIGTERM);
  for (auto& r : runners_) EXPECT_EQ(r->Wait(milliseconds(10'000)), 0);
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(milliseconds(10'000)), 0);

  auto store = storage::Store::Open(db_);
  ASSERT_TRUE(store) << store.error().ToString();
  auto attempts = (*store)->ListAttempts(run);
  ASSERT_TRUE(attempts);
  ASSERT_EQ(attempts->size(), 4u);
  for (const auto& a : *attempts) {
    ASSERT_EQ(a.state(), v1::Attempt::DONE) << a.error();
    auto events = (*store)->ListEvents(run, a.number());
    ASSERT_TRUE(events);
    size_t agent_events = 0;
    bool exceeded = false, dropped = false;
    for (size_t i = 0; i < events->size(); ++i) {
      const auto& e = (*events)[i];
      ASSERT_EQ(e.seq(), i) << "trace of attempt " << a.number() << " has a gap";
      if (e.source() == "agent") ++agent_events;
      exceeded = exceeded || e.name() == "trace_budget_exceeded";
      if (e.name() == "trace_events_dropped") {
        dropped = true;
        EXPECT_NE(e.attrs_json().find("\"dropped\":2500"), std::string::npos) << e.attrs_json();
      }
    }
    EXPECT_EQ(agent_events, 500u);
    EXPECT_TRUE(exceeded);
    EXPECT_TRUE(dropped);
  }
}

TEST(FarmCli, NonLoopbackListenNeedsInsecureBind) {
  auto dir = TempDir::Create("crucible-farm-");
  ASSERT_TRUE(dir);
  auto out = Crucible("coordinator --listen tcp://0.0.0.0:" + std::to_string(FreePort()) +
                      " --db " + Quote(dir->path() + "/db"));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("--insecure-bind"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("refusing"), std::string::npos) << out.text;
}

TEST(FarmCli, ClientsSayWhenNoCoordinatorAnswers) {
  auto out = Crucible("status --timeout-ms 500 --coordinator tcp://127.0.0.1:" +
                      std::to_string(FreePort()));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("no answer from a coordinator"), std::string::npos) << out.text;
}

}  // namespace
}  // namespace crucible
