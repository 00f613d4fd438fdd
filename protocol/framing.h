// Wire format of the runner conversation over ZeroMQ.
//
// A message is a multipart ZeroMQ message of exactly two frames:
//   frame 0: 8-byte header, the magic "CRCB" then the protocol version as a
//            big-endian uint32;
//   frame 1: a serialized crucible.v1.Envelope.
// A ROUTER socket prepends the peer's routing id as one more frame; SendTo and
// ReceiveFrom handle it.
//
// Decoding never trusts its input: a wrong frame count, a short or foreign
// header, another protocol version, bytes that do not parse or an Envelope with
// no body all yield an Error naming the problem (kVersionMismatch for another
// version, kCorruption otherwise).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::protocol {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr char kMagic[4] = {'C', 'R', 'C', 'B'};

// Returns the two frames of `envelope` for protocol version `version`.
std::vector<zmq::message_t> Encode(const v1::Envelope& envelope,
                                   uint32_t version = kProtocolVersion);

// Decodes the two frames of one message (without a routing id).
Result<v1::Envelope> Decode(const std::vector<zmq::message_t>& frames);

// The same into `out` (cleared first), which may live on an arena so that a
// hot receive loop parses without a heap allocation per field. `out` holds a
// partial message when this fails.
Status DecodeInto(const std::vector<zmq::message_t>& frames, v1::Envelope* out);

// Name of the body case, e.g. "hello", "lease"; "empty" when none is set.
std::string BodyName(const v1::Envelope& envelope);

// Sends `envelope` on a DEALER (or any non-ROUTER) socket. Thread: the
// socket's owner only.
Status Send(zmq::socket_t& socket, const v1::Envelope& envelope);

// Sends `envelope` on a ROUTER socket to the peer with routing id `peer`.
Status SendTo(zmq::socket_t& socket, const std::string& peer, const v1::Envelope& envelope);

// One received message: the routing id (empty for non-ROUTER sockets) and the
// decoded envelope or the reason it could not be decoded.
struct Received {
  std::string peer;
  Result<v1::Envelope> envelope;
};

// Receives one message without blocking longer than `timeout_ms` (-1: forever;
// 0: only what is already queued, without a poll). Returns nullopt when nothing
// arrived in time. With `router`, the first frame is taken as the routing id.
std::optional<Received> Receive(zmq::socket_t& socket, bool router, int timeout_ms);

// One received message, not decoded yet.
struct RawMessage {
  std::string peer;
  std::vector<zmq::message_t> frames;  // without the routing id
};

// Receive without the decoding, for a caller that decodes with DecodeInto.
std::optional<RawMessage> ReceiveRaw(zmq::socket_t& socket, bool router, int timeout_ms);

}  // namespace crucible::protocol
