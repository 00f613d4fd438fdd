#include "sandbox/egress.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

namespace crucible::sandbox::internal {
namespace {

using Clock = std::chrono::steady_clock;

// The longest host name DNS allows.
constexpr size_t kMaxHostLength = 253;
// After a refusal the rest of the client's request is read and dropped for
// this long, so that closing does not reset the connection before the client
// has read the answer.
constexpr auto kDrainTime = std::chrono::seconds(2);
constexpr size_t kDrainBytes = 1 << 20;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool HostChar(char c, bool bracketed) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  if (c == '.' || c == '-' || c == '_') return true;
  return bracketed && c == ':';
}

std::optional<uint16_t> ParsePort(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(value);
}

// "host:port" or "[v6]:port"; with `default_port`, the port may be left out.
std::optional<EgressTarget> ParseAuthority(std::string_view s, uint16_t default_port) {
  std::string_view host, port;
  bool bracketed = false;
  if (s.starts_with('[')) {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return std::nullopt;
    if (!rest.empty()) port = rest.substr(1);
    bracketed = true;
  } else {
    size_t colon = s.rfind(':');
    host = s.substr(0, colon);
    if (colon != std::string_view::npos) port = s.substr(colon + 1);
  }
  if (host.empty() || host.size() > kMaxHostLength) return std::nullopt;
  if (!std::all_of(host.begin(), host.end(), [&](char c) { return HostChar(c, bracketed); })) {
    return std::nullopt;
  }
  EgressTarget target{Lower(host), default_port};
  if (!port.empty() || default_port == 0) {
    auto p = ParsePort(port);
    if (!p) return std::nullopt;
    target.port = *p;
  }
  return target;
}

ssize_t Send(int fd, std::string_view data) {
  ssize_t n;
  do {
    n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return n;
}

ssize_t Recv(int fd, char* buf, size_t size) {
  ssize_t n;
  do {
    n = ::recv(fd, buf, size, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return n;
}

bool WouldBlock() { return errno == EAGAIN || errno == EWOULDBLOCK; }

}  // namespace

Result<EgressTarget> ParseEgressTarget(std::string_view entry) {
  auto target = ParseAuthority(entry, 0);
  if (!target) {
    return Fail(Code::kInvalidArgument,
                fmt::format("sandbox: egress entry '{}' is not HOST:PORT (a host name or IP "
                            "address, [v6 address] in brackets, and a port from 1 to 65535)",
                            entry));
  }
  return *target;
}

struct EgressProxy::State {
  int listener = -1;
  int stop = -1;  // an eventfd
  std::vector<EgressTarget> allowed;
  EgressLimits limits;
  std::vector<EgressConnection> records;
  std::thread thread;
  bool stopped = false;

  enum class Phase { kHead, kConnecting, kRelay, kDrain };
  struct Conn {
    size_t record = 0;
    int client = -1;
    int upstream = -1;
    Phase phase = Phase::kHead;
    std::string head;     // what the client sent before the relay starts
    std::string to_up;    // read from the client, not yet sent on
    std::string to_down;  // read from the destination, not yet sent on
    bool client_eof = false;
    bool upstream_eof = false;
    Clock::time_point deadline;
    std::vector<sockaddr_storage> addrs;
    std::vector<socklen_t> addr_lens;
    size_t next_addr = 0;
    std::string reply;  // for CONNECT: the 200 sent once connected
    size_t drained = 0;
    bool done = false;
  };
  std::vector<std::unique_ptr<Conn>> conns;

  ~State() {
    for (int fd : {listener, stop}) {
      if (fd >= 0) ::close(fd);
    }
  }

  EgressConnection& Record(Conn& c) { return records[c.record]; }

  void Close(Conn& c) {
    if (c.client >= 0) ::close(c.client);
    if (c.upstream >= 0) ::close(c.upstream);
    c.client = c.upstream = -1;
    c.done = true;
  }

  // Answers `status` with `reason` (also recorded) and drops the rest.
  void Refuse(Conn& c, int status, std::string_view title, std::string reason) {
    std::string body = fmt::format("crucible egress: {}\n", reason);
    std::string response = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: "
        "close\r\n\r\n{}",
        status, title, body.size(), body);
    Record(c).reason = std::move(reason);
    if (c.upstream >= 0) ::close(c.upstream);
    c.upstream = -1;
    (void)Send(c.client, response);  // small: fits the socket buffer of a fresh connection
    ::shutdown(c.client, SHUT_WR);
    c.phase = Phase::kDrain;
    c.drained = 0;
    c.deadline = Clock::now() + kDrainTime;
  }

  bool Allowed(const EgressTarget& t) const {
    return std::any_of(allowed.begin(), allowed.end(),
                       [&](const EgressTarget& a) { return a.host == t.host && a.port == t.port; });
  }

  std::string AllowedList() const {
    std::string out;
    for (const auto& a : allowed) {
      if (!out.empty()) out += ", ";
      out += a.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", a.host, a.port)
                                                   : fmt::format("{}:{}", a.host, a.port);
    }
    return out;
  }

  // The request head is complete in c.head (through `end`, the blank line).
  void HandleHead(Conn& c, size_t end, size_t terminator) {
    std::string_view head(c.head.data(), end);
    std::string rest = c.head.substr(end + terminator);
    size_t eol = head.find('\n');
    std::string_view line = head.substr(0, eol);
    if (line.ends_with('\r')) line.remove_suffix(1);
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos ||
        !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
      Refuse(c, 400, "Bad Request", "the request line is not METHOD TARGET HTTP/1.x");
      return;
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view uri = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    EgressConnection& rec = Record(c);
    rec.method = std::string(method.substr(0, 32));

    std::optional<EgressTarget> target;
    std::string forward;  // the head sent on (plain requests)
    const bool is_connect = method == "CONNECT";
    if (is_connect) {
      target = ParseAuthority(uri, 0);
      if (!target) {
        Refuse(c, 400, "Bad Request", "CONNECT needs HOST:PORT");
        return;
      }
    } else {
      std::string scheme = Lower(uri.substr(0, std::min<size_t>(uri.size(), 8)));
      if (!scheme.starts_with("http://")) {
        Refuse(c, 400, "Bad Request",
               scheme.starts_with("https://")
                   ? "https URLs go through CONNECT, not a plain request"
                   : "only CONNECT and absolute http:// requests are proxied");
        return;
      }
      std::string_view after = uri.substr(7);
      size_t path_at = after.find_first_of("/?#");
      std::string_view authority = after.substr(0, path_at);
      std::string_view path = path_at == std::string_view::npos ? "/" : after.substr(path_at);
      if (authority.find('@') == std::string_view::npos) target = ParseAuthority(authority, 80);
      if (!target) {
        Refuse(c, 400, "Bad Request", "the request's URL has no valid host");
        return;
      }
      // Sent on in origin form; hop-by-hop proxy headers dropped; one request
      // per connection (whatever the client sends after it goes to the same
      // destination, nowhere else).
      std::string p(path);
      if (p.front() != '/') p.insert(0, "/");
      forward = fmt::format("{} {} {}\r\n", method, p, version);
      std::string_view headers = eol == std::string_view::npos ? "" : head.substr(eol + 1);
      while (!headers.empty()) {
        size_t nl = headers.find('\n');
        std::string_view h = headers.substr(0, nl);
        headers = nl == std::string_view::npos ? "" : headers.substr(nl + 1);
        if (h.ends_with('\r')) h.remove_suffix(1);
        if (h.empty()) continue;
        std::string name = Lower(h.substr(0, h.find(':')));
        if (name == "connection" || name == "proxy-connection" || name == "keep-alive" ||
            name == "proxy-authorization") {
          continue;
        }
        forward.append(h);
        forward += "\r\n";
      }
      forward += "Connection: close\r\n\r\n";
    }
    rec.host = target->host;
    rec.port = target->port;
    if (!Allowed(*target)) {
      Refuse(c, 403, "Forbidden",
             fmt::format("{}:{} is not an allowed destination (allowed: {})", target->host,
                         target->port, AllowedList()));
      return;
    }
    rec.allowed = true;
    // Resolved here, on the host (the sandbox has no DNS of its own).
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string port = std::to_string(target->port);
    int rc = ::getaddrinfo(target->host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) {
      Refuse(c, 502, "Bad Gateway",
             fmt::format("cannot resolve {}: {}", target->host, ::gai_strerror(rc)));
      return;
    }
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      sockaddr_storage ss{};
      std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
      c.addrs.push_back(ss);
      c.addr_lens.push_back(a->ai_addrlen);
    }
    ::freeaddrinfo(res);
    c.to_up = is_connect ? std::move(rest) : forward + rest;
    rec.bytes_out += rest.size();
    c.reply = is_connect ? "HTTP/1.1 200 Connection established\r\n\r\n" : "";
    c.head.clear();
    c.head.shrink_to_fit();
    c.phase = Phase::kConnecting;
    c.deadline = Clock::now() + std::chrono::milliseconds(limits.connect_timeout_ms);
    NextAddress(c, "no address");
  }

  // Starts connecting to the next resolved address, or gives up.
  void NextAddress(Conn& c, std::string_view last_error) {
    if (c.upstream >= 0) ::close(c.upstream);
    c.upstream = -1;
    while (c.next_addr < c.addrs.size()) {
      size_t i = c.next_addr++;
      const auto* addr = reinterpret_cast<const sockaddr*>(&c.addrs[i]);
      int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;
      if (::connect(fd, addr, c.addr_lens[i]) == 0 || errno == EINPROGRESS) {
        c.upstream = fd;
        return;
      }
      last_error = std::strerror(errno);
      ::close(fd);
    }
    const EgressConnection& rec = Record(c);
    Refuse(c, 502, "Bad Gateway",
           fmt::format("cannot connect to {}:{}: {}", rec.host, rec.port, last_error));
  }

  void Connected(Conn& c) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(c.upstream, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      NextAddress(c, std::strerror(err));
      return;
    }
    c.phase = Phase::kRelay;
    c.to_down = std::move(c.reply);
    c.deadline = Clock::now() + std::chrono::milliseconds(limits.idle_timeout_ms);
  }

