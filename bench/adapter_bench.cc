// Trace adapter throughput: a large synthetic transcript of each format
// (a read, an edit, a test run with its result and an LLM call per step, as
// real sessions have them) cut into 64 KiB chunks, through LineSplitter and
// the adapter, as the runner reads an agent's stdout. Prints lines/s,
// events/s and MB/s per adapter (the best of 3 runs), by the process's CPU
// time (single-threaded; steady on a loaded machine) and by wall time.
//
// Usage: adapter_bench [STEPS]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "agent-runner/adapters.h"

namespace crucible::runner {
namespace {

std::string Claude(int steps) {
  std::string t =
      R"({"type":"system","subtype":"init","cwd":"/workspace","tools":["Read","Edit","Bash"],"model":"claude-sonnet-4-5"})"
      "\n";
  const std::string usage =
      R"("usage":{"input_tokens":6,"cache_creation_input_tokens":300,"cache_read_input_tokens":12000,"output_tokens":40})";
  const std::string body(2000, 'x');  // a file's text in a tool result
  for (int i = 0; i < steps; ++i) {
    t += fmt::format(
        R"({{"type":"assistant","message":{{"id":"msg_{0}a","model":"claude-sonnet-4-5","content":[{{"type":"text","text":"Looking at pkg/mod_{0}.py"}}],{1}}}}})"
        "\n"
        R"({{"type":"assistant","message":{{"id":"msg_{0}a","model":"claude-sonnet-4-5","content":[{{"type":"tool_use","id":"r{0}","name":"Read","input":{{"file_path":"/workspace/pkg/mod_{0}.py"}}}}],{1}}}}})"
        "\n"
        R"({{"type":"user","message":{{"role":"user","content":[{{"tool_use_id":"r{0}","type":"tool_result","content":"{2}"}}]}}}})"
        "\n"
        R"({{"type":"assistant","message":{{"id":"msg_{0}b","model":"claude-sonnet-4-5","content":[{{"type":"tool_use","id":"e{0}","name":"Edit","input":{{"file_path":"/workspace/pkg/mod_{0}.py","old_string":"a","new_string":"b"}}}}],{1}}}}})"
        "\n"
        R"({{"type":"user","message":{{"role":"user","content":[{{"tool_use_id":"e{0}","type":"tool_result","content":"updated"}}]}}}})"
        "\n"
        R"({{"type":"assistant","message":{{"id":"msg_{0}c","model":"claude-sonnet-4-5","content":[{{"type":"tool_use","id":"t{0}","name":"Bash","input":{{"command":"python -m pytest -q tests/test_mod_{0}.py"}}}}],{1}}}}})"
        "\n"
        R"({{"type":"user","message":{{"role":"user","content":[{{"tool_use_id":"t{0}","type":"tool_result","content":"..F\n1 failed, 2 passed in 0.05s","is_error":true}}]}}}})"
        "\n",
        i, usage, body);
  }
  t +=
      R"({"type":"result","subtype":"success","total_cost_usd":1.5,"duration_api_ms":1000,"usage":{"input_tokens":10,"output_tokens":10}})"
      "\n";
  return t;
}

std::string Codex(int steps) {
  std::string t = R"({"type":"thread.started","thread_id":"t"})"
                  "\n";
  const std::string out(2000, 'x');
  for (int i = 0; i < steps; ++i) {
    t += fmt::format(
        R"({{"type":"turn.started"}})"
        "\n"
        R"({{"type":"item.started","item":{{"id":"c{0}","type":"command_execution","command":"bash -lc 'cat pkg/mod_{0}.py'","aggregated_output":"","exit_code":null,"status":"in_progress"}}}})"
        "\n"
        R"({{"type":"item.completed","item":{{"id":"c{0}","type":"command_execution","command":"bash -lc 'cat pkg/mod_{0}.py'","aggregated_output":"{1}","exit_code":0,"status":"completed"}}}})"
        "\n"
        R"({{"type":"item.completed","item":{{"id":"f{0}","type":"file_change","changes":[{{"path":"/workspace/pkg/mod_{0}.py","kind":"update"}}],"status":"completed"}}}})"
        "\n"
        R"({{"type":"item.completed","item":{{"id":"t{0}","type":"command_execution","command":"bash -lc 'python -m pytest -q'","aggregated_output":"..F\n1 failed, 2 passed in 0.05s\n","exit_code":1,"status":"failed"}}}})"
        "\n"
        R"({{"type":"turn.completed","usage":{{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}}})"
        "\n",
        i, out);
  }
  return t;
}

std::string Crucible(int steps) {
  std::string t;
  for (int i = 0; i < steps; ++i) {
    t += fmt::format(
        R"({{"kind":"TOOL","name":"read_file","attrs":{{"path":"pkg/mod_{0}.py"}}}})"
        "\n"
        R"({{"kind":"TOOL","name":"edit_file","attrs":{{"path":"pkg/mod_{0}.py"}}}})"
        "\n"
        R"({{"kind":"TOOL","name":"run_tests","attrs":{{"failed":1,"passed":2}}}})"
        "\n"
        R"({{"kind":"LLM","name":"llm_call","attrs":{{"model":"m","tokens_in":1000,"tokens_out":10}}}})"
        "\n",
        i);
  }
  return t;
}

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void Measure(const char* format, const std::string& transcript) {
  double best = 1e99, best_wall = 1e99;
  size_t events = 0, lines = 0, rejected = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto adapter = MakeTraceAdapter(format, {.test_cmd = "", .model = "gpt-5"});
    if (!adapter) std::abort();
    std::vector<v1::TraceEvent> out;
    size_t n_events = 0, n_lines = 0, n_rejected = 0;
    auto start = std::chrono::steady_clock::now();
    const double cpu_start = CpuSeconds();
    LineSplitter splitter({.line =
                               [&](std::string_view line, bool) {
                                 ++n_lines;
                                 if (!(*adapter)->Line(line, 1, out)) ++n_rejected;
                                 n_events += out.size();
                                 out.clear();  // the runner forwards them
                               },
                           .too_long = [&](uint64_t) { ++n_rejected; }});
    for (size_t i = 0; i < transcript.size(); i += 64 * 1024)
      splitter.Feed(std::string_view(transcript).substr(i, 64 * 1024));
    splitter.Finish();
    (*adapter)->Finish(1, out);
    n_events += out.size();
    const double cpu = CpuSeconds() - cpu_start;
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (cpu < best) best = cpu;
    if (wall < best_wall) best_wall = wall;
    events = n_events;
    lines = n_lines;
    rejected = n_rejected;
  }
  fmt::print(
      "{:<20} {:>8} lines {:>8} events {:>6.1f} MB  cpu {:>6.3f} s  {:>9.0f} lines/s  "
      "{:>9.0f} events/s  {:>6.1f} MB/s  (wall {:.3f} s)  rejected {}\n",
      format, lines, events, transcript.size() / 1e6, best, lines / best, events / best,
      transcript.size() / 1e6 / best, best_wall, rejected);
}

}  // namespace
}  // namespace crucible::runner

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 20000;
  using namespace crucible::runner;
  Measure("claude-stream-json", Claude(steps));
  Measure("codex-json", Codex(steps));
  Measure("crucible", Crucible(steps));
  return 0;
}
