// Farm benchmarks against the real coordinator daemon (`crucible coordinator`
// started as a child process on tcp://127.0.0.1 with a fresh RocksDB), driven
// by simulated runners: many DEALER sockets in this process that speak the
// runner protocol but perform nothing.
//
//   dispatch  attempts per second end to end (submit to run finished) with a
//             no-op runner (results sent at once, stored and scored by the
//             coordinator with persistence on), for 1, 4 and 16 runners
//   ingest    trace events per second from runners into RocksDB (batches
//             acknowledged, at most 16 unacknowledged per runner), and the
//             coordinator's memory after 1x, 2x and 4x the trace volume
//   fleet     200 runners heartbeating every second while a run proceeds:
//             coordinator CPU and memory; and its memory with 10,000 and
//             100,000 queued attempts
//
// Usage: farm_bench [CRUCIBLE_BINARY] [--quick] [--only dispatch|ingest|fleet]
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <zmq.hpp>

#include "base/fs.h"
#include "protocol/framing.h"
#include "storage/store.h"
#include "tests/support/free_port.h"

extern char** environ;

namespace {

using namespace crucible;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "farm_bench: %s\n", what.c_str());
  std::exit(1);
}

// CPU seconds (user + system) and resident bytes of process `pid`.
struct Usage {
  double cpu_s = 0;
  double rss_mib = 0;
};

Usage ReadUsage(pid_t pid) {
  Usage u;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string line;
  std::getline(stat, line);
  // Fields after the ")" that ends the command name; utime and stime are the
  // 14th and 15th fields of the line.
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) u.cpu_s += std::stod(field) / ticks;
  }
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) u.rss_mib = std::stod(line.substr(6)) / 1024.0;
  }
  return u;
}

// A fresh database with a suite of `tasks` tasks, and a coordinator daemon on it.
class Daemon {
 public:
  Daemon(const std::string& binary, int tasks) {
    auto dir = TempDir::Create("crucible-farm-bench-");
    if (!dir) Die(dir.error().ToString());
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    {
      auto store = storage::Store::Open(dir_->path() + "/db");
      if (!store) Die(store.error().ToString());
      v1::Suite suite;
      suite.set_name("bench");
      suite.set_task_count(tasks);
      std::vector<v1::GoldenTask> ts(static_cast<size_t>(tasks));
      for (int i = 0; i < tasks; ++i) {
        ts[i].set_suite("bench");
        ts[i].set_id(fmt::format("t{:06}", i));
        ts[i].set_intent("Rename the helper and keep the callers working.");
        ts[i].add_fail_to_pass("tests/test_x.py::test_" + std::to_string(i));
        ts[i].add_pass_to_pass("tests/test_x.py::test_other");
      }
      if (auto st = (*store)->PutSuite(suite, ts); !st) Die(st.error().ToString());
    }
    endpoint_ = fmt::format("tcp://127.0.0.1:{}", testing::FreePort());
    std::vector<std::string> argv = {binary,
                                     "coordinator",
                                     "--listen",
                                     endpoint_,
                                     "--db",
                                     dir_->path() + "/db",
                                     "--heartbeat-ms",
                                     "1000",
                                     "--lease-ms",
                                     "60000",
                                     "--agent-event-budget",
                                     "0"};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    std::string log = dir_->path() + "/coordinator.log";
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid_, binary.c_str(), &fa, nullptr, args.data(), environ) != 0) {
      Die("cannot start " + binary);
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Daemon() {
    ::kill(pid_, SIGTERM);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return pid_; }

 private:
  std::unique_ptr<TempDir> dir_;
  std::string endpoint_;
  pid_t pid_ = -1;
};

// A client: submits a run and tells when it finished.
class Client {
 public:
  Client(zmq::context_t& ctx, const std::string& endpoint) : s_(ctx, zmq::socket_type::dealer) {
    s_.set(zmq::sockopt::linger, 0);
    s_.connect(endpoint);
  }
  v1::Envelope Ask(const v1::Envelope& req, int timeout_ms = 30000) {
    if (!protocol::Send(s_, req)) Die("cannot send to the coordinator");
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < deadline) {
      auto msg = protocol::Receive(s_, false, 100);
      if (msg && msg->envelope) return *msg->envelope;
    }
    Die("the coordinator did not answer");
  }
  std::string Submit(int samples) {
    v1::Envelope req;
    auto* sub = req.mutable_submit_run();
    sub->set_suite("bench");
    sub->set_samples(samples);
    auto* a = sub->add_agents();
    a->set_name("noop");
    a->set_command("builtin:noop");
    v1::Envelope reply = Ask(req);
    if (!reply.has_run_accepted()) Die("submit refused: " + reply.error().message());
    return reply.run_accepted().run().id();
  }
  // Follows the run until it finished.
  void Wait(const std::string& run_id) {
    v1::Envelope req;
    req.mutable_watch_run()->set_run_id(run_id);
    if (!protocol::Send(s_, req)) Die("cannot send to the coordinator");
    for (;;) {
      auto msg = protocol::Receive(s_, false, 60000);
      if (!msg) Die("no progress for 60 s");
      if (msg->envelope && msg->envelope->has_run_update() &&
          msg->envelope->run_update().finished()) {
        return;
      }
    }
  }

 private:
  zmq::socket_t s_;
};