  // Moves bytes one step in either direction; closes at the end.
  void Relay(Conn& c, short client_ev, short up_ev) {
    EgressConnection& rec = Record(c);
    char buf[16384];
    bool progress = false;
    auto fail = [&](std::string reason) {
      if (rec.reason.empty()) rec.reason = std::move(reason);
      Close(c);
    };
    if ((client_ev & (POLLIN | POLLHUP | POLLERR)) && !c.client_eof) {
      size_t room = limits.buffer_bytes - std::min(limits.buffer_bytes, c.to_up.size());
      ssize_t n = Recv(c.client, buf, std::min(room, sizeof(buf)));
      if (n > 0) {
        c.to_up.append(buf, static_cast<size_t>(n));
        rec.bytes_out += static_cast<uint64_t>(n);
        progress = true;
      } else if (n == 0) {
        c.client_eof = true;
      } else if (!WouldBlock()) {
        return fail(fmt::format("the sandbox's side failed: {}", std::strerror(errno)));
      }
    }
    if ((up_ev & (POLLIN | POLLHUP | POLLERR)) && !c.upstream_eof) {
      size_t room = limits.buffer_bytes - std::min(limits.buffer_bytes, c.to_down.size());
      ssize_t n = Recv(c.upstream, buf, std::min(room, sizeof(buf)));
      if (n > 0) {
        c.to_down.append(buf, static_cast<size_t>(n));
        rec.bytes_in += static_cast<uint64_t>(n);
        progress = true;
      } else if (n == 0) {
        c.upstream_eof = true;
      } else if (!WouldBlock()) {
        return fail(fmt::format("the destination's side failed: {}", std::strerror(errno)));
      }
    }
    if (!c.to_up.empty()) {
      ssize_t n = Send(c.upstream, c.to_up);
      if (n > 0) {
        c.to_up.erase(0, static_cast<size_t>(n));
        progress = true;
      } else if (n < 0 && !WouldBlock()) {
        return fail(fmt::format("sending to the destination failed: {}", std::strerror(errno)));
      }
    }
    if (!c.to_down.empty()) {
      ssize_t n = Send(c.client, c.to_down);
      if (n > 0) {
        c.to_down.erase(0, static_cast<size_t>(n));
        progress = true;
      } else if (n < 0 && !WouldBlock()) {
        return fail(fmt::format("sending to the sandbox failed: {}", std::strerror(errno)));
      }
    }
    // Half-closes pass through once everything before them has.
    if (c.client_eof && c.to_up.empty()) ::shutdown(c.upstream, SHUT_WR);
    if (c.upstream_eof && c.to_down.empty()) ::shutdown(c.client, SHUT_WR);
    if (c.client_eof && c.upstream_eof && c.to_up.empty() && c.to_down.empty()) {
      Close(c);
      return;
    }
    if (progress) c.deadline = Clock::now() + std::chrono::milliseconds(limits.idle_timeout_ms);
  }

