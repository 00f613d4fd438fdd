#include "agent-runner/runner.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "agent-runner/agent_sandbox.h"
#include "agent-runner/attempt.h"
#include "agent-runner/repo_cache.h"
#include "base/fs.h"
#include "protocol/framing.h"

namespace crucible::runner {

namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

constexpr char kOutbox[] = "inproc://runner-outbox";
// Marks a result in the send backlog (trace batches are marked by their seq).
constexpr uint64_t kResult = ~uint64_t{0};

// Leases waiting for a worker.
class WorkQueue {
 public:
  void Push(v1::Lease lease) {
    {
      std::lock_guard lock(mu_);
      leases_.push_back(std::move(lease));
    }
    cv_.notify_one();
  }
  // Blocks until a lease arrives or Close() is called (then nullopt).
  std::optional<v1::Lease> Pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !leases_.empty(); });
    if (leases_.empty()) return std::nullopt;
    v1::Lease l = std::move(leases_.front());
    leases_.pop_front();
    ++busy_;
    return l;
  }
  void Done() {
    std::lock_guard lock(mu_);
    --busy_;
  }
  void Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  // Leases not yet taken by a worker (they are handed back on stop).
  std::vector<v1::Lease> Drain() {
    std::lock_guard lock(mu_);
    std::vector<v1::Lease> out(leases_.begin(), leases_.end());
    leases_.clear();
    return out;
  }
  int busy() {
    std::lock_guard lock(mu_);
    return busy_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::Lease> leases_;
  bool closed_ = false;
  int busy_ = 0;
};

// ObjectsPack answers, handed from the I/O thread to the worker waiting for
// its repository (the cache asks for one repository at a time).
class PackMailbox {
 public:
  void Deliver(v1::ObjectsPack pack) {
    {
      std::lock_guard lock(mu_);
      std::string id = pack.repo_id();
      arrived_[id] = std::move(pack);
    }
    cv_.notify_all();
  }
  // A chunk of the repository's pack arrived: the wait for it goes on.
  void Progress(const std::string& repo_id) {
    {
      std::lock_guard lock(mu_);
      progress_[repo_id] = Clock::now();
    }
    cv_.notify_all();
  }
  void Forget(const std::string& repo_id) {
    std::lock_guard lock(mu_);
    arrived_.erase(repo_id);
    progress_.erase(repo_id);
  }
  // Waits until the pack of `repo_id` is whole, giving up after `timeout`
  // passes without any of it arriving.
  Result<v1::ObjectsPack> Wait(const std::string& repo_id, Ms timeout) {
    std::unique_lock lock(mu_);
    auto last = Clock::now();  // the start, or the last chunk
    for (;;) {
      if (closed_) return Fail(Code::kUnavailable, "runner stopping");
      if (arrived_.count(repo_id)) break;
      if (auto p = progress_.find(repo_id); p != progress_.end()) last = std::max(last, p->second);
      if (Clock::now() >= last + timeout) {
        return Fail(Code::kUnavailable,
                    fmt::format("repository {}: no pack from the coordinator within {} s", repo_id,
                                timeout.count() / 1000));
      }
      cv_.wait_until(lock, last + timeout);
    }
    progress_.erase(repo_id);
    v1::ObjectsPack pack = std::move(arrived_[repo_id]);
    arrived_.erase(repo_id);
    return pack;
  }
  void Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, v1::ObjectsPack> arrived_;
  std::map<std::string, Clock::time_point> progress_;  // last chunk of an unfinished pack
  bool closed_ = false;
};

// Largest result sent to a coordinator that did not state its message limit
// (the coordinator's default limit is 256 MiB).
constexpr size_t kDefaultMaxResultBytes = size_t{192} << 20;

