#include "coordinator/http_status.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "protocol/run_state.h"
#include "report/html.h"

namespace crucible::coordinator {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A label value in the exposition format: backslash, double quote and line
// feed escaped.
std::string LabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Html(std::string_view v) { return report::HtmlEscape(v); }

// A path segment: every byte but the unreserved characters percent-encoded.
std::string UrlSegment(std::string_view v) {
  std::string out;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

class Metrics {
 public:
  // A metric family with its HELP and TYPE lines.
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Sample(std::string_view name, double value, std::string_view labels = "") {
    out_ += labels.empty() ? fmt::format("{} {}\n", name, value)
                           : fmt::format("{}{{{}}} {}\n", name, labels, value);
  }
  void One(std::string_view name, std::string_view type, std::string_view help, double value) {
    Family(name, type, help);
    Sample(name, value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class HttplibStatusServer : public StatusServer {
 public:
  ~HttplibStatusServer() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  explicit HttplibStatusServer(storage::Store* store) : store_(store) {}

  Status Listen(const std::string& address) {
    auto colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("--http '{}': expected HOST:PORT, e.g. 127.0.0.1:7401", address));
    }
    std::string host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    int port = 0;
    try {
      size_t used = 0;
      port = std::stoi(address.substr(colon + 1), &used);
      if (used != address.size() - colon - 1 || port < 0 || port > 65535)
        throw std::out_of_range("");
    } catch (const std::exception&) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("--http '{}': the port must be a number from 0 to 65535", address));
    }
    // httplib's default also sets SO_REUSEPORT, which would let a second
    // coordinator share the port silently.
    server_.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    Route("/", "text/html; charset=utf-8", StatusHtml);
    Route("/status.json", "application/json", StatusJson);
    Route("/metrics", "text/plain; version=0.0.4; charset=utf-8", PrometheusText);
    // The store, never the coordinator: its reads are thread-safe.
    server_.Get(R"(/runs/([^/]+)/report\.html)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  const std::string run_id = req.matches[1];
                  if (store_ == nullptr) {
                    res.status = 404;
                    res.set_content("this status page has no database to read reports from\n",
                                    "text/plain; charset=utf-8");
                    return;
                  }
                  auto html = report::RenderRunHtml(*store_, run_id);
                  if (!html) {
                    res.status = html.error().code() == Code::kNotFound ? 404 : 500;
                    res.set_content(html.error().message() + "\n", "text/plain; charset=utf-8");
                    return;
                  }
                  res.set_content(std::move(*html), "text/html; charset=utf-8");
                });
    server_.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mu_);
      res.status = published_ ? 200 : 503;
      res.set_content(published_ ? "ok\n" : "starting\n", "text/plain");
    });
    port_ =
        port == 0 ? server_.bind_to_any_port(host) : (server_.bind_to_port(host, port) ? port : -1);
    if (port_ < 0) {
      return Fail(Code::kUnavailable, fmt::format("cannot serve HTTP on {}: {}", address,
                                                  std::strerror(errno ? errno : EADDRINUSE)));
    }
    thread_ = std::thread([this] {
      server_.listen_after_bind();
      listen_returned_ = true;
    });
    // stop() before the thread started listening would be lost and the
    // destructor would wait for ever: wait until it listens.
    while (!server_.is_running() && !listen_returned_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return {};
  }

  void Publish(StatusPage page) override {
    if (page.taken_at_ms == 0) page.taken_at_ms = NowMs();
    std::lock_guard lock(mu_);
    page_ = std::move(page);
    published_ = true;
  }

  int port() const override { return port_; }

 private:
  void Route(const std::string& path, const std::string& type,
             std::string (*render)(const StatusPage&)) {
    server_.Get(path, [this, type, render](const httplib::Request&, httplib::Response& res) {
      StatusPage page;
      {
        std::lock_guard lock(mu_);
        page = page_;
      }
      res.set_content(render(page), type);
    });
  }

  storage::Store* store_;
  httplib::Server server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  int port_ = -1;
  std::mutex mu_;
  StatusPage page_;
  bool published_ = false;
};

}  // namespace

