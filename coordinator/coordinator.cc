#include "coordinator/coordinator.h"

#include <chrono>
#include <ctime>
#include <deque>
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "protocol/framing.h"
#include "scoring/score.h"

namespace crucible::coordinator {

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomHex(int digits) {
  static std::mt19937_64 rng(std::random_device{}());
  std::string out;
  for (int i = 0; i < digits; ++i) out += "0123456789abcdef"[rng() % 16];
  return out;
}

struct RunnerState {
  int slots = 1;
  Clock::time_point last_seen;
  std::set<std::string> leases;
};

struct LeaseState {
  uint64_t attempt = 0;
  std::string runner;
};

class ZmqCoordinator : public Coordinator {
 public:
  ZmqCoordinator(storage::Store& store, CoordinatorOptions options)
      : store_(store), options_(std::move(options)), socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 1000);
    socket_.set(zmq::sockopt::router_mandatory, 1);
  }

  Status Bind() {
    try {
      socket_.bind(options_.listen);
    } catch (const zmq::error_t& e) {
      return Fail(Code::kUnavailable,
                  fmt::format("cannot listen on {}: {}", options_.listen, e.what()));
    }
    return {};
  }

  Result<v1::Run> SubmitRun(const std::string& suite, const std::vector<v1::AgentSpec>& agents,
                            int samples) override {
    if (agents.empty()) return Fail(Code::kInvalidArgument, "a run needs at least one --agent");
    if (samples < 1) return Fail(Code::kInvalidArgument, "--samples must be at least 1");
    std::set<std::string> names;
    for (const auto& a : agents) {
      if (!names.insert(a.name()).second) {
        return Fail(Code::kInvalidArgument, "agent name '" + a.name() + "' given twice");
      }
    }
    CRUCIBLE_ASSIGN_OR_RETURN(v1::Suite s, store_.GetSuite(suite));
    CRUCIBLE_ASSIGN_OR_RETURN(auto tasks, store_.ListTasks(suite));
    if (tasks.empty()) return Fail(Code::kInvalidArgument, "suite '" + suite + "' has no tasks");

    v1::Run run;
    run.set_id(NewRunId());
    run.set_suite(suite);
    for (const auto& a : agents) *run.add_agents() = a;
    run.set_samples(samples);
    run.set_created_at_ms(NowMs());
    run.set_state(v1::Run::RUNNING);
    std::vector<v1::Attempt> attempts;
    for (const auto& task : tasks) {
      for (int sample = 0; sample < samples; ++sample) {
        for (const auto& agent : agents) {
          v1::Attempt a;
          a.set_run_id(run.id());
          a.set_number(attempts.size());
          a.set_task_id(task.id());
          a.set_agent(agent.name());
          a.set_sample(sample);
          a.set_state(v1::Attempt::QUEUED);
          attempts.push_back(std::move(a));
        }
      }
    }
    run.set_attempt_count(static_cast<int32_t>(attempts.size()));
    CRUCIBLE_RETURN_IF_ERROR(store_.CreateRun(run, attempts));
    return run;
  }

  Status ServeUntilFinished(const std::string& run_id,
                            const std::function<void(const RunProgress&)>& progress,
                            const std::function<Status()>& check) override {
    CRUCIBLE_RETURN_IF_ERROR(LoadRun(run_id));
    Report(progress);
    auto last_check = Clock::now();
    while (!Finished()) {
      auto msg = protocol::Receive(socket_, /*router=*/true, 100);
      if (msg) Handle(*msg);
      if (Clock::now() - last_check >= std::chrono::milliseconds(100)) {
        last_check = Clock::now();
        ExpireSilentRunners();
        if (check) CRUCIBLE_RETURN_IF_ERROR(check());
      }
      Dispatch();
      Report(progress);
    }
    run_.set_state(v1::Run::FINISHED);
    run_.set_finished_at_ms(NowMs());
    CRUCIBLE_RETURN_IF_ERROR(store_.PutRun(run_));
    return {};
  }

  void RunnerLost(const std::string& name) override {
    auto it = runners_.find(name);
    if (it == runners_.end()) return;
    for (const auto& lease_id : it->second.leases) {
      auto l = leases_.find(lease_id);
      if (l == leases_.end()) continue;
      Requeue(l->second.attempt, fmt::format("runner {} was lost", name));
      leases_.erase(l);
    }
    runners_.erase(it);
  }

  void ShutdownRunners(const std::string& reason) override {
    v1::Envelope env;
    env.mutable_shutdown()->set_reason(reason);
    for (const auto& [name, state] : runners_) (void)protocol::SendTo(socket_, name, env);
  }

 private:
  Status LoadRun(const std::string& run_id) {
    CRUCIBLE_ASSIGN_OR_RETURN(run_, store_.GetRun(run_id));
    CRUCIBLE_ASSIGN_OR_RETURN(auto tasks, store_.ListTasks(run_.suite()));
    tasks_.clear();
    for (auto& t : tasks) tasks_.emplace(t.id(), std::move(t));
    agents_.clear();
    for (const auto& a : run_.agents()) agents_.emplace(a.name(), a);
    CRUCIBLE_ASSIGN_OR_RETURN(auto attempts, store_.ListAttempts(run_id));
    attempts_.clear();
    queue_.clear();
    for (auto& a : attempts) {
      uint64_t n = a.number();
      bool unfinished = a.state() != v1::Attempt::DONE && a.state() != v1::Attempt::FAILED;
      attempts_.emplace(n, std::move(a));
      if (!unfinished) continue;
      if (attempts_[n].state() != v1::Attempt::QUEUED) {
        // Leased by a coordinator that is gone; its runner's result would be
        // refused (unknown lease), so hand it out again.
        Requeue(n, "coordinator restarted");
      } else {
        queue_.push_back(n);
      }
    }
    return {};
  }

  bool Finished() const {
    for (const auto& [n, a] : attempts_) {
      if (a.state() != v1::Attempt::DONE && a.state() != v1::Attempt::FAILED) return false;
    }
    return true;
  }

  void Report(const std::function<void(const RunProgress&)>& progress) {
    RunProgress p;
    p.total = attempts_.size();
    for (const auto& [n, a] : attempts_) {
      if (a.state() == v1::Attempt::DONE) ++p.done;
      if (a.state() == v1::Attempt::FAILED) ++p.failed;
      if (a.state() == v1::Attempt::LEASED) ++p.leased;
    }
    p.runners = runners_.size();
    if (progress && (p.done != last_.done || p.failed != last_.failed || p.leased != last_.leased ||
                     p.runners != last_.runners || !reported_)) {
      progress(p);
    }
    reported_ = true;
    last_ = p;
  }

  // Puts attempt `n` back in the queue, or fails it after max_tries.
  void Requeue(uint64_t n, const std::string& why) {
    v1::Attempt& a = attempts_[n];
    a.set_tries(a.tries() + 1);
    a.set_error(why);
    a.set_lease_id("");
    if (a.tries() >= options_.max_tries) {
      a.set_state(v1::Attempt::FAILED);
      a.set_finished_at_ms(NowMs());
      a.set_error(fmt::format("failed {} times; last: {}", a.tries(), why));
    } else {
      a.set_state(v1::Attempt::QUEUED);
      queue_.push_front(n);
    }
    auto st = store_.UpdateAttempt(a);
    if (!st) spdlog::error("cannot store attempt {}: {}", n, st.error().ToString());
  }

  void Dispatch() {
    for (auto& [name, runner] : runners_) {
      while (!queue_.empty() && static_cast<int>(runner.leases.size()) < runner.slots) {
        uint64_t n = queue_.front();
        queue_.pop_front();
        v1::Attempt& a = attempts_[n];
        std::string lease_id = fmt::format("{}-{}-{}", run_.id(), n, RandomHex(6));
        a.set_state(v1::Attempt::LEASED);
        a.set_lease_id(lease_id);
        a.set_runner(name);
        a.set_leased_at_ms(NowMs());
        auto st = store_.UpdateAttempt(a);
        if (!st) spdlog::error("cannot store attempt {}: {}", n, st.error().ToString());

        v1::Envelope env;
        auto* lease = env.mutable_lease();
        lease->set_lease_id(lease_id);
        *lease->mutable_attempt() = a;
        *lease->mutable_task() = tasks_.at(a.task_id());
        *lease->mutable_agent() = agents_.at(a.agent());
        lease->set_deadline_ms(NowMs() + options_.runner_timeout_ms);
        runner.leases.insert(lease_id);
        leases_[lease_id] = LeaseState{.attempt = n, .runner = name};
        if (!protocol::SendTo(socket_, name, env)) {
          spdlog::warn("runner {} unreachable; its leases go back to the queue", name);
          RunnerLost(name);
          return;  // runners_ changed under the loop
        }
      }
    }
  }

  void ExpireSilentRunners() {
    auto limit = std::chrono::milliseconds(options_.runner_timeout_ms);
    std::vector<std::string> silent;
    for (const auto& [name, r] : runners_) {
      if (Clock::now() - r.last_seen > limit) silent.push_back(name);
    }
    for (const auto& name : silent) {
      spdlog::warn("runner {} silent for {} ms; its leases go back to the queue", name,
                   options_.runner_timeout_ms);
      RunnerLost(name);
    }
  }

  void Reply(const std::string& peer, const v1::Envelope& env) {
    if (!protocol::SendTo(socket_, peer, env)) RunnerLost(peer);
  }

  void Handle(const protocol::Received& msg) {
    if (!msg.envelope) {
      ++malformed_;
      spdlog::warn("malformed message from '{}': {}", msg.peer, msg.envelope.error().message());
      v1::Envelope err;
      err.mutable_error()->set_message(msg.envelope.error().message());
      (void)protocol::SendTo(socket_, msg.peer, err);
      return;
    }
    const v1::Envelope& env = *msg.envelope;
    if (env.has_hello()) {
      RunnerState& r = runners_[msg.peer];
      r.slots = std::max(1, env.hello().slots());
      r.last_seen = Clock::now();
      spdlog::debug("runner {} joined with {} slots", msg.peer, r.slots);
      v1::Envelope welcome;
      welcome.mutable_welcome()->set_coordinator_id(run_.id());
      welcome.mutable_welcome()->set_heartbeat_ms(options_.heartbeat_ms);
      Reply(msg.peer, welcome);
      return;
    }
    auto it = runners_.find(msg.peer);
    if (it == runners_.end()) {
      v1::Envelope err;
      err.mutable_error()->set_message("unknown runner: send hello first");
      (void)protocol::SendTo(socket_, msg.peer, err);
      return;
    }
    it->second.last_seen = Clock::now();
    switch (env.body_case()) {
      case v1::Envelope::kTrace:
        HandleTrace(msg.peer, env.trace());
        break;
      case v1::Envelope::kResult:
        HandleResult(msg.peer, env.result());
        break;
      default:
        break;  // heartbeats: proof of life is all we need
    }
  }

  // The attempt a lease refers to, when the lease is still the current one.
  v1::Attempt* CurrentAttempt(const std::string& lease_id) {
    auto l = leases_.find(lease_id);
    if (l == leases_.end()) return nullptr;
    auto a = attempts_.find(l->second.attempt);
    if (a == attempts_.end() || a->second.lease_id() != lease_id) return nullptr;
    return &a->second;
  }

  void HandleTrace(const std::string& peer, const v1::TraceBatch& batch) {
    v1::Attempt* a = CurrentAttempt(batch.lease_id());
    v1::Envelope ack;
    ack.mutable_ack()->set_lease_id(batch.lease_id());
    if (a == nullptr) {
      spdlog::warn("trace from {} under unknown lease {} ignored", peer, batch.lease_id());
    } else {
      std::vector<v1::TraceEvent> events(batch.events().begin(), batch.events().end());
      auto st = store_.AppendEvents(run_.id(), a->number(), events);
      if (!st) spdlog::error("cannot store trace events: {}", st.error().ToString());
      ack.mutable_ack()->set_count(events.size());
    }
    Reply(peer, ack);
  }

  void HandleResult(const std::string& peer, const v1::AttemptResult& result) {
    v1::Attempt* a = CurrentAttempt(result.lease_id());
    v1::Envelope ack;
    ack.mutable_ack()->set_lease_id(result.lease_id());
    if (a == nullptr) {
      spdlog::warn("result from {} under unknown lease {} ignored", peer, result.lease_id());
      Reply(peer, ack);
      return;
    }
    uint64_t n = a->number();
    leases_.erase(result.lease_id());
    runners_[peer].leases.erase(result.lease_id());
    if (!result.infra_error().empty()) {
      spdlog::warn("attempt {} on {}: {}", n, peer, result.infra_error());
      Requeue(n, result.infra_error());
    } else {
      v1::Score score = scoring::ScoreAttempt(tasks_.at(a->task_id()), result.evidence());
      a->set_state(v1::Attempt::DONE);
      a->set_finished_at_ms(NowMs());
      a->set_error("");
      auto st = store_.FinishAttempt(*a, result.evidence(), score);
      if (!st) spdlog::error("cannot store result of attempt {}: {}", n, st.error().ToString());
    }
    Reply(peer, ack);
  }

  storage::Store& store_;
  CoordinatorOptions options_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  v1::Run run_;
  std::map<std::string, v1::GoldenTask> tasks_;
  std::map<std::string, v1::AgentSpec> agents_;
  std::map<uint64_t, v1::Attempt> attempts_;
  std::deque<uint64_t> queue_;
  std::map<std::string, RunnerState> runners_;
  std::map<std::string, LeaseState> leases_;
  RunProgress last_;
  bool reported_ = false;
  uint64_t malformed_ = 0;
};

}  // namespace

std::string NewRunId() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return fmt::format("r{}-{}", buf, RandomHex(4));
}

Result<std::unique_ptr<Coordinator>> Coordinator::Create(storage::Store& store,
                                                         CoordinatorOptions options) {
  auto c = std::make_unique<ZmqCoordinator>(store, std::move(options));
  CRUCIBLE_RETURN_IF_ERROR(c->Bind());
  return std::unique_ptr<Coordinator>(std::move(c));
}

}  // namespace crucible::coordinator