// How long a worker waits for the coordinator's pack.
constexpr Ms kPackTimeout{120'000};

// One worker thread: performs leases and pushes TraceBatch / AttemptResult
// envelopes to the I/O thread through its own inproc PUSH socket. The
// repository comes from the cache, filled on demand (ObjectsRequest through
// the same socket, the answer through `mailbox`).
void Worker(const RunnerOptions& options, zmq::context_t& context, WorkQueue& work,
            const std::atomic<uint64_t>& agent_event_budget,
            const std::atomic<int64_t>& max_message_bytes, RepoCache& cache, PackMailbox& mailbox) {
  zmq::socket_t out(context, zmq::socket_type::push);
  out.set(zmq::sockopt::linger, -1);
  out.connect(kOutbox);
  auto push = [&](const v1::Envelope& env) {
    auto st = protocol::Send(out, env);
    if (!st)
      spdlog::error("runner {}: internal hand-off failed: {}", options.name, st.error().ToString());
  };
  while (auto lease = work.Pop()) {
    uint64_t seq = 0;
    uint64_t agent_events = 0;
    uint64_t dropped = 0;
    const uint64_t budget = agent_event_budget.load();
    std::vector<v1::TraceEvent> pending;
    // The values of the agent's pass_env variables leave this runner nowhere.
    const SecretRedactor redactor(lease->agent());
    auto last_flush = Clock::now();
    auto flush = [&] {
      if (pending.empty()) return;
      v1::Envelope env;
      auto* batch = env.mutable_trace();
      batch->set_lease_id(lease->lease_id());
      batch->set_run_id(lease->attempt().run_id());
      batch->set_attempt(lease->attempt().number());
      for (auto& ev : pending) *batch->add_events() = std::move(ev);
      pending.clear();
      last_flush = Clock::now();
      push(env);
    };
    std::string dir = fmt::format("{}/attempt-{}-{}-{}", options.workdir, lease->attempt().run_id(),
                                  lease->attempt().number(), lease->lease_id());
    AttemptContext ctx;
    ctx.workdir = dir;
    ctx.workspace_quota_bytes = options.workspace_quota_bytes;
    auto marker = [&](const std::string& name, const std::string& attrs) {
      v1::TraceEvent ev;
      ev.set_ts_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count());
      ev.set_kind("RUNNER");
      ev.set_name(name);
      ev.set_source("runner");
      ev.set_attrs_json(attrs);
      ev.set_seq(seq++);
      pending.push_back(std::move(ev));
    };
    ctx.emit = [&](v1::TraceEvent ev) {
      // A chatty agent cannot flood the farm: beyond the budget its events
      // are counted and dropped (the runner's own events are always kept).
      if (ev.source() != "runner" && budget > 0 && ++agent_events > budget) {
        if (dropped++ == 0) {
          marker("trace_budget_exceeded", fmt::format("{{\"budget\":{}}}", budget));
        }
        return;
      }
      redactor.Redact(ev);
      ev.set_seq(seq++);
      pending.push_back(std::move(ev));
      if (pending.size() >= 256) flush();
    };
    ctx.tick = [&] {
      if (Clock::now() - last_flush > Ms(200)) flush();
    };
    ctx.repo_name = lease->repo_name();
    ctx.judges.assign(lease->judges().begin(), lease->judges().end());
    ctx.review = lease->review();
    ctx.reviewers.assign(lease->reviewers().begin(), lease->reviewers().end());
    ctx.prediction = lease->prediction();
    auto ask = [&](const v1::ObjectsRequest& req) -> Result<v1::ObjectsPack> {
      mailbox.Forget(req.repo_id());
      v1::Envelope env;
      *env.mutable_objects_request() = req;
      push(env);
      return mailbox.Wait(req.repo_id(), kPackTimeout);
    };
    Result<v1::Evidence> evidence = [&]() -> Result<v1::Evidence> {
      // The checkout needs the base commit; the merged one is asked for too
      // (a repository imported with tasks may lack it: not required).
      std::vector<std::string> merged;
      if (!lease->task().merged_commit().empty()) merged.push_back(lease->task().merged_commit());
      auto repo = cache.Ensure(lease->repo_id(), lease->task().suite(),
                               {lease->task().base_commit()}, ask, merged);
      if (!repo) return Fail(repo.error().Wrap("repository cache"));
      ctx.repo = *repo;
      // No exception may take the runner down: whatever escapes an attempt
      // ends that attempt, with what it was.
      try {
        return PerformAttempt(lease->task(), lease->agent(), ctx);
      } catch (const std::exception& e) {
        return Fail(Code::kInternal, fmt::format("attempt aborted: {}", e.what()));
      } catch (...) {
        return Fail(Code::kInternal, "attempt aborted by an unknown exception");
      }
    }();
    if (dropped > 0) {
      marker("trace_events_dropped",
             fmt::format("{{\"dropped\":{},\"budget\":{}}}", dropped, budget));
      spdlog::warn("runner {}: attempt {}: {} agent trace events beyond the budget of {} dropped",
                   options.name, lease->attempt().number(), dropped, budget);
    }
    flush();
    (void)RemoveAll(dir);

    v1::Envelope env;
    auto* result = env.mutable_result();
    result->set_lease_id(lease->lease_id());
    result->set_run_id(lease->attempt().run_id());
    result->set_attempt(lease->attempt().number());
    if (evidence) {
      redactor.Redact(*evidence);
    } else {
      std::string message = evidence.error().message();
      redactor.Redact(message);
      evidence = Fail(evidence.error().code(), message);
    }
    if (evidence) {
      // Room for the envelope around the evidence.
      constexpr int64_t kEnvelopeRoom = 64 << 10;
      const int64_t max = max_message_bytes.load();
      const size_t limit = max <= 0
                               ? kDefaultMaxResultBytes
                               : static_cast<size_t>(std::max<int64_t>(max - kEnvelopeRoom, 1024));
      if (!FitEvidence(*evidence, limit)) {
        evidence = Fail(Code::kInternal, evidence->truncated());
      } else if (!evidence->truncated().empty()) {
        spdlog::warn("runner {}: attempt {}: {}", options.name, lease->attempt().number(),
                     evidence->truncated());
      }
    }
    if (evidence) {
      *result->mutable_evidence() = std::move(*evidence);
    } else {
      result->set_infra_error(evidence.error().ToString());
      spdlog::warn("runner {}: attempt {} failed: {}", options.name, lease->attempt().number(),
                   evidence.error().ToString());
    }
    push(env);
    work.Done();
  }
}