// Simulated runners, all served by one thread.
struct FleetOptions {
  int runners = 1;
  int slots = 8;
  int batches_per_attempt = 0;  // trace batches sent before each result
  int events_per_batch = 0;
};

class Fleet {
 public:
  Fleet(zmq::context_t& ctx, const std::string& endpoint, FleetOptions o) : o_(o) {
    for (int i = 0; i < o.runners; ++i) {
      auto r = std::make_unique<Runner>(ctx);
      r->name = fmt::format("sim-{:03}", i);
      r->s.set(zmq::sockopt::routing_id, r->name);
      r->s.set(zmq::sockopt::linger, 0);
      r->s.set(zmq::sockopt::sndhwm, 0);
      r->s.set(zmq::sockopt::rcvhwm, 0);
      r->s.connect(endpoint);
      v1::Envelope hello;
      hello.mutable_hello()->set_runner_name(r->name);
      hello.mutable_hello()->set_slots(o.slots);
      Send(*r, hello);
      runners_.push_back(std::move(r));
    }
    for (int i = 0; i < o.events_per_batch; ++i) {
      v1::TraceEvent ev;
      ev.set_kind("TOOL");
      ev.set_name("read_file");
      ev.set_source("agent");
      ev.set_span_id("s-0001");
      ev.set_attrs_json(R"({"path":"src/module/file.py","bytes":1234,"ok":true})");
      event_template_.push_back(ev);
    }
    thread_ = std::thread([this] { Loop(); });
  }
  ~Fleet() {
    stop_ = true;
    thread_.join();
  }
  uint64_t events_sent() const { return events_sent_.load(); }

 private:
  struct Job {
    std::string lease_id;
    std::string run_id;
    uint64_t attempt = 0;
    int batches_left = 0;
    uint64_t next_seq = 0;
  };
  struct Runner {
    explicit Runner(zmq::context_t& ctx) : s(ctx, zmq::socket_type::dealer) {}
    zmq::socket_t s;
    std::string name;
    std::map<std::string, Job> jobs;
    int unacked = 0;
  };

  void Send(Runner& r, const v1::Envelope& env) {
    if (!protocol::Send(r.s, env)) Die("simulated runner cannot send");
  }

