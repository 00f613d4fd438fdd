// The allowlisted egress (Spec::egress): real servers on the host, real
// clients (curl, python) inside real sandboxes, through the proxy the sandbox
// runs for them.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sandbox/egress.h"
#include "sandbox/sandbox.h"

namespace crucible::sandbox {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A TCP server on the host, on its own thread: answers HTTP requests, echoes
// bytes, or accepts and never reads. Every wait is bounded by polling a stop flag.
class HostServer {
 public:
  enum class Mode { kHttp, kEcho, kSink };

  HostServer(const std::string& address, Mode mode) : mode_(mode) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
             ::listen(fd_, 16) == 0;
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~HostServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  bool bound() const { return bound_; }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  // Waits until `fd` is ready for `events` or the server stops.
  bool Wait(int fd, short events) {
    while (!stop_) {
      pollfd p{fd, events, 0};
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }

  void Serve(int c) {
    char buf[4096];
    if (mode_ == Mode::kSink) {
      while (!stop_) std::this_thread::sleep_for(20ms);
      return;
    }
    std::string got;
    while (Wait(c, POLLIN)) {
      ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0) return;
      if (mode_ == Mode::kEcho) {
        if (::send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) return;
        continue;
      }
      got.append(buf, static_cast<size_t>(n));
      size_t end = got.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      std::string line = got.substr(0, got.find("\r\n"));
      std::string body = fmt::format("hello from {}: {}\n", port_, line);
      std::string reply =
          fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                      body.size(), body);
      (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      return;
    }
  }

  void Loop() {
    while (Wait(fd_, POLLIN)) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++accepted_;
      Serve(c);
      ::close(c);
    }
  }

  Mode mode_;
  int fd_ = -1;
  bool bound_ = false;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// The host's first IPv4 address that is not loopback, or "".
std::string HostAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP)) continue;
    char text[INET_ADDRSTRLEN];
    auto* in = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text))) found = text;
  }
  ::freeifaddrs(list);
  return found;
}

Spec Sandbox(std::vector<std::string> argv, std::vector<std::string> egress) {
  Spec spec;
  spec.argv = std::move(argv);
  spec.egress = std::move(egress);
  spec.capture_output = true;
  spec.timeout = 60s;  // only a bound: every test finishes far sooner
  return spec;
}

// A python program run in the sandbox.
std::vector<std::string> Python(const std::string& program) {
  return {"/usr/bin/python3", "-c", program};
}

// Speaks to the proxy by hand: sends `request`, prints the answer.
std::string RawRequestProgram(const std::string& request) {
  return fmt::format(R"(
import socket, sys
s = socket.create_connection(("127.0.0.1", {}), timeout=10)
data = {}
try:
    s.sendall(data)
except OSError as e:
    print("send failed:", e)
got = b""
try:
    while True:
        b = s.recv(65536)
        if not b: break
        got += b
except OSError as e:
    print("recv failed:", e)
sys.stdout.write(got.decode("latin-1"))
)",
                     kEgressProxyPort, request);
}

TEST(EgressTest, ParsesTargetsAndNamesBadOnes) {
  auto t = internal::ParseEgressTarget("Gateway.Example:443");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->host, "gateway.example");
  EXPECT_EQ(t->port, 443);
  auto v6 = internal::ParseEgressTarget("[::1]:8080");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  for (const char* bad : {"gateway.example", "gateway.example:0", "gateway.example:65536", ":443",
                          "::1:443", "gate way:443", "host:44x", "[::1]443"}) {
    auto r = internal::ParseEgressTarget(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
    EXPECT_THAT(r.error().message(), HasSubstr(fmt::format("'{}'", bad)));
  }
}

TEST(EgressTest, BadSpecsAreRefusedBeforeAnythingRuns) {
  Spec spec = Sandbox({"/bin/true"}, {"gateway.example"});
  auto r = sandbox::Run(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("'gateway.example' is not HOST:PORT"));

  spec = Sandbox({"/bin/true"}, {"gateway.example:443"});
  spec.network = Network::kHost;
  r = sandbox::Run(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("egress needs the sandbox's own network"));
}