// What the I/O thread keeps of one lease until its result is acknowledged.
struct Held {
  struct Batch {
    v1::Envelope env;
    bool sent = false;  // on the current connection, counted in inflight_
  };
  std::map<uint64_t, Batch> traces;    // unacknowledged batches by first seq
  std::optional<v1::Envelope> result;  // unacknowledged result
};

class RunnerSession {
 public:
  explicit RunnerSession(const RunnerOptions& options)
      : options_(options), outbox_(context_, zmq::socket_type::pull) {
    heartbeat_ms_ = std::max(10, options.heartbeat_ms);
    outbox_.bind(kOutbox);
  }

  Status Run(bool* busy_workers) {
    CRUCIBLE_RETURN_IF_ERROR(Connect());
    for (int i = 0; i < std::max(1, options_.slots); ++i) {
      workers_.emplace_back([this] {
        Worker(options_, context_, work_, agent_event_budget_, max_message_bytes_, cache_,
               mailbox_);
      });
    }
    Status status = Loop();
    StopWorkers(busy_workers);
    return status;
  }

 private:
  Status Connect() {
    monitor_.reset();  // before the socket it watches
    socket_.emplace(context_, zmq::socket_type::dealer);
    socket_->set(zmq::sockopt::linger, 1000);
    socket_->set(zmq::sockopt::routing_id, options_.name);
    socket_->set(zmq::sockopt::reconnect_ivl, 100);
    socket_->set(zmq::sockopt::reconnect_ivl_max, options_.max_backoff_ms);
    if (options_.curve) {
      // A connection refused by ZAP is given up by libzmq, and a DEALER
      // without any would block sending: never wait long.
      socket_->set(zmq::sockopt::sndtimeo, 1000);
      CRUCIBLE_RETURN_IF_ERROR(protocol::ConfigureCurveClient(*socket_, *options_.curve));
      // libzmq tells a client nothing of a refused key but a monitor event.
      CRUCIBLE_ASSIGN_OR_RETURN(monitor_, protocol::HandshakeMonitor::Attach(context_, *socket_));
    }
    refused_ = false;
    told_silent_ = false;
    try {
      socket_->connect(options_.coordinator);
    } catch (const zmq::error_t& e) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("cannot connect to {}: {}", options_.coordinator, e.what()));
    }
    welcomed_ = false;
    last_recv_ = Clock::now();
    last_connect_ = Clock::now();
    SendHello();
    return {};
  }

  // Before a Welcome: says once per attempt to connect when the coordinator
  // refused our key, or (with CURVE) when it has not answered for liveness x
  // heartbeat, which is what a wrong coordinator key looks like.
  void WatchHandshake(Clock::time_point now) {
    if (!options_.curve) return;
    if (monitor_ && !refused_) {
      auto ev = monitor_->Poll(0);
      if (ev == protocol::HandshakeMonitor::Event::kRefused) {
        refused_ = true;
        spdlog::error(
            "runner {}: coordinator at {} refused our key {} (status {}): add our .pub file to "
            "its --authorized-keys directory",
            options_.name, options_.coordinator, options_.curve->own.public_key,
            monitor_->last_failure_value());
        return;
      }
    }
    if (!refused_ && !told_silent_ && now - last_connect_ > Ms(heartbeat_ms_ * options_.liveness)) {
      told_silent_ = true;
      spdlog::error(
          "runner {}: coordinator at {} has not answered for {} ms; keys may be wrong (is "
          "--coordinator-key the coordinator's public key?) or it is not running",
          options_.name, options_.coordinator,
          std::chrono::duration_cast<Ms>(now - last_connect_).count());
    }
  }

  void SendHello() {
    v1::Envelope hello;
    hello.mutable_hello()->set_runner_name(options_.name);
    hello.mutable_hello()->set_slots(options_.slots);
    hello.mutable_hello()->set_pid(static_cast<uint32_t>(::getpid()));
    for (const auto& l : options_.labels) hello.mutable_hello()->add_labels(l);
    for (const auto& [id, h] : held_) hello.mutable_hello()->add_held_leases(id);
    for (const auto& r : cache_.Repos()) hello.mutable_hello()->add_repos(r);
    Send(hello);
    last_hello_ = Clock::now();
  }

  void Send(const v1::Envelope& env) {
    if (refused_) return;  // no connection to send on until the next Connect()
    auto st = protocol::Send(*socket_, env);
    if (!st) spdlog::debug("runner {}: send failed: {}", options_.name, st.error().message());
  }

  void SendHeartbeat() {
    v1::Envelope hb;
    int held = static_cast<int>(held_.size());
    hb.mutable_heartbeat()->set_free_slots(std::max(0, options_.slots - held));
    for (const auto& [id, h] : held_) hb.mutable_heartbeat()->add_lease_ids(id);
    for (const auto& r : cache_.Repos()) hb.mutable_heartbeat()->add_repos(r);
    Send(hb);
    last_heartbeat_ = Clock::now();
  }

  // After a Welcome: everything not yet acknowledged goes again (the
  // coordinator keeps one copy of each trace event and counts a result once).
  void Resend() {
    backlog_.clear();
    inflight_ = 0;
    for (auto& [id, h] : held_) {
      for (auto& [seq, batch] : h.traces) {
        batch.sent = false;
        backlog_.emplace_back(id, seq);
      }
      if (h.result) backlog_.emplace_back(id, kResult);
    }
    for (const auto& [repo, req] : pending_objects_) Send(req);
    Pump();
  }

  // Sends from the backlog while fewer than max_unacked_ batches are
  // unacknowledged: a chatty agent makes its runner wait for the
  // coordinator, not the coordinator buffer for it.
  void Pump() {
    if (!welcomed_) return;
    while (!backlog_.empty()) {
      auto [id, seq] = backlog_.front();
      auto h = held_.find(id);
      if (h == held_.end()) {
        backlog_.pop_front();
        continue;
      }
      if (seq == kResult) {
        if (h->second.result) Send(*h->second.result);
      } else {
        auto t = h->second.traces.find(seq);
        if (t != h->second.traces.end() && !t->second.sent) {
          if (inflight_ >= max_unacked_) return;
          Send(t->second.env);
          t->second.sent = true;
          ++inflight_;
        }
      }
      backlog_.pop_front();
    }
  }

  Status Loop() {
    auto started = Clock::now();
    for (;;) {
      if (options_.stop != nullptr && options_.stop->load()) {
        HandBack("runner stopped by a signal");
        return {};
      }
      zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                                 {outbox_.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 2, Ms(std::min(heartbeat_ms_, 100)));
      } catch (const zmq::error_t&) {
        continue;  // interrupted by a signal
      }
      if (items[1].revents & ZMQ_POLLIN) DrainOutbox();
      if (items[0].revents & ZMQ_POLLIN) {
        for (int i = 0; i < 64; ++i) {
          auto msg = protocol::Receive(*socket_, /*router=*/false, 0);
          if (!msg) break;
          last_recv_ = Clock::now();
          if (!msg->envelope) {
            spdlog::warn("runner {}: dropped a malformed message: {}", options_.name,
                         msg->envelope.error().message());
            continue;
          }
          if (msg->envelope->has_shutdown()) {
            spdlog::info("runner {}: shutdown: {}", options_.name,
                         msg->envelope->shutdown().reason());
            HandBack("runner shut down: " + msg->envelope->shutdown().reason());
            return {};
          }
          Handle(*msg->envelope);
        }
      }
      auto now = Clock::now();
      if (!welcomed_) {
        WatchHandshake(now);
        if (options_.connect_timeout_ms > 0 && !ever_welcomed_ &&
            now - started > Ms(options_.connect_timeout_ms)) {
          if (refused_) {
            return Fail(
                Code::kUnavailable,
                fmt::format("coordinator at {} refused our key {} (add {} to its "
                            "--authorized-keys directory)",
                            options_.coordinator, options_.curve->own.public_key, "our .pub file"));
          }
          return Fail(Code::kUnavailable,
                      fmt::format("coordinator at {} did not answer within {} ms{}",
                                  options_.coordinator, options_.connect_timeout_ms,
                                  options_.curve ? " (keys may be wrong: is --coordinator-key "
                                                   "the coordinator's public key?)"
                                                 : ""));
        }
        if (refused_ && now - last_connect_ > Ms(options_.max_backoff_ms)) {
          // libzmq gives up a connection refused by ZAP: try again on a fresh
          // socket, so that the runner gets in once its key is authorized.
          CRUCIBLE_RETURN_IF_ERROR(Connect());
          continue;
        }
        if (now - last_hello_ > Ms(backoff_ms_)) {
          backoff_ms_ = std::min(backoff_ms_ * 2, options_.max_backoff_ms);
          spdlog::debug("runner {}: hello again (next in {} ms)", options_.name, backoff_ms_);
          SendHello();
        }
        continue;
      }
      if (now - last_recv_ > Ms(heartbeat_ms_ * options_.liveness)) {
        // The coordinator went quiet: start over on a fresh connection.
        spdlog::warn("runner {}: coordinator silent for {} ms; reconnecting", options_.name,
                     std::chrono::duration_cast<Ms>(now - last_recv_).count());
        socket_.reset();
        CRUCIBLE_RETURN_IF_ERROR(Connect());
        continue;
      }
      if (now - last_heartbeat_ >= Ms(heartbeat_ms_)) SendHeartbeat();
    }
  }

  void Handle(const v1::Envelope& env) {
    switch (env.body_case()) {
      case v1::Envelope::kWelcome:
        if (env.welcome().heartbeat_ms() > 0) heartbeat_ms_ = env.welcome().heartbeat_ms();
        agent_event_budget_ = env.welcome().agent_event_budget();
        max_message_bytes_ = env.welcome().max_message_bytes();
        if (env.welcome().max_unacked_batches() > 0) {
          max_unacked_ = env.welcome().max_unacked_batches();
        }
        // Hellos repeated while the link was down all arrive together once it
        // is back, each answered: only the first Welcome resends what waits
        // for an acknowledgement, the others would send it all again.
        if (!welcomed_) {
          spdlog::info("runner {}: joined {}", options_.name, options_.coordinator);
          welcomed_ = true;
          ever_welcomed_ = true;
          backoff_ms_ = 250;
          Resend();
        }
        SendHeartbeat();
        break;
      case v1::Envelope::kLease: {
        const v1::Lease& lease = env.lease();
        if (held_.count(lease.lease_id())) break;  // a duplicate
        held_[lease.lease_id()];
        work_.Push(lease);
        break;
      }
      case v1::Envelope::kObjectsPack: {
        const std::string repo_id = env.objects_pack().repo_id();
        auto whole = packs_.Add(env.objects_pack());
        if (whole) {
          pending_objects_.erase(repo_id);
          mailbox_.Deliver(std::move(*whole));
        } else {
          mailbox_.Progress(repo_id);
        }
        break;
      }
      case v1::Envelope::kAck: {
        const v1::Ack& ack = env.ack();
        auto h = held_.find(ack.lease_id());
        if (h == held_.end()) break;
        if (ack.result()) {
          if (h->second.result) {
            if (ack.ignored()) {
              spdlog::warn("runner {}: result of lease {} came too late and was ignored",
                           options_.name, ack.lease_id());
            }
            for (const auto& [seq, batch] : h->second.traces) inflight_ -= batch.sent ? 1 : 0;
            held_.erase(h);
            inflight_ = std::max(0, inflight_);
            Pump();
          }
        } else if (auto t = h->second.traces.find(ack.first_seq()); t != h->second.traces.end()) {
          if (t->second.sent) inflight_ = std::max(0, inflight_ - 1);
          h->second.traces.erase(t);
          Pump();
        }
        break;
      }
      case v1::Envelope::kError:
        if (env.error().message().starts_with("unknown runner")) {
          // The coordinator restarted or forgot us: announce ourselves again
          // (at most once per backoff interval).
          if (welcomed_ || Clock::now() - last_hello_ > Ms(backoff_ms_)) {
            spdlog::info("runner {}: coordinator does not know us; hello again", options_.name);
            welcomed_ = false;
            SendHello();
          }
        } else {
          spdlog::warn("runner {}: coordinator says: {}", options_.name, env.error().message());
        }
        break;
      default:
        break;  // heartbeats only prove the coordinator is alive
    }
  }

  // Takes what the workers produced and sends it (when connected), keeping a
  // copy until it is acknowledged.
  void DrainOutbox() {
    for (;;) {
      auto msg = protocol::Receive(outbox_, false, 0);
      if (!msg) return;
      if (!msg->envelope) continue;
      const v1::Envelope& env = *msg->envelope;
      if (env.has_trace()) {
        if (env.trace().events_size() == 0) continue;
        uint64_t seq = env.trace().events(0).seq();
        held_[env.trace().lease_id()].traces[seq] = Held::Batch{.env = env, .sent = false};
        backlog_.emplace_back(env.trace().lease_id(), seq);
      } else if (env.has_result()) {
        held_[env.result().lease_id()].result = env;
        backlog_.emplace_back(env.result().lease_id(), kResult);
      } else if (env.has_objects_request()) {
        // Not behind trace batches: a worker waits for the answer.
        pending_objects_[env.objects_request().repo_id()] = env;
        if (welcomed_) Send(env);
        continue;
      }
      Pump();
    }
  }

  // Leases not started yet, or (when the process goes away) not finished,
  // go back to the coordinator as infrastructure errors.
  void HandBack(const std::string& why) {
    work_.Close();
    mailbox_.Close();
    auto give_back = [&](const std::string& id, const std::string& when) {
      v1::Envelope env;
      env.mutable_result()->set_lease_id(id);
      env.mutable_result()->set_infra_error(fmt::format("{} {}", why, when));
      held_[id].result = env;
      Send(env);
    };
    for (const auto& lease : work_.Drain())
      give_back(lease.lease_id(), "before the attempt started");
    DrainOutbox();
    if (work_.busy() > 0) {
      std::vector<std::string> running;
      for (const auto& [id, h] : held_) {
        if (!h.result) running.push_back(id);
      }
      for (const auto& id : running) give_back(id, "during the attempt");
    }
    // Lease us nothing more (sent after the results, so it arrives after them).
    v1::Envelope bye;
    bye.mutable_heartbeat()->set_leaving(true);
    Send(bye);
    // Wait (a little) until the coordinator has acknowledged every result,
    // so that nothing is lost when the process exits right after.
    auto deadline = Clock::now() + Ms(2000);
    while (Clock::now() < deadline) {
      bool pending = false;
      for (const auto& [id, h] : held_) pending = pending || h.result.has_value();
      if (!pending || !welcomed_) break;
      auto msg = protocol::Receive(*socket_, false, 50);
      if (msg && msg->envelope && msg->envelope->has_ack()) Handle(*msg->envelope);
    }
  }

  void StopWorkers(bool* busy_workers) {
    work_.Close();
    mailbox_.Close();
    bool busy = work_.busy() > 0;
    for (auto& w : workers_) {
      if (busy) {
        w.detach();
      } else {
        w.join();
      }
    }
    if (busy_workers != nullptr) *busy_workers = busy;
  }

  RunnerOptions options_;
  zmq::context_t context_;
  std::optional<zmq::socket_t> socket_;
  std::unique_ptr<protocol::HandshakeMonitor> monitor_;  // with CURVE, until welcomed
  bool refused_ = false;      // the coordinator refused our key on this connection
  bool told_silent_ = false;  // said so once on this connection
  Clock::time_point last_connect_ = Clock::now();
  zmq::socket_t outbox_;
  WorkQueue work_;
  RepoCache cache_{options_.workdir + "/repos", options_.repo_urls};
  PackMailbox mailbox_;
  // ObjectsRequests sent and not answered, by repository: sent again after
  // a reconnect.
  std::map<std::string, v1::Envelope> pending_objects_;
  PackAssembler packs_;  // chunked ObjectsPack answers being put together
  std::vector<std::thread> workers_;
  std::map<std::string, Held> held_;
  std::atomic<uint64_t> agent_event_budget_{0};  // from Welcome; read by workers
  std::atomic<int64_t> max_message_bytes_{0};    // from Welcome; 0: unknown
  int max_unacked_ = 16;                         // from Welcome
  int inflight_ = 0;                             // trace batches sent and not acknowledged
  // What is to be sent, in order: (lease, first seq of a batch) or (lease,
  // kResult). Results wait behind their lease's batches.
  std::deque<std::pair<std::string, uint64_t>> backlog_;
  int heartbeat_ms_ = 1000;
  int backoff_ms_ = 250;
  bool welcomed_ = false;
  bool ever_welcomed_ = false;
  Clock::time_point last_recv_ = Clock::now();
  Clock::time_point last_hello_ = Clock::now();
  Clock::time_point last_heartbeat_ = Clock::now();
};

}  // namespace

Status RunRunner(const RunnerOptions& options, bool* busy_workers) {
  if (busy_workers != nullptr) *busy_workers = false;
  if (options.coordinator.empty()) return Fail(Code::kInvalidArgument, "no coordinator address");
  if (options.workdir.empty()) return Fail(Code::kInvalidArgument, "no work directory");
  if (options.slots < 1) return Fail(Code::kInvalidArgument, "--slots must be at least 1");
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(options.workdir));
  // Busy workers may outlive the session (the caller exits the process), so
  // it is never destroyed while they might use its context.
  auto* session = new RunnerSession(options);
  bool busy = false;
  Status st = session->Run(&busy);
  if (busy_workers != nullptr) *busy_workers = busy;
  if (!busy) delete session;
  return st;
}

}  // namespace crucible::runner
