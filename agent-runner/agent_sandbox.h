// What an agent's spec asks of its sandbox (docs/agents.md "Agent files"):
// environment, variables passed from the runner's own environment, model,
// prompt and limits; and keeping the passed values (API keys) out of
// everything the runner sends.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace google::protobuf {
class Message;
}

namespace crucible::sandbox {
struct Spec;
struct Bind;
}  // namespace crucible::sandbox

namespace crucible::runner {

// True for a variable name of [A-Za-z_][A-Za-z0-9_]*.
bool IsEnvName(std::string_view name);

// Sets up `spec` (the agent's sandbox, whose /crucible is `io_dir`) as
// `agent` asks: its env entries; each pass_env variable with its value from
// this process's environment, read now (a missing one is a sandbox_warning
// event naming it, through `emit`); CRUCIBLE_MODEL; the prompt at
// /crucible/prompt.md with CRUCIBLE_PROMPT; the memory, pids and CPU time
// limits. An entry that is not NAME=VALUE with a variable name, or that sets
// a CRUCIBLE_* variable, is left out with a sandbox_warning.
Status ApplyAgentSpec(const v1::AgentSpec& agent, const std::string& io_dir,
                      const std::function<void(v1::TraceEvent)>& emit, sandbox::Spec& spec);

// Host files `command` names by absolute path (its script, say), to be bound
// read-only at the same path, unless a system directory already shows them.
std::vector<sandbox::Bind> CommandFileBinds(const std::string& command);

// Replaces the values of an agent's pass_env variables, as this process's
// environment has them, wherever they appear in what the runner sends
// (trace events, evidence, error messages) with "[pass_env NAME]". Values
// shorter than kMinSecretBytes are left alone (they would match anywhere).
class SecretRedactor {
 public:
  static constexpr size_t kMinSecretBytes = 6;

  explicit SecretRedactor(const v1::AgentSpec& agent);

  bool empty() const { return secrets_.empty(); }
  void Redact(std::string& text) const;
  // Every string field of `message`, recursively.
  void Redact(google::protobuf::Message& message) const;

 private:
  // (value as it may appear, replacement): raw and JSON-escaped.
  std::vector<std::pair<std::string, std::string>> secrets_;
};

}  // namespace crucible::runner