TEST(EgressTest, NoEgressNoListener) {
  Spec spec = Sandbox(Python(fmt::format(R"(
import os, socket
try:
    socket.create_connection(("127.0.0.1", {}), timeout=5)
    print("connected")
except ConnectionRefusedError:
    print("refused")
print("proxy env:", os.environ.get("HTTPS_PROXY"))
)",
                                         kEgressProxyPort)),
                      {});
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  EXPECT_THAT(r->stdout_data, HasSubstr("refused\n"));
  EXPECT_THAT(r->stdout_data, HasSubstr("proxy env: None"));
  EXPECT_TRUE(r->egress.empty());
}

TEST(EgressTest, ProxyEnvironmentUnlessTheSpecSetsIt) {
  Spec spec = Sandbox({"/bin/sh", "-c",
                       "echo \"$HTTPS_PROXY|$HTTP_PROXY|$https_proxy|$http_proxy|$NO_PROXY|"
                       "$no_proxy\""},
                      {"gateway.example:443"});
  spec.env = {"http_proxy=http://mine:1"};
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->stdout_data,
            "http://127.0.0.1:3128|http://127.0.0.1:3128|http://127.0.0.1:3128|http://mine:1|"
            "localhost,127.0.0.1|localhost,127.0.0.1\n");
}

TEST(EgressTest, CurlReachesAListedServerAndIsRefusedElsewhere) {
  HostServer listed("127.0.0.2", HostServer::Mode::kHttp);
  HostServer other_port("127.0.0.2", HostServer::Mode::kHttp);
  ASSERT_TRUE(listed.bound() && other_port.bound());
  std::string script = fmt::format(
      "curl -sS --max-time 20 http://127.0.0.2:{0}/hello; "
      "curl -sS --max-time 20 -o /dev/null -w 'other port: %{{http_code}}\\n' "
      "http://127.0.0.2:{1}/; "
      "curl -sS --max-time 20 -w '\\nother host: %{{http_code}}\\n' http://127.0.0.3:{0}/",
      listed.port(), other_port.port());
  auto r = sandbox::Run(
      Sandbox({"/bin/sh", "-c", script}, {fmt::format("127.0.0.2:{}", listed.port())}));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  EXPECT_THAT(r->stdout_data,
              HasSubstr(fmt::format("hello from {}: GET /hello HTTP/1.1\n", listed.port())));
  EXPECT_THAT(r->stdout_data, HasSubstr("other port: 403\n"));
  EXPECT_THAT(r->stdout_data, HasSubstr("crucible egress: 127.0.0.3:"));
  EXPECT_THAT(r->stdout_data, HasSubstr("other host: 403\n"));
  EXPECT_EQ(other_port.accepted(), 0);
  EXPECT_EQ(listed.accepted(), 1);

  ASSERT_EQ(r->egress.size(), 3u);
  const EgressConnection& ok = r->egress[0];
  EXPECT_EQ(ok.host, "127.0.0.2");
  EXPECT_EQ(ok.port, listed.port());
  EXPECT_EQ(ok.method, "GET");
  EXPECT_TRUE(ok.allowed);
  EXPECT_EQ(ok.reason, "");
  EXPECT_GT(ok.bytes_in, 0u);
  const EgressConnection& port = r->egress[1];
  EXPECT_EQ(port.port, other_port.port());
  EXPECT_FALSE(port.allowed);
  EXPECT_THAT(port.reason, HasSubstr("is not an allowed destination"));
  EXPECT_EQ(port.bytes_in, 0u);
  EXPECT_EQ(r->egress[2].host, "127.0.0.3");
  EXPECT_FALSE(r->egress[2].allowed);
}

TEST(EgressTest, NamesAreResolvedOnTheHost) {
  HostServer server("127.0.0.1", HostServer::Mode::kHttp);
  ASSERT_TRUE(server.bound());
  // NO_PROXY overridden by the spec, so that curl sends "localhost" to the proxy.
  Spec spec = Sandbox({"curl", "-sS", "--max-time", "20",
                       fmt::format("http://localhost:{}/by-name", server.port())},
                      {fmt::format("localhost:{}", server.port())});
  spec.env = {"NO_PROXY=", "no_proxy="};
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  EXPECT_THAT(r->stdout_data, HasSubstr("GET /by-name HTTP/1.1"));
  ASSERT_EQ(r->egress.size(), 1u);
  EXPECT_EQ(r->egress[0].host, "localhost");
  EXPECT_TRUE(r->egress[0].allowed);
}