  void Service(Conn& c, short client_ev, short up_ev) {
    switch (c.phase) {
      case Phase::kHead: {
        if (!(client_ev & (POLLIN | POLLHUP | POLLERR))) return;
        char buf[4096];
        size_t room = limits.max_request_head + 4 - c.head.size();
        ssize_t n = Recv(c.client, buf, std::min(room, sizeof(buf)));
        if (n < 0 && WouldBlock()) return;
        if (n <= 0) {
          Record(c).reason = "the sandbox closed the connection before a complete request";
          Close(c);
          return;
        }
        size_t scan_from = c.head.size() >= 3 ? c.head.size() - 3 : 0;
        c.head.append(buf, static_cast<size_t>(n));
        size_t crlf = c.head.find("\r\n\r\n", scan_from);
        size_t lf = c.head.find("\n\n", scan_from);
        if (crlf != std::string::npos && (lf == std::string::npos || crlf < lf)) {
          if (crlf <= limits.max_request_head) return HandleHead(c, crlf, 4);
        } else if (lf != std::string::npos && lf <= limits.max_request_head) {
          return HandleHead(c, lf, 2);
        }
        if (c.head.size() > limits.max_request_head) {
          Refuse(c, 431, "Request Header Fields Too Large",
                 fmt::format("the request head is longer than {} bytes", limits.max_request_head));
        }
        return;
      }
      case Phase::kConnecting:
        if (up_ev & (POLLOUT | POLLERR | POLLHUP)) Connected(c);
        if (c.phase == Phase::kRelay) Relay(c, 0, 0);
        return;
      case Phase::kRelay:
        Relay(c, client_ev, up_ev);
        return;
      case Phase::kDrain: {
        if (!(client_ev & (POLLIN | POLLHUP | POLLERR))) return;
        char buf[4096];
        ssize_t n = Recv(c.client, buf, sizeof(buf));
        if (n < 0 && WouldBlock()) return;
        if (n > 0) c.drained += static_cast<size_t>(n);
        if (n <= 0 || c.drained > kDrainBytes) Close(c);
        return;
      }
    }
  }

