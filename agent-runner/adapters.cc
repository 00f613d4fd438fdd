#include "agent-runner/adapters.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent-runner/adapters_internal.h"
#include "agent-runner/trace.h"
#include "scoring/commands.h"

namespace crucible::runner {
namespace {

using nlohmann::json;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A path as the agent contract names it: relative to the workspace.
std::string WorkspacePath(std::string_view p) {
  if (p.starts_with("/workspace/")) p.remove_prefix(11);
  while (p.starts_with("./")) p.remove_prefix(2);
  return std::string(p);
}

std::string StringField(const json& input, std::initializer_list<const char*> keys) {
  if (!input.is_object()) return {};
  for (const char* k : keys) {
    auto it = input.find(k);
    if (it != input.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

// The files an apply_patch body names ("*** Update File: a.py", "+++ b/a.py").
std::vector<std::string> PatchFiles(std::string_view patch) {
  std::vector<std::string> files;
  size_t pos = 0;
  while (pos < patch.size()) {
    size_t eol = patch.find('\n', pos);
    std::string_view line =
        patch.substr(pos, eol == std::string_view::npos ? patch.size() - pos : eol - pos);
    pos = eol == std::string_view::npos ? patch.size() : eol + 1;
    for (std::string_view prefix :
         {"*** Update File: ", "*** Add File: ", "*** Delete File: ", "+++ b/", "*** Move to: "}) {
      if (line.starts_with(prefix)) {
        std::string f = WorkspacePath(line.substr(prefix.size()));
        while (!f.empty() && (f.back() == '\r' || f.back() == ' ')) f.pop_back();
        if (!f.empty() && std::find(files.begin(), files.end(), f) == files.end())
          files.push_back(f);
      }
    }
  }
  return files;
}

}  // namespace

MappedTool MapToolCall(std::string_view tool, std::string_view input_json,
                       const AdapterOptions& options) {
  json input = json::parse(input_json, nullptr, /*allow_exceptions=*/false);
  if (input.is_discarded()) input = json(std::string(input_json));
  const std::string t = Lower(tool);
  json attrs = json::object();
  attrs["tool"] = std::string(tool);
  std::string name = "tool";
  const std::string path =
      WorkspacePath(StringField(input, {"file_path", "path", "notebook_path", "filename", "file"}));

  auto with_path = [&] {
    if (!path.empty()) attrs["path"] = path;
  };
  if (t == "read" || t == "read_file" || t == "view" || t == "notebookread" || t == "open_file" ||
      t == "cat") {
    name = "read_file";
    with_path();
  } else if (t == "str_replace_based_edit_tool" || t == "str_replace_editor") {
    name = StringField(input, {"command"}) == "view" ? "read_file" : "edit_file";
    with_path();
  } else if (t == "edit" || t == "multiedit" || t == "write" || t == "notebookedit" ||
             t == "edit_file" || t == "write_file" || t == "create_file" || t == "str_replace" ||
             t == "replace" || t == "insert") {
    name = "edit_file";
    with_path();
  } else if (t == "apply_patch" || t == "patch") {
    name = "edit_file";
    std::string body = input.is_string() ? input.get<std::string>()
                                         : StringField(input, {"input", "patch", "diff"});
    auto files = PatchFiles(body);
    if (!files.empty()) attrs["files"] = files;
    with_path();
  } else if (t == "grep" || t == "glob" || t == "ls" || t == "search" || t == "find" ||
             t == "list_files" || t == "ripgrep" || t == "list_dir" || t == "search_files") {
    name = "search";
    std::string pattern = StringField(input, {"pattern", "query", "regex", "glob"});
    if (!pattern.empty()) attrs["pattern"] = pattern;
    with_path();
  } else if (t == "bash" || t == "shell" || t == "exec_command" || t == "run_command" ||
             t == "terminal" || t == "local_shell" || t == "run_shell_command" ||
             t == "execute_command") {
    std::string command = StringField(input, {"command", "cmd"});
    if (command.empty() && input.is_object()) {
      // Codex-style {"command": ["bash", "-lc", "pytest"]}.
      auto it = input.find("command");
      if (it != input.end() && it->is_array()) {
        for (const auto& w : *it) {
          if (!w.is_string()) continue;
          if (!command.empty()) command += ' ';
          command += w.get<std::string>();
        }
      }
    }
    if (command.empty() && input.is_string()) command = input.get<std::string>();
    attrs["command"] = command;
    name = scoring::LooksLikeTestRun(command, options.test_cmd) ? "run_tests" : "shell";
  } else if (t == "todowrite" || t == "update_plan" || t == "todo_write" || t == "plan") {
    name = "plan";
    json steps = json::array();
    if (input.is_object()) {
      for (const char* key : {"todos", "plan", "steps"}) {
        auto it = input.find(key);
        if (it == input.end() || !it->is_array()) continue;
        for (const auto& item : *it) {
          if (item.is_string()) {
            steps.push_back(item);
          } else if (item.is_object()) {
            std::string text = StringField(item, {"content", "step", "text", "title"});
            if (!text.empty()) steps.push_back(text);
          }
        }
      }
    }
    attrs["steps"] = steps;
  } else if (t == "webfetch" || t == "websearch" || t == "web_search" || t == "fetch") {
    name = "web";
    std::string target = StringField(input, {"url", "query"});
    if (!target.empty()) attrs["target"] = target;
  }
  return {name, attrs.dump(-1, ' ', false, json::error_handler_t::replace)};
}

LineSplitter::LineSplitter(Callbacks callbacks, size_t max_line)
    : callbacks_(std::move(callbacks)), max_line_(max_line) {}

void LineSplitter::Feed(std::string_view chunk) {
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    std::string_view piece = nl == std::string_view::npos ? chunk : chunk.substr(0, nl);
    if (skipping_) {
      skipped_bytes_ += piece.size();
    } else if (partial_.size() + piece.size() > max_line_) {
      skipping_ = true;
      skipped_bytes_ = partial_.size() + piece.size();
      partial_.clear();
      partial_.shrink_to_fit();
    } else {
      partial_.append(piece);
    }
    if (nl == std::string_view::npos) return;
    chunk.remove_prefix(nl + 1);
    if (skipping_) {
      if (callbacks_.too_long) callbacks_.too_long(skipped_bytes_);
      skipping_ = false;
      skipped_bytes_ = 0;
      continue;
    }
    std::string_view line = partial_;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (callbacks_.line) callbacks_.line(line, false);
    partial_.clear();
  }
}

void LineSplitter::Finish() {
  if (skipping_) {
    if (callbacks_.too_long) callbacks_.too_long(skipped_bytes_);
  } else if (!partial_.empty()) {
    std::string_view line = partial_;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (callbacks_.line) callbacks_.line(line, true);
  }
  skipping_ = false;
  skipped_bytes_ = 0;
  partial_.clear();
}

// ---- shared parts of the adapters

namespace adapters {

v1::TraceEvent AgentEvent(int64_t ts_ns, std::string_view kind, std::string_view name,
                          const json& attrs, std::string_view span_id) {
  v1::TraceEvent ev;
  ev.set_ts_ns(ts_ns);
  ev.set_kind(std::string(kind));
  ev.set_name(std::string(name));
  if (!span_id.empty()) ev.set_span_id(std::string(span_id));
  ev.set_attrs_json(attrs.dump(-1, ' ', false, json::error_handler_t::replace));
  ev.set_source("agent");
  return ev;
}

Result<json> ParseTypedLine(std::string_view line, const char* alt_key) {
  if (line.size() > kMaxAdapterLineBytes) {
    return Fail(Code::kInvalidArgument, fmt::format("line of {} bytes is over the {} MiB limit",
                                                    line.size(), kMaxAdapterLineBytes >> 20));
  }
  json obj;
  try {
    obj = json::parse(line);
  } catch (const json::parse_error& e) {
    return Fail(Code::kInvalidArgument, fmt::format("not JSON (at byte {})", e.byte));
  }
  if (!obj.is_object()) return Fail(Code::kInvalidArgument, "not a JSON object");
  auto type = obj.find("type");
  if (type != obj.end() && type->is_string()) return obj;
  if (alt_key) {
    auto alt = obj.find(alt_key);
    if (alt != obj.end() && alt->is_object()) {
      auto t = alt->find("type");
      if (t != alt->end() && t->is_string()) return obj;
    }
  }
  return Fail(Code::kInvalidArgument,
              type == obj.end() ? "missing \"type\"" : "\"type\" is not a string");
}

std::string Str(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

uint64_t U64(const json& obj, const char* key) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(key);
  if (it == obj.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer()) return it->get<int64_t>() > 0 ? it->get<uint64_t>() : 0;
  if (it->is_number_float()) {
    double v = it->get<double>();
    return std::isfinite(v) && v > 0 && v < 1.8e19 ? static_cast<uint64_t>(v) : 0;
  }
  return 0;
}

bool AddTestOutcome(std::string_view output, json& attrs) {
  bool found = false;
  // A pytest summary line: "=== 3 passed, 1 failed, 2 errors in 0.12s ===",
  // "1 failed, 2 passed in 3.1s", "no tests ran in 0.01s". The last one counts.
  size_t line_start = 0;
  std::map<std::string, uint64_t> last;
  while (line_start < output.size()) {
    size_t eol = output.find('\n', line_start);
    std::string_view line = output.substr(
        line_start, eol == std::string_view::npos ? std::string_view::npos : eol - line_start);
    line_start = eol == std::string_view::npos ? output.size() : eol + 1;
    if (line.starts_with("Exit code ") && !attrs.contains("exit_code")) {
      int code = 0;
      bool digits = line.size() > 10;
      for (char c : line.substr(10)) {
        if (c < '0' || c > '9' || code > 100000) {
          digits = false;
          break;
        }
        code = code * 10 + (c - '0');
      }
      if (digits) {
        attrs["exit_code"] = code;
        found = true;
      }
    }
    if (line.find(" in ") == std::string_view::npos) continue;
    std::map<std::string, uint64_t> counts;
    size_t i = 0;
    while (i < line.size()) {
      if (!std::isdigit(static_cast<unsigned char>(line[i]))) {
        ++i;
        continue;
      }
      uint64_t n = 0;
      size_t j = i;
      while (j < line.size() && std::isdigit(static_cast<unsigned char>(line[j])) && n < 1e15)
        n = n * 10 + static_cast<uint64_t>(line[j++] - '0');
      if (j < line.size() && line[j] == ' ' && (i == 0 || !std::isalnum(line[i - 1]))) {
        size_t k = j + 1;
        while (k < line.size() && std::isalpha(static_cast<unsigned char>(line[k]))) ++k;
        std::string word(line.substr(j + 1, k - j - 1));
        if (word == "passed" || word == "failed" || word == "error" || word == "errors")
          counts[word == "error" ? "errors" : word] += n;
      }
      i = j;
    }
    if (!counts.empty()) last = std::move(counts);
  }
  if (!last.empty()) {
    attrs["passed"] = last["passed"];
    attrs["failed"] = last["failed"] + last["errors"];
    if (last["errors"]) attrs["errors"] = last["errors"];
    found = true;
  }
  return found;
}

namespace {

// "crucible": the agent's own JSONL (agent-runner/trace.h).
class CrucibleAdapter final : public TraceAdapter {
 public:
  Status Line(std::string_view line, int64_t now_ns, std::vector<v1::TraceEvent>& out) override {
    CRUCIBLE_ASSIGN_OR_RETURN(v1::TraceEvent ev, ParseTraceLine(line, now_ns));
    out.push_back(std::move(ev));
    return {};
  }
};

}  // namespace

std::unique_ptr<TraceAdapter> MakeCrucibleAdapter() { return std::make_unique<CrucibleAdapter>(); }

}  // namespace adapters

const std::vector<std::string>& TraceFormats() {
  static const std::vector<std::string> formats = {"crucible", "claude-stream-json", "codex-json",
                                                   "openinference"};
  return formats;
}

TraceSource SourceOf(std::string_view format) {
  if (format == "claude-stream-json" || format == "codex-json") return TraceSource::kStdout;
  if (format == "openinference") return TraceSource::kSpanFile;
  return TraceSource::kTraceFile;
}

Result<std::unique_ptr<TraceAdapter>> MakeTraceAdapter(std::string_view format,
                                                       const AdapterOptions& options) {
  if (format.empty() || format == "crucible") return adapters::MakeCrucibleAdapter();
  if (format == "claude-stream-json") return adapters::MakeClaudeAdapter(options);
  if (format == "codex-json") return adapters::MakeCodexAdapter(options);
  if (format == "openinference") return MakeOpenInferenceAdapter(options);
  std::string known;
  for (const auto& f : TraceFormats()) known += (known.empty() ? "" : ", ") + f;
  return Fail(Code::kInvalidArgument,
              fmt::format("unknown trace format \"{}\" (known: {})", format, known));
}

// ---- usage

namespace {

// The price entry of `model`: an exact match, else the longest "prefix*".
const v1::ModelPrice* FindPrice(std::span<const v1::ModelPrice> prices, std::string_view model) {
  const v1::ModelPrice* best = nullptr;
  size_t best_len = 0;
  for (const auto& p : prices) {
    std::string_view m = p.model();
    if (m == model) return &p;
    if (m.ends_with('*')) {
      m.remove_suffix(1);
      if (model.starts_with(m) && (!best || m.size() >= best_len)) {
        best = &p;
        best_len = m.size();
      }
    }
  }
  return best;
}

double PriceOf(const v1::ModelPrice& p, uint64_t in, uint64_t out, uint64_t cached,
               uint64_t cache_write) {
  const double read = p.cache_read_per_mtok() > 0 ? p.cache_read_per_mtok() : p.input_per_mtok();
  const double write = p.cache_write_per_mtok() > 0 ? p.cache_write_per_mtok() : p.input_per_mtok();
  const uint64_t uncached = in > cached + cache_write ? in - cached - cache_write : 0;
  return (static_cast<double>(uncached) * p.input_per_mtok() + static_cast<double>(cached) * read +
          static_cast<double>(cache_write) * write +
          static_cast<double>(out) * p.output_per_mtok()) /
         1e6;
}

void AddModel(v1::Usage& u, const std::string& model) {
  if (model.empty()) return;
  for (const auto& m : u.models())
    if (m == model) return;
  u.add_models(model);
}

}  // namespace

v1::Usage ComputeUsage(std::span<const v1::TraceEvent> trace, const v1::Usage* reported,
                       std::span<const v1::ModelPrice> prices, std::string_view default_model) {
  v1::Usage u;
  std::map<std::string, uint64_t> unpriced;  // model ("" for none named) -> calls
  bool any_table = false;
  for (const auto& ev : trace) {
    if (ev.source() != "agent" || ev.name() != "llm_call") continue;
    json a = json::parse(ev.attrs_json(), nullptr, /*allow_exceptions=*/false);
    if (!a.is_object()) a = json::object();
    std::string model = adapters::Str(a, "model");
    if (model.empty()) model = std::string(default_model);
    const uint64_t in = adapters::U64(a, "tokens_in"), out = adapters::U64(a, "tokens_out"),
                   cached = adapters::U64(a, "tokens_cached"),
                   cache_write = adapters::U64(a, "tokens_cache_write");
    // A folded event stands for "calls" calls (FoldLlmCalls).
    const uint64_t n = std::clamp<uint64_t>(adapters::U64(a, "calls"), 1, UINT32_MAX);
    u.set_llm_calls(static_cast<uint32_t>(std::min<uint64_t>(u.llm_calls() + n, UINT32_MAX)));
    u.set_tokens_in(u.tokens_in() + in);
    u.set_tokens_out(u.tokens_out() + out);
    u.set_tokens_cached(u.tokens_cached() + cached);
    u.set_tokens_cache_write(u.tokens_cache_write() + cache_write);
    u.set_llm_latency_ms(u.llm_latency_ms() + static_cast<int64_t>(adapters::U64(a, "latency_ms")));
    AddModel(u, model);
    auto cost = a.find("cost_usd");
    if (cost != a.end() && cost->is_number() && std::isfinite(cost->get<double>()) &&
        cost->get<double>() >= 0) {
      u.set_cost_usd(u.cost_usd() + cost->get<double>());
    } else if (const v1::ModelPrice* p = model.empty() ? nullptr : FindPrice(prices, model)) {
      u.set_cost_usd(u.cost_usd() + PriceOf(*p, in, out, cached, cache_write));
      any_table = true;
    } else {
      unpriced[model] += n;
    }
  }
  if (reported) {
    // The agent's own totals take precedence; the trace still counts calls.
    const uint32_t calls = u.llm_calls();
    const int64_t latency = u.llm_latency_ms();
    u = *reported;
    if (u.llm_calls() == 0) u.set_llm_calls(calls);
    if (u.llm_latency_ms() == 0) u.set_llm_latency_ms(latency);
    if (u.cost_source().empty()) {
      // Reported tokens without a cost: priced from the table when every
      // model it names has a price.
      bool priced = u.models_size() > 0 || !default_model.empty();
      if (u.models_size() > 1) priced = false;
      std::string model = u.models_size() == 1 ? u.models(0) : std::string(default_model);
      const v1::ModelPrice* p = priced ? FindPrice(prices, model) : nullptr;
      if (p) {
        u.set_cost_usd(
            PriceOf(*p, u.tokens_in(), u.tokens_out(), u.tokens_cached(), u.tokens_cache_write()));
        u.set_cost_source("price_table");
      } else if (u.tokens_in() + u.tokens_out() > 0) {
        u.set_cost_source("partial");
        u.add_warnings(model.empty() || u.models_size() > 1
                           ? std::string("the agent reported tokens but no cost, and no single "
                                         "model to price them by")
                           : fmt::format("no price for model {}: the reported tokens are not "
                                         "priced",
                                         model));
      }
    }
    return u;
  }
  if (u.llm_calls() == 0) return u;
  for (const auto& [model, calls] : unpriced) {
    u.add_warnings(
        model.empty()
            ? fmt::format("{} LLM calls name no model (and the agent has none): "
                          "they are not priced",
                          calls)
            : fmt::format("no price for model {}: its {} calls are not priced", model, calls));
  }
  u.set_cost_source(!unpriced.empty() ? "partial" : any_table ? "price_table" : "agent");
  return u;
}

void FoldLlmCalls(std::vector<v1::TraceEvent>& calls) {
  // model, has a cost -> the sums
  std::map<std::pair<std::string, bool>, json> folded;
  for (const auto& ev : calls) {
    json a = json::parse(ev.attrs_json(), nullptr, /*allow_exceptions=*/false);
    if (!a.is_object()) a = json::object();
    auto cost = a.find("cost_usd");
    const bool has_cost = cost != a.end() && cost->is_number() &&
                          std::isfinite(cost->get<double>()) && cost->get<double>() >= 0;
    json& f = folded[{adapters::Str(a, "model"), has_cost}];
    if (f.is_null()) {
      f = {{"model", adapters::Str(a, "model")},
           {"calls", 0},
           {"tokens_in", 0},
           {"tokens_out", 0},
           {"tokens_cached", 0},
           {"tokens_cache_write", 0},
           {"latency_ms", 0}};
      if (has_cost) f["cost_usd"] = 0.0;
    }
    f["calls"] =
        f["calls"].get<uint64_t>() + std::clamp<uint64_t>(adapters::U64(a, "calls"), 1, UINT32_MAX);
    for (const char* key :
         {"tokens_in", "tokens_out", "tokens_cached", "tokens_cache_write", "latency_ms"})
      f[key] = f[key].get<uint64_t>() + adapters::U64(a, key);
    if (has_cost) f["cost_usd"] = f["cost_usd"].get<double>() + cost->get<double>();
  }
  calls.clear();
  for (auto& [key, attrs] : folded) {
    if (key.first.empty()) attrs.erase("model");
    calls.push_back(adapters::AgentEvent(0, "LLM", "llm_call", attrs));
  }
}

}  // namespace crucible::runner
