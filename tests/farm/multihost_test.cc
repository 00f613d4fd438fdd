// The farm across hosts: the coordinator and three runners, each in its own
// network namespace, joined by veth pairs and a bridge (deploy/netns-topology.sh)
// and talking tcp:// over the bridge. One runner's link is cut while it holds
// a lease and restored after the lease expired; the run still ends with every
// attempt done exactly once with a complete trace, and the cut runner worked
// both before the cut and after it came back.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/farm/farm_support.h"
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

constexpr int kRunners = 3;
constexpr int kAttempts = 64;  // 2 tasks x 2 agents x 16 samples
constexpr int kLeaseMs = 2000;
constexpr char kPrefix[] = "crmh";  // + the test process's pid

int64_t WallMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The namespaces of deploy/netns-topology.sh, torn down when it goes.
class Topology {
 public:
  static constexpr int kNoNetns = 3;  // the script's status when `ip netns add` fails

  Topology(std::string prefix, std::string subnet)
      : prefix_(std::move(prefix)), subnet_(std::move(subnet)) {}
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  ~Topology() {
    if (attempted_) Script("down");  // idempotent
  }

  Output Up(int runners) {
    attempted_ = true;
    return Script("up", std::to_string(runners));
  }
  Output Down() { return Script("down"); }
  Output Cut(const std::string& host) { return Script("cut", host); }
  Output Restore(const std::string& host) { return Script("restore", host); }

  std::string Namespace(const std::string& host) const { return prefix_ + "-" + host; }
  std::string CoordinatorIp() const { return subnet_ + ".1"; }
  // Runs crucible `args` on the coordinator's host.
  Output CrucibleOnCoordinator(const std::string& args) const {
    return Sh("ip netns exec " + Quote(Namespace("coord")) + " " + CRUCIBLE_BIN + " " + args);
  }

 private:
  // deploy/netns-topology.sh --subnet SUBNET COMMAND PREFIX [ARG]
  Output Script(const std::string& command, const std::string& arg = "") const {
    return Sh("sh " + Quote(std::string(CRUCIBLE_SOURCE_DIR) + "/deploy/netns-topology.sh") +
              " --subnet " + subnet_ + " " + command + " " + Quote(prefix_) +
              (arg.empty() ? "" : " " + Quote(arg)));
  }

  std::string prefix_;
  std::string subnet_;
  bool attempted_ = false;
};

class MultiHost : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "network namespaces and the runners' sandbox need root (CI runs as root)";
    }
    auto dir = TempDir::Create("crucible-multihost-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    db_ = dir_->path() + "/db";
    auto mined = testing::MineFixtureSuite(dir_->path() + "/repo", db_, "fx");
    ASSERT_EQ(mined.status, 0) << mined.text;

    // Unique per test process; the subnet too, though each topology is an
    // island of its own (nothing is in the host's network namespace).
    RemoveOrphanTopologies();
    int pid = static_cast<int>(::getpid());
    topology_ = std::make_unique<Topology>(kPrefix + std::to_string(pid),
                                           "10.77." + std::to_string(pid % 250));
    auto up = topology_->Up(kRunners);
    if (up.status == Topology::kNoNetns) {
      GTEST_SKIP() << "cannot create network namespaces here ('ip netns add' failed): " << up.text;
    }
    ASSERT_EQ(up.status, 0) << up.text;
    endpoint_ = "tcp://" + topology_->CoordinatorIp() + ":7400";
  }

  void TearDown() override {
    runners_.clear();  // the daemons go before their namespaces
    coordinator_.reset();
    topology_.reset();
  }

  // Topologies of earlier test processes that died before tearing theirs
  // down (killed on a timeout, say).
  static void RemoveOrphanTopologies() {
    static const std::regex name("^" + std::string(kPrefix) + "(\\d+)-(coord|br|r\\d+)\\b");
    auto list = Sh("ip netns list");
    std::istringstream lines(list.text);
    std::set<int> dead;
    std::smatch m;
    for (std::string line; std::getline(lines, line);) {
      if (!std::regex_search(line, m, name)) continue;
      int pid = std::stoi(m[1]);
      if (::kill(pid, 0) != 0 && errno == ESRCH) dead.insert(pid);
    }
    for (int pid : dead) Topology(kPrefix + std::to_string(pid), "10.77.0").Down();
  }

  std::string Log(const std::string& name) {
    auto text = ReadFile(dir_->path() + "/" + name);
    return text ? "\n--- " + name + ":\n" + *text : "";
  }

  std::string Status(const std::string& args = "") {
    auto out = topology_->CrucibleOnCoordinator("status " + args + " --coordinator " + endpoint_);
    return out.status == 0 ? out.text : "";
  }

  // Attempts of `run` done so far (-1: no answer).
  int Done(const std::string& run) {
    std::smatch m;
    static const std::regex done(" done (\\d+) ");
    std::string text = Status(run);
    if (!std::regex_search(text, m, done)) return -1;
    return std::stoi(m[1]);
  }

  // Leases runner `name` holds in the coordinator's view (-1: not listed).
  int Busy(const std::string& name) {
    std::smatch m;
    std::regex busy(name + "  slots \\d+  busy (\\d+)");
    std::string text = Status();
    if (!std::regex_search(text, m, busy)) return -1;
    return std::stoi(m[1]);
  }

  // The flag that lets the coordinator listen on a non-loopback address
  // without CurveZMQ keys, as this build of the binary calls it.
  std::vector<std::string> InsecureFlag() {
    auto help = Crucible("coordinator --help");
    if (std::regex_search(help.text, std::regex("--insecure(?![-\\w])"))) return {"--insecure"};
    if (help.text.find("--insecure-bind") != std::string::npos) return {"--insecure-bind"};
    return {};
  }

  std::unique_ptr<TempDir> dir_;
  std::string db_;
  std::unique_ptr<Topology> topology_;
  std::string endpoint_;
  std::unique_ptr<Daemon> coordinator_;
  std::vector<std::unique_ptr<Daemon>> runners_;
};