  // Sends what the runner's jobs may send now.
  void Progress(Runner& r) {
    for (auto it = r.jobs.begin(); it != r.jobs.end();) {
      Job& j = it->second;
      while (j.batches_left > 0 && r.unacked < 16) {
        v1::Envelope env;
        auto* b = env.mutable_trace();
        b->set_lease_id(j.lease_id);
        for (const auto& t : event_template_) {
          auto* ev = b->add_events();
          *ev = t;
          ev->set_seq(j.next_seq++);
        }
        Send(r, env);
        events_sent_ += event_template_.size();
        ++r.unacked;
        --j.batches_left;
      }
      if (j.batches_left == 0) {
        v1::Envelope env;
        auto* res = env.mutable_result();
        res->set_lease_id(j.lease_id);
        res->set_run_id(j.run_id);
        res->set_attempt(j.attempt);
        res->mutable_evidence();
        Send(r, env);
        it = r.jobs.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Loop() {
    std::vector<zmq::pollitem_t> items;
    for (auto& r : runners_) items.push_back({r->s.handle(), 0, ZMQ_POLLIN, 0});
    auto last_hb = Clock::now();
    while (!stop_) {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(50));
      for (size_t i = 0; i < runners_.size(); ++i) {
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        Runner& r = *runners_[i];
        while (auto msg = protocol::Receive(r.s, false, 0)) {
          if (!msg->envelope) continue;
          const auto& env = *msg->envelope;
          if (env.has_lease()) {
            Job j;
            j.lease_id = env.lease().lease_id();
            j.run_id = env.lease().attempt().run_id();
            j.attempt = env.lease().attempt().number();
            j.batches_left = o_.batches_per_attempt;
            r.jobs.emplace(j.lease_id, j);
          } else if (env.has_ack() && !env.ack().result()) {
            --r.unacked;
          }
        }
        Progress(r);
      }
      if (Clock::now() - last_hb >= std::chrono::seconds(1)) {
        last_hb = Clock::now();
        for (auto& r : runners_) {
          v1::Envelope hb;
          hb.mutable_heartbeat()->set_free_slots(o_.slots - static_cast<int>(r->jobs.size()));
          for (const auto& [id, j] : r->jobs) hb.mutable_heartbeat()->add_lease_ids(id);
          Send(*r, hb);
        }
      }
    }
  }

  FleetOptions o_;
  std::vector<std::unique_ptr<Runner>> runners_;
  std::vector<v1::TraceEvent> event_template_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> events_sent_{0};
  std::thread thread_;
};

// A run submitted once the fleet's hellos are in, followed to its end: wall
// time, and the coordinator's CPU over it and memory after it.
struct Timed {
  double seconds = 0;
  double cpu_s = 0;
  double rss_mib = 0;
};

Timed SubmitAndWait(const Daemon& d, Client& c) {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // hellos in
  Usage before = ReadUsage(d.pid());
  auto t0 = Clock::now();
  c.Wait(c.Submit(1));
  Timed t;
  t.seconds = Seconds(Clock::now() - t0);
  Usage after = ReadUsage(d.pid());
  t.cpu_s = after.cpu_s - before.cpu_s;
  t.rss_mib = after.rss_mib;
  return t;
}

void Dispatch(const std::string& binary, int attempts) {
  std::printf("\n== dispatch: %d no-op attempts end to end, persistence on\n", attempts);
  std::printf("| runners | slots each | attempts | seconds | attempts/s | coordinator CPU s |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int runners : {1, 4, 16}) {
    Daemon d(binary, attempts);
    zmq::context_t ctx;
    Client c(ctx, d.endpoint());
    FleetOptions o;
    o.runners = runners;
    o.slots = 8;
    Fleet fleet(ctx, d.endpoint(), o);
    Timed t = SubmitAndWait(d, c);
    std::printf("| %d | %d | %d | %.2f | %.0f | %.2f |\n", runners, o.slots, attempts, t.seconds,
                attempts / t.seconds, t.cpu_s);
    std::fflush(stdout);
  }
}

void Ingest(const std::string& binary, int attempts, int batches) {
  const int events_per_batch = 256;
  std::printf("\n== ingest: trace events from 4 runners into RocksDB (%d events per batch)\n",
              events_per_batch);
  std::printf("| attempts | events | seconds | events/s | coordinator CPU | RSS after |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int scale : {1, 2, 4}) {
    Daemon d(binary, attempts * scale);
    zmq::context_t ctx;
    Client c(ctx, d.endpoint());
    FleetOptions o;
    o.runners = 4;
    o.slots = 2;
    o.batches_per_attempt = batches;
    o.events_per_batch = events_per_batch;
    Fleet fleet(ctx, d.endpoint(), o);
    Timed t = SubmitAndWait(d, c);
    std::printf("| %d | %llu | %.2f | %.0f | %.0f%% of a core | %.1f MiB |\n", attempts * scale,
                static_cast<unsigned long long>(fleet.events_sent()), t.seconds,
                fleet.events_sent() / t.seconds, 100 * t.cpu_s / t.seconds, t.rss_mib);
    std::fflush(stdout);
  }
}

void FleetBench(const std::string& binary, int attempts) {
  std::printf("\n== fleet: 200 simulated runners (2 slots each) heartbeating every second\n");
  {
    Daemon d(binary, attempts);
    zmq::context_t ctx;
    Client c(ctx, d.endpoint());
    FleetOptions o;
    o.runners = 200;
    o.slots = 2;
    Fleet fleet(ctx, d.endpoint(), o);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    Usage u0 = ReadUsage(d.pid());
    std::this_thread::sleep_for(std::chrono::seconds(5));
    Usage u1 = ReadUsage(d.pid());
    std::printf("idle: coordinator CPU %.1f%% of a core, RSS %.1f MiB\n",
                100 * (u1.cpu_s - u0.cpu_s) / 5, u1.rss_mib);
    auto t0 = Clock::now();
    std::string run = c.Submit(1);
    c.Wait(run);
    double s = Seconds(Clock::now() - t0);
    Usage a = ReadUsage(d.pid());
    std::printf(
        "run of %d attempts: %.2f s (%.0f attempts/s), coordinator CPU %.2f s (%.0f%% of a core), "
        "RSS %.1f MiB\n",
        attempts, s, attempts / s, a.cpu_s - u1.cpu_s, 100 * (a.cpu_s - u1.cpu_s) / s, a.rss_mib);
  }
  std::printf("\ncoordinator memory with queued attempts and no runner:\n");
  std::printf("| queued attempts | RSS |\n|---|---|\n");
  for (int queued : {10'000, 100'000}) {
    Daemon d(binary, queued);
    zmq::context_t ctx;
    Client c(ctx, d.endpoint());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Usage before = ReadUsage(d.pid());
    c.Submit(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    Usage after = ReadUsage(d.pid());
    std::printf("| %d | %.1f MiB (%.1f MiB before submitting) |\n", queued, after.rss_mib,
                before.rss_mib);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string binary = "build/cli/crucible";
  bool quick = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      binary = a;
    }
  }
  if (!only.empty() && only != "dispatch" && only != "ingest" && only != "fleet") {
    Die("--only takes dispatch, ingest or fleet, not '" + only + "'");
  }
  if (::access(binary.c_str(), X_OK) != 0) Die(binary + " is not an executable crucible binary");
  if (only.empty() || only == "dispatch") Dispatch(binary, quick ? 2000 : 20000);
  if (only.empty() || only == "ingest") Ingest(binary, quick ? 16 : 64, quick ? 50 : 120);
  if (only.empty() || only == "fleet") FleetBench(binary, quick ? 2000 : 10000);
  return 0;
}