  void TimeOut(Conn& c) {
    switch (c.phase) {
      case Phase::kHead:
        Refuse(c, 408, "Request Timeout",
               fmt::format("no complete request within {} ms", limits.request_timeout_ms));
        return;
      case Phase::kConnecting: {
        const EgressConnection& rec = Record(c);
        Refuse(c, 504, "Gateway Timeout",
               fmt::format("connecting to {}:{} took longer than {} ms", rec.host, rec.port,
                           limits.connect_timeout_ms));
        return;
      }
      case Phase::kRelay:
        Record(c).reason = fmt::format("idle for {} ms", limits.idle_timeout_ms);
        Close(c);
        return;
      case Phase::kDrain:
        Close(c);
        return;
    }
  }

  void Accept() {
    while (conns.size() < limits.max_connections) {
      int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or out of descriptors: the backlog waits
      auto c = std::make_unique<Conn>();
      c->client = fd;
      c->record = records.size();
      c->deadline = Clock::now() + std::chrono::milliseconds(limits.request_timeout_ms);
      records.emplace_back();
      conns.push_back(std::move(c));
    }
  }

  void Loop() {
    std::vector<pollfd> fds;
    std::vector<std::pair<Conn*, bool>> owner;  // per fds entry from 2 on: conn, is upstream
    for (;;) {
      fds.clear();
      owner.clear();
      fds.push_back({stop, POLLIN, 0});
      fds.push_back({conns.size() < limits.max_connections ? listener : -1, POLLIN, 0});
      auto now = Clock::now();
      auto wake = now + std::chrono::seconds(1);
      for (auto& cp : conns) {
        Conn& c = *cp;
        wake = std::min(wake, c.deadline);
        short cev = 0, uev = 0;
        switch (c.phase) {
          case Phase::kHead:
          case Phase::kDrain:
            cev = POLLIN;
            break;
          case Phase::kConnecting:
            uev = POLLOUT;
            break;
          case Phase::kRelay:
            if (!c.client_eof && c.to_up.size() < limits.buffer_bytes) cev |= POLLIN;
            if (!c.to_down.empty()) cev |= POLLOUT;
            if (!c.upstream_eof && c.to_down.size() < limits.buffer_bytes) uev |= POLLIN;
            if (!c.to_up.empty()) uev |= POLLOUT;
            break;
        }
        // A descriptor with nothing to wait for is left out: poll would still
        // report its hang-up at once, again and again.
        fds.push_back({cev != 0 ? c.client : -1, cev, 0});
        owner.emplace_back(&c, false);
        if (c.upstream >= 0) {
          fds.push_back({uev != 0 ? c.upstream : -1, uev, 0});
          owner.emplace_back(&c, true);
        }
      }
      int wait_ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1);
      int rc = ::poll(fds.data(), fds.size(), std::max(wait_ms, 0));
      if (rc < 0 && errno != EINTR) return;
      if (rc > 0 && fds[0].revents) return;
      if (rc > 0 && fds[1].revents) Accept();
      // Each connection once, with the events of both its descriptors.
      for (size_t i = 0; i < owner.size();) {
        Conn* c = owner[i].first;
        short cev = fds[2 + i].revents;
        short uev = 0;
        size_t next = i + 1;
        if (next < owner.size() && owner[next].first == c) {
          uev = fds[2 + next].revents;
          ++next;
        }
        if (!c->done && (cev || uev)) Service(*c, cev, uev);
        i = next;
      }
      now = Clock::now();
      for (auto& cp : conns) {
        if (!cp->done && now >= cp->deadline) TimeOut(*cp);
      }
      std::erase_if(conns, [](const std::unique_ptr<Conn>& c) { return c->done; });
    }
  }

  void Finish() {
    for (auto& cp : conns) {
      EgressConnection& rec = Record(*cp);
      if (rec.reason.empty() && cp->phase != Phase::kDrain) {
        rec.reason = cp->phase == Phase::kRelay ? "still open when the sandbox ended"
                                                : "the sandbox ended before it was relayed";
      }
      Close(*cp);
    }
    conns.clear();
    ::close(listener);
    listener = -1;
  }
};

