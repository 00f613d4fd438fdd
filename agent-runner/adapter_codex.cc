// "codex-json": Codex CLI's `exec --json` output, both the item events of
// current versions and the {"id", "msg"} events of older ones
// (docs/agents.md "Trace formats").
#include <algorithm>
#include <map>
#include <string>

#include <fmt/format.h>

#include "agent-runner/adapters_internal.h"

namespace crucible::runner::adapters {
namespace {

using nlohmann::json;

// Items started and not yet completed that are remembered (their events come
// at completion, or at the end).
constexpr size_t kMaxPending = 4096;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A command as a string: "pytest -q" or ["bash", "-lc", "pytest -q"].
std::string CommandText(const json& command) {
  if (command.is_string()) return command.get<std::string>();
  std::string text;
  if (command.is_array()) {
    for (const auto& w : command) {
      if (!w.is_string()) continue;
      if (!text.empty()) text += ' ';
      text += w.get<std::string>();
    }
  }
  return text;
}

class CodexAdapter final : public TraceAdapter {
 public:
  explicit CodexAdapter(AdapterOptions options) : options_(std::move(options)) {}

  Status Line(std::string_view line, int64_t now_ns, std::vector<v1::TraceEvent>& out) override {
    CRUCIBLE_ASSIGN_OR_RETURN(json obj, ParseTypedLine(line, "msg"));
    auto type = obj.find("type");
    if (type == obj.end() || !type->is_string()) return Legacy(obj["msg"], now_ns, out);
    const std::string t = type->get<std::string>();
    if (t == "thread.started") return {};
    if (t == "turn.started") {
      turn_start_ns_ = now_ns;
      return {};
    }
    if (t == "turn.completed") {
      auto usage = obj.find("usage");
      LlmCall(usage != obj.end() ? *usage : json::object(), now_ns, out);
      turn_start_ns_ = 0;
      return {};
    }
    if (t == "turn.failed" || t == "error") return {};
    if (t == "item.started" || t == "item.updated" || t == "item.completed") {
      auto item = obj.find("item");
      if (item == obj.end() || !item->is_object())
        return Fail(Code::kInvalidArgument, fmt::format("{} without an \"item\" object", t));
      return Item(t, *item, now_ns, out);
    }
    return Fail(Code::kInvalidArgument, fmt::format("unknown type \"{}\"", t));
  }

  void Finish(int64_t now_ns, std::vector<v1::TraceEvent>& out) override {
    for (auto& [id, item] : pending_) Emit(item, /*completed=*/false, now_ns, out);
    pending_.clear();
  }

 private:
  // OpenAI counts cached (read and written) tokens inside input_tokens, as
  // Usage does; reasoning tokens inside output_tokens.
  void LlmCall(const json& usage, int64_t now_ns, std::vector<v1::TraceEvent>& out) {
    const uint64_t cached = U64(usage, "cached_input_tokens");
    const uint64_t write = U64(usage, "cache_write_input_tokens");
    json attrs = {{"tokens_in", std::max(U64(usage, "input_tokens"), cached + write)},
                  {"tokens_out", U64(usage, "output_tokens")},
                  {"tokens_cached", cached},
                  {"tokens_cache_write", write}};
    if (!options_.model.empty()) attrs["model"] = options_.model;
    if (turn_start_ns_ > 0 && now_ns >= turn_start_ns_)
      attrs["latency_ms"] = (now_ns - turn_start_ns_) / 1'000'000;
    out.push_back(AgentEvent(now_ns, "LLM", "llm_call", attrs));
  }

  Status Item(const std::string& phase, const json& item, int64_t now_ns,
              std::vector<v1::TraceEvent>& out) {
    const std::string type = Str(item, "type");
    const std::string id = Str(item, "id");
    if (type == "todo_list") {
      json steps = json::array();
      if (auto items = item.find("items"); items != item.end() && items->is_array()) {
        for (const auto& i : *items) {
          std::string text = Str(i, "text");
          if (!text.empty()) steps.push_back(text);
        }
      }
      if (steps != last_plan_) {
        last_plan_ = steps;
        out.push_back(
            AgentEvent(now_ns, "CHAIN", "plan", {{"steps", steps}, {"tool", "todo_list"}}, id));
      }
      return {};
    }
    if (type == "command_execution" || type == "file_change" || type == "mcp_tool_call" ||
        type == "web_search") {
      if (phase == "item.completed") {
        pending_.erase(id);
        Emit(item, /*completed=*/true, now_ns, out);
      } else if (pending_.size() < kMaxPending || pending_.contains(id)) {
        pending_[id] = item;  // the latest state, emitted at completion or the end
      }
      return {};
    }
    // agent_message, reasoning, error, and types of later versions: nothing
    // the contract has an event for.
    return {};
  }