TEST_F(MultiHost, RunnerLinkCutAndRestoredMidRun) {
  std::vector<std::string> args = {
      "coordinator", "--listen", endpoint_,    "--db", db_,          "--heartbeat-ms",        "200",
      "--liveness",  "3",        "--grace-ms", "300",  "--lease-ms", std::to_string(kLeaseMs)};
  for (const auto& f : InsecureFlag()) args.push_back(f);
  coordinator_ = std::make_unique<Daemon>(args, dir_->path() + "/coordinator.log",
                                          topology_->Namespace("coord"));
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Status().empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_FALSE(Status().empty()) << "coordinator did not come up" << Log("coordinator.log");

  for (int i = 1; i <= kRunners; ++i) {
    std::string host = "r" + std::to_string(i);
    runners_.push_back(std::make_unique<Daemon>(
        std::vector<std::string>{"runner", "--coordinator", endpoint_, "--workdir",
                                 dir_->path() + "/" + host, "--name", "mh-" + host, "--label",
                                 "host=" + topology_->Namespace(host)},
        dir_->path() + "/" + host + ".log", topology_->Namespace(host)));
  }

  // A second agent that takes a second, so that work is left when the cut
  // runner comes back.
  std::string nap = dir_->path() + "/nap.sh";
  ASSERT_TRUE(WriteFile(nap, "#!/bin/sh\nsleep 1\n"));
  ASSERT_EQ(::chmod(nap.c_str(), 0755), 0);
  auto submitted = topology_->CrucibleOnCoordinator(
      "run --suite fx --agent builtin:oracle --agent " + Quote("nap=" + nap) +
      " --samples 16 --detach --coordinator " + endpoint_);
  ASSERT_EQ(submitted.status, 0) << submitted.text;
  std::string run = submitted.text.substr(0, submitted.text.find('\n'));
  ASSERT_TRUE(run.starts_with("r")) << submitted.text;

  // Some attempts done (the cut runner's among them, checked below).
  deadline = Clock::now() + std::chrono::seconds(30);
  while (Done(run) < 9 && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(50));
  ASSERT_GE(Done(run), 9) << Log("coordinator.log") << Log("r2.log");

  // Cut r2's link while it holds a lease. The coordinator hears nothing from
  // r2 after the cut, so a lease it still lists was held across the cut; when
  // r2 happened to be between attempts, restore at once and try again.
  int64_t cut_ms = 0;
  for (int i = 0; i < 20 && cut_ms == 0; ++i) {
    deadline = Clock::now() + std::chrono::seconds(10);
    while (Busy("mh-r2") < 1 && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    int64_t at = WallMs();
    auto cut = topology_->Cut("r2");
    ASSERT_EQ(cut.status, 0) << cut.text;
    if (Busy("mh-r2") >= 1) {
      cut_ms = at;
    } else {
      auto restored = topology_->Restore("r2");
      ASSERT_EQ(restored.status, 0) << restored.text;
    }
  }
  ASSERT_NE(cut_ms, 0) << "runner mh-r2 never held a lease at the cut" << Log("coordinator.log");

  // Past its lease (2 s) and liveness x heartbeat + grace (0.9 s): the others
  // take its attempt over meanwhile.
  std::this_thread::sleep_for(milliseconds(kLeaseMs + 1000));
  int64_t restore_ms = WallMs();
  auto restored = topology_->Restore("r2");
  ASSERT_EQ(restored.status, 0) << restored.text;
  // Back when the coordinator lists it again (it dropped it as silent).
  deadline = Clock::now() + std::chrono::seconds(20);
  while (Busy("mh-r2") < 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_GE(Busy("mh-r2"), 0) << "runner mh-r2 did not rejoin" << Log("r2.log");
  EXPECT_LT(Done(run), kAttempts) << "the run ended before the cut runner came back";

  auto waited = Sh("timeout 60 ip netns exec " + Quote(topology_->Namespace("coord")) + " " +
                   CRUCIBLE_BIN + " wait -q " + run + " --coordinator " + endpoint_);
  EXPECT_EQ(waited.status, 0) << waited.text << Log("coordinator.log");
  std::string finished = "finished: done " + std::to_string(kAttempts) + ", infra-failed 0 of " +
                         std::to_string(kAttempts);
  EXPECT_NE(waited.text.find(finished), std::string::npos) << waited.text;

  for (auto& r : runners_) r->Signal(SIGTERM);
  for (auto& r : runners_) EXPECT_EQ(r->Wait(milliseconds(10'000)), 0) << "runner exit on SIGTERM";
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(milliseconds(10'000)), 0) << Log("coordinator.log");

  std::string log = Log("coordinator.log");
  EXPECT_NE(log.find("runner mh-r2 silent"), std::string::npos) << log;
  EXPECT_NE(log.find(" of runner mh-r2 expired"), std::string::npos) << "its lease expired" << log;
  // Its result for that lease, sent when it came back, was not counted.
  EXPECT_NE(log.find("result from mh-r2 under stale lease"), std::string::npos) << log;
  auto first = log.find("runner mh-r2 joined");
  EXPECT_NE(log.find("runner mh-r2 joined", first + 1), std::string::npos)
      << "the cut runner came back" << log;

  // Every attempt done once, with evidence, a score and a gap-free trace.
  auto store = storage::Store::Open(db_);
  ASSERT_TRUE(store) << store.error().ToString();
  auto stored = (*store)->GetRun(run);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->state(), v1::Run::FINISHED);
  auto attempts = (*store)->ListAttempts(run);
  ASSERT_TRUE(attempts);
  ASSERT_EQ(attempts->size(), static_cast<size_t>(kAttempts));
  int before_cut = 0, after_restore = 0, retried = 0;
  for (const auto& a : *attempts) {
    ASSERT_EQ(a.state(), v1::Attempt::DONE) << "attempt " << a.number() << ": " << a.error();
    EXPECT_LT(a.tries(), 3) << a.error();
    retried += a.tries() > 0;
    if (a.runner() == "mh-r2") {
      before_cut += a.finished_at_ms() < cut_ms;
      after_restore += a.leased_at_ms() > restore_ms;
    }
    auto evidence = (*store)->GetEvidence(run, a.number());
    ASSERT_TRUE(evidence) << "attempt " << a.number();
    EXPECT_GT(evidence->tests().tests_size(), 0) << "attempt " << a.number();
    auto score = (*store)->GetScore(run, a.number());
    ASSERT_TRUE(score) << "attempt " << a.number();
    EXPECT_EQ(score->completed(), a.agent() == "oracle") << "attempt " << a.number();
    auto events = (*store)->ListEvents(run, a.number());
    ASSERT_TRUE(events);
    ASSERT_FALSE(events->empty()) << "attempt " << a.number() << " has no trace";
    for (size_t i = 0; i < events->size(); ++i) {
      ASSERT_EQ((*events)[i].seq(), i) << "trace of attempt " << a.number() << " has a gap";
    }
  }
  EXPECT_GT(before_cut, 0) << "the cut runner did no work before the cut" << log;
  EXPECT_GT(after_restore, 0) << "the cut runner did no work after its link came back" << log
                              << Log("r2.log");
  EXPECT_GT(retried, 0) << "the lease held across the cut was taken over";
}

}  // namespace
}  // namespace crucible