EgressProxy::EgressProxy(std::unique_ptr<State> state) : state_(std::move(state)) {}

EgressProxy::~EgressProxy() { (void)Stop(); }

Result<std::unique_ptr<EgressProxy>> EgressProxy::Start(int listener,
                                                        std::vector<EgressTarget> allowed,
                                                        EgressLimits limits) {
  auto state = std::make_unique<State>();
  state->allowed = std::move(allowed);
  state->limits = limits;
  state->stop = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (state->stop < 0) return FailErrno("sandbox: egress proxy: eventfd");
  // Accepting in a loop until EAGAIN needs a non-blocking listener.
  int fl = ::fcntl(listener, F_GETFL);
  if (fl < 0 || ::fcntl(listener, F_SETFL, fl | O_NONBLOCK) != 0) {
    return FailErrno("sandbox: egress proxy: fcntl");
  }
  state->listener = listener;  // the proxy's from here on
  State* s = state.get();
  try {
    s->thread = std::thread([s] {
      s->Loop();
      s->Finish();
    });
  } catch (const std::system_error& e) {
    state->listener = -1;  // still the caller's
    return Fail(Code::kIoError, fmt::format("sandbox: egress proxy: start thread: {}", e.what()));
  }
  return std::unique_ptr<EgressProxy>(new EgressProxy(std::move(state)));
}

std::vector<EgressConnection> EgressProxy::Stop() {
  if (!state_ || state_->stopped) return {};
  state_->stopped = true;
  uint64_t one = 1;
  (void)!::write(state_->stop, &one, sizeof(one));
  state_->thread.join();
  return std::move(state_->records);
}

}  // namespace crucible::sandbox::internal
