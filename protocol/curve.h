// CurveZMQ keys for the farm: key files, and the socket set-up shared by the
// coordinator (CURVE server), runners and clients (CURVE clients).
//
// Key files are text, one `name = "value"` a line (blank lines and lines
// starting with '#' are ignored), the keys Z85-encoded (40 characters):
//   PATH.key  (mode 0600, secret)      PATH.pub  (public)
//     public-key = "..."                 public-key = "..."
//     secret-key = "..."
// This is the layout of CZMQ's zcert files, whose "metadata" and "curve"
// section lines are accepted too, so certificates made by zcert work.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "base/error.h"

namespace crucible::protocol {

// The ZAP domain the coordinator's ROUTER announces to its ZAP handler.
inline constexpr char kZapDomain[] = "crucible";

// Z85 public and secret keys (40 characters each; the secret may be empty
// for a key read from a .pub file).
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};

// A client's keys: its own key pair and the coordinator's public key.
struct CurveClientKeys {
  CurveKeyPair own;
  std::string server_public_key;
};

// An allowed client public key and the file it came from.
struct AuthorizedKey {
  std::string public_key;  // Z85
  std::string file;
};

// True when libzmq was built with CURVE (libsodium).
bool CurveAvailable();

// kFailedPrecondition naming the missing CURVE support when !CurveAvailable().
Status RequireCurve();

// A new key pair (zmq_curve_keypair).
Result<CurveKeyPair> GenerateKeyPair();

// Writes `base`.key (mode 0600: public and secret key) and `base`.pub
// (public key only). kAlreadyExists naming the file when either exists and
// `force` is false.
Status WriteKeyFiles(const std::string& base, const CurveKeyPair& keys, bool force);

// Reads a key file written by WriteKeyFiles (or zcert). With `need_secret`
// the file must hold a secret key (a .key file). Errors name the file and
// what is wrong with it.
Result<CurveKeyPair> ReadKeyFile(const std::string& path, bool need_secret);

// Every *.pub file in `dir`, sorted by name. An unreadable or malformed file
// is an error naming it; so is a directory without any .pub file.
Result<std::vector<AuthorizedKey>> LoadAuthorizedKeys(const std::string& dir);

// True when `key` is a valid Z85 encoding of a 32-byte key.
bool IsZ85Key(const std::string& key);

// The Z85 text of a 32-byte binary key (as ZAP hands it over); empty when
// `binary` is not 32 bytes.
std::string Z85FromBinary(const std::string& binary);

// Makes `socket` a CURVE server with `keys` that asks the ZAP handler of its
// context (domain kZapDomain). Call before bind().
Status ConfigureCurveServer(zmq::socket_t& socket, const CurveKeyPair& keys);

// Makes `socket` a CURVE client with `keys`. Call before connect().
Status ConfigureCurveClient(zmq::socket_t& socket, const CurveClientKeys& keys);

// Watches a connecting socket's handshakes (zmq_socket_monitor), so that a
// client learns that the server refused its key (libzmq reports
// ZMQ_EVENT_HANDSHAKE_FAILED_AUTH to the client since 4.3) instead of
// waiting for an answer that never comes.
class HandshakeMonitor {
 public:
  enum class Event { kNone, kSucceeded, kRefused, kFailed };

  // Starts monitoring `socket`, which lives in `context`. Thread: the
  // socket's owner.
  static Result<std::unique_ptr<HandshakeMonitor>> Attach(zmq::context_t& context,
                                                          zmq::socket_t& socket);
  ~HandshakeMonitor();
  HandshakeMonitor(const HandshakeMonitor&) = delete;
  HandshakeMonitor& operator=(const HandshakeMonitor&) = delete;

  // The latest handshake outcome reported within `timeout_ms` (0: only what
  // is already there), kNone when nothing was.
  Event Poll(int timeout_ms = 0);
  // The ZAP status code or errno of the last failure (e.g. 400).
  int last_failure_value() const { return last_value_; }

 private:
  HandshakeMonitor(zmq::socket_t& watched, zmq::socket_t pair, std::string endpoint)
      : watched_(watched), pair_(std::move(pair)), endpoint_(std::move(endpoint)) {}
  zmq::socket_t& watched_;
  zmq::socket_t pair_;
  std::string endpoint_;
  int last_value_ = 0;
};

}  // namespace crucible::protocol
