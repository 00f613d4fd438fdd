// The coordinator's HTTP status page and Prometheus metrics
// (`crucible coordinator --http ADDR`).
//
// The coordinator is single-threaded, so the HTTP server never looks at it:
// the coordinator's thread publishes a snapshot (StatusPage) about once a
// second, and the server's threads answer from the latest one.
//
//   GET /             an HTML page: runs, runners, queue (refreshes itself)
//   GET /status.json  the same as JSON
//   GET /metrics      Prometheus text exposition format 0.0.4
//   GET /healthz      "ok" once a snapshot was published
//   GET /runs/ID/report.html
//                     the run's HTML report (report/html.h), rendered from
//                     the store on the server's thread (RocksDB reads are
//                     thread-safe); 404 for an unknown run
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/error.h"
#include "coordinator/coordinator.h"
#include "protocol/crucible.pb.h"
#include "storage/store.h"

namespace crucible::coordinator {

struct StatusPage {
  v1::StatusReply status;
  CoordinatorCounters counters;
  int64_t taken_at_ms = 0;    // wall clock
  int64_t started_at_ms = 0;  // when the coordinator started
  std::string listen;         // its ZeroMQ endpoint
  // Of the coordinator's process.
  uint64_t resident_bytes = 0;
  double cpu_seconds = 0;
};

// Fills the process fields of `page` (resident memory, CPU time) from /proc.
void ReadProcessUsage(StatusPage& page);

// The page's metrics in Prometheus text format (crucible_* names, counters
// ending in _total).
std::string PrometheusText(const StatusPage& page);
std::string StatusJson(const StatusPage& page);
std::string StatusHtml(const StatusPage& page);

class StatusServer {
 public:
  // Listens on `address` ("HOST:PORT"; port 0 picks a free one) and serves
  // from a thread of its own until destroyed. kInvalidArgument for a
  // malformed address, kUnavailable when it cannot listen. The run reports
  // are read from `store` (which must outlive the server); without one they
  // answer 404.
  static Result<std::unique_ptr<StatusServer>> Start(const std::string& address,
                                                     storage::Store* store = nullptr);
  virtual ~StatusServer() = default;

  // Thread-safe.
  virtual void Publish(StatusPage page) = 0;
  virtual int port() const = 0;
};

}  // namespace crucible::coordinator
