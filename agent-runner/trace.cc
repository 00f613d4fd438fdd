#include "agent-runner/trace.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace crucible::runner {

namespace {

using nlohmann::json;

Result<std::string> IdField(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_unsigned()) return std::to_string(it->get<uint64_t>());
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return Fail(Code::kInvalidArgument, fmt::format("\"{}\" must be a string or an integer", key));
}

std::unexpected<Error> TsOutOfRange(const json& ts) {
  return Fail(Code::kInvalidArgument,
              fmt::format("\"ts\" {} is out of range (nanoseconds from 1970 to 2262)",
                          ts.dump(-1, ' ', false, json::error_handler_t::replace)));
}

int Digits(std::string_view s, size_t pos, size_t n, bool* ok) {
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (pos + i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[pos + i]))) {
      *ok = false;
      return 0;
    }
    v = v * 10 + (s[pos + i] - '0');
  }
  return v;
}

}  // namespace

Result<int64_t> ParseRfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  bool ok = true;
  auto bad = [&] { return Fail(Code::kInvalidArgument, fmt::format("\"{}\" is not RFC 3339", s)); };
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
    return bad();
  std::tm tm{};
  tm.tm_year = Digits(s, 0, 4, &ok) - 1900;
  tm.tm_mon = Digits(s, 5, 2, &ok) - 1;
  tm.tm_mday = Digits(s, 8, 2, &ok);
  tm.tm_hour = Digits(s, 11, 2, &ok);
  tm.tm_min = Digits(s, 14, 2, &ok);
  tm.tm_sec = Digits(s, 17, 2, &ok);
  if (!ok || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    return bad();
  size_t pos = 19;
  int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100'000'000;
    size_t start = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      frac_ns += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad();
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-') && s[pos + 3] == ':') {
    int h = Digits(s, pos + 1, 2, &ok), m = Digits(s, pos + 4, 2, &ok);
    if (!ok) return bad();
    offset_s = (h * 3600 + m * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != s.size()) return bad();
  const int64_t t = static_cast<int64_t>(timegm(&tm)) - offset_s;
  // Nanoseconds since the epoch fit an int64 until 2262-04-11.
  if (t < 0 || t >= INT64_MAX / 1'000'000'000) {
    return Fail(Code::kInvalidArgument, fmt::format("\"{}\" is out of range (1970 to 2262)", s));
  }
  return t * 1'000'000'000 + frac_ns;
}

