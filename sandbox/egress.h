// The allowlisted egress of a sandbox (Spec::egress): an HTTP proxy the
// parent runs on a listening socket that lives inside the sandbox's network
// namespace.
//
// Init creates the listener (127.0.0.1:kEgressProxyPort, in its own network
// namespace) before the command starts and hands it to the parent over the
// report socket (SCM_RIGHTS), like the seccomp listener; the parent serves it
// from a thread of its own. The sandbox can reach nothing else: its network
// namespace has only loopback, and every connection out is made by this
// proxy, from the host, only to a listed host and port.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "sandbox/sandbox.h"

namespace crucible::sandbox::internal {

// One allowed destination.
struct EgressTarget {
  std::string host;  // lower case; an IPv6 literal without brackets
  uint16_t port = 0;
};

// Parses "host:port" or "[v6 literal]:port". kInvalidArgument, naming the
// entry, when it is not that (no port, port 0 or above 65535, empty host,
// spaces or control characters).
Result<EgressTarget> ParseEgressTarget(std::string_view entry);

// The proxy's bounds. Timeouts are generous: they only keep a stuck client or
// peer from holding a slot forever (the whole proxy ends with the sandbox).
struct EgressLimits {
  size_t max_connections = 64;          // at once; more wait in the listen backlog
  size_t max_request_head = 16 * 1024;  // request line and headers, bytes
  size_t buffer_bytes = 64 * 1024;      // per direction of a relayed connection
  int request_timeout_ms = 10'000;      // accept to complete request head
  int connect_timeout_ms = 10'000;      // to reach the destination
  int idle_timeout_ms = 300'000;        // a relayed connection with no byte either way
};

// Serves `listener` (a listening TCP socket, taken over when this succeeds;
// left to the caller on an error) on a thread until Stop() or destruction.
// Names are resolved with getaddrinfo on that thread.
class EgressProxy {
 public:
  static Result<std::unique_ptr<EgressProxy>> Start(int listener, std::vector<EgressTarget> allowed,
                                                    EgressLimits limits = {});
  ~EgressProxy();
  EgressProxy(const EgressProxy&) = delete;
  EgressProxy& operator=(const EgressProxy&) = delete;

  // Closes the listener and every connection, waits for the thread, and
  // returns every connection accepted, in order. Later calls return nothing.
  std::vector<EgressConnection> Stop();

 private:
  struct State;
  explicit EgressProxy(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace crucible::sandbox::internal