TEST(EgressTest, NothingButTheProxyLeavesTheSandbox) {
  std::string host = HostAddress();
  if (host.empty()) GTEST_SKIP() << "this host has no non-loopback IPv4 address";
  HostServer server(host, HostServer::Mode::kEcho);
  ASSERT_TRUE(server.bound());
  // Listed, so only the way there differs: directly, to the host's address
  // and to the loopback address the proxy itself would use.
  auto r = sandbox::Run(Sandbox(Python(fmt::format(R"(
import socket
for addr in [("{0}", {1}), ("127.0.0.2", {1})]:
    try:
        socket.create_connection(addr, timeout=5)
        print("direct", addr[0], "connected")
    except OSError as e:
        print("direct", addr[0], "failed")
)",
                                                   host, server.port())),
                                {fmt::format("{}:{}", host, server.port())}));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  EXPECT_THAT(r->stdout_data, HasSubstr(fmt::format("direct {} failed", host)));
  EXPECT_THAT(r->stdout_data, HasSubstr("direct 127.0.0.2 failed"));
  EXPECT_EQ(server.accepted(), 0);
  EXPECT_TRUE(r->egress.empty());
}

TEST(EgressTest, ConnectRelaysBytesBothWays) {
  HostServer echo("127.0.0.2", HostServer::Mode::kEcho);
  ASSERT_TRUE(echo.bound());
  auto r = sandbox::Run(Sandbox(Python(fmt::format(R"(
import socket
s = socket.create_connection(("127.0.0.1", {0}), timeout=10)
s.sendall(b"CONNECT 127.0.0.2:{1} HTTP/1.1\r\nHost: 127.0.0.2:{1}\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    b = s.recv(1)
    if not b: break
    head += b
print(head.split(b"\r\n")[0].decode())
payload = bytes(range(256)) * 400
s.sendall(payload)
s.shutdown(socket.SHUT_WR)
back = b""
while True:
    b = s.recv(65536)
    if not b: break
    back += b
print("echoed", len(back), back == payload)
)",
                                                   kEgressProxyPort, echo.port())),
                                {fmt::format("127.0.0.2:{}", echo.port())}));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  EXPECT_EQ(r->stdout_data, "HTTP/1.1 200 Connection established\nechoed 102400 True\n");
  ASSERT_EQ(r->egress.size(), 1u);
  EXPECT_EQ(r->egress[0].method, "CONNECT");
  EXPECT_TRUE(r->egress[0].allowed);
  EXPECT_EQ(r->egress[0].bytes_out, 102400u);
  EXPECT_EQ(r->egress[0].bytes_in, 102400u);
  EXPECT_EQ(r->egress[0].reason, "");
}

TEST(EgressTest, RefusesWhatIsNotAPlainProxyRequestToAListedPlace) {
  HostServer listed("127.0.0.2", HostServer::Mode::kHttp);
  HostServer unlisted("127.0.0.2", HostServer::Mode::kEcho);
  ASSERT_TRUE(listed.bound() && unlisted.bound());
  const std::string allow = fmt::format("127.0.0.2:{}", listed.port());
  // CONNECT to a listed host on another port.
  auto r =
      sandbox::Run(Sandbox(Python(RawRequestProgram(fmt::format(
                               R"(b"CONNECT 127.0.0.2:{} HTTP/1.1\r\n\r\n")", unlisted.port()))),
                           {allow}));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_THAT(r->stdout_data, HasSubstr("HTTP/1.1 403 Forbidden"));
  ASSERT_EQ(r->egress.size(), 1u);
  EXPECT_FALSE(r->egress[0].allowed);
  EXPECT_EQ(r->egress[0].port, unlisted.port());

  // A CONNECT smuggled behind a plain request to the listed server: it goes
  // to that server (which answers the first request), never elsewhere.
  r = sandbox::Run(
      Sandbox(Python(RawRequestProgram(fmt::format(
                  R"(b"GET http://127.0.0.2:{}/first HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n")"
                  R"(b"CONNECT 127.0.0.2:{} HTTP/1.1\r\n\r\n")",
                  listed.port(), unlisted.port()))),
              {allow}));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_THAT(r->stdout_data, HasSubstr("GET /first HTTP/1.1"));
  ASSERT_EQ(r->egress.size(), 1u);
  EXPECT_TRUE(r->egress[0].allowed);
  EXPECT_EQ(r->egress[0].port, listed.port());

  // An https URL in a plain request, and an origin-form request.
  for (const char* request : {R"(b"GET https://127.0.0.2:{}/ HTTP/1.1\r\n\r\n")",
                              R"(b"GET / HTTP/1.1\r\nHost: 127.0.0.2:{}\r\n\r\n")"}) {
    r = sandbox::Run(Sandbox(
        Python(RawRequestProgram(fmt::format(fmt::runtime(request), listed.port()))), {allow}));
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_THAT(r->stdout_data, HasSubstr("HTTP/1.1 400 Bad Request")) << request;
    ASSERT_EQ(r->egress.size(), 1u);
    EXPECT_FALSE(r->egress[0].allowed);
  }

  // A request line of 1 MB.
  r = sandbox::Run(
      Sandbox(Python(RawRequestProgram(fmt::format(
                  R"(b"GET http://127.0.0.2:{}/" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n")",
                  listed.port()))),
              {allow}));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  ASSERT_EQ(r->egress.size(), 1u);
  EXPECT_FALSE(r->egress[0].allowed);
  EXPECT_THAT(r->egress[0].reason, HasSubstr("request head is longer than"));

  EXPECT_EQ(unlisted.accepted(), 0);
  EXPECT_EQ(listed.accepted(), 1);
}

