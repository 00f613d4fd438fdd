// "claude-stream-json": Claude Code's `-p --output-format stream-json
// --verbose` output (docs/agents.md "Trace formats").
#include <algorithm>
#include <deque>
#include <map>
#include <string>
#include <unordered_set>

#include <fmt/format.h>

#include "agent-runner/adapters_internal.h"

namespace crucible::runner::adapters {
namespace {

using nlohmann::json;

// Ids remembered to recognise a repeated message or a tool's result: both
// come soon after, so a bounded window suffices whatever the agent prints.
constexpr size_t kRememberedIds = 4096;
// Characters of the first assistant text kept as the plan.
constexpr size_t kMaxPlanText = 8192;

// The text of a tool result's "content": a string or [{type: text, text}].
std::string ResultText(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (content.is_array()) {
    for (const auto& block : content) {
      std::string t = Str(block, "text");
      if (t.empty()) continue;
      if (!text.empty()) text += '\n';
      text += t;
    }
  }
  return text;
}

class RecentIds {
 public:
  bool Contains(const std::string& id) const { return set_.contains(id); }
  void Add(const std::string& id) {
    if (!set_.insert(id).second) return;
    if (order_.size() == kRememberedIds) {
      set_.erase(order_.front());
      order_.pop_front();
    }
    order_.push_back(id);
  }

 private:
  std::deque<std::string> order_;
  std::unordered_set<std::string> set_;
};

class ClaudeAdapter final : public TraceAdapter {
 public:
  explicit ClaudeAdapter(AdapterOptions options) : options_(std::move(options)) {}

  Status Line(std::string_view line, int64_t now_ns, std::vector<v1::TraceEvent>& out) override {
    CRUCIBLE_ASSIGN_OR_RETURN(json obj, ParseTypedLine(line));
    const std::string type = obj["type"].get<std::string>();
    if (type == "system") {
      if (Str(obj, "subtype") == "init" && !Str(obj, "model").empty()) model_ = Str(obj, "model");
      return {};
    }
    if (type == "assistant") return Assistant(obj, now_ns, out);
    if (type == "user") return User(obj, now_ns, out);
    if (type == "result") return ResultLine(obj);
    // Partial-message deltas (--include-partial-messages) repeat what the
    // assistant lines say.
    if (type == "stream_event") return {};
    return Fail(Code::kInvalidArgument, fmt::format("unknown type \"{}\"", type));
  }

  void Finish(int64_t now_ns, std::vector<v1::TraceEvent>& out) override {
    // Test runs whose result never came: no outcome.
    for (auto& [id, attrs] : pending_tests_)
      out.push_back(AgentEvent(now_ns, "TOOL", "run_tests", attrs, id));
    pending_tests_.clear();
    MaybeTextPlan(now_ns, out);
  }

  const v1::Usage* reported_usage() const override { return has_reported_ ? &reported_ : nullptr; }

 private:
  Status Assistant(const json& obj, int64_t now_ns, std::vector<v1::TraceEvent>& out) {
    auto msg = obj.find("message");
    if (msg == obj.end() || !msg->is_object())
      return Fail(Code::kInvalidArgument, "assistant line without a \"message\" object");
    const std::string id = Str(*msg, "id");
    if (id.empty() || !messages_.Contains(id)) {
      // One llm_call per message: its content blocks come one a line, each
      // repeating the message's usage.
      if (!id.empty()) messages_.Add(id);
      ++llm_calls_;
      json attrs = {{"model", !Str(*msg, "model").empty() ? Str(*msg, "model")
                              : !model_.empty()           ? model_
                                                          : options_.model}};
      if (auto u = msg->find("usage"); u != msg->end() && u->is_object()) {
        const uint64_t cached = U64(*u, "cache_read_input_tokens");
        const uint64_t write = U64(*u, "cache_creation_input_tokens");
        attrs["tokens_in"] = U64(*u, "input_tokens") + cached + write;
        attrs["tokens_out"] = U64(*u, "output_tokens");
        attrs["tokens_cached"] = cached;
        attrs["tokens_cache_write"] = write;
      }
      if (!id.empty()) attrs["message_id"] = id;
      out.push_back(AgentEvent(now_ns, "LLM", "llm_call", attrs, id));
    }
    auto content = msg->find("content");
    if (content == msg->end() || !content->is_array()) return {};
    for (const auto& block : *content) {
      const std::string btype = Str(block, "type");
      if (btype == "text") {
        if (first_text_.empty() && !plan_emitted_) {
          first_text_ = Str(block, "text").substr(0, kMaxPlanText);
        }
      } else if (btype == "tool_use") {
        const std::string tool_id = Str(block, "id");
        auto input = block.find("input");
        MappedTool t = MapToolCall(
            Str(block, "name"),
            input == block.end() ? "{}"
                                 : input->dump(-1, ' ', false, json::error_handler_t::replace),
            options_);
        json attrs = json::parse(t.attrs_json, nullptr, false);
        if (!tool_id.empty()) tools_.Add(tool_id);
        if (t.name == "plan") {
          plan_emitted_ = true;
          out.push_back(AgentEvent(now_ns, "CHAIN", "plan", attrs, tool_id));
          continue;
        }
        if (t.name == "edit_file" || t.name == "run_tests" || t.name == "shell")
          MaybeTextPlan(now_ns, out);
        if (t.name == "run_tests" && !tool_id.empty()) {
          // Emitted with its outcome when the result comes.
          if (pending_tests_.size() < kRememberedIds) {
            pending_tests_.emplace(tool_id, std::move(attrs));
            continue;
          }
        }
        out.push_back(AgentEvent(now_ns, "TOOL", t.name, attrs, tool_id));
      }
    }
    return {};
  }

