// Bounded ZeroMQ sockets for tests.
#pragma once

#include <zmq.hpp>

namespace crucible::testing {

// How long a test's send or receive may block.
inline constexpr int kSocketTimeoutMs = 10'000;

// Bounds every blocking call on a test's socket: a send (e.g. on a DEALER
// whose only connection was refused, which has no pipe to queue into) or a
// receive fails after `timeout_ms` instead of blocking for ever, and closing
// drops unsent messages so that terminating the context cannot block either.
inline void BoundSocket(zmq::socket_t& socket, int timeout_ms = kSocketTimeoutMs) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndtimeo, timeout_ms);
  socket.set(zmq::sockopt::rcvtimeo, timeout_ms);
}

}  // namespace crucible::testing
