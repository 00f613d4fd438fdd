// `crucible trace ATTEMPT`: an attempt's stored trace, as the agent
// contract's JSONL or as OTLP/JSON spans (docs/exporting.md).
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "otel/otlp.h"

namespace crucible::cli {

namespace {

using nlohmann::json;

// One event as a line of the agent contract, with its source and seq.
std::string EventLine(const v1::TraceEvent& ev) {
  json line = json::object();
  line["ts"] = ev.ts_ns();
  line["kind"] = ev.kind();
  line["name"] = ev.name();
  if (!ev.span_id().empty()) line["span_id"] = ev.span_id();
  if (!ev.parent_id().empty()) line["parent_id"] = ev.parent_id();
  if (!ev.attrs_json().empty()) {
    json attrs = json::parse(ev.attrs_json(), nullptr, /*allow_exceptions=*/false);
    line["attrs"] = attrs.is_discarded() ? json(ev.attrs_json()) : attrs;
  }
  line["source"] = ev.source();
  line["seq"] = ev.seq();
  return line.dump(-1, ' ', false, json::error_handler_t::replace);
}

int Trace(const std::string& db, const std::string& attempt_text, const std::string& format) {
  auto ref = ParseAttemptRef(attempt_text);
  if (!ref) return ReportError(ref.error());
  auto store = OpenDbForReading(db);
  if (!store) return ReportError(store.error());
  auto run = (*store)->GetRun(ref->run_id);
  if (!run) return ReportError(run.error());
  auto attempt = (*store)->GetAttempt(ref->run_id, ref->number);
  if (!attempt) {
    if (attempt.error().code() != Code::kNotFound) return ReportError(attempt.error());
    auto all = (*store)->ListAttempts(ref->run_id);
    const size_t n = all ? all->size() : 0;
    return ReportError(
        Error(Code::kNotFound,
              n == 0 ? fmt::format("run '{}' has no attempts", ref->run_id)
                     : fmt::format("run '{}' has no attempt {} (its attempts are numbered 0 to {})",
                                   ref->run_id, ref->number, n - 1)));
  }
  auto events = (*store)->ListEvents(ref->run_id, ref->number);
  if (!events) return ReportError(events.error());
  if (format == "otlp-json") {
    otel::AttemptMeta meta{.run_id = ref->run_id,
                           .attempt = ref->number,
                           .task_id = attempt->task_id(),
                           .agent = attempt->agent(),
                           .sample = attempt->sample()};
    std::string out = otel::EncodeOtlpJson(meta, *events);
    out += '\n';
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }
  for (const auto& ev : *events) {
    std::string line = EventLine(ev);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  return 0;
}

}  // namespace

void AddTraceCommand(CLI::App& app, int* exit_code) {
  auto db = std::make_shared<std::string>();
  auto attempt = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("jsonl");
  auto* cmd = app.add_subcommand(
      "trace",
      "Print an attempt's trace: the agent's events and the runner's, as JSONL or as OTLP/JSON "
      "spans with OpenInference attributes (for Phoenix, Jaeger or an OpenTelemetry "
      "collector).");
  cmd->add_option("attempt", *attempt,
                  "RUN/NUMBER (or RUN:NUMBER): the run id and the attempt number that `crucible "
                  "report RUN --by attempt` shows")
      ->required();
  cmd->add_option("--format", *format,
                  "jsonl (one event a line, the agent contract's fields plus source and seq) or "
                  "otlp-json (one OTLP ExportTraceServiceRequest)")
      ->check(CLI::IsMember({"jsonl", "otlp-json"}))
      ->capture_default_str();
  cmd->add_option("--db", *db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->callback([=] { *exit_code = Trace(*db, *attempt, *format); });
}

}  // namespace crucible::cli