  Status User(const json& obj, int64_t now_ns, std::vector<v1::TraceEvent>& out) {
    auto msg = obj.find("message");
    if (msg == obj.end() || !msg->is_object()) return {};
    auto content = msg->find("content");
    if (content == msg->end() || !content->is_array()) return {};  // the prompt
    std::string unknown;
    for (const auto& block : *content) {
      if (Str(block, "type") != "tool_result") continue;
      const std::string id = Str(block, "tool_use_id");
      auto pending = pending_tests_.find(id);
      if (pending != pending_tests_.end()) {
        json attrs = std::move(pending->second);
        pending_tests_.erase(pending);
        bool is_error = false;
        if (auto e = block.find("is_error"); e != block.end() && e->is_boolean())
          is_error = e->get<bool>();
        auto c = block.find("content");
        AddTestOutcome(c == block.end() ? std::string() : ResultText(*c), attrs);
        attrs["ok"] = !is_error;
        out.push_back(AgentEvent(now_ns, "TOOL", "run_tests", attrs, id));
      } else if (!tools_.Contains(id) && unknown.empty()) {
        unknown = id;
      }
    }
    if (!unknown.empty()) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("tool_result for unknown tool_use_id \"{}\"", unknown));
    }
    return {};
  }

  Status ResultLine(const json& obj) {
    v1::Usage& u = reported_;
    has_reported_ = true;
    auto models = obj.find("modelUsage");
    bool per_model = models != obj.end() && models->is_object() && !models->empty();
    double model_cost = 0;
    bool any_model_cost = false;
    if (per_model) {
      for (const auto& [model, m] : models->items()) {
        const uint64_t cached = U64(m, "cacheReadInputTokens");
        const uint64_t write = U64(m, "cacheCreationInputTokens");
        u.set_tokens_in(u.tokens_in() + U64(m, "inputTokens") + cached + write);
        u.set_tokens_out(u.tokens_out() + U64(m, "outputTokens"));
        u.set_tokens_cached(u.tokens_cached() + cached);
        u.set_tokens_cache_write(u.tokens_cache_write() + write);
        bool known = false;
        for (const auto& x : u.models()) known |= x == model;
        if (!known) u.add_models(model);
        if (auto c = m.find("costUSD"); m.is_object() && c != m.end() && c->is_number()) {
          model_cost += c->get<double>();
          any_model_cost = true;
        }
      }
    } else if (auto usage = obj.find("usage"); usage != obj.end() && usage->is_object()) {
      const uint64_t cached = U64(*usage, "cache_read_input_tokens");
      const uint64_t write = U64(*usage, "cache_creation_input_tokens");
      u.set_tokens_in(u.tokens_in() + U64(*usage, "input_tokens") + cached + write);
      u.set_tokens_out(u.tokens_out() + U64(*usage, "output_tokens"));
      u.set_tokens_cached(u.tokens_cached() + cached);
      u.set_tokens_cache_write(u.tokens_cache_write() + write);
      const std::string m = !model_.empty() ? model_ : options_.model;
      if (!m.empty() && u.models_size() == 0) u.add_models(m);
    }
    auto total = obj.find("total_cost_usd");
    if (total == obj.end() || !total->is_number()) total = obj.find("cost_usd");
    if (total != obj.end() && total->is_number() && total->get<double>() >= 0) {
      u.set_cost_usd(u.cost_usd() + total->get<double>());
      u.set_cost_source("agent");
    } else if (any_model_cost) {
      u.set_cost_usd(u.cost_usd() + model_cost);
      u.set_cost_source("agent");
    }
    u.set_llm_latency_ms(u.llm_latency_ms() + static_cast<int64_t>(U64(obj, "duration_api_ms")));
    u.set_llm_calls(llm_calls_);
    return {};
  }

  // The plan is TodoWrite; failing that, the agent's first text, given
  // before it first acts (or at the end).
  void MaybeTextPlan(int64_t now_ns, std::vector<v1::TraceEvent>& out) {
    if (plan_emitted_ || first_text_.empty()) return;
    plan_emitted_ = true;
    out.push_back(AgentEvent(now_ns, "CHAIN", "plan", {{"text", first_text_}}));
    first_text_.clear();
  }

  AdapterOptions options_;
  std::string model_;  // from the init line
  RecentIds messages_, tools_;
  std::map<std::string, json> pending_tests_;  // tool_use_id -> run_tests attrs
  std::string first_text_;
  bool plan_emitted_ = false;
  uint32_t llm_calls_ = 0;
  v1::Usage reported_;
  bool has_reported_ = false;
};

}  // namespace

std::unique_ptr<TraceAdapter> MakeClaudeAdapter(const AdapterOptions& options) {
  return std::make_unique<ClaudeAdapter>(options);
}

}  // namespace crucible::runner::adapters
