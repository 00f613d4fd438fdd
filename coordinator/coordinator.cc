#include "coordinator/coordinator.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <deque>
#include <list>
#include <map>
#include <random>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/arena.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "coordinator/background_sync.h"
#include "coordinator/pack_builder.h"
#include "coordinator/zap.h"
#include "protocol/framing.h"
#include "protocol/golden_task.h"
#include "protocol/run_state.h"
#include "scoring/score.h"
#include "vcs/pack.h"

namespace crucible::coordinator {

namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

int64_t NowMs() {
  return std::chrono::duration_cast<Ms>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomHex(int digits) {
  static std::mt19937_64 rng(std::random_device{}());
  std::string out;
  for (int i = 0; i < digits; ++i) out += "0123456789abcdef"[rng() % 16];
  return out;
}

// (run id, attempt number)
using Key = std::pair<std::string, uint64_t>;

// Room for the runner's own events beyond the agent's budget.
constexpr uint64_t kRunnerEventMargin = 10'000;

struct RunState {
  v1::Run run;
  std::map<std::string, v1::GoldenTask> tasks;
  std::map<std::string, v1::AgentSpec> agents;
  std::map<uint64_t, v1::Attempt> attempts;
  v1::RunStatus status;  // counts, kept current by Move() (Recount() rebuilds them)
  bool dirty = true;     // counts changed since watchers were told
  Clock::time_point last_update;
  std::set<std::string> watchers;                 // client peers following this run
  std::map<std::string, std::string> task_repos;  // task id -> repository id (vcs::RepoId)
  v1::ReviewRules rules;                          // the suite's review bar (scoring::RulesFor)
};

struct RunnerState {
  int slots = 1;
  Clock::time_point last_seen;
  int64_t last_seen_wall_ms = 0;
  std::set<std::string> leases;
  std::vector<std::string> labels;
  std::set<std::string> repos;  // repository ids in its cache (Hello, heartbeats, leases)
  int64_t pack_requests = 0;
};

struct LeaseState {
  Key key;
  std::string runner;  // empty: orphaned by a coordinator restart
  Clock::time_point deadline;
};

class ZmqCoordinator : public Coordinator {
 public:
  ZmqCoordinator(storage::Store& store, CoordinatorOptions options)
      : store_(store), options_(std::move(options)), socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 1000);
    socket_.set(zmq::sockopt::router_mandatory, 1);
    // A runner that reconnects under its name takes its identity back.
    socket_.set(zmq::sockopt::router_handover, 1);
    socket_.set(zmq::sockopt::maxmsgsize, options_.max_message_bytes);
  }

  void SetOtlpExporter(std::unique_ptr<OtlpExporter> otlp) { otlp_ = std::move(otlp); }

  Status Bind() {
    if (options_.curve) {
      // The ZAP handler first: a CURVE server without one lets anyone in.
      if (options_.authorized_keys.empty()) {
        return Fail(Code::kInvalidArgument,
                    "a CURVE coordinator needs at least one authorized key");
      }
      CRUCIBLE_ASSIGN_OR_RETURN(zap_, ZapHandler::Start(context_, options_.authorized_keys));
      CRUCIBLE_RETURN_IF_ERROR(protocol::ConfigureCurveServer(socket_, *options_.curve));
    } else if (!options_.authorized_keys.empty()) {
      return Fail(Code::kInvalidArgument, "authorized keys need the coordinator's CURVE key pair");
    }
    try {
      socket_.bind(options_.listen);
    } catch (const zmq::error_t& e) {
      return Fail(Code::kUnavailable,
                  fmt::format("cannot listen on {}: {}", options_.listen, e.what()));
    }
    return {};
  }