TEST(EgressTest, EndsOnTimeWithStuckClientsAndPeers) {
  HostServer sink("127.0.0.2", HostServer::Mode::kSink);
  ASSERT_TRUE(sink.bound());
  // One client never finishes its request line; another pushes bytes into a
  // destination that never reads them.
  std::string program = fmt::format(R"(
import socket, time
half = socket.create_connection(("127.0.0.1", {0}), timeout=30)
half.sendall(b"GET http://127.0.0.2:{1}/ HT")
full = socket.create_connection(("127.0.0.1", {0}), timeout=30)
full.sendall(b"CONNECT 127.0.0.2:{1} HTTP/1.1\r\n\r\n")
print(full.recv(100).split(b"\r\n")[0].decode(), flush=True)
full.settimeout(1)
sent = 0
try:
    while True:
        sent += full.send(b"x" * 65536)
except OSError:
    pass
print("stuck after", sent, flush=True)
time.sleep(600)
)",
                                    kEgressProxyPort, sink.port());
  Spec spec = Sandbox(Python(program), {fmt::format("127.0.0.2:{}", sink.port())});
  spec.timeout = 10s;
  const auto start = std::chrono::steady_clock::now();
  auto r = sandbox::Run(spec);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(took, 40s);  // generous: the point is that Run returns at all
  EXPECT_THAT(r->stdout_data, HasSubstr("HTTP/1.1 200 Connection established"));
  EXPECT_THAT(r->stdout_data, HasSubstr("stuck after"));
  ASSERT_EQ(r->egress.size(), 2u);
  // Whichever the proxy saw first: the client's end closing, or the sandbox ending.
  EXPECT_FALSE(r->egress[0].allowed);
  EXPECT_THAT(r->egress[0].reason,
              ::testing::AnyOf(HasSubstr("the sandbox ended before it was relayed"),
                               HasSubstr("the sandbox closed the connection")));
  EXPECT_TRUE(r->egress[1].allowed);
  EXPECT_GT(r->egress[1].bytes_out, 0u);
}

// The proxy on its own, with short limits: a client that never sends a
// request is answered 408 and closed.
TEST(EgressTest, ProxyTimesOutASilentClient) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  internal::EgressLimits limits;
  limits.request_timeout_ms = 200;
  auto proxy = internal::EgressProxy::Start(listener, {}, limits);
  ASSERT_TRUE(proxy.has_value()) << proxy.error().ToString();

  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{20, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::string got;
  char buf[1024];
  for (ssize_t n; (n = ::recv(c, buf, sizeof(buf), 0)) > 0;) got.append(buf, n);
  ::close(c);
  EXPECT_THAT(got, HasSubstr("HTTP/1.1 408 Request Timeout"));
  auto records = (*proxy)->Stop();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_FALSE(records[0].allowed);
  EXPECT_THAT(records[0].reason, HasSubstr("no complete request within 200 ms"));
}

}  // namespace
}  // namespace crucible::sandbox