void ReadProcessUsage(StatusPage& page) {
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    page.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  // statm: size resident shared ... in pages.
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (statm >> size >> resident) {
    page.resident_bytes = resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  }
}

std::string PrometheusText(const StatusPage& page) {
  Metrics m;
  const auto& s = page.status;
  const auto& c = page.counters;
  int64_t queued = 0, leased = 0, done = 0, failed = 0;
  for (const auto& r : s.runs()) {
    if (r.run().state() != v1::Run::RUNNING) continue;
    queued += r.queued();
    leased += r.leased();
    done += r.done();
    failed += r.failed();
  }
  m.One("crucible_runs_active", "gauge", "Runs being served.",
        static_cast<double>(std::count_if(s.runs().begin(), s.runs().end(), [](const auto& r) {
          return r.run().state() == v1::Run::RUNNING;
        })));
  m.Family("crucible_attempts", "gauge", "Attempts of the active runs, by state.");
  m.Sample("crucible_attempts", static_cast<double>(queued), "state=\"queued\"");
  m.Sample("crucible_attempts", static_cast<double>(leased), "state=\"leased\"");
  m.Sample("crucible_attempts", static_cast<double>(done), "state=\"done\"");
  m.Sample("crucible_attempts", static_cast<double>(failed), "state=\"failed\"");
  m.Family("crucible_run_attempts", "gauge", "Attempts of each active run, by state.");
  for (const auto& r : s.runs()) {
    if (r.run().state() != v1::Run::RUNNING) continue;
    std::string id = LabelValue(r.run().id());
    m.Sample("crucible_run_attempts", r.queued(), fmt::format("run=\"{}\",state=\"queued\"", id));
    m.Sample("crucible_run_attempts", r.leased(), fmt::format("run=\"{}\",state=\"leased\"", id));
    m.Sample("crucible_run_attempts", r.done(), fmt::format("run=\"{}\",state=\"done\"", id));
    m.Sample("crucible_run_attempts", r.failed(), fmt::format("run=\"{}\",state=\"failed\"", id));
  }
  m.One("crucible_queue_length", "gauge", "Attempts waiting for a runner.", s.queue_length());
  m.One("crucible_queue_waiting_for_labels", "gauge",
        "Queued attempts that no connected runner has the required labels for.",
        s.waiting_for_labels());
  int64_t slots = 0, busy = 0;
  for (const auto& r : s.runners()) {
    slots += r.slots();
    busy += r.busy();
  }
  m.One("crucible_runners", "gauge", "Runners connected.", s.runners_size());
  m.One("crucible_slots", "gauge", "Attempt slots of the connected runners.",
        static_cast<double>(slots));
  m.One("crucible_slots_busy", "gauge", "Slots holding a lease.", static_cast<double>(busy));
  m.Family("crucible_runner_slots", "gauge", "Slots of each runner.");
  for (const auto& r : s.runners()) {
    m.Sample("crucible_runner_slots", r.slots(),
             fmt::format("runner=\"{}\"", LabelValue(r.name())));
  }
  m.Family("crucible_runner_busy", "gauge", "Leases each runner holds.");
  for (const auto& r : s.runners()) {
    m.Sample("crucible_runner_busy", r.busy(), fmt::format("runner=\"{}\"", LabelValue(r.name())));
  }
  m.Family("crucible_runner_heartbeat_age_seconds", "gauge",
           "Time since each runner was last heard from.");
  for (const auto& r : s.runners()) {
    double age = r.last_heartbeat_ms() > 0
                     ? static_cast<double>(page.taken_at_ms - r.last_heartbeat_ms()) / 1000.0
                     : 0.0;
    m.Sample("crucible_runner_heartbeat_age_seconds", age,
             fmt::format("runner=\"{}\"", LabelValue(r.name())));
  }
  auto counter = [&](std::string_view name, std::string_view help, uint64_t v) {
    m.One(name, "counter", help, static_cast<double>(v));
  };
  counter("crucible_messages_received_total", "Messages received from runners and clients.",
          c.messages_received);
  counter("crucible_malformed_messages_total",
          "Messages that could not be decoded or were unexpected.", c.malformed_messages);
  counter("crucible_runs_submitted_total", "Runs submitted.", c.runs_submitted);
  counter("crucible_runs_finished_total", "Runs finished.", c.runs_finished);
  counter("crucible_leases_granted_total", "Attempts leased to runners.", c.leases_granted);
  counter("crucible_results_accepted_total", "Attempt results stored.", c.results_accepted);
  counter("crucible_late_results_accepted_total",
          "Results accepted under an expired lease (the attempt was not leased again).",
          c.late_results_accepted);
  counter("crucible_stale_messages_ignored_total",
          "Trace batches and results ignored because their lease was stale.",
          c.stale_messages_ignored);
  counter("crucible_retries_total", "Tries that ended without a result and were queued again.",
          c.retries);
  counter("crucible_attempts_failed_total", "Attempts failed for good as infrastructure errors.",
          c.attempts_failed);
  counter("crucible_trace_batches_total", "Trace batches received.", c.trace_batches);
  counter("crucible_trace_events_stored_total", "Trace events stored.", c.trace_events_stored);
  counter("crucible_trace_events_dropped_total",
          "Trace events dropped beyond the per-attempt budget.", c.trace_events_dropped);
  counter("crucible_refused_connections_total",
          "Connections refused for an unauthorized CurveZMQ key.", c.refused_connections);
  counter("crucible_otlp_exported_total", "Finished attempts pushed to the OTLP endpoint.",
          c.otlp.exported);
  counter("crucible_otlp_failed_total",
          "Finished attempts the OTLP endpoint refused, or given up after retries.", c.otlp.failed);
  counter("crucible_otlp_dropped_total",
          "Finished attempts dropped from a full OTLP export queue or at shutdown.",
          c.otlp.dropped);
  counter("crucible_otlp_retries_total", "OTLP pushes repeated after a failure.", c.otlp.retries);
  m.One("crucible_otlp_queued", "gauge", "Finished attempts waiting for the OTLP push.",
        static_cast<double>(c.otlp.queued));
  m.One("process_resident_memory_bytes", "gauge", "Resident memory of the coordinator.",
        static_cast<double>(page.resident_bytes));
  m.One("process_cpu_seconds_total", "counter", "User and system CPU time of the coordinator.",
        page.cpu_seconds);
  m.One("process_start_time_seconds", "gauge", "When the coordinator started (Unix time).",
        static_cast<double>(page.started_at_ms) / 1000.0);
  return m.Take();
}