  Result<v1::Run> SubmitRun(const std::string& suite, const std::vector<v1::AgentSpec>& agents,
                            int samples, bool held_out, bool include_untestable,
                            const std::vector<v1::JudgeSpec>& judges,
                            const std::vector<v1::ReviewerSpec>& reviewers,
                            const std::vector<std::string>& only_tasks,
                            bool include_mismatched) override {
    std::set<std::string> reviewer_names;
    for (const auto& r : reviewers) {
      if (r.name().empty() || r.command().empty()) {
        return Fail(Code::kInvalidArgument,
                    "reviewer '" + r.name() + "=" + r.command() + "': expected NAME=COMMAND");
      }
      if (!reviewer_names.insert(r.name()).second) {
        return Fail(Code::kInvalidArgument, "reviewer name '" + r.name() + "' given twice");
      }
    }
    std::set<std::string> judge_names;
    for (const auto& j : judges) {
      if (j.name().empty() || j.command().empty()) {
        return Fail(Code::kInvalidArgument,
                    "judge '" + j.name() + "=" + j.command() + "': expected NAME=COMMAND");
      }
      if (!judge_names.insert(j.name()).second) {
        return Fail(Code::kInvalidArgument, "judge name '" + j.name() + "' given twice");
      }
    }
    if (agents.empty()) return Fail(Code::kInvalidArgument, "a run needs at least one --agent");
    if (samples < 1) return Fail(Code::kInvalidArgument, "--samples must be at least 1");
    std::set<std::string> names;
    for (const auto& a : agents) {
      if (a.name().empty() || a.command().empty()) {
        return Fail(Code::kInvalidArgument, "an agent needs a name and a command");
      }
      if (!names.insert(a.name()).second) {
        return Fail(Code::kInvalidArgument, "agent name '" + a.name() + "' given twice");
      }
      for (const auto& r : a.require()) {
        auto eq = r.find('=');
        if (eq == std::string::npos || eq == 0) {
          return Fail(Code::kInvalidArgument, "--require '" + r + "': expected KEY=VALUE");
        }
      }
    }
    CRUCIBLE_ASSIGN_OR_RETURN(v1::Suite s, store_.GetSuite(suite));
    std::vector<v1::AgentSpec> with_rounds = agents;
    for (auto& a : with_rounds) {
      if (a.rounds() <= 0) a.set_rounds(s.review().has_rounds() ? s.review().rounds() : 1);
      if (a.rounds() < 1 || a.rounds() > scoring::kMaxReviewRounds) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("agent '{}': {} review rounds; between 1 and {} are allowed",
                                a.name(), a.rounds(), scoring::kMaxReviewRounds));
      }
    }
    CRUCIBLE_ASSIGN_OR_RETURN(auto all_tasks, store_.ListTasks(suite));
    if (all_tasks.empty())
      return Fail(Code::kInvalidArgument, "suite '" + suite + "' has no tasks");
    // A prediction for a task the suite lacks is named and dropped; the run
    // goes on with the others.
    std::set<std::string> known;
    for (const auto& t : all_tasks) known.insert(t.id());
    for (auto& a : with_rounds) {
      for (auto p = a.mutable_predictions()->begin(); p != a.mutable_predictions()->end();) {
        if (known.contains(p->first)) {
          ++p;
          continue;
        }
        a.add_prediction_warnings(fmt::format(
            "{}:{}: instance {}: unknown instance_id (suite '{}' has no such task); left out",
            a.command().substr(std::string_view(v1::kPredictionsPrefix).size()), p->second.line(),
            p->first, suite));
        p = a.mutable_predictions()->erase(p);
      }
    }
    std::vector<v1::GoldenTask> tasks;
    for (auto& t : all_tasks) {
      if (t.held_out() == held_out) tasks.push_back(std::move(t));
    }
    if (tasks.empty()) {
      return Fail(Code::kInvalidArgument,
                  held_out ? "suite '" + suite +
                                 "' has no held-out tasks (`crucible suite split` makes some)"
                           : "suite '" + suite + "' has no dev tasks (all are held out)");
    }
    if (!only_tasks.empty()) {
      std::set<std::string> wanted(only_tasks.begin(), only_tasks.end());
      std::erase_if(tasks, [&](const v1::GoldenTask& t) { return wanted.erase(t.id()) == 0; });
      if (!wanted.empty()) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("suite '{}' has no {} task {}", suite,
                                held_out ? "held-out" : "dev", fmt::join(wanted, ", ")));
      }
    }
    std::vector<std::string> mismatched;
    for (const auto& t : tasks) {
      if (v1::IsEnvironmentMismatch(t)) mismatched.push_back(t.id());
    }
    if (!include_mismatched && !mismatched.empty()) {
      std::erase_if(tasks, [](const v1::GoldenTask& t) { return v1::IsEnvironmentMismatch(t); });
      if (tasks.empty()) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("every one of the {} chosen tasks of suite '{}' failed its "
                                "environment check (the gold patch does not resolve it, or its "
                                "FAIL_TO_PASS tests pass without it), so none is left to run; "
                                "--include-mismatched runs them",
                                mismatched.size(), suite));
      }
    }
    std::vector<std::string> untestable;
    for (const auto& t : tasks) {
      if (v1::IsUntestable(t)) untestable.push_back(t.id());
    }
    if (!include_untestable) {
      std::erase_if(tasks, [](const v1::GoldenTask& t) { return v1::IsUntestable(t); });
      if (tasks.empty()) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("every one of the {} {} tasks of suite '{}' has no FAIL_TO_PASS "
                                "test (doing nothing completes them), so none is left to run; "
                                "--include-untestable runs them, reported apart",
                                untestable.size(), held_out ? "held-out" : "dev", suite));
      }
    }

    v1::Run run;
    run.set_id(NewRunId());
    run.set_suite(suite);
    for (const auto& a : with_rounds) *run.add_agents() = a;
    run.set_samples(samples);
    run.set_held_out(held_out);
    run.set_include_untestable(include_untestable);
    for (const auto& j : judges) *run.add_judges() = j;
    for (const auto& r : reviewers) *run.add_reviewers() = r;
    for (const auto& id : untestable) run.add_untestable_tasks(id);
    run.set_include_mismatched(include_mismatched);
    for (const auto& id : mismatched) run.add_mismatched_tasks(id);
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
    RunState& rs = runs_[run.id()];
    rs.run = run;
    rs.rules = scoring::RulesFor(s);
    for (auto& t : tasks) rs.tasks.emplace(t.id(), std::move(t));
    for (const auto& a : with_rounds) rs.agents.emplace(a.name(), a);
    IndexRepos(rs);
    for (auto& a : attempts) {
      queue_.emplace_back(run.id(), a.number());
      rs.attempts.emplace(a.number(), std::move(a));
    }
    Recount(rs);
    ++counters_.runs_submitted;
    spdlog::info("run {} submitted: {} attempts", run.id(), run.attempt_count());
    return ForClients(run);
  }

  Result<v1::Run> ResumeRun(const std::string& run_id) override {
    if (auto it = runs_.find(run_id); it != runs_.end()) return ForClients(it->second.run);
    CRUCIBLE_ASSIGN_OR_RETURN(v1::Run run, store_.GetRun(run_id));
    if (run.state() != v1::Run::RUNNING) return ForClients(run);
    RunState rs;
    rs.run = run;
    if (auto suite = store_.GetSuite(run.suite())) rs.rules = scoring::RulesFor(*suite);
    CRUCIBLE_ASSIGN_OR_RETURN(auto tasks, store_.ListTasks(run.suite()));
    for (auto& t : tasks) rs.tasks.emplace(t.id(), std::move(t));
    for (const auto& a : run.agents()) rs.agents.emplace(a.name(), a);
    IndexRepos(rs);
    CRUCIBLE_ASSIGN_OR_RETURN(auto attempts, store_.ListAttempts(run_id));
    auto orphan_deadline =
        Clock::now() + Ms(options_.heartbeat_ms * options_.liveness + options_.grace_ms);
    size_t orphaned = 0;
    for (auto& a : attempts) {
      uint64_t n = a.number();
      if (!v1::IsSettled(a)) {
        if (!rs.tasks.count(a.task_id()) || !rs.agents.count(a.agent())) {
          a.set_state(v1::Attempt::FAILED);
          a.set_error(
              fmt::format("task '{}' or agent '{}' no longer exists", a.task_id(), a.agent()));
          StoreAttempt(a);
        } else if (a.state() == v1::Attempt::QUEUED || a.lease_id().empty()) {
          a.set_state(v1::Attempt::QUEUED);
          queue_.emplace_back(run_id, n);
        } else {
          // Leased under an earlier coordinator: its runner may still be at
          // work and claim it back when it says hello again.
          leases_[a.lease_id()] =
              LeaseState{.key = {run_id, n}, .runner = "", .deadline = orphan_deadline};
          ++orphaned;
        }
      }
      rs.attempts.emplace(n, std::move(a));
    }
    Recount(rs);
    runs_[run_id] = std::move(rs);
    spdlog::info("run {} resumed: {} attempts left, {} held by runners of an earlier coordinator",
                 run_id,
                 run.attempt_count() - runs_[run_id].status.done() - runs_[run_id].status.failed(),
                 orphaned);
    CheckFinished(run_id);
    return ForClients(run);
  }

  Result<size_t> ResumeAllRuns() override {
    CRUCIBLE_ASSIGN_OR_RETURN(auto runs, store_.ListRuns());
    size_t n = 0;
    for (const auto& r : runs) {
      if (r.state() != v1::Run::RUNNING) continue;
      CRUCIBLE_RETURN_IF_ERROR(ResumeRun(r.id()));
      ++n;
    }
    return n;
  }

  Status ServeUntilFinished(const std::string& run_id,
                            const std::function<void(const RunProgress&)>& progress,
                            const std::function<Status()>& check) override {
    CRUCIBLE_RETURN_IF_ERROR(ResumeRun(run_id));
    RunProgress last;
    bool reported = false;
    auto report = [&] {
      if (!progress) return;
      RunProgress p;
      auto it = runs_.find(run_id);
      const v1::RunStatus& s = it != runs_.end() ? it->second.status : finished_[run_id];
      p.total = s.run().attempt_count();
      p.done = s.done();
      p.failed = s.failed();
      p.leased = s.leased();
      p.runners = runners_.size();
      if (!reported || p.done != last.done || p.failed != last.failed || p.leased != last.leased ||
          p.runners != last.runners) {
        progress(p);
      }
      reported = true;
      last = p;
    };
    report();
    auto last_check = Clock::now();
    while (runs_.count(run_id)) {
      PollOnce();
      report();
      if (Clock::now() - last_check >= Ms(100)) {
        last_check = Clock::now();
        if (check) {
          auto st = check();
          if (!st) {
            FlushOutbox();
            return st;
          }
        }
      }
    }
    // The acknowledgements still waiting for a sync (the last result's, say)
    // go out before the caller stops serving.
    FlushOutbox();
    report();
    if (finished_[run_id].run().state() == v1::Run::CANCELLED) {
      return Fail(Code::kFailedPrecondition, "run " + run_id + " was cancelled");
    }
    return {};
  }

  Status Serve(const std::function<bool()>& stop) override {
    auto last_check = Clock::now();
    for (;;) {
      PollOnce();
      if (Clock::now() - last_check >= Ms(100)) {
        last_check = Clock::now();
        if (stop && stop()) {
          FlushOutbox();
          return {};
        }
      }
    }
  }

  Status CancelRun(const std::string& run_id) override {
    auto it = runs_.find(run_id);
    if (it == runs_.end()) {
      CRUCIBLE_ASSIGN_OR_RETURN(v1::Run run, store_.GetRun(run_id));
      if (run.state() == v1::Run::RUNNING) {
        run.set_state(v1::Run::CANCELLED);
        run.set_finished_at_ms(NowMs());
        CRUCIBLE_RETURN_IF_ERROR(store_.PutRun(run));
      }
      return {};
    }
    RunState& rs = it->second;
    for (auto l = leases_.begin(); l != leases_.end();) {
      if (l->second.key.first == run_id) {
        if (auto r = runners_.find(l->second.runner); r != runners_.end()) {
          r->second.leases.erase(l->first);
        }
        l = leases_.erase(l);
      } else {
        ++l;
      }
    }
    rs.run.set_state(v1::Run::CANCELLED);
    rs.run.set_finished_at_ms(NowMs());
    auto st = store_.PutRun(rs.run);
    EndRun(run_id);
    spdlog::info("run {} cancelled", run_id);
    return st;
  }

  void RunnerLost(const std::string& name) override {
    auto it = runners_.find(name);
    if (it == runners_.end()) return;
    std::set<std::string> held = std::move(it->second.leases);
    runners_.erase(it);
    for (const auto& lease_id : held)
      ExpireLease(lease_id, fmt::format("runner {} was lost", name));
  }

  void ShutdownRunners(const std::string& reason) override {
    v1::Envelope env;
    env.mutable_shutdown()->set_reason(reason);
    for (const auto& [name, state] : runners_) (void)protocol::SendTo(socket_, name, env);
  }

  Result<v1::RunStatus> GetRunStatus(const std::string& run_id) override {
    if (auto it = runs_.find(run_id); it != runs_.end()) return it->second.status;
    if (auto it = finished_.find(run_id); it != finished_.end()) return it->second;
    CRUCIBLE_ASSIGN_OR_RETURN(v1::Run run, store_.GetRun(run_id));
    CRUCIBLE_ASSIGN_OR_RETURN(auto attempts, store_.ListAttempts(run_id));
    v1::RunStatus s;
    *s.mutable_run() = ForClients(run);
    for (const auto& a : attempts) Count(s, a);
    return s;
  }

  uint64_t refused_connections() const override { return zap_ ? zap_->refused() : 0; }

  Status SetAuthorizedKeys(const std::vector<protocol::AuthorizedKey>& keys) override {
    if (!zap_) return Fail(Code::kFailedPrecondition, "the coordinator has no CurveZMQ keys");
    if (keys.empty()) return Fail(Code::kInvalidArgument, "no authorized key");
    zap_->SetKeys(keys);
    return {};
  }

  uint64_t malformed_messages() const override { return counters_.malformed_messages; }

  CoordinatorCounters counters() const override {
    CoordinatorCounters c = counters_;
    c.refused_connections = refused_connections();
    if (otlp_) c.otlp = otlp_->counters();
    return c;
  }

  ~ZmqCoordinator() override {
    FlushOutbox();
    store_.SetGroupCommit(false);
  }

  Result<v1::StatusReply> Snapshot(const std::string& run_id) override {
    v1::StatusReply s;
    if (!run_id.empty()) {
      CRUCIBLE_ASSIGN_OR_RETURN(*s.add_runs(), GetRunStatus(run_id));
    } else {
      for (const auto& [id, rs] : runs_) *s.add_runs() = rs.status;
    }
    int queued = 0;
    for (const auto& [id, rs] : runs_) queued += rs.status.queued();
    s.set_queue_length(queued);
    for (const auto& [name, r] : runners_) {
      auto* rr = s.add_runners();
      rr->set_name(name);
      rr->set_slots(r.slots);
      rr->set_busy(static_cast<int32_t>(r.leases.size()));
      rr->set_last_heartbeat_ms(r.last_seen_wall_ms);
      for (const auto& l : r.labels) rr->add_labels(l);
      for (const auto& repo : r.repos) rr->add_repos(repo);
      rr->set_pack_requests(r.pack_requests);
    }
    s.set_waiting_for_labels(WaitingForLabels());
    return s;
  }

 private:
  // ------------------------------------------------------------ the loop --

  void PollOnce() {
    // Waits up to 50 ms for a message or the sync thread's report, so that
    // the periodic work (expiries, heartbeats, pack chunks) runs even when idle.
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               {sync_.wake_socket().handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, Ms(50));
    } catch (const zmq::error_t&) {
      items[0].revents = items[1].revents = 0;  // interrupted: poll again
    }
    if (items[1].revents & ZMQ_POLLIN) SyncDone();
    if (items[0].revents & ZMQ_POLLIN) {
      // Everything already waiting (up to 257 messages) before the periodic work.
      for (int i = 0; i < 257; ++i) {
        auto msg = protocol::ReceiveRaw(socket_, true, 0);
        if (!msg) break;
        Handle(*msg);
      }
    }
    auto now = Clock::now();
    if (now - last_housekeeping_ >= Ms(50)) {
      last_housekeeping_ = now;
      ExpireSilentRunners();
      ExpireLeases();
      SendHeartbeats();
    }
    // The acknowledgements of this iteration go out once the sync thread has
    // made their writes durable (one fsync for all of them), while the loop
    // goes on; leases go out at once, their writes made durable by a later
    // sync (docs/architecture.md, Storage).
    StartSync();
    Dispatch();
    SendPacks();
    PublishUpdates();
  }

  // Adds `delta` to the count of `a`'s state.
  static void Count(v1::RunStatus& s, const v1::Attempt& a, int delta = 1) {
    switch (a.state()) {
      case v1::Attempt::DONE:
        s.set_done(s.done() + delta);
        break;
      case v1::Attempt::FAILED:
        s.set_failed(s.failed() + delta);
        break;
      case v1::Attempt::LEASED:
      case v1::Attempt::RUNNING:
        s.set_leased(s.leased() + delta);
        break;
      default:
        s.set_queued(s.queued() + delta);
        break;
    }
  }

  // Changes the state of `a`, an attempt of `rs`, keeping the counts current
  // in O(1) (a run may hold many thousands of attempts).
  static void Move(RunState& rs, v1::Attempt& a, v1::Attempt::State to) {
    Count(rs.status, a, -1);
    a.set_state(to);
    Count(rs.status, a, +1);
    rs.dirty = true;
  }

  void Recount(RunState& rs) {
    v1::RunStatus s;
    for (const auto& [n, a] : rs.attempts) Count(s, a);
    *s.mutable_run() = ForClients(rs.run);
    rs.status = std::move(s);
    rs.dirty = true;
  }

  void StoreAttempt(const v1::Attempt& a) {
    auto st = store_.UpdateAttempt(a);
    if (!st) spdlog::error("cannot store attempt {}: {}", a.number(), st.error().ToString());
  }

  v1::Attempt* FindAttempt(const Key& key) {
    auto r = runs_.find(key.first);
    if (r == runs_.end()) return nullptr;
    auto a = r->second.attempts.find(key.second);
    return a == r->second.attempts.end() ? nullptr : &a->second;
  }

  // The run is over when every attempt is done or failed: store it, tell its
  // watchers and stop tracking it.
  void CheckFinished(const std::string& run_id) {
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return;
    RunState& rs = it->second;
    if (rs.status.done() + rs.status.failed() < static_cast<int>(rs.attempts.size())) return;
    rs.run.set_state(v1::Run::FINISHED);
    rs.run.set_finished_at_ms(NowMs());
    auto st = store_.PutRun(rs.run);
    if (!st) spdlog::error("cannot store run {}: {}", run_id, st.error().ToString());
    ++counters_.runs_finished;
    spdlog::info("run {} finished: {} done, {} failed", run_id, rs.status.done(),
                 rs.status.failed());
    EndRun(run_id);
  }

  void EndRun(const std::string& run_id) {
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return;
    RunState& rs = it->second;
    Recount(rs);
    v1::Envelope env;
    *env.mutable_run_update()->mutable_status() = rs.status;
    env.mutable_run_update()->set_runners(static_cast<int32_t>(runners_.size()));
    env.mutable_run_update()->set_finished(true);
    for (const auto& w : rs.watchers) (void)protocol::SendTo(socket_, w, env);
    finished_[run_id] = rs.status;
    runs_.erase(it);
  }

  void PublishUpdates() {
    auto now = Clock::now();
    for (auto& [id, rs] : runs_) {
      if (!rs.dirty || rs.watchers.empty() || now - rs.last_update < Ms(200)) continue;
      rs.dirty = false;
      rs.last_update = now;
      v1::Envelope env;
      *env.mutable_run_update()->mutable_status() = rs.status;
      env.mutable_run_update()->set_runners(static_cast<int32_t>(runners_.size()));
      for (auto w = rs.watchers.begin(); w != rs.watchers.end();) {
        if (protocol::SendTo(socket_, *w, env)) {
          ++w;
        } else {
          w = rs.watchers.erase(w);  // the client went away
        }
      }
    }
  }

  // ---------------------------------------------------------- leases --

  // Puts attempt `key` back in the queue, or fails it after max_tries; the
  // reason joins the history of its tries in Attempt.error.
  void Requeue(const Key& key, const std::string& why) {
    v1::Attempt* a = FindAttempt(key);
    if (a == nullptr || v1::IsSettled(*a)) return;
    RunState& rs = runs_[key.first];
    a->set_tries(a->tries() + 1);
    std::string history = a->error().empty() ? "" : a->error() + "; ";
    history += fmt::format("try {}{}: {}", a->tries(),
                           a->runner().empty() ? "" : " on " + a->runner(), why);
    a->set_lease_id("");
    if (a->tries() >= options_.max_tries) {
      ++counters_.attempts_failed;
      Move(rs, *a, v1::Attempt::FAILED);
      a->set_finished_at_ms(NowMs());
      a->set_error(fmt::format("infrastructure error: failed {} times ({})", a->tries(), history));
      spdlog::warn("attempt {}/{} failed for good: {}", key.first, key.second, a->error());
    } else {
      ++counters_.retries;
      Move(rs, *a, v1::Attempt::QUEUED);
      a->set_error(history);
      queue_.push_front(key);
    }
    StoreAttempt(*a);
    CheckFinished(key.first);
  }

  // The lease is over without a result: the attempt goes back to the queue.
  // A late result under it may still count (see HandleResult).
  void ExpireLease(const std::string& lease_id, const std::string& why) {
    auto l = leases_.find(lease_id);
    if (l == leases_.end()) return;
    Key key = l->second.key;
    if (auto r = runners_.find(l->second.runner); r != runners_.end()) {
      r->second.leases.erase(lease_id);
    }
    leases_.erase(l);
    v1::Attempt* a = FindAttempt(key);
    if (a == nullptr || a->lease_id() != lease_id) return;
    lost_leases_[lease_id] = key;
    Requeue(key, why);
  }

  void ExpireLeases() {
    auto now = Clock::now();
    std::vector<std::string> expired;
    for (const auto& [id, l] : leases_) {
      if (now > l.deadline) expired.push_back(id);
    }
    for (const auto& id : expired) {
      auto l = leases_.find(id);
      std::string who = l->second.runner.empty() ? "a runner of an earlier coordinator"
                                                 : "runner " + l->second.runner;
      spdlog::warn("lease {} of {} expired", id, who);
      ExpireLease(id, fmt::format("lease expired ({} did not renew it)", who));
    }
  }

  void ExpireSilentRunners() {
    auto limit = Ms(options_.heartbeat_ms * options_.liveness);
    auto now = Clock::now();
    std::vector<std::string> silent;
    for (const auto& [name, r] : runners_) {
      if (now - r.last_seen > limit) silent.push_back(name);
    }
    for (const auto& name : silent) DropRunner(name, "silent");
  }

  // Forgets runner `name`; its leases expire after the grace period unless it
  // says hello again with them first.
  void DropRunner(const std::string& name, const std::string& why) {
    auto it = runners_.find(name);
    if (it == runners_.end()) return;
    spdlog::warn("runner {} {}; its {} leases go back to the queue in {} ms unless it returns",
                 name, why, it->second.leases.size(), options_.grace_ms);
    auto deadline = Clock::now() + Ms(options_.grace_ms);
    for (const auto& id : it->second.leases) {
      auto l = leases_.find(id);
      if (l != leases_.end()) l->second.deadline = std::min(l->second.deadline, deadline);
    }
    runners_.erase(it);
  }

  void SendHeartbeats() {
    auto now = Clock::now();
    if (now - last_heartbeat_ < Ms(options_.heartbeat_ms)) return;
    last_heartbeat_ = now;
    v1::Envelope hb;
    hb.mutable_heartbeat();
    std::vector<std::string> gone;
    for (const auto& [name, r] : runners_) {
      if (!protocol::SendTo(socket_, name, hb)) gone.push_back(name);
    }
    for (const auto& name : gone) DropRunner(name, "unreachable");
  }

  // `run` as clients see it, without predictions: a predictions file can be
  // large, and a client following the run is sent it again on every change.
  static v1::Run ForClients(const v1::Run& run) {
    if (std::none_of(run.agents().begin(), run.agents().end(),
                     [](const v1::AgentSpec& a) { return !a.predictions().empty(); })) {
      return run;
    }
    v1::Run out = run;
    for (auto& a : *out.mutable_agents()) a.clear_predictions();
    return out;
  }

  // Task id -> repository id for the tasks of `rs`, and repository id ->
  // path for answering ObjectsRequests.
  void IndexRepos(RunState& rs) {
    for (const auto& [id, task] : rs.tasks) {
      if (task.repo_path().empty()) continue;
      std::string repo = vcs::RepoId(task.repo_path());
      rs.task_repos[id] = repo;
      repos_[repo] = task.repo_path();
    }
  }

  // True when `runner` has every label the agent requires.
  static bool Eligible(const RunnerState& runner, const v1::AgentSpec& agent) {
    for (const auto& want : agent.require()) {
      if (std::find(runner.labels.begin(), runner.labels.end(), want) == runner.labels.end()) {
        return false;
      }
    }
    return true;
  }

  // Looked ahead in the queue for an attempt of a repository a runner holds.
  static constexpr size_t kAffinityWindow = 256;
  static constexpr size_t kNone = ~size_t{0};

  // The queue position of the attempt `runner` takes next. With `affinity`:
  // the first within kAffinityWindow whose repository it holds; otherwise
  // the first it has the labels for (the head, unless labels say otherwise).
  size_t Pick(const RunnerState& runner, bool affinity) {
    for (size_t i = 0; i < queue_.size(); ++i) {
      if (affinity && i >= kAffinityWindow) break;
      v1::Attempt* a = FindAttempt(queue_[i]);
      if (a == nullptr || a->state() != v1::Attempt::QUEUED) continue;
      RunState& rs = runs_[queue_[i].first];
      if (!Eligible(runner, rs.agents.at(a->agent()))) continue;
      if (!affinity) return i;
      auto repo = rs.task_repos.find(a->task_id());
      if (repo != rs.task_repos.end() && runner.repos.count(repo->second)) return i;
    }
    return kNone;
  }

  // Leases the queued attempt `key` to runner `name`; false when the runner
  // cannot be reached (the attempt is not touched then).
  bool LeaseTo(const std::string& name, RunnerState& runner, const Key& key) {
    v1::Attempt* a = FindAttempt(key);
    RunState& rs = runs_[key.first];
    std::string lease_id = fmt::format("{}-{}-{}", key.first, key.second, RandomHex(6));
    // Built on the arena (the task's copy costs no heap allocation per
    // field), sent, then freed.
    auto* env = google::protobuf::Arena::CreateMessage<v1::Envelope>(&out_arena_);
    auto* lease = env->mutable_lease();
    lease->set_lease_id(lease_id);
    lease->set_deadline_ms(NowMs() + options_.lease_ms);
    *lease->mutable_task() = rs.tasks.at(a->task_id());
    const v1::AgentSpec& agent = rs.agents.at(a->agent());
    if (agent.predictions().empty()) {
      *lease->mutable_agent() = agent;
    } else {
      // The runner gets this task's patch alone, not the whole file.
      *lease->mutable_agent() = agent;
      lease->mutable_agent()->clear_predictions();
      if (auto p = agent.predictions().find(a->task_id()); p != agent.predictions().end()) {
        lease->set_prediction(p->second.patch());
      }
    }
    *lease->mutable_judges() = rs.run.judges();
    *lease->mutable_reviewers() = rs.run.reviewers();
    *lease->mutable_review() = rs.rules;
    std::string repo;
    if (auto r = rs.task_repos.find(a->task_id()); r != rs.task_repos.end()) {
      repo = r->second;
      const std::string& path = lease->task().repo_path();
      lease->set_repo_id(repo);
      lease->set_repo_name(path.substr(path.find_last_of('/') + 1));
    }
    // The path is ours; the runner checks out from its cache (repo_id).
    lease->mutable_task()->clear_repo_path();
    const int64_t now = NowMs();
    auto* leased = lease->mutable_attempt();
    *leased = *a;
    leased->set_state(v1::Attempt::LEASED);
    leased->set_lease_id(lease_id);
    leased->set_runner(name);
    leased->set_leased_at_ms(now);
    bool sent = static_cast<bool>(protocol::SendTo(socket_, name, *env));
    out_arena_.Reset();
    if (!sent) return false;
    Count(rs.status, *a, -1);
    a->set_state(v1::Attempt::LEASED);
    a->set_lease_id(lease_id);
    a->set_runner(name);
    a->set_leased_at_ms(now);
    Count(rs.status, *a, +1);
    rs.dirty = true;
    if (a->tries() > 0) {
      // A retry: its trace starts from seq 0 again, so the earlier try's
      // events go (the try's history stays in the attempt's error).
      auto st = store_.RestartAttempt(*a);
      if (!st) spdlog::error("cannot store attempt {}: {}", a->number(), st.error().ToString());
    } else {
      StoreAttempt(*a);
    }
    runner.leases.insert(lease_id);
    // It fetches the repository for this attempt: prefer it for the next ones.
    if (!repo.empty()) runner.repos.insert(repo);
    ++counters_.leases_granted;
    leases_[lease_id] =
        LeaseState{.key = key, .runner = name, .deadline = Clock::now() + Ms(options_.lease_ms)};
    return true;
  }

  // Fills free slots. First every runner takes attempts of repositories it
  // already holds (looking kAffinityWindow entries ahead), then free slots
  // take the head of the queue whatever its repository (work stealing), so
  // no slot idles while there is work it may take. Attempts whose agent
  // requires labels go only to runners with all of them. Otherwise the queue
  // order (task-major) holds.
  void Dispatch() {
    while (!queue_.empty()) {
      v1::Attempt* a = FindAttempt(queue_.front());
      if (a != nullptr && a->state() == v1::Attempt::QUEUED) break;
      queue_.pop_front();  // stale entry
    }
    if (queue_.empty()) return;
    std::set<std::string> unreachable;
    for (bool affinity : {true, false}) {
      for (auto& [name, runner] : runners_) {
        if (affinity && runner.repos.empty()) continue;
        while (!queue_.empty() && !unreachable.count(name) &&
               static_cast<int>(runner.leases.size()) < runner.slots) {
          size_t i = Pick(runner, affinity);
          if (i == kNone) break;
          Key key = queue_[i];
          queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
          if (!LeaseTo(name, runner, key)) {
            queue_.push_front(key);  // not the attempt's fault: no try counted
            unreachable.insert(name);
          }
        }
      }
    }
    for (const auto& name : unreachable) DropRunner(name, "unreachable");
  }

  // Queued attempts no connected runner has the labels for.
  int WaitingForLabels() {
    int waiting = 0;
    std::set<Key> seen;
    for (const auto& key : queue_) {
      v1::Attempt* a = FindAttempt(key);
      if (a == nullptr || a->state() != v1::Attempt::QUEUED || !seen.insert(key).second) continue;
      const v1::AgentSpec& agent = runs_[key.first].agents.at(a->agent());
      if (agent.require().empty()) continue;
      bool any = false;
      for (const auto& [name, r] : runners_) any = any || Eligible(r, agent);
      if (!any) ++waiting;
    }
    return waiting;
  }

  // An ObjectsRequest: a packfile of the wanted commits minus what the
  // runner has, built on the pack builder's thread and sent in chunks by
  // SendPacks (coordinator/pack_builder.h). The commits of every active task
  // of the repository go in too, so a runner asks once per repository rather
  // than once per task. A request again for a pack under way (a runner that
  // reconnected) starts its transfer over.
  void HandleObjects(const std::string& peer, RunnerState& runner, const v1::ObjectsRequest& req) {
    ++runner.pack_requests;
    auto path = repos_.find(req.repo_id());
    if (path == repos_.end()) {
      ReplyPackError(peer, req.repo_id(), "unknown repository id '" + req.repo_id() + "'");
      return;
    }
    std::erase_if(transfers_, [&](const PackTransfer& t) {
      return t.peer() == peer && t.repo_id() == req.repo_id();
    });
    PackBuilder::Job job{.peer = peer,
                         .repo_id = req.repo_id(),
                         .path = path->second,
                         .wide = {},
                         .asked = {req.want().begin(), req.want().end()},
                         .have = {req.have().begin(), req.have().end()}};
    std::set<std::string> wide(job.asked.begin(), job.asked.end());
    for (const auto& [id, rs] : runs_) {
      for (const auto& [task_id, repo] : rs.task_repos) {
        if (repo != req.repo_id()) continue;
        const v1::GoldenTask& t = rs.tasks.at(task_id);
        if (!t.base_commit().empty()) wide.insert(t.base_commit());
        if (!t.merged_commit().empty()) wide.insert(t.merged_commit());
      }
    }
    job.wide.assign(wide.begin(), wide.end());
    packs_.Submit(std::move(job));
  }

  // An ObjectsPack that says why there is no pack.
  void ReplyPackError(const std::string& peer, const std::string& repo_id,
                      const std::string& error) {
    spdlog::warn("objects of {} for runner {}: {}", repo_id, peer, error);
    v1::Envelope reply;
    reply.mutable_objects_pack()->set_repo_id(repo_id);
    reply.mutable_objects_pack()->set_error(error);
    Reply(peer, reply);
  }

  // Bytes of pack per ObjectsPack message: 1 MiB, less when the message size
  // limit (which runners are assumed to share) is smaller.
  size_t PackChunkBytes() const {
    constexpr int64_t kChunk = 1 << 20;
    return static_cast<size_t>(std::clamp<int64_t>(options_.max_message_bytes - 4096, 256, kChunk));
  }

  // Turns finished builds into transfers (or errors) and sends each transfer
  // a few chunks further: 16 MiB per transfer and loop iteration at most, so
  // that heartbeats and leases go out in between. A chunk that cannot be
  // queued (the runner's pipe is full) is tried again next iteration; the
  // transfer is dropped when its runner is gone.
  void SendPacks() {
    for (auto& done : packs_.TakeDone()) {
      const auto& job = done.job;
      if (!done.pack) {
        ReplyPackError(job.peer, job.repo_id, done.pack.error().message());
        continue;
      }
      PackTransfer t(job.peer, job.repo_id, std::move(*done.pack), PackChunkBytes());
      spdlog::info("pack of {} for runner {}: {} objects, {} bytes in {} chunk(s), built in {} ms",
                   job.repo_id, job.peer, t.objects(), t.size(), t.chunks(), done.build_ms);
      transfers_.push_back(std::move(t));
    }
    const size_t per_iteration = std::max<size_t>(1, (size_t{16} << 20) / PackChunkBytes());
    for (auto it = transfers_.begin(); it != transfers_.end();) {
      PackTransfer& t = *it;
      for (size_t i = 0; i < per_iteration && !t.finished(); ++i) {
        if (!protocol::SendTo(socket_, t.peer(), t.Next())) break;
        t.Advance();
      }
      if (t.finished() || !runners_.contains(t.peer())) {
        if (!t.finished())
          spdlog::info("pack of {} for {} dropped: runner gone", t.repo_id(), t.peer());
        it = transfers_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // -------------------------------------------------------- messages --

  // Group commit: acknowledgements of results and trace batches wait until
  // the writes they acknowledge are durable, one fsync for all those gathered
  // while the previous one ran (coordinator/background_sync.h).
  void ReplyAfterSync(const std::string& peer, v1::Envelope env) {
    outbox_.emplace_back(peer, std::move(env));
  }

  // Hands this iteration's acknowledgements to the sync thread, unless a sync
  // is under way (they wait for the next).
  void StartSync() {
    if (outbox_.empty() || !sync_.Request()) return;
    syncing_.swap(outbox_);
  }

  // The sync thread made the writes behind `syncing_` durable: send them.
  void SyncDone() {
    auto st = sync_.TakeResult();
    if (!st) return;
    if (!*st) spdlog::error("cannot make the database durable: {}", st->error().ToString());
    for (const auto& [peer, env] : syncing_) Reply(peer, env);
    syncing_.clear();
    StartSync();
  }

  // Everything waiting for a sync, now (shutting down).
  void FlushOutbox() {
    while (sync_.busy()) {
      zmq::pollitem_t item{sync_.wake_socket().handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, Ms(100));
      SyncDone();
    }
    if (auto st = store_.Sync(); !st) {
      spdlog::error("cannot make the database durable: {}", st.error().ToString());
    }
    for (const auto& [peer, env] : outbox_) Reply(peer, env);
    outbox_.clear();
  }

  void Reply(const std::string& peer, const v1::Envelope& env) {
    if (!protocol::SendTo(socket_, peer, env)) {
      spdlog::debug("cannot answer {}: gone", peer);
    }
  }

  void ReplyError(const std::string& peer, const std::string& message) {
    v1::Envelope err;
    err.mutable_error()->set_message(message);
    Reply(peer, err);
  }

  // Decodes one message onto arena_, handles it and frees the arena: a trace
  // batch of hundreds of events is parsed without a heap allocation per
  // string. Handlers copy what they keep.
  void Handle(const protocol::RawMessage& raw) {
    auto* env = google::protobuf::Arena::CreateMessage<v1::Envelope>(&arena_);
    Status decoded = protocol::DecodeInto(raw.frames, env);
    Handle(raw.peer, decoded, *env);
    arena_.Reset();
  }

  void Handle(const std::string& peer, const Status& decoded, const v1::Envelope& env) {
    ++counters_.messages_received;
    if (!decoded) {
      ++counters_.malformed_messages;
      spdlog::warn("malformed message from '{}' (#{}): {}", peer, counters_.malformed_messages,
                   decoded.error().message());
      ReplyError(peer, decoded.error().message());
      return;
    }
    switch (env.body_case()) {
      case v1::Envelope::kHello:
        HandleHello(peer, env.hello());
        return;
      case v1::Envelope::kSubmitRun:
        HandleSubmit(peer, env.submit_run());
        return;
      case v1::Envelope::kStatusRequest:
        HandleStatus(peer, env.status_request());
        return;
      case v1::Envelope::kCancelRun: {
        auto st = CancelRun(env.cancel_run().run_id());
        if (!st) {
          ReplyError(peer, st.error().message());
        } else {
          auto s = GetRunStatus(env.cancel_run().run_id());
          v1::Envelope reply;
          if (s) *reply.mutable_run_update()->mutable_status() = *s;
          reply.mutable_run_update()->set_finished(true);
          ReplyAfterSync(peer, std::move(reply));
        }
        return;
      }
      case v1::Envelope::kWatchRun:
        HandleWatch(peer, env.watch_run());
        return;
      default:
        break;
    }
    auto it = runners_.find(peer);
    if (it == runners_.end()) {
      ReplyError(peer, "unknown runner: send hello first");
      return;
    }
    it->second.last_seen = Clock::now();
    it->second.last_seen_wall_ms = NowMs();
    switch (env.body_case()) {
      case v1::Envelope::kHeartbeat:
        if (env.heartbeat().leaving()) {
          spdlog::info("runner {} leaves", peer);
          RunnerLost(peer);
          break;
        }
        Renew(peer, env.heartbeat().lease_ids());
        if (env.heartbeat().repos_size() > 0) {
          it->second.repos.insert(env.heartbeat().repos().begin(), env.heartbeat().repos().end());
        }
        break;
      case v1::Envelope::kObjectsRequest:
        HandleObjects(peer, it->second, env.objects_request());
        break;
      case v1::Envelope::kTrace:
        HandleTrace(peer, env.trace());
        break;
      case v1::Envelope::kResult:
        HandleResult(peer, env.result());
        break;
      case v1::Envelope::kAck:
      case v1::Envelope::kError:
        break;
      default:
        ++counters_.malformed_messages;
        ReplyError(peer, "unexpected message from a runner: " + protocol::BodyName(env));
        break;
    }
  }

  void Renew(const std::string& peer,
             const google::protobuf::RepeatedPtrField<std::string>& lease_ids) {
    auto deadline = Clock::now() + Ms(options_.lease_ms);
    for (const auto& id : lease_ids) {
      auto l = leases_.find(id);
      if (l != leases_.end() && l->second.runner == peer) l->second.deadline = deadline;
    }
  }

  void HandleHello(const std::string& peer, const v1::Hello& hello) {
    RunnerState& r = runners_[peer];
    r.slots = std::max(1, hello.slots());
    r.last_seen = Clock::now();
    r.last_seen_wall_ms = NowMs();
    r.labels.assign(hello.labels().begin(), hello.labels().end());
    r.repos.insert(hello.repos().begin(), hello.repos().end());
    // Leases this runner had but does not announce were lost with its
    // previous connection (it restarted): they go back to the queue now.
    std::set<std::string> held(hello.held_leases().begin(), hello.held_leases().end());
    std::vector<std::string> forgotten;
    for (const auto& id : r.leases) {
      if (!held.count(id)) forgotten.push_back(id);
    }
    for (const auto& id : forgotten) {
      ExpireLease(id, fmt::format("runner {} came back without it", peer));
    }
    // A runner that comes back (after a network cut, a freeze or a restart
    // of this coordinator) claims the leases it still holds.
    size_t claimed = 0;
    for (const auto& id : hello.held_leases()) {
      auto l = leases_.find(id);
      if (l != leases_.end()) {
        if (!l->second.runner.empty() && l->second.runner != peer) {
          if (auto other = runners_.find(l->second.runner); other != runners_.end()) {
            other->second.leases.erase(id);
          }
        }
        l->second.runner = peer;
        l->second.deadline = Clock::now() + Ms(options_.lease_ms);
        r.leases.insert(id);
        if (v1::Attempt* a = FindAttempt(l->second.key); a != nullptr && a->runner() != peer) {
          a->set_runner(peer);
          StoreAttempt(*a);
        }
        ++claimed;
        continue;
      }
      // Expired, but the attempt was not leased again since: take it back.
      auto lost = lost_leases_.find(id);
      if (lost == lost_leases_.end()) continue;
      v1::Attempt* a = FindAttempt(lost->second);
      if (a == nullptr || a->state() != v1::Attempt::QUEUED) continue;
      Move(runs_[lost->second.first], *a, v1::Attempt::LEASED);
      a->set_lease_id(id);
      a->set_runner(peer);
      StoreAttempt(*a);  // its stale queue entry is skipped by Dispatch
      leases_[id] = LeaseState{
          .key = lost->second, .runner = peer, .deadline = Clock::now() + Ms(options_.lease_ms)};
      r.leases.insert(id);
      lost_leases_.erase(lost);
      ++claimed;
    }
    spdlog::info("runner {} joined with {} slots{}", peer, r.slots,
                 claimed ? fmt::format(", claiming {} leases back", claimed) : "");
    v1::Envelope welcome;
    welcome.mutable_welcome()->set_coordinator_id(coordinator_id_);
    welcome.mutable_welcome()->set_heartbeat_ms(options_.heartbeat_ms);
    welcome.mutable_welcome()->set_agent_event_budget(options_.agent_event_budget);
    welcome.mutable_welcome()->set_max_unacked_batches(options_.max_unacked_batches);
    welcome.mutable_welcome()->set_max_message_bytes(options_.max_message_bytes);
    Reply(peer, welcome);
  }

  // The attempt a lease refers to, when the lease is still the current one.
  v1::Attempt* CurrentAttempt(const std::string& lease_id) {
    auto l = leases_.find(lease_id);
    if (l == leases_.end()) return nullptr;
    v1::Attempt* a = FindAttempt(l->second.key);
    if (a == nullptr || a->lease_id() != lease_id) return nullptr;
    return a;
  }

  void HandleTrace(const std::string& peer, const v1::TraceBatch& batch) {
    v1::Attempt* a = CurrentAttempt(batch.lease_id());
    v1::Envelope ack;
    ack.mutable_ack()->set_lease_id(batch.lease_id());
    if (batch.events_size() > 0) ack.mutable_ack()->set_first_seq(batch.events(0).seq());
    if (a == nullptr) {
      spdlog::debug("trace from {} under stale lease {} ignored", peer, batch.lease_id());
      ++counters_.stale_messages_ignored;
      ack.mutable_ack()->set_ignored(true);
    } else {
      leases_[batch.lease_id()].deadline = Clock::now() + Ms(options_.lease_ms);
      // A runner that ignores the budget cannot fill the database.
      auto over_budget = [&](const v1::TraceEvent& ev) {
        return options_.agent_event_budget > 0 &&
               ev.seq() > options_.agent_event_budget + kRunnerEventMargin;
      };
      size_t stored = 0;
      Status st;
      if (std::none_of(batch.events().begin(), batch.events().end(), over_budget)) {
        stored = batch.events_size();
        st = store_.AppendEvents(a->run_id(), a->number(), batch.events());
      } else {
        std::vector<v1::TraceEvent> events;
        for (const auto& ev : batch.events()) {
          if (!over_budget(ev)) events.push_back(ev);
        }
        stored = events.size();
        counters_.trace_events_dropped += batch.events_size() - stored;
        spdlog::warn("{}/{}: {} trace events beyond the budget dropped", a->run_id(), a->number(),
                     batch.events_size() - stored);
        st = store_.AppendEvents(a->run_id(), a->number(), events);
      }
      if (!st) spdlog::error("cannot store trace events: {}", st.error().ToString());
      ++counters_.trace_batches;
      if (st) counters_.trace_events_stored += stored;
      ack.mutable_ack()->set_count(stored);
    }
    ReplyAfterSync(peer, std::move(ack));
  }

  void HandleResult(const std::string& peer, const v1::AttemptResult& result) {
    const std::string& lease_id = result.lease_id();
    v1::Envelope ack;
    ack.mutable_ack()->set_lease_id(lease_id);
    ack.mutable_ack()->set_result(true);
    v1::Attempt* a = CurrentAttempt(lease_id);
    if (a != nullptr) {
      Key key = leases_[lease_id].key;
      leases_.erase(lease_id);
      runners_[peer].leases.erase(lease_id);
      if (!result.infra_error().empty()) {
        spdlog::warn("attempt {}/{} on {}: {}", key.first, key.second, peer, result.infra_error());
        Requeue(key, result.infra_error());
        ReplyAfterSync(peer, std::move(ack));
        return;
      }
    } else if (auto lost = lost_leases_.find(lease_id);
               lost != lost_leases_.end() && result.infra_error().empty() &&
               (a = FindAttempt(lost->second)) != nullptr && a->state() == v1::Attempt::QUEUED) {
      // Late, but nobody else has the attempt: it counts, once.
      spdlog::info("late result of {}/{} from {} accepted (not leased again)", lost->second.first,
                   lost->second.second, peer);
      lost_leases_.erase(lost);
      ++counters_.late_results_accepted;
    } else {
      spdlog::warn("result from {} under stale lease {} ignored", peer, lease_id);
      ++counters_.stale_messages_ignored;
      ack.mutable_ack()->set_ignored(true);
      ReplyAfterSync(peer, std::move(ack));
      return;
    }
    RunState& rs = runs_[a->run_id()];
    // The trace is scored as stored: a runner sends its trace batches before
    // the result, on the same connection, so they were stored first.
    auto trace = store_.ListEvents(a->run_id(), a->number());
    if (!trace) {
      spdlog::error("cannot read the trace of attempt {}: {}", a->number(),
                    trace.error().ToString());
    }
    const std::vector<v1::TraceEvent> no_events;
    v1::Score score = scoring::ScoreAttempt(
        scoring::AttemptInput{.task = rs.tasks.at(a->task_id()),
                              .evidence = result.evidence(),
                              .trace = trace ? std::span<const v1::TraceEvent>(*trace) : no_events,
                              .rules = rs.rules});
    if (!trace) score.add_not_measurable("trace: " + trace.error().message());
    ++counters_.results_accepted;
    Move(rs, *a, v1::Attempt::DONE);
    a->set_lease_id(lease_id);
    a->set_runner(peer);
    a->set_finished_at_ms(NowMs());
    auto st = store_.FinishAttempt(*a, result.evidence(), score);
    if (!st) {
      spdlog::error("cannot store result of attempt {}: {}", a->number(), st.error().ToString());
    } else if (otlp_) {
      otlp_->Enqueue(*a);
    }
    ReplyAfterSync(peer, std::move(ack));
    CheckFinished(a->run_id());
  }

  // ---------------------------------------------------------- clients --

  void HandleSubmit(const std::string& peer, const v1::SubmitRun& submit) {
    std::vector<v1::AgentSpec> agents(submit.agents().begin(), submit.agents().end());
    for (auto& a : agents) {
      for (const auto& r : submit.require()) a.add_require(r);
    }
    Result<v1::Run> run =
        submit.run_id().empty()
            ? SubmitRun(submit.suite(), agents, submit.samples(), submit.held_out(),
                        submit.include_untestable(),
                        {submit.judges().begin(), submit.judges().end()},
                        {submit.reviewers().begin(), submit.reviewers().end()},
                        {submit.tasks().begin(), submit.tasks().end()}, submit.include_mismatched())
            : ResumeRun(submit.run_id());
    if (!run) {
      ReplyError(peer, run.error().message());
      return;
    }
    v1::Envelope reply;
    *reply.mutable_run_accepted()->mutable_run() = *run;
    ReplyAfterSync(peer, std::move(reply));
  }

  void HandleStatus(const std::string& peer, const v1::StatusRequest& req) {
    auto snapshot = Snapshot(req.run_id());
    if (!snapshot) {
      ReplyError(peer, snapshot.error().message());
      return;
    }
    v1::Envelope reply;
    *reply.mutable_status_reply() = std::move(*snapshot);
    Reply(peer, reply);
  }

  void HandleWatch(const std::string& peer, const v1::WatchRun& watch) {
    v1::Envelope reply;
    if (auto it = runs_.find(watch.run_id()); it != runs_.end()) {
      it->second.watchers.insert(peer);
      *reply.mutable_run_update()->mutable_status() = it->second.status;
      reply.mutable_run_update()->set_runners(static_cast<int32_t>(runners_.size()));
      Reply(peer, reply);
      return;
    }
    auto s = GetRunStatus(watch.run_id());
    if (!s) {
      ReplyError(peer, s.error().message());
      return;
    }
    *reply.mutable_run_update()->mutable_status() = *s;
    reply.mutable_run_update()->set_finished(s->run().state() != v1::Run::RUNNING);
    Reply(peer, reply);
  }

  storage::Store& store_;
  CoordinatorOptions options_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::unique_ptr<ZapHandler> zap_;  // with CURVE; stopped before the context ends
  std::string coordinator_id_ = "c-" + RandomHex(8);
  std::map<std::string, RunState> runs_;           // active runs
  std::map<std::string, v1::RunStatus> finished_;  // runs that ended while we served
  std::deque<Key> queue_;
  std::map<std::string, RunnerState> runners_;
  std::map<std::string, LeaseState> leases_;
  std::map<std::string, std::string> repos_;  // repository id -> path, of every run seen
  std::map<std::string, Key> lost_leases_;
  Clock::time_point last_housekeeping_ = Clock::now();
  Clock::time_point last_heartbeat_ = Clock::now();
  CoordinatorCounters counters_;
  std::vector<std::pair<std::string, v1::Envelope>> outbox_;   // wait for the next sync
  std::vector<std::pair<std::string, v1::Envelope>> syncing_;  // wait for the one under way
  BackgroundSync sync_{store_, context_, Ms(50)};
  std::list<PackTransfer> transfers_;   // packs on their way to runners
  std::unique_ptr<OtlpExporter> otlp_;  // with options_.otlp.endpoint
  PackBuilder packs_;
  // Received messages are parsed here; its first block is reused for every
  // message and only an unusually large one allocates more.
  static constexpr size_t kArenaBlock = size_t{1} << 20;
  std::unique_ptr<char[]> arena_block_{new char[kArenaBlock]};
  google::protobuf::Arena arena_{[this] {
    google::protobuf::ArenaOptions o;
    o.initial_block = arena_block_.get();
    o.initial_block_size = kArenaBlock;
    return o;
  }()};
  // Leases are built here, sent and freed (see LeaseTo).
  std::unique_ptr<char[]> out_block_{new char[kArenaBlock / 4]};
  google::protobuf::Arena out_arena_{[this] {
    google::protobuf::ArenaOptions o;
    o.initial_block = out_block_.get();
    o.initial_block_size = kArenaBlock / 4;
    return o;
  }()};
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

bool IsLocalEndpoint(const std::string& endpoint) {
  if (endpoint.starts_with("ipc://") || endpoint.starts_with("inproc://")) return true;
  if (!endpoint.starts_with("tcp://")) return false;
  std::string host = endpoint.substr(6);
  if (host.starts_with("[")) {
    auto close = host.find(']');
    return close != std::string::npos && host.substr(1, close - 1) == "::1";
  }
  host = host.substr(0, host.rfind(':'));
  return host == "localhost" || host.starts_with("127.");
}

Result<std::unique_ptr<Coordinator>> Coordinator::Create(storage::Store& store,
                                                         CoordinatorOptions options) {
  if (options.heartbeat_ms < 10 || options.liveness < 1 || options.lease_ms < 100 ||
      options.grace_ms < 0 || options.max_tries < 1 || options.max_unacked_batches < 1) {
    return Fail(Code::kInvalidArgument,
                "coordinator options out of range (heartbeat >= 10 ms, liveness >= 1, "
                "lease >= 100 ms, grace >= 0, max tries >= 1, max unacked batches >= 1)");
  }
  std::unique_ptr<OtlpExporter> otlp;
  if (!options.otlp.endpoint.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(otlp, OtlpExporter::Start(store, options.otlp));
  }
  auto c = std::make_unique<ZmqCoordinator>(store, std::move(options));
  CRUCIBLE_RETURN_IF_ERROR(c->Bind());
  c->SetOtlpExporter(std::move(otlp));
  store.SetGroupCommit(true);
  return std::unique_ptr<Coordinator>(std::move(c));
}

}  // namespace crucible::coordinator
