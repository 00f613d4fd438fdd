// Reading the trace an agent appends to $CRUCIBLE_TRACE.
//
// The file is untrusted: any line may be garbage, too long, or half written
// when read. Nothing here throws or crashes on bad input; a bad line becomes an
// Error naming what was wrong, which the runner counts and reports.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::runner {

// Longest trace line accepted; longer lines are rejected as a whole.
inline constexpr size_t kMaxTraceLineBytes = 64 * 1024;
// Bytes of the trace read per call while the agent runs, so a fast writer
// cannot keep the runner from its other duties (the rest waits for the next
// call; the final call reads to the end).
inline constexpr uint64_t kMaxTraceBytesPerRead = uint64_t{16} << 20;

// Parses one trace line (one JSON object, as the agent contract describes):
//   {"ts": <ns since the epoch, or an RFC 3339 string>, "kind": "AGENT|CHAIN|TOOL|LLM",
//    "name": "...", "span_id": ..., "parent_id": ..., "attrs": {...}}
// "kind" and "name" are required; "ts" defaults to `now_ns`; ids may be strings
// or numbers. Returns kInvalidArgument naming the problem ("not JSON: ...",
// "missing \"name\"", "kind \"FOO\" is not one of AGENT, CHAIN, TOOL, LLM").
Result<v1::TraceEvent> ParseTraceLine(std::string_view line, int64_t now_ns);

// Parses an RFC 3339 timestamp ("2026-11-21T18:05:53.123Z", offsets allowed)
// into nanoseconds since the epoch.
Result<int64_t> ParseRfc3339(std::string_view text);

// Follows a file that another process appends lines to.
class TraceTailer {
 public:
  explicit TraceTailer(std::string path) : path_(std::move(path)) {}

  // Hands `on_line` each complete line appended since the last call (without
  // its newline; the view is valid during the call only), reading at most
  // kMaxTraceBytesPerRead unless `final`. Memory stays bounded (one buffer and
  // at most one line) whatever the file holds. A trailing partial line is kept
  // for the next call unless `final` is true. Lines longer than
  // kMaxTraceLineBytes are handed on truncated to that length plus one byte,
  // so the parser rejects them. A file that does not exist yet, a symbolic
  // link or anything but a regular file yields no lines.
  void ReadNewLines(bool final, const std::function<void(std::string_view)>& on_line);

  // The same, collected (for tests and small files: memory grows with the
  // number of lines).
  std::vector<std::string> ReadNewLines(bool final = false);

  // Why the file was not read at the last call, when it exists but is not a
  // regular file ("is a symbolic link", "is a FIFO"); empty otherwise (a file
  // not created yet is not a problem).
  const std::string& problem() const { return problem_; }

 private:
  std::string path_;
  uint64_t offset_ = 0;
  std::string partial_;
  bool skipping_ = false;  // inside an over-long line
  std::string problem_;
};

}  // namespace crucible::runner
