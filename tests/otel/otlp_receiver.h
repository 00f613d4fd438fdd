// OTLP/HTTP receivers for the export tests, in the test process: one that
// stores what it is sent, and one that never answers.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

namespace crucible::testing {

struct ReceivedRequest {
  std::string path;
  std::string content_type;
  std::string body;
};

// Answers POSTs to /v1/traces (and /custom/path) with 200 and keeps them.
class OtlpReceiver {
 public:
  // On `port` (0: any free one).
  explicit OtlpReceiver(int port = 0, int status = 200) : status_(status) {
    for (const char* path : {"/v1/traces", "/custom/path"}) {
      server_.Post(path, [this](const httplib::Request& req, httplib::Response& res) {
        {
          std::lock_guard lock(mu_);
          requests_.push_back({req.path, req.get_header_value("Content-Type"), req.body});
        }
        changed_.notify_all();
        res.status = status_;
        res.set_content("{}", "application/json");
      });
    }
    if (port == 0) {
      port_ = server_.bind_to_any_port("127.0.0.1");
    } else {
      port_ = server_.bind_to_port("127.0.0.1", port) ? port : -1;
    }
    if (port_ > 0) thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~OtlpReceiver() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const { return port_; }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // Waits until `n` requests came, at most `timeout`; returns them.
  std::vector<ReceivedRequest> WaitFor(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
    return requests_;
  }

 private:
  httplib::Server server_;
  int port_ = -1;
  int status_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<ReceivedRequest> requests_;
};

// A TCP port on 127.0.0.1 that takes connections (the kernel completes them)
// and never reads or answers.
class SilentReceiver {
 public:
  SilentReceiver() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 64) != 0) {
      return;
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentReceiver() {
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = -1;
};

}  // namespace crucible::testing