  // The event of a tool item (its state when completed, or at the end).
  void Emit(const json& item, bool completed, int64_t now_ns, std::vector<v1::TraceEvent>& out) {
    const std::string type = Str(item, "type");
    const std::string id = Str(item, "id");
    if (type == "command_execution") {
      MappedTool t = MapToolCall(
          "shell", Dump(json{{"command", CommandText(item.value("command", json()))}}), options_);
      json attrs = json::parse(t.attrs_json, nullptr, false);
      if (!Str(item, "status").empty()) attrs["status"] = Str(item, "status");
      if (completed) {
        if (auto code = item.find("exit_code"); code != item.end() && code->is_number_integer())
          attrs["exit_code"] = code->get<int64_t>();
        if (t.name == "run_tests") AddTestOutcome(Str(item, "aggregated_output"), attrs);
      }
      out.push_back(AgentEvent(now_ns, "TOOL", t.name, attrs, id));
    } else if (type == "file_change") {
      json files = json::array();
      json kinds = json::object();
      if (auto changes = item.find("changes"); changes != item.end() && changes->is_array()) {
        for (const auto& c : *changes) {
          std::string path = Str(c, "path");
          if (path.empty()) continue;
          MappedTool m = MapToolCall("edit", Dump(json{{"path", path}}), options_);
          std::string rel = Str(json::parse(m.attrs_json, nullptr, false), "path");
          files.push_back(rel);
          if (!Str(c, "kind").empty()) kinds[rel] = Str(c, "kind");
        }
      }
      json attrs = {{"tool", "apply_patch"}, {"files", files}};
      if (files.size() == 1) attrs["path"] = files[0];
      if (!kinds.empty()) attrs["kinds"] = kinds;
      if (!Str(item, "status").empty()) attrs["status"] = Str(item, "status");
      out.push_back(AgentEvent(now_ns, "TOOL", "edit_file", attrs, id));
    } else if (type == "mcp_tool_call") {
      auto args = item.find("arguments");
      MappedTool t =
          MapToolCall(Str(item, "tool"), args == item.end() ? "{}" : Dump(*args), options_);
      json attrs = json::parse(t.attrs_json, nullptr, false);
      if (!Str(item, "server").empty()) attrs["server"] = Str(item, "server");
      if (!Str(item, "status").empty()) attrs["status"] = Str(item, "status");
      out.push_back(AgentEvent(now_ns, "TOOL", t.name, attrs, id));
    } else if (type == "web_search") {
      out.push_back(AgentEvent(now_ns, "TOOL", "web",
                               {{"tool", "web_search"}, {"target", Str(item, "query")}}, id));
    }
  }

  // The {"id", "msg": {"type", ...}} events of Codex CLI before the item
  // events. Types without an event of the contract (agent_message,
  // agent_reasoning, task_started, task_complete, output deltas, ...) carry
  // nothing for the trace.
  Status Legacy(const json& msg, int64_t now_ns, std::vector<v1::TraceEvent>& out) {
    const std::string t = Str(msg, "type");
    const std::string call = Str(msg, "call_id");
    if (t == "exec_command_begin") {
      if (pending_.size() < kMaxPending)
        pending_[call] = json{{"type", "command_execution"},
                              {"id", call},
                              {"command", CommandText(msg.value("command", json()))}};
    } else if (t == "exec_command_end") {
      json item = pending_.contains(call) ? pending_[call]
                                          : json{{"type", "command_execution"}, {"id", call}};
      pending_.erase(call);
      if (auto code = msg.find("exit_code"); code != msg.end()) item["exit_code"] = *code;
      std::string output = Str(msg, "aggregated_output");
      if (output.empty()) output = Str(msg, "stdout") + "\n" + Str(msg, "stderr");
      item["aggregated_output"] = output;
      Emit(item, /*completed=*/true, now_ns, out);
    } else if (t == "patch_apply_begin") {
      json changes = json::array();
      if (auto c = msg.find("changes"); c != msg.end() && c->is_object()) {
        for (const auto& [path, change] : c->items()) {
          std::string kind = change.is_object() && !change.empty() ? change.begin().key() : "";
          changes.push_back({{"path", path}, {"kind", kind}});
        }
      }
      Emit({{"type", "file_change"}, {"id", call}, {"changes", changes}}, true, now_ns, out);
    } else if (t == "mcp_tool_call_begin") {
      auto inv = msg.find("invocation");
      if (inv != msg.end() && inv->is_object()) {
        json item = {{"type", "mcp_tool_call"},
                     {"id", call},
                     {"server", Str(*inv, "server")},
                     {"tool", Str(*inv, "tool")}};
        if (auto a = inv->find("arguments"); a != inv->end()) item["arguments"] = *a;
        Emit(item, true, now_ns, out);
      }
    } else if (t == "plan_update") {
      MappedTool m = MapToolCall("update_plan", Dump(msg), options_);
      out.push_back(AgentEvent(now_ns, "CHAIN", "plan", json::parse(m.attrs_json, nullptr, false)));
    } else if (t == "task_started") {
      turn_start_ns_ = now_ns;
    } else if (t == "token_count") {
      // Older: the counts themselves; later: {info: {last_token_usage}}.
      const json* usage = &msg;
      if (auto info = msg.find("info"); info != msg.end() && info->is_object()) {
        auto last = info->find("last_token_usage");
        if (last == info->end() || !last->is_object()) return {};
        usage = &*last;
      } else if (msg.find("input_tokens") == msg.end()) {
        return {};
      }
      LlmCall(*usage, now_ns, out);
      turn_start_ns_ = now_ns;
    }
    return {};
  }

  AdapterOptions options_;
  int64_t turn_start_ns_ = 0;
  std::map<std::string, json> pending_;  // item id -> latest state
  json last_plan_;
};

}  // namespace

std::unique_ptr<TraceAdapter> MakeCodexAdapter(const AdapterOptions& options) {
  return std::make_unique<CodexAdapter>(options);
}

}  // namespace crucible::runner::adapters