std::string StatusJson(const StatusPage& page) {
  std::string status_json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(page.status, &status_json, opts);
  nlohmann::json j = nlohmann::json::parse(status_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) j = nlohmann::json::object();
  const auto& c = page.counters;
  j["listen"] = page.listen;
  j["taken_at_ms"] = page.taken_at_ms;
  j["started_at_ms"] = page.started_at_ms;
  j["counters"] = {{"messages_received", c.messages_received},
                   {"malformed_messages", c.malformed_messages},
                   {"runs_submitted", c.runs_submitted},
                   {"runs_finished", c.runs_finished},
                   {"leases_granted", c.leases_granted},
                   {"results_accepted", c.results_accepted},
                   {"late_results_accepted", c.late_results_accepted},
                   {"stale_messages_ignored", c.stale_messages_ignored},
                   {"retries", c.retries},
                   {"attempts_failed", c.attempts_failed},
                   {"trace_batches", c.trace_batches},
                   {"trace_events_stored", c.trace_events_stored},
                   {"trace_events_dropped", c.trace_events_dropped},
                   {"refused_connections", c.refused_connections},
                   {"otlp_exported", c.otlp.exported},
                   {"otlp_failed", c.otlp.failed},
                   {"otlp_dropped", c.otlp.dropped},
                   {"otlp_retries", c.otlp.retries},
                   {"otlp_queued", c.otlp.queued}};
  j["process"] = {{"resident_bytes", page.resident_bytes}, {"cpu_seconds", page.cpu_seconds}};
  return j.dump(2) + "\n";
}

