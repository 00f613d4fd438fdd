// Agent files (`crucible run --agents FILE`), price tables (`--prices FILE`)
// and trace formats (`--trace-format`): docs/agents.md "Agent files".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::cli {

// Parses an agent file: an optional shared `prices` table and a list of
// `agents`, each becoming an AgentSpec with its prompt file read (relative
// paths are taken from `base_dir`, the file's directory) and its own prices
// ahead of the shared ones. kInvalidArgument naming "SOURCE:LINE:COLUMN" and
// the key for an unknown key, a bad size, duration or price, an environment
// name that is not an identifier or starts with CRUCIBLE_, a prompt file that
// is missing or not a regular file, an unknown trace format or a name given
// twice.
Result<std::vector<v1::AgentSpec>> ParseAgentFile(std::string_view yaml_text,
                                                  std::string_view source_name,
                                                  const std::string& base_dir);

// Reads and parses the agent file at `path` (kNotFound naming it when it
// cannot be read).
Result<std::vector<v1::AgentSpec>> LoadAgentFile(const std::string& path);

// A price table: a mapping of model names (a trailing "*" matches by prefix)
// to {input, output, cache_read, cache_write}, USD per million tokens.
Result<std::vector<v1::ModelPrice>> ParsePriceTable(std::string_view yaml_text,
                                                    std::string_view source_name);
Result<std::vector<v1::ModelPrice>> LoadPriceFile(const std::string& path);

// Adds `prices` to every agent behind the entries it has already, so an
// agent's own price of a model wins.
void AddPrices(const std::vector<v1::ModelPrice>& prices, std::vector<v1::AgentSpec>& agents);

// kInvalidArgument "WHAT: unknown trace format 'F' (known: ...)" unless
// `format` is one of runner::TraceFormats().
Status CheckTraceFormat(std::string_view what, std::string_view format);

// Applies --trace-format values: a plain FORMAT to every agent of
// `cli_agents` (the --agent ones), NAME=FORMAT to the agent NAME among
// `cli_agents` and `file_agents`. Errors name the value.
Status ApplyTraceFormats(const std::vector<std::string>& values,
                         std::vector<v1::AgentSpec>& cli_agents,
                         std::vector<v1::AgentSpec>& file_agents);

}  // namespace crucible::cli
