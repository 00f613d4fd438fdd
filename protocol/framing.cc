#include "protocol/framing.h"

#include <cstring>

#include <fmt/format.h>
#include <zmq_addon.hpp>

namespace crucible::protocol {

std::vector<zmq::message_t> Encode(const v1::Envelope& envelope, uint32_t version) {
  std::vector<zmq::message_t> frames;
  char header[8];
  std::memcpy(header, kMagic, 4);
  header[4] = static_cast<char>((version >> 24) & 0xff);
  header[5] = static_cast<char>((version >> 16) & 0xff);
  header[6] = static_cast<char>((version >> 8) & 0xff);
  header[7] = static_cast<char>(version & 0xff);
  frames.emplace_back(header, sizeof header);
  // Serialized straight into the frame's buffer: no copy of the payload.
  size_t size = envelope.ByteSizeLong();
  zmq::message_t& payload = frames.emplace_back(size);
  envelope.SerializeWithCachedSizesToArray(static_cast<uint8_t*>(payload.data()));
  return frames;
}

Result<v1::Envelope> Decode(const std::vector<zmq::message_t>& frames) {
  v1::Envelope envelope;
  CRUCIBLE_RETURN_IF_ERROR(DecodeInto(frames, &envelope));
  return envelope;
}

Status DecodeInto(const std::vector<zmq::message_t>& frames, v1::Envelope* out) {
  out->Clear();
  if (frames.size() != 2) {
    return Fail(Code::kCorruption,
                fmt::format("expected 2 frames (header, envelope), got {}", frames.size()));
  }
  const auto& header = frames[0];
  if (header.size() != 8 || std::memcmp(header.data(), kMagic, 4) != 0) {
    return Fail(Code::kCorruption,
                fmt::format("frame 0 is not a Crucible header ({} bytes, expected 8 starting "
                            "with \"CRCB\")",
                            header.size()));
  }
  const auto* h = static_cast<const unsigned char*>(header.data());
  uint32_t version =
      (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | uint32_t{h[7]};
  if (version != kProtocolVersion) {
    return Fail(Code::kVersionMismatch,
                fmt::format("peer speaks protocol version {}, this build speaks {}", version,
                            kProtocolVersion));
  }
  if (!out->ParseFromArray(frames[1].data(), static_cast<int>(frames[1].size()))) {
    return Fail(Code::kCorruption,
                fmt::format("frame 1 ({} bytes) is not a crucible.v1.Envelope", frames[1].size()));
  }
  if (out->body_case() == v1::Envelope::BODY_NOT_SET) {
    return Fail(Code::kCorruption, "envelope has no body (unknown message type?)");
  }
  return {};
}

std::string BodyName(const v1::Envelope& envelope) {
  switch (envelope.body_case()) {
    case v1::Envelope::kHello:
      return "hello";
    case v1::Envelope::kWelcome:
      return "welcome";
    case v1::Envelope::kHeartbeat:
      return "heartbeat";
    case v1::Envelope::kLease:
      return "lease";
    case v1::Envelope::kTrace:
      return "trace";
    case v1::Envelope::kResult:
      return "result";
    case v1::Envelope::kAck:
      return "ack";
    case v1::Envelope::kShutdown:
      return "shutdown";
    case v1::Envelope::kError:
      return "error";
    case v1::Envelope::kSubmitRun:
      return "submit_run";
    case v1::Envelope::kRunAccepted:
      return "run_accepted";
    case v1::Envelope::kStatusRequest:
      return "status_request";
    case v1::Envelope::kObjectsRequest:
      return "objects_request";
    case v1::Envelope::kObjectsPack:
      return "objects_pack";
    case v1::Envelope::kStatusReply:
      return "status_reply";
    case v1::Envelope::kCancelRun:
      return "cancel_run";
    case v1::Envelope::kWatchRun:
      return "watch_run";
    case v1::Envelope::kRunUpdate:
      return "run_update";
    case v1::Envelope::BODY_NOT_SET:
      break;
  }
  return "empty";
}

namespace {

Status SendFrames(zmq::socket_t& socket, std::vector<zmq::message_t>& frames) {
  try {
    for (size_t i = 0; i < frames.size(); ++i) {
      auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (!socket.send(frames[i], flags)) return Fail(Code::kUnavailable, "send would block");
    }
  } catch (const zmq::error_t& e) {
    return Fail(Code::kUnavailable, fmt::format("zmq send failed: {}", e.what()));
  }
  return {};
}

}  // namespace

Status Send(zmq::socket_t& socket, const v1::Envelope& envelope) {
  auto frames = Encode(envelope);
  return SendFrames(socket, frames);
}

Status SendTo(zmq::socket_t& socket, const std::string& peer, const v1::Envelope& envelope) {
  auto body = Encode(envelope);
  std::vector<zmq::message_t> frames;
  frames.emplace_back(peer.data(), peer.size());
  for (auto& f : body) frames.push_back(std::move(f));
  return SendFrames(socket, frames);
}

std::optional<RawMessage> ReceiveRaw(zmq::socket_t& socket, bool router, int timeout_ms) {
  // With no wait, a message already queued is taken without polling first
  // (one system call fewer per message in a draining loop).
  if (timeout_ms != 0) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t&) {
      return std::nullopt;  // interrupted; the caller polls again
    }
    if (!(item.revents & ZMQ_POLLIN)) return std::nullopt;
  }
  RawMessage m;
  try {
    auto n = zmq::recv_multipart(socket, std::back_inserter(m.frames), zmq::recv_flags::dontwait);
    if (!n) return std::nullopt;
  } catch (const zmq::error_t&) {
    return std::nullopt;
  }
  if (router) {
    if (m.frames.empty()) return std::nullopt;
    m.peer = m.frames.front().to_string();
    m.frames.erase(m.frames.begin());
  }
  return m;
}

std::optional<Received> Receive(zmq::socket_t& socket, bool router, int timeout_ms) {
  auto raw = ReceiveRaw(socket, router, timeout_ms);
  if (!raw) return std::nullopt;
  return Received{std::move(raw->peer), Decode(raw->frames)};
}

}  // namespace crucible::protocol
