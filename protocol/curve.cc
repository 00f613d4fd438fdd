#include "protocol/curve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "base/fs.h"

namespace crucible::protocol {

namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Writes `data` to a new file `path` with `mode` (O_EXCL unless `force`).
Status WriteNew(const std::string& path, const std::string& data, mode_t mode, bool force) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    return Fail(Code::kIoError, fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
  // With --force an existing file keeps its old mode: set it.
  bool ok = ::fchmod(fd, mode) == 0;
  size_t done = 0;
  while (ok && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  int err = errno;
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    return Fail(Code::kIoError, fmt::format("cannot write {}: {}", path, std::strerror(err)));
  }
  return {};
}

}  // namespace

bool CurveAvailable() { return zmq_has("curve") != 0; }

Status RequireCurve() {
  if (CurveAvailable()) return {};
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  return Fail(Code::kFailedPrecondition,
              fmt::format("this libzmq ({}.{}.{}) was built without CURVE security (libsodium); "
                          "install a libzmq with CURVE support to use keys",
                          major, minor, patch));
}

Result<CurveKeyPair> GenerateKeyPair() {
  CRUCIBLE_RETURN_IF_ERROR(RequireCurve());
  char pub[41] = {};
  char sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Fail(Code::kInternal,
                fmt::format("zmq_curve_keypair failed: {}", zmq_strerror(zmq_errno())));
  }
  return CurveKeyPair{.public_key = pub, .secret_key = sec};
}

bool IsZ85Key(const std::string& key) {
  if (key.size() != 40) return false;
  uint8_t out[32];
  return zmq_z85_decode(out, key.c_str()) != nullptr;
}

std::string Z85FromBinary(const std::string& binary) {
  if (binary.size() != 32) return "";
  char out[41] = {};
  if (zmq_z85_encode(out, reinterpret_cast<const uint8_t*>(binary.data()), 32) == nullptr) {
    return "";
  }
  return out;
}

Status WriteKeyFiles(const std::string& base, const CurveKeyPair& keys, bool force) {
  if (base.empty()) return Fail(Code::kInvalidArgument, "no key file path given (--out PATH)");
  const std::string key_path = base + ".key";
  const std::string pub_path = base + ".pub";
  if (!force) {
    for (const auto& p : {key_path, pub_path}) {
      struct stat st {};
      if (::lstat(p.c_str(), &st) == 0) {
        return Fail(Code::kAlreadyExists,
                    fmt::format("{} exists; not overwriting it (pass --force to replace it)", p));
      }
    }
  }
  CRUCIBLE_RETURN_IF_ERROR(
      WriteNew(key_path,
               fmt::format("# Crucible CurveZMQ key pair. SECRET: keep this file private.\n"
                           "public-key = \"{}\"\n"
                           "secret-key = \"{}\"\n",
                           keys.public_key, keys.secret_key),
               0600, force));
  return WriteNew(pub_path,
                  fmt::format("# Crucible CurveZMQ public key\n"
                              "public-key = \"{}\"\n",
                              keys.public_key),
                  0644, force);
}

Result<CurveKeyPair> ReadKeyFile(const std::string& path, bool need_secret) {
  auto text = ReadFile(path);
  if (!text) {
    return Fail(text.error().code(), fmt::format("key file {}: {}", path, text.error().message()));
  }
  std::map<std::string, std::string> values;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) nl = text->size();
    std::string line = Trim(text->substr(pos, nl - pos));
    pos = nl + 1;
    ++line_no;
    if (line.empty() || line.starts_with("#") || line == "metadata" || line == "curve") continue;
    auto eq = line.find('=');
    std::string name = eq == std::string::npos ? "" : Trim(line.substr(0, eq));
    std::string value = eq == std::string::npos ? "" : Trim(line.substr(eq + 1));
    if (name.empty() || value.size() < 2 || value.front() != '"' || value.back() != '"') {
      return Fail(Code::kInvalidArgument,
                  fmt::format("key file {} line {}: expected name = \"value\"", path, line_no));
    }
    values[name] = value.substr(1, value.size() - 2);
  }
  CurveKeyPair keys;
  auto pub = values.find("public-key");
  if (pub == values.end()) {
    return Fail(Code::kInvalidArgument, fmt::format("key file {}: no public-key line", path));
  }
  if (!IsZ85Key(pub->second)) {
    return Fail(Code::kInvalidArgument,
                fmt::format("key file {}: public-key is not a Z85 key of 40 characters", path));
  }
  keys.public_key = pub->second;
  auto sec = values.find("secret-key");
  if (sec != values.end()) {
    if (!IsZ85Key(sec->second)) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("key file {}: secret-key is not a Z85 key of 40 characters", path));
    }
    keys.secret_key = sec->second;
  } else if (need_secret) {
    return Fail(Code::kInvalidArgument,
                fmt::format("key file {}: no secret-key line (give the .key file of a pair made "
                            "by `crucible keygen`, not the .pub)",
                            path));
  }
  return keys;
}

