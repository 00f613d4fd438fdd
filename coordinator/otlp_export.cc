#include "coordinator/otlp_export.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include "otel/otlp.h"

namespace crucible::coordinator {

Result<OtlpUrl> ParseOtlpUrl(const std::string& url) {
  auto bad = [&](std::string_view why) {
    return Fail(Code::kInvalidArgument,
                fmt::format("--otlp-endpoint '{}': {} (expected http://HOST:PORT[/PATH], the "
                            "path defaulting to /v1/traces)",
                            url, why));
  };
  std::string_view rest = url;
  std::string scheme;
  if (rest.starts_with("http://")) {
    scheme = "http://";
  } else if (rest.starts_with("https://")) {
    scheme = "https://";
  } else {
    return bad("not an http:// or https:// URL");
  }
  rest.remove_prefix(scheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  if (path.empty() || path == "/") path = "/v1/traces";
  if (authority.empty()) return bad("no host");
  if (authority.find('@') != std::string_view::npos) return bad("credentials in the URL");
  if (path.find_first_of("?# \r\n") != std::string::npos) {
    return bad("the path may hold no query, fragment or blanks");
  }
  // A port, when given, is a number from 1 to 65535 (IPv6 hosts in brackets).
  const size_t close = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && (close == std::string_view::npos || colon > close)) {
    std::string_view port = authority.substr(colon + 1);
    int p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p < 1 ||
        p > 65535) {
      return bad(fmt::format("port '{}' is not a number from 1 to 65535", port));
    }
    if (colon == 0) return bad("no host");
  }
  return OtlpUrl{scheme + std::string(authority), path};
}

namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

class HttpOtlpExporter : public OtlpExporter {
 public:
  HttpOtlpExporter(storage::Store& store, OtlpExportOptions options, OtlpUrl url)
      : store_(store), options_(std::move(options)), url_(std::move(url)) {
    thread_ = std::thread([this] { Loop(); });
  }

  ~HttpOtlpExporter() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
    if (!queue_.empty()) {
      spdlog::warn("OTLP export: {} finished attempts not exported (the coordinator stopped)",
                   queue_.size());
      counters_.dropped += queue_.size();
    }
  }

  void Enqueue(const v1::Attempt& attempt) override {
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= std::max<size_t>(options_.max_queue, 1)) {
        const v1::Attempt& oldest = queue_.front();
        ++counters_.dropped;
        spdlog::warn(
            "OTLP export: queue full ({} attempts), dropped attempt {}/{} ({} dropped so far)",
            queue_.size(), oldest.run_id(), oldest.number(), counters_.dropped);
        queue_.pop_front();
      }
      queue_.push_back(attempt);
    }
    wake_.notify_all();
  }

  OtlpExportCounters counters() const override {
    std::lock_guard lock(mu_);
    OtlpExportCounters c = counters_;
    c.queued = queue_.size() + (busy_ ? 1 : 0);
    return c;
  }

 private:
  void Loop() {
    httplib::Client client(url_.origin);
    client.set_connection_timeout(Ms(options_.timeout_ms));
    client.set_read_timeout(Ms(options_.timeout_ms));
    client.set_write_timeout(Ms(options_.timeout_ms));
    client.set_keep_alive(true);
    std::unique_lock lock(mu_);
    while (true) {
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      v1::Attempt attempt = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      const std::string body = Encode(attempt);
      lock.lock();
      if (body.empty()) {
        ++counters_.failed;
        busy_ = false;
        continue;
      }
      int backoff_ms = std::max(options_.first_backoff_ms, 1);
      for (int tries = 1;; ++tries) {
        lock.unlock();
        auto res = client.Post(url_.path, body, "application/json");
        lock.lock();
        std::string problem;
        bool retry = true;
        if (!res) {
          problem = httplib::to_string(res.error());
        } else if (res->status >= 200 && res->status < 300) {
          ++counters_.exported;
          break;
        } else {
          problem = fmt::format("HTTP {}", res->status);
          // The receiver refused this request: sending it again cannot help.
          retry = res->status == 408 || res->status == 429 || res->status >= 500;
        }
        if (!retry || tries >= options_.max_tries || stop_) {
          ++counters_.failed;
          spdlog::warn(
              "OTLP export of attempt {}/{} to {}{} failed after {} tries: {} ({} "
              "failed so far)",
              attempt.run_id(), attempt.number(), url_.origin, url_.path, tries, problem,
              counters_.failed);
          break;
        }
        ++counters_.retries;
        spdlog::debug("OTLP export of attempt {}/{}: {}; retrying in {} ms", attempt.run_id(),
                      attempt.number(), problem, backoff_ms);
        if (wake_.wait_for(lock, Ms(backoff_ms), [&] { return stop_; })) {
          ++counters_.dropped;
          break;
        }
        backoff_ms = std::min(backoff_ms * 2, std::max(options_.max_backoff_ms, 1));
      }
      busy_ = false;
    }
  }

  // The attempt's spans, or "" (logged) when its events cannot be read.
  std::string Encode(const v1::Attempt& attempt) {
    auto events = store_.ListEvents(attempt.run_id(), attempt.number());
    if (!events) {
      spdlog::warn("OTLP export of attempt {}/{}: cannot read its trace: {}", attempt.run_id(),
                   attempt.number(), events.error().ToString());
      return {};
    }
    otel::AttemptMeta meta{.run_id = attempt.run_id(),
                           .attempt = attempt.number(),
                           .task_id = attempt.task_id(),
                           .agent = attempt.agent(),
                           .sample = attempt.sample()};
    return otel::EncodeOtlpJson(meta, *events);
  }

  storage::Store& store_;
  const OtlpExportOptions options_;
  const OtlpUrl url_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<v1::Attempt> queue_;
  OtlpExportCounters counters_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: started once everything else is ready
};

}  // namespace

Result<std::unique_ptr<OtlpExporter>> OtlpExporter::Start(storage::Store& store,
                                                          OtlpExportOptions options) {
  CRUCIBLE_ASSIGN_OR_RETURN(OtlpUrl url, ParseOtlpUrl(options.endpoint));
  if (options.timeout_ms < 1 || options.max_tries < 1) {
    return Fail(Code::kInvalidArgument, "OTLP export: timeout and tries must be at least 1");
  }
  return std::unique_ptr<OtlpExporter>(
      std::make_unique<HttpOtlpExporter>(store, std::move(options), std::move(url)));
}

}  // namespace crucible::coordinator
