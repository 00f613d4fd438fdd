// A runner (or client) played by a coordinator test: a DEALER socket that
// speaks the protocol, heartbeats while it waits once it has joined, and keeps
// messages that arrive before the one it waits for (the coordinator hands out
// the next lease without waiting for the fsync behind the previous result's
// Ack, so a Lease may overtake that Ack).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "protocol/framing.h"
#include "tests/support/zmq_socket.h"

namespace crucible::testing {

struct FakePeer {
  FakePeer(zmq::context_t& ctx, const std::string& endpoint, const std::string& name)
      : socket(ctx, zmq::socket_type::dealer) {
    socket.set(zmq::sockopt::routing_id, name);
    BoundSocket(socket);
    socket.connect(endpoint);
  }
  void Send(const v1::Envelope& env) { ASSERT_TRUE(protocol::Send(socket, env)); }
  // Waits up to `tries` x 100 ms for a message of type `what`, taking one
  // kept from earlier first. Messages of other types are kept for later
  // (heartbeats are not).
  std::optional<v1::Envelope> Wait(v1::Envelope::BodyCase what, int tries = 100) {
    for (auto it = early.begin(); it != early.end(); ++it) {
      if (it->body_case() == what) {
        v1::Envelope env = std::move(*it);
        early.erase(it);
        return env;
      }
    }
    for (int i = 0; i < tries; ++i) {
      auto msg = protocol::Receive(socket, false, 100);
      // Heartbeats go out by the clock, not only when a receive times out: a
      // coordinator that heartbeats as often as we wait would otherwise never
      // hear from us, and declare us silent on a loaded machine.
      if (joined && std::chrono::steady_clock::now() - last_heartbeat >= kHeartbeatEvery) {
        v1::Envelope hb;
        hb.mutable_heartbeat();
        Send(hb);
        last_heartbeat = std::chrono::steady_clock::now();
      }
      if (!msg) continue;
      EXPECT_TRUE(msg->envelope) << msg->envelope.error().ToString();
      if (!msg->envelope) continue;
      if (msg->envelope->body_case() == what) return *msg->envelope;
      if (msg->envelope->body_case() != v1::Envelope::kHeartbeat) early.push_back(*msg->envelope);
    }
    return std::nullopt;
  }
  // Wait for up to 10 s; a test failure when nothing came.
  v1::Envelope Expect(v1::Envelope::BodyCase what) {
    auto env = Wait(what);
    EXPECT_TRUE(env) << "no message of type " << what;
    return env ? *env : v1::Envelope{};
  }
  // Sends `hello` and waits for the Welcome; heartbeats from then on.
  void Join(v1::Envelope hello) {
    Send(hello);
    Expect(v1::Envelope::kWelcome);
    joined = true;
  }

  static constexpr std::chrono::milliseconds kHeartbeatEvery{50};
  zmq::socket_t socket;
  bool joined = false;
  std::chrono::steady_clock::time_point last_heartbeat{};
  std::deque<v1::Envelope> early;  // arrived while waiting for something else
};

}  // namespace crucible::testing