Result<v1::TraceEvent> ParseTraceLine(std::string_view line, int64_t now_ns) {
  if (line.size() > kMaxTraceLineBytes) {
    return Fail(Code::kInvalidArgument,
                fmt::format("line longer than {} bytes", kMaxTraceLineBytes));
  }
  json obj = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded()) return Fail(Code::kInvalidArgument, "not JSON");
  if (!obj.is_object()) return Fail(Code::kInvalidArgument, "not a JSON object");

  v1::TraceEvent ev;
  auto kind = obj.find("kind");
  if (kind == obj.end() || !kind->is_string()) {
    return Fail(Code::kInvalidArgument, "missing string \"kind\"");
  }
  std::string k = kind->get<std::string>();
  for (auto& c : k) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (k != "AGENT" && k != "CHAIN" && k != "TOOL" && k != "LLM") {
    return Fail(
        Code::kInvalidArgument,
        fmt::format("kind \"{}\" is not one of AGENT, CHAIN, TOOL, LLM", kind->get<std::string>()));
  }
  ev.set_kind(k);
  auto name = obj.find("name");
  if (name == obj.end() || !name->is_string() || name->get<std::string>().empty()) {
    return Fail(Code::kInvalidArgument, "missing string \"name\"");
  }
  ev.set_name(name->get<std::string>());

  auto ts = obj.find("ts");
  if (ts == obj.end() || ts->is_null()) {
    ev.set_ts_ns(now_ns);
  } else if (ts->is_number_unsigned()) {
    if (ts->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return TsOutOfRange(*ts);
    ev.set_ts_ns(ts->get<int64_t>());
  } else if (ts->is_number_integer()) {
    if (ts->get<int64_t>() < 0) return TsOutOfRange(*ts);
    ev.set_ts_ns(ts->get<int64_t>());
  } else if (ts->is_number_float()) {
    // 2^63 is the first double past the int64 range.
    const double v = ts->get<double>();
    if (!std::isfinite(v) || v < 0 || v >= 9223372036854775808.0) return TsOutOfRange(*ts);
    ev.set_ts_ns(static_cast<int64_t>(v));
  } else if (ts->is_string()) {
    CRUCIBLE_ASSIGN_OR_RETURN(int64_t t, ParseRfc3339(ts->get<std::string>()));
    if (t < 0) return TsOutOfRange(*ts);
    ev.set_ts_ns(t);
  } else {
    return Fail(Code::kInvalidArgument, "\"ts\" must be nanoseconds or an RFC 3339 string");
  }

  CRUCIBLE_ASSIGN_OR_RETURN(std::string span, IdField(obj, "span_id"));
  CRUCIBLE_ASSIGN_OR_RETURN(std::string parent, IdField(obj, "parent_id"));
  ev.set_span_id(std::move(span));
  ev.set_parent_id(std::move(parent));

  auto attrs = obj.find("attrs");
  if (attrs != obj.end() && !attrs->is_null()) {
    if (!attrs->is_object()) return Fail(Code::kInvalidArgument, "\"attrs\" must be an object");
    ev.set_attrs_json(attrs->dump(-1, ' ', false, json::error_handler_t::replace));
  }
  ev.set_source("agent");
  return ev;
}

void TraceTailer::ReadNewLines(bool final, const std::function<void(std::string_view)>& on_line) {
  // The file lives in a directory the agent can write: refuse symlinks (which
  // could point at host files) and anything that is not a regular file (a FIFO
  // would block the runner).
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  problem_.clear();
  if (fd < 0 && errno == ELOOP) problem_ = "is a symbolic link";
  struct stat st;
  if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    problem_ = S_ISFIFO(st.st_mode)  ? "is a FIFO"
               : S_ISDIR(st.st_mode) ? "is a directory"
                                     : "is not a regular file";
    ::close(fd);
    fd = -1;
  }
  if (fd >= 0) {
    std::array<char, 64 * 1024> buf;
    uint64_t budget = final ? UINT64_MAX : kMaxTraceBytesPerRead;
    while (budget > 0) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), budget));
      ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset_));
      if (n <= 0) break;
      offset_ += static_cast<uint64_t>(n);
      budget -= static_cast<uint64_t>(n);
      std::string_view chunk(buf.data(), static_cast<size_t>(n));
      while (!chunk.empty()) {
        const size_t nl = chunk.find('\n');
        const std::string_view piece = chunk.substr(0, nl);
        if (!skipping_) {
          const size_t room = kMaxTraceLineBytes + 1 - partial_.size();
          if (piece.size() >= room) {
            // over-long: handed on cut (the parser rejects it), the rest skipped
            partial_.append(piece.substr(0, room));
            on_line(partial_);
            partial_.clear();
            skipping_ = true;
          } else if (nl != std::string_view::npos && partial_.empty()) {
            on_line(piece);  // the common case: a whole line inside the chunk
          } else {
            partial_.append(piece);
            if (nl != std::string_view::npos) {
              on_line(partial_);
              partial_.clear();
            }
          }
        }
        if (nl == std::string_view::npos) break;
        skipping_ = false;
        chunk.remove_prefix(nl + 1);
      }
    }
    ::close(fd);
  }
  if (final && !partial_.empty()) {
    on_line(partial_);
    partial_.clear();
  }
}

std::vector<std::string> TraceTailer::ReadNewLines(bool final) {
  std::vector<std::string> lines;
  ReadNewLines(final, [&](std::string_view line) { lines.emplace_back(line); });
  return lines;
}

}  // namespace crucible::runner
