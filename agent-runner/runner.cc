#include "agent-runner/runner.h"

#include <unistd.h>

#include <chrono>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "agent-runner/attempt.h"
#include "base/fs.h"
#include "protocol/framing.h"

namespace crucible::runner {

namespace {

using Clock = std::chrono::steady_clock;

class RunnerSession {
 public:
  RunnerSession(const RunnerOptions& options)
      : options_(options), socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 2000);
    socket_.set(zmq::sockopt::routing_id, options.name);
  }

  Status Run() {
    try {
      socket_.connect(options_.coordinator);
    } catch (const zmq::error_t& e) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("cannot connect to {}: {}", options_.coordinator, e.what()));
    }
    CRUCIBLE_RETURN_IF_ERROR(Handshake());
    CRUCIBLE_RETURN_IF_ERROR(SendCredit());
    for (;;) {
      auto msg = protocol::Receive(socket_, /*router=*/false, options_.heartbeat_ms);
      if (!msg) {
        CRUCIBLE_RETURN_IF_ERROR(SendCredit());  // heartbeat while idle
        continue;
      }
      if (!msg->envelope) {
        spdlog::warn("runner {}: dropped a malformed message: {}", options_.name,
                     msg->envelope.error().message());
        continue;
      }
      const auto& env = *msg->envelope;
      switch (env.body_case()) {
        case v1::Envelope::kLease:
          CRUCIBLE_RETURN_IF_ERROR(Perform(env.lease()));
          CRUCIBLE_RETURN_IF_ERROR(SendCredit());
          break;
        case v1::Envelope::kShutdown:
          spdlog::debug("runner {}: shutdown: {}", options_.name, env.shutdown().reason());
          return {};
        case v1::Envelope::kError:
          spdlog::warn("runner {}: coordinator says: {}", options_.name, env.error().message());
          if (env.error().message().starts_with("unknown runner")) {
            // The coordinator restarted and forgot us: announce ourselves again.
            CRUCIBLE_RETURN_IF_ERROR(Handshake());
            CRUCIBLE_RETURN_IF_ERROR(SendCredit());
          }
          break;
        default:
          break;  // acks and heartbeats only prove the coordinator is alive
      }
    }
  }

 private:
  Status Handshake() {
    v1::Envelope hello;
    hello.mutable_hello()->set_runner_name(options_.name);
    hello.mutable_hello()->set_slots(options_.slots);
    hello.mutable_hello()->set_pid(static_cast<uint32_t>(::getpid()));
    CRUCIBLE_RETURN_IF_ERROR(protocol::Send(socket_, hello));
    auto deadline = Clock::now() + std::chrono::milliseconds(options_.connect_timeout_ms);
    while (Clock::now() < deadline) {
      auto msg = protocol::Receive(socket_, false, 200);
      if (!msg) continue;
      if (!msg->envelope) return Fail(msg->envelope.error().Wrap("coordinator's answer to hello"));
      if (msg->envelope->has_welcome()) return {};
      if (msg->envelope->has_error()) {
        return Fail(Code::kFailedPrecondition,
                    "coordinator refused this runner: " + msg->envelope->error().message());
      }
    }
    return Fail(Code::kUnavailable, fmt::format("coordinator at {} did not answer within {} ms",
                                                options_.coordinator, options_.connect_timeout_ms));
  }

  Status SendCredit() {
    v1::Envelope hb;
    hb.mutable_heartbeat()->set_free_slots(busy_ ? 0 : options_.slots);
    return protocol::Send(socket_, hb);
  }

  Status FlushEvents(const v1::Lease& lease) {
    if (pending_.empty()) return {};
    v1::Envelope env;
    auto* batch = env.mutable_trace();
    batch->set_lease_id(lease.lease_id());
    batch->set_run_id(lease.attempt().run_id());
    batch->set_attempt(lease.attempt().number());
    for (auto& ev : pending_) *batch->add_events() = std::move(ev);
    pending_.clear();
    last_flush_ = Clock::now();
    return protocol::Send(socket_, env);
  }

  Status Perform(const v1::Lease& lease) {
    busy_ = true;
    uint64_t seq = 0;
    pending_.clear();
    std::string dir = fmt::format("{}/attempt-{}-{}", options_.workdir, lease.attempt().run_id(),
                                  lease.attempt().number());
    Status send_status;
    AttemptContext ctx;
    ctx.workdir = dir;
    ctx.emit = [&](v1::TraceEvent ev) {
      ev.set_seq(seq++);
      pending_.push_back(std::move(ev));
      if (pending_.size() >= 256) send_status = FlushEvents(lease);
    };
    ctx.tick = [&] {
      if (Clock::now() - last_flush_ > std::chrono::milliseconds(200)) {
        send_status = FlushEvents(lease);
      }
      if (Clock::now() - last_heartbeat_ > std::chrono::milliseconds(options_.heartbeat_ms)) {
        last_heartbeat_ = Clock::now();
        send_status = SendCredit();
      }
    };
    auto evidence = PerformAttempt(lease.task(), lease.agent(), ctx);
    CRUCIBLE_RETURN_IF_ERROR(FlushEvents(lease));
    (void)RemoveAll(dir);

    v1::Envelope env;
    auto* result = env.mutable_result();
    result->set_lease_id(lease.lease_id());
    result->set_run_id(lease.attempt().run_id());
    result->set_attempt(lease.attempt().number());
    if (evidence) {
      *result->mutable_evidence() = std::move(*evidence);
    } else {
      result->set_infra_error(evidence.error().ToString());
      spdlog::warn("runner {}: attempt {} failed: {}", options_.name, lease.attempt().number(),
                   evidence.error().ToString());
    }
    busy_ = false;
    return protocol::Send(socket_, env);
  }

  RunnerOptions options_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  bool busy_ = false;
  std::vector<v1::TraceEvent> pending_;
  Clock::time_point last_flush_ = Clock::now();
  Clock::time_point last_heartbeat_ = Clock::now();
};

}  // namespace

Status RunRunner(const RunnerOptions& options) {
  if (options.coordinator.empty()) return Fail(Code::kInvalidArgument, "no coordinator address");
  if (options.workdir.empty()) return Fail(Code::kInvalidArgument, "no work directory");
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(options.workdir));
  RunnerSession session(options);
  return session.Run();
}

}  // namespace crucible::runner
