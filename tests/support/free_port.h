// A loopback TCP port for tests and benchmarks that start daemons (the CLI
// cannot bind port 0 and report it back).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>

namespace crucible::testing {

// A TCP port on 127.0.0.1 that was free a moment ago; -1 if none was found.
//
// Chosen at random below the kernel's ephemeral range: a port the kernel
// handed out for bind(0) and got back is soon handed out again, to another
// test's receiver or to any outgoing connection, and two tests running at
// once would then share a daemon's port.
inline int FreePort() {
  int low = 32768;
  {
    std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
    int lo = 0, hi = 0;
    if (range >> lo >> hi && lo > 12000) low = lo;
  }
  std::random_device seed;
  std::mt19937 rng(seed());
  std::uniform_int_distribution<int> pick(10000, low - 1);
  for (int attempt = 0; attempt < 200; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(pick(rng)));
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (free) return ntohs(addr.sin_port);
  }
  return -1;
}

}  // namespace crucible::testing