std::string StatusHtml(const StatusPage& page) {
  const auto& s = page.status;
  std::string h =
      "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"2\"><title>Crucible coordinator</title>"
      "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:.3em .8em;text-align:right}"
      "td:first-child,th:first-child{text-align:left}</style></head><body>\n";
  h += fmt::format(
      "<h1>Crucible coordinator</h1>\n<p>Listening on <code>{}</code>. {} runners, "
      "{} attempts queued{}. <a href=\"/metrics\">metrics</a> &middot; "
      "<a href=\"/status.json\">JSON</a></p>\n",
      Html(page.listen), s.runners_size(), s.queue_length(),
      s.waiting_for_labels() > 0
          ? fmt::format(" ({} waiting for a runner with the required labels)",
                        s.waiting_for_labels())
          : "");
  h += "<h2>Runs</h2>\n";
  if (s.runs().empty()) {
    h += "<p>No active run.</p>\n";
  } else {
    h += "<table><tr><th>run</th><th>suite</th><th>state</th><th>attempts</th><th>done</th>"
         "<th>failed</th><th>leased</th><th>queued</th></tr>\n";
    for (const auto& r : s.runs()) {
      h += fmt::format(
          "<tr><td><a href=\"/runs/{}/report.html\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>"
          "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
          Html(UrlSegment(r.run().id())), Html(r.run().id()), Html(r.run().suite()),
          v1::RunStateName(r.run().state()), r.run().attempt_count(), r.done(), r.failed(),
          r.leased(), r.queued());
    }
    h += "</table>\n";
  }
  h += "<h2>Runners</h2>\n";
  if (s.runners().empty()) {
    h += "<p>No runner connected.</p>\n";
  } else {
    h += "<table><tr><th>runner</th><th>slots</th><th>busy</th><th>last heard</th>"
         "<th>labels</th></tr>\n";
    for (const auto& r : s.runners()) {
      std::string labels;
      for (const auto& l : r.labels()) labels += (labels.empty() ? "" : " ") + Html(l);
      h += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1f} s ago</td><td>{}</td></tr>\n",
          Html(r.name()), r.slots(), r.busy(),
          static_cast<double>(page.taken_at_ms - r.last_heartbeat_ms()) / 1000.0, labels);
    }
    h += "</table>\n";
  }
  const auto& c = page.counters;
  h += fmt::format(
      "<h2>Totals</h2>\n<p>{} leases granted, {} results stored ({} late), {} retries, {} "
      "attempts failed, {} trace events stored ({} dropped), {} malformed messages. Memory {:.1f} "
      "MiB, CPU {:.1f} s.</p>\n</body></html>\n",
      c.leases_granted, c.results_accepted, c.late_results_accepted, c.retries, c.attempts_failed,
      c.trace_events_stored, c.trace_events_dropped, c.malformed_messages,
      static_cast<double>(page.resident_bytes) / (1 << 20), page.cpu_seconds);
  return h;
}

Result<std::unique_ptr<StatusServer>> StatusServer::Start(const std::string& address,
                                                          storage::Store* store) {
  auto server = std::make_unique<HttplibStatusServer>(store);
  CRUCIBLE_RETURN_IF_ERROR(server->Listen(address));
  return std::unique_ptr<StatusServer>(std::move(server));
}

}  // namespace crucible::coordinator
