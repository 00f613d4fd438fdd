#include "agent-runner/agent_sandbox.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include <sys/stat.h>

#include <fmt/format.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "sandbox/sandbox.h"

namespace crucible::runner {

namespace {

using nlohmann::json;

void Warn(const std::function<void(v1::TraceEvent)>& emit, const std::string& message) {
  if (!emit) return;
  v1::TraceEvent ev;
  ev.set_ts_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count());
  ev.set_kind("RUNNER");
  ev.set_name("sandbox_warning");
  ev.set_source("runner");
  ev.set_attrs_json(
      json{{"message", message}}.dump(-1, ' ', false, json::error_handler_t::replace));
  emit(std::move(ev));
}

bool SetsCrucible(std::string_view name) { return name.starts_with("CRUCIBLE_"); }

void ReplaceAll(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

}  // namespace

bool IsEnvName(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Status ApplyAgentSpec(const v1::AgentSpec& agent, const std::string& io_dir,
                      const std::function<void(v1::TraceEvent)>& emit, sandbox::Spec& spec) {
  for (const auto& entry : agent.env()) {
    const std::string name = entry.substr(0, entry.find('='));
    if (entry.find('=') == std::string::npos || !IsEnvName(name) || SetsCrucible(name)) {
      Warn(emit, fmt::format("agent env entry '{}' left out: not NAME=VALUE with a variable name "
                             "outside CRUCIBLE_*",
                             name));
      continue;
    }
    spec.env.push_back(entry);
  }
  for (const auto& name : agent.pass_env()) {
    if (!IsEnvName(name) || SetsCrucible(name)) {
      Warn(emit,
           fmt::format("pass_env '{}' left out: not a variable name outside CRUCIBLE_*", name));
      continue;
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
      Warn(emit, fmt::format("pass_env variable {} is not set in the runner's environment; the "
                             "agent runs without it",
                             name));
      continue;
    }
    spec.env.push_back(name + "=" + value);
  }
  if (!agent.model().empty()) spec.env.push_back("CRUCIBLE_MODEL=" + agent.model());
  if (!agent.prompt().empty()) {
    CRUCIBLE_RETURN_IF_ERROR(WriteFile(io_dir + "/prompt.md", agent.prompt()));
    spec.env.push_back("CRUCIBLE_PROMPT=/crucible/prompt.md");
  }
  if (agent.memory_limit_bytes() > 0) spec.memory_limit_bytes = agent.memory_limit_bytes();
  if (agent.pids_limit() > 0) spec.pids_limit = agent.pids_limit();
  if (agent.cpu_time_s() > 0) spec.cpu_time_s = agent.cpu_time_s();
  return {};
}

SecretRedactor::SecretRedactor(const v1::AgentSpec& agent) {
  for (const auto& name : agent.pass_env()) {
    if (!IsEnvName(name)) continue;
    const char* value = std::getenv(name.c_str());
    if (value == nullptr || std::string_view(value).size() < kMinSecretBytes) continue;
    const std::string replacement = "[pass_env " + name + "]";
    secrets_.emplace_back(value, replacement);
    std::string escaped =
        json(std::string(value)).dump(-1, ' ', false, json::error_handler_t::replace);
    escaped = escaped.substr(1, escaped.size() - 2);
    if (escaped != value) secrets_.emplace_back(std::move(escaped), replacement);
  }
  // Longest first, so a value containing another is replaced whole.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

void SecretRedactor::Redact(std::string& text) const {
  for (const auto& [value, replacement] : secrets_) ReplaceAll(text, value, replacement);
}

void SecretRedactor::Redact(google::protobuf::Message& message) const {
  if (secrets_.empty()) return;
  using google::protobuf::FieldDescriptor;
  const auto* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
          std::string s = reflection->GetRepeatedString(message, field, i);
          std::string before = s;
          Redact(s);
          if (s != before) reflection->SetRepeatedString(&message, field, i, std::move(s));
        }
      } else {
        std::string s = reflection->GetString(message, field);
        std::string before = s;
        Redact(s);
        if (s != before) reflection->SetString(&message, field, std::move(s));
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
          Redact(*reflection->MutableRepeatedMessage(&message, field, i));
        }
      } else {
        Redact(*reflection->MutableMessage(&message, field));
      }
    }
  }
}

std::vector<sandbox::Bind> CommandFileBinds(const std::string& command) {
  std::vector<sandbox::Bind> binds;
  std::istringstream words(command);
  std::string w;
  while (words >> w) {
    if (w.empty() || w[0] != '/') continue;
    struct stat st;
    if (sandbox::IsSystemPath(w) || ::stat(w.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    binds.push_back(sandbox::Bind{.host_path = w, .sandbox_path = w, .writable = false});
  }
  return binds;
}

}  // namespace crucible::runner
