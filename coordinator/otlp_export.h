// Pushing finished attempts' traces to an OpenTelemetry receiver over
// OTLP/HTTP with JSON bodies (`crucible coordinator --otlp-endpoint URL`;
// docs/exporting.md).
//
// The coordinator's thread only queues the attempt (Enqueue never blocks on
// the network); a thread of the exporter reads the attempt's events from the
// store, encodes them (otel/otlp.h) and POSTs them with timeouts, retrying
// with exponential backoff. The queue is bounded: when it is full the oldest
// attempt is dropped, with a warning and a count. Every outcome is counted
// (OtlpExportCounters) for the coordinator's status page and metrics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "storage/store.h"

namespace crucible::coordinator {

struct OtlpExportOptions {
  // http://HOST:PORT[/PATH] or https://...; PATH defaults to /v1/traces.
  // Empty: no export.
  std::string endpoint;
  size_t max_queue = 1000;     // attempts waiting; beyond, the oldest is dropped
  int timeout_ms = 5000;       // connect, send and receive, each
  int first_backoff_ms = 500;  // before the first retry; doubled per retry
  int max_backoff_ms = 30'000;
  int max_tries = 10;  // POSTs of one attempt before it is given up
};

struct OtlpExportCounters {
  uint64_t exported = 0;  // attempts the receiver accepted
  uint64_t failed = 0;    // attempts given up (refused, or out of tries)
  uint64_t dropped = 0;   // attempts dropped from a full queue or at shutdown
  uint64_t retries = 0;   // POSTs repeated after a failure
  uint64_t queued = 0;    // attempts waiting now
};

// A parsed --otlp-endpoint: "http://host:port" and the request path.
struct OtlpUrl {
  std::string origin;
  std::string path;
};

// kInvalidArgument naming the URL for anything but http(s)://HOST[:PORT][/PATH].
Result<OtlpUrl> ParseOtlpUrl(const std::string& url);

class OtlpExporter {
 public:
  // Starts the exporter's thread. `store` must outlive the exporter.
  // kInvalidArgument for a malformed endpoint.
  static Result<std::unique_ptr<OtlpExporter>> Start(storage::Store& store,
                                                     OtlpExportOptions options);
  // Stops the thread: a POST under way ends within its timeout; attempts
  // still queued are dropped (counted, with a warning).
  virtual ~OtlpExporter() = default;

  // Queues a finished attempt for export. Thread-safe; never waits on the
  // network.
  virtual void Enqueue(const v1::Attempt& attempt) = 0;

  virtual OtlpExportCounters counters() const = 0;
};

}  // namespace crucible::coordinator
