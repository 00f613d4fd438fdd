// The coordinator's ZAP handler (ZeroMQ Authentication Protocol, RFC 27):
// decides which CURVE clients may talk to the coordinator's ROUTER.
//
// It serves a REP socket bound to inproc://zeromq.zap.01 in the ROUTER's
// ZeroMQ context, on its own thread. A client whose public key is one of the
// authorized keys is let in (status 200, user id = the key's file name); any
// other is refused with status 400, logged with its key and address, and
// counted. libzmq then closes that connection and tells the client
// (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "base/error.h"
#include "protocol/curve.h"

namespace crucible::coordinator {

class ZapHandler {
 public:
  // Binds the handler in `context` (which must outlive it) and starts its
  // thread. Start it before the server socket binds, so that no client is
  // let in unchecked. kAlreadyExists when the context has a ZAP handler.
  static Result<std::unique_ptr<ZapHandler>> Start(
      zmq::context_t& context, const std::vector<protocol::AuthorizedKey>& keys);
  // Stops the thread and closes the socket.
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Replaces the authorized keys (e.g. re-read on SIGHUP). Any thread.
  void SetKeys(const std::vector<protocol::AuthorizedKey>& keys);

  // Connection attempts refused since the start. Any thread.
  uint64_t refused() const { return refused_.load(); }
  // Connection attempts let in since the start. Any thread.
  uint64_t accepted() const { return accepted_.load(); }

 private:
  explicit ZapHandler(zmq::socket_t socket) : socket_(std::move(socket)) {}
  void Loop();
  // The reply frames to one request.
  std::vector<std::string> Decide(const std::vector<zmq::message_t>& request);

  zmq::socket_t socket_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> accepted_{0};
  std::mutex mu_;
  std::unordered_map<std::string, std::string> keys_;  // Z85 key -> file
};

}  // namespace crucible::coordinator