Result<std::vector<AuthorizedKey>> LoadAuthorizedKeys(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Fail(Code::kNotFound, fmt::format("authorized keys directory {} does not exist", dir));
  }
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".pub") files.push_back(it->path().string());
  }
  if (ec) {
    return Fail(Code::kIoError,
                fmt::format("cannot list authorized keys directory {}: {}", dir, ec.message()));
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("authorized keys directory {} holds no .pub file", dir));
  }
  std::vector<AuthorizedKey> out;
  for (const auto& f : files) {
    auto keys = ReadKeyFile(f, /*need_secret=*/false);
    if (!keys) return Fail(keys.error().Wrap("authorized keys"));
    out.push_back({.public_key = keys->public_key, .file = f});
  }
  return out;
}

Status ConfigureCurveServer(zmq::socket_t& socket, const CurveKeyPair& keys) {
  CRUCIBLE_RETURN_IF_ERROR(RequireCurve());
  if (!IsZ85Key(keys.secret_key)) {
    return Fail(Code::kInvalidArgument, "the coordinator's CURVE secret key is not a Z85 key");
  }
  try {
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    socket.set(zmq::sockopt::zap_domain, kZapDomain);
  } catch (const zmq::error_t& e) {
    return Fail(Code::kInvalidArgument, fmt::format("CURVE server set-up: {}", e.what()));
  }
  return {};
}

Status ConfigureCurveClient(zmq::socket_t& socket, const CurveClientKeys& keys) {
  CRUCIBLE_RETURN_IF_ERROR(RequireCurve());
  if (!IsZ85Key(keys.own.public_key) || !IsZ85Key(keys.own.secret_key) ||
      !IsZ85Key(keys.server_public_key)) {
    return Fail(Code::kInvalidArgument, "CURVE client keys are not Z85 keys");
  }
  try {
    socket.set(zmq::sockopt::curve_serverkey, keys.server_public_key);
    socket.set(zmq::sockopt::curve_publickey, keys.own.public_key);
    socket.set(zmq::sockopt::curve_secretkey, keys.own.secret_key);
  } catch (const zmq::error_t& e) {
    return Fail(Code::kInvalidArgument, fmt::format("CURVE client set-up: {}", e.what()));
  }
  return {};
}

Result<std::unique_ptr<HandshakeMonitor>> HandshakeMonitor::Attach(zmq::context_t& context,
                                                                   zmq::socket_t& socket) {
  static std::atomic<uint64_t> counter{0};
  std::string endpoint =
      fmt::format("inproc://crucible-handshake-monitor-{}-{}", ::getpid(), counter++);
  int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), events) != 0) {
    return Fail(Code::kInternal,
                fmt::format("cannot monitor the socket: {}", zmq_strerror(zmq_errno())));
  }
  try {
    zmq::socket_t pair(context, zmq::socket_type::pair);
    pair.set(zmq::sockopt::linger, 0);
    pair.connect(endpoint);
    return std::unique_ptr<HandshakeMonitor>(
        new HandshakeMonitor(socket, std::move(pair), std::move(endpoint)));
  } catch (const zmq::error_t& e) {
    zmq_socket_monitor(socket.handle(), nullptr, 0);
    return Fail(Code::kInternal, fmt::format("cannot monitor the socket: {}", e.what()));
  }
}

HandshakeMonitor::~HandshakeMonitor() {
  if (watched_.handle() != nullptr) zmq_socket_monitor(watched_.handle(), nullptr, 0);
}

HandshakeMonitor::Event HandshakeMonitor::Poll(int timeout_ms) {
  Event latest = Event::kNone;
  for (;;) {
    zmq::pollitem_t item{pair_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(latest == Event::kNone ? timeout_ms : 0));
    } catch (const zmq::error_t&) {
      return latest;
    }
    if (!(item.revents & ZMQ_POLLIN)) return latest;
    zmq::message_t head;
    if (!pair_.recv(head, zmq::recv_flags::dontwait)) return latest;
    // Frame 1: uint16 event, uint32 value; frame 2: the peer's address.
    uint16_t event = 0;
    uint32_t value = 0;
    if (head.size() >= 6) {
      std::memcpy(&event, head.data(), 2);
      std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
    }
    while (head.more()) {
      zmq::message_t rest;
      if (!pair_.recv(rest, zmq::recv_flags::dontwait)) break;
      head = std::move(rest);
    }
    switch (event) {
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        latest = Event::kSucceeded;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        latest = Event::kRefused;
        last_value_ = static_cast<int>(value);
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        latest = Event::kFailed;
        last_value_ = static_cast<int>(value);
        break;
      default:
        break;
    }
  }
}

}  // namespace crucible::protocol
