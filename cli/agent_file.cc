#include "cli/agent_file.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "agent-runner/adapters.h"
#include "agent-runner/agent_sandbox.h"
#include "base/fs.h"
#include "cli/common.h"
#include "golden/utf8.h"
#include "sandbox/policy.h"
#include "sandbox/sandbox.h"
#include "scoring/score.h"

namespace crucible::cli {

namespace {

// A prompt travels in every lease of the agent: it is kept small.
constexpr size_t kMaxPromptBytes = size_t{1} << 20;

constexpr std::string_view kTopKeys[] = {"prices", "agents"};
constexpr std::string_view kAgentKeys[] = {"name",        "command", "trace_format", "model",
                                           "prompt_file", "env",     "pass_env",     "limits",
                                           "require",     "prices",  "egress",       "rounds"};
constexpr std::string_view kLimitKeys[] = {"timeout", "memory", "pids", "cpu"};
constexpr std::string_view kPriceKeys[] = {"input", "output", "cache_read", "cache_write"};

template <size_t N>
bool Known(const std::string_view (&keys)[N], std::string_view key) {
  return std::find(std::begin(keys), std::end(keys), key) != std::end(keys);
}

class Parser {
 public:
  Parser(std::string_view source, std::string base_dir)
      : source_(source), base_dir_(std::move(base_dir)) {}

  Error At(const YAML::Node& node, std::string_view what) const {
    YAML::Mark m = node.Mark();
    if (m.is_null()) return Error(Code::kInvalidArgument, fmt::format("{}: {}", source_, what));
    return Error(Code::kInvalidArgument,
                 fmt::format("{}:{}:{}: {}", source_, m.line + 1, m.column + 1, what));
  }

  Result<std::string> Scalar(const YAML::Node& v, std::string_view key) const {
    if (!v.IsScalar()) return Fail(At(v, fmt::format("key '{}' must be a single value", key)));
    return v.Scalar();
  }

  Result<std::vector<std::string>> List(const YAML::Node& v, std::string_view key) const {
    if (!v.IsSequence()) return Fail(At(v, fmt::format("key '{}' must be a list", key)));
    std::vector<std::string> out;
    for (const auto& item : v) {
      CRUCIBLE_ASSIGN_OR_RETURN(std::string s, Scalar(item, key));
      out.push_back(std::move(s));
    }
    return out;
  }

  // A mapping with keys out of `known`; calls `each(key, value)` per entry.
  template <size_t N, typename F>
  Status Keys(const YAML::Node& map, std::string_view what, const std::string_view (&known)[N],
              F&& each) const {
    if (!map.IsMap()) return Fail(At(map, fmt::format("{} must be a mapping of keys", what)));
    std::set<std::string> seen;
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) return Fail(At(kv.first, "keys must be plain names"));
      const std::string key = kv.first.Scalar();
      if (!Known(known, key)) {
        return Fail(At(kv.first, fmt::format("{}: unknown key '{}' (known keys: {})", what, key,
                                             fmt::join(known, ", "))));
      }
      if (!seen.insert(key).second) {
        return Fail(At(kv.first, fmt::format("{}: key '{}' given twice", what, key)));
      }
      CRUCIBLE_RETURN_IF_ERROR(each(key, kv.second));
    }
    return {};
  }

  // Sizes as sandbox::ParseSize reads them, plus the binary suffixes KiB, MiB,
  // GiB and TiB.
  Result<uint64_t> Size(const YAML::Node& v, std::string_view key) const {
    CRUCIBLE_ASSIGN_OR_RETURN(std::string text, Scalar(v, key));
    std::string plain = text;
    if (plain.size() > 3 && plain.ends_with("iB")) plain.resize(plain.size() - 2);
    auto size = sandbox::ParseSize(fmt::format("key '{}'", key), plain);
    if (!size) {
      return Fail(At(v, fmt::format("key '{}': expected a size such as 1048576, 64k, 512M, 4G or "
                                    "8GiB, not '{}'",
                                    key, text)));
    }
    return *size;
  }

  // Whole seconds, rounded up.
  Result<uint64_t> Seconds(const YAML::Node& v, std::string_view key) const {
    CRUCIBLE_ASSIGN_OR_RETURN(std::string text, Scalar(v, key));
    auto d = sandbox::ParseDuration(fmt::format("key '{}'", key), text);
    if (!d) return Fail(At(v, d.error().message()));
    return static_cast<uint64_t>((d->count() + 999) / 1000);
  }

  Result<uint64_t> Count(const YAML::Node& v, std::string_view key) const {
    CRUCIBLE_ASSIGN_OR_RETURN(std::string text, Scalar(v, key));
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return Fail(At(v, fmt::format("key '{}' must be a whole number, not '{}'", key, text)));
    }
    return n;
  }

  Result<double> Price(const YAML::Node& v, std::string_view key) const {
    CRUCIBLE_ASSIGN_OR_RETURN(std::string text, Scalar(v, key));
    double d = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(d)) {
      return Fail(At(v, fmt::format("key '{}' must be a price in USD per million tokens, not '{}'",
                                    key, text)));
    }
    if (d < 0)
      return Fail(At(v, fmt::format("key '{}': a price cannot be negative ({})", key, text)));
    return d;
  }

  Result<std::vector<v1::ModelPrice>> Prices(const YAML::Node& table) const {
    std::vector<v1::ModelPrice> out;
    if (!table || table.IsNull()) return out;
    if (!table.IsMap()) {
      return Fail(At(table,
                     "key 'prices' must map model names to {input, output, cache_read, "
                     "cache_write}"));
    }
    std::set<std::string> models;
    for (const auto& kv : table) {
      if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
        return Fail(At(kv.first, "key 'prices': model names must be plain names"));
      }
      const std::string model = kv.first.Scalar();
      if (!models.insert(model).second) {
        return Fail(At(kv.first, fmt::format("key 'prices': model '{}' given twice", model)));
      }
      v1::ModelPrice price;
      price.set_model(model);
      bool input = false, output = false;
      CRUCIBLE_RETURN_IF_ERROR(Keys(kv.second, fmt::format("price of '{}'", model), kPriceKeys,
                                    [&](const std::string& key, const YAML::Node& v) -> Status {
                                      CRUCIBLE_ASSIGN_OR_RETURN(double d, Price(v, key));
                                      if (key == "input") {
                                        price.set_input_per_mtok(d);
                                        input = true;
                                      } else if (key == "output") {
                                        price.set_output_per_mtok(d);
                                        output = true;
                                      } else if (key == "cache_read") {
                                        price.set_cache_read_per_mtok(d);
                                      } else {
                                        price.set_cache_write_per_mtok(d);
                                      }
                                      return {};
                                    }));
      if (!input || !output) {
        return Fail(At(kv.first, fmt::format("price of '{}': keys 'input' and 'output' are "
                                             "required",
                                             model)));
      }
      out.push_back(std::move(price));
    }
    return out;
  }

  Status EnvName(const YAML::Node& at, std::string_view key, std::string_view name) const {
    if (!runner::IsEnvName(name)) {
      return Fail(At(at, fmt::format("key '{}': '{}' is not a variable name (letters, digits and "
                                     "_, not starting with a digit)",
                                     key, name)));
    }
    if (name.starts_with("CRUCIBLE_")) {
      return Fail(At(at, fmt::format("key '{}': '{}' is Crucible's own (CRUCIBLE_* variables are "
                                     "set by the runner)",
                                     key, name)));
    }
    return {};
  }

  Status Env(const YAML::Node& v, v1::AgentSpec& spec) const {
    std::set<std::string> names;
    auto add = [&](const YAML::Node& at, const std::string& name,
                   const std::string& value) -> Status {
      CRUCIBLE_RETURN_IF_ERROR(EnvName(at, "env", name));
      if (!names.insert(name).second) {
        return Fail(At(at, fmt::format("key 'env': '{}' given twice", name)));
      }
      spec.add_env(name + "=" + value);
      return {};
    };
    if (v.IsMap()) {
      for (const auto& kv : v) {
        if (!kv.first.IsScalar()) return Fail(At(kv.first, "key 'env': names must be plain"));
        if (!kv.second.IsScalar()) {
          return Fail(At(kv.second, fmt::format("key 'env': the value of '{}' must be a single "
                                                "value",
                                                kv.first.Scalar())));
        }
        CRUCIBLE_RETURN_IF_ERROR(add(kv.first, kv.first.Scalar(), kv.second.Scalar()));
      }
      return {};
    }
    if (!v.IsSequence()) {
      return Fail(At(v, "key 'env' must be a mapping of NAME: VALUE or a list of NAME=VALUE"));
    }
    for (const auto& item : v) {
      CRUCIBLE_ASSIGN_OR_RETURN(std::string text, Scalar(item, "env"));
      size_t eq = text.find('=');
      if (eq == std::string::npos) {
        return Fail(At(item, fmt::format("key 'env': entry '{}' is not NAME=VALUE", text)));
      }
      CRUCIBLE_RETURN_IF_ERROR(add(item, text.substr(0, eq), text.substr(eq + 1)));
    }
    return {};
  }

  Status Limits(const YAML::Node& v, v1::AgentSpec& spec) const {
    return Keys(v, "key 'limits'", kLimitKeys,
                [&](const std::string& key, const YAML::Node& value) -> Status {
                  if (key == "timeout") {
                    CRUCIBLE_ASSIGN_OR_RETURN(uint64_t s, Seconds(value, key));
                    if (s > INT32_MAX) return Fail(At(value, "key 'timeout' is too long"));
                    spec.set_timeout_s(static_cast<int32_t>(s));
                  } else if (key == "memory") {
                    CRUCIBLE_ASSIGN_OR_RETURN(uint64_t bytes, Size(value, key));
                    spec.set_memory_limit_bytes(bytes);
                  } else if (key == "pids") {
                    CRUCIBLE_ASSIGN_OR_RETURN(uint64_t n, Count(value, key));
                    spec.set_pids_limit(n);
                  } else {
                    CRUCIBLE_ASSIGN_OR_RETURN(uint64_t s, Seconds(value, key));
                    spec.set_cpu_time_s(s);
                  }
                  return {};
                });
  }

  Result<std::string> Prompt(const YAML::Node& v) const {
    CRUCIBLE_ASSIGN_OR_RETURN(std::string name, Scalar(v, "prompt_file"));
    std::filesystem::path path(name);
    if (path.is_relative()) path = std::filesystem::path(base_dir_) / path;
    const std::string full = path.lexically_normal().string();
    struct stat st;
    if (::stat(full.c_str(), &st) != 0) {
      return Fail(
          At(v, fmt::format("key 'prompt_file': '{}' ({}): {}", name, full, std::strerror(errno))));
    }
    if (!S_ISREG(st.st_mode)) {
      return Fail(
          At(v, fmt::format("key 'prompt_file': '{}' ({}) is not a regular file", name, full)));
    }
    if (static_cast<uint64_t>(st.st_size) > kMaxPromptBytes) {
      return Fail(At(v, fmt::format("key 'prompt_file': '{}' is {} bytes, more than the limit "
                                    "of {}",
                                    name, st.st_size, kMaxPromptBytes)));
    }
    auto text = ReadFile(full);
    if (!text) return Fail(At(v, "key 'prompt_file': " + text.error().message()));
    if (!golden::internal::IsValidUtf8(*text)) {
      return Fail(At(v, fmt::format("key 'prompt_file': '{}' is not UTF-8 text", name)));
    }
    return std::move(*text);
  }

  // The command with a relative script path (its first word, when that names
  // an existing file beside the agent file) made absolute.
  std::string Command(std::string command) const {
    if (command.starts_with("builtin:") || command.empty() || command[0] == '/') return command;
    size_t space = command.find_first_of(" \t");
    std::string first = command.substr(0, space);
    if (first.find('/') == std::string::npos) return command;
    std::string full = (std::filesystem::path(base_dir_) / first).lexically_normal().string();
    struct stat st;
    if (::stat(full.c_str(), &st) != 0) return command;
    return full + (space == std::string::npos ? "" : command.substr(space));
  }

  Result<v1::AgentSpec> Agent(const YAML::Node& node) const {
    v1::AgentSpec spec;
    std::vector<std::string> pass_env;
    YAML::Node pass_env_node;
    CRUCIBLE_RETURN_IF_ERROR(Keys(
        node, "an agent", kAgentKeys, [&](const std::string& key, const YAML::Node& v) -> Status {
          if (key == "name") {
            CRUCIBLE_ASSIGN_OR_RETURN(std::string name, Scalar(v, key));
            if (name.empty() || name.find('=') != std::string::npos ||
                name.starts_with("builtin:")) {
              return Fail(At(v, fmt::format("key 'name': '{}' is not an agent name", name)));
            }
            spec.set_name(name);
          } else if (key == "command") {
            CRUCIBLE_ASSIGN_OR_RETURN(std::string command, Scalar(v, key));
            if (command.empty()) return Fail(At(v, "key 'command' is empty"));
            spec.set_command(Command(command));
          } else if (key == "trace_format") {
            CRUCIBLE_ASSIGN_OR_RETURN(std::string format, Scalar(v, key));
            if (auto ok = CheckTraceFormat("key 'trace_format'", format); !ok) {
              return Fail(At(v, ok.error().message()));
            }
            spec.set_trace_format(format);
          } else if (key == "model") {
            CRUCIBLE_ASSIGN_OR_RETURN(std::string model, Scalar(v, key));
            spec.set_model(model);
          } else if (key == "prompt_file") {
            CRUCIBLE_ASSIGN_OR_RETURN(std::string prompt, Prompt(v));
            spec.set_prompt(std::move(prompt));
          } else if (key == "env") {
            CRUCIBLE_RETURN_IF_ERROR(Env(v, spec));
          } else if (key == "pass_env") {
            CRUCIBLE_ASSIGN_OR_RETURN(pass_env, List(v, key));
            pass_env_node = v;
          } else if (key == "limits") {
            CRUCIBLE_RETURN_IF_ERROR(Limits(v, spec));
          } else if (key == "rounds") {
            CRUCIBLE_ASSIGN_OR_RETURN(std::string text, Scalar(v, key));
            int rounds = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), rounds);
            if (ec != std::errc() || end != text.data() + text.size() || rounds < 1 ||
                rounds > scoring::kMaxReviewRounds) {
              return Fail(At(v, fmt::format("key 'rounds': '{}' is not a number of review rounds "
                                            "from 1 to {}",
                                            text, scoring::kMaxReviewRounds)));
            }
            spec.set_rounds(rounds);
          } else if (key == "egress") {
            CRUCIBLE_ASSIGN_OR_RETURN(auto egress, List(v, key));
            for (const auto& e : egress) {
              if (auto ok = sandbox::CheckEgressEntry(e); !ok) {
                return Fail(At(v, fmt::format("key 'egress': {}", ok.error().message())));
              }
              spec.add_egress(e);
            }
          } else if (key == "require") {
            CRUCIBLE_ASSIGN_OR_RETURN(auto require, List(v, key));
            for (const auto& r : require) {
              if (r.find('=') == std::string::npos || r.front() == '=') {
                return Fail(At(v, fmt::format("key 'require': '{}' is not KEY=VALUE", r)));
              }
              spec.add_require(r);
            }
          } else if (key == "prices") {
            CRUCIBLE_ASSIGN_OR_RETURN(auto prices, Prices(v));
            for (auto& p : prices) *spec.add_prices() = std::move(p);
          }
          return {};
        }));
    if (spec.name().empty()) return Fail(At(node, "an agent needs a 'name'"));
    if (spec.command().empty()) {
      return Fail(At(node, fmt::format("agent '{}' needs a 'command'", spec.name())));
    }
    auto checked = ParseAgentSpec(spec.name() + "=" + spec.command());
    if (!checked) return Fail(At(node, checked.error().message()));
    std::set<std::string> set_names;
    for (const auto& e : spec.env()) set_names.insert(e.substr(0, e.find('=')));
    std::set<std::string> passed;
    for (size_t i = 0; i < pass_env.size(); ++i) {
      const YAML::Node at = pass_env_node[i];
      CRUCIBLE_RETURN_IF_ERROR(EnvName(at, "pass_env", pass_env[i]));
      if (set_names.contains(pass_env[i])) {
        return Fail(At(at, fmt::format("key 'pass_env': '{}' is set in 'env' too", pass_env[i])));
      }
      if (!passed.insert(pass_env[i]).second) {
        return Fail(At(at, fmt::format("key 'pass_env': '{}' given twice", pass_env[i])));
      }
      spec.add_pass_env(pass_env[i]);
    }
    return spec;
  }

  Result<std::vector<v1::AgentSpec>> File(const YAML::Node& root) const {
    if (!root || root.IsNull()) return Fail(At(root, "empty agent file (expected 'agents:')"));
    std::vector<v1::ModelPrice> shared;
    YAML::Node agents;
    CRUCIBLE_RETURN_IF_ERROR(Keys(root, "an agent file", kTopKeys,
                                  [&](const std::string& key, const YAML::Node& v) -> Status {
                                    if (key == "prices") {
                                      CRUCIBLE_ASSIGN_OR_RETURN(shared, Prices(v));
                                    } else {
                                      agents = v;
                                    }
                                    return {};
                                  }));
    if (!agents || agents.IsNull()) return Fail(At(root, "no 'agents' list"));
    if (!agents.IsSequence()) return Fail(At(agents, "key 'agents' must be a list of agents"));
    std::vector<v1::AgentSpec> out;
    std::map<std::string, int> lines;
    for (const auto& node : agents) {
      CRUCIBLE_ASSIGN_OR_RETURN(v1::AgentSpec spec, Agent(node));
      auto [it, inserted] = lines.emplace(spec.name(), node.Mark().line + 1);
      if (!inserted) {
        return Fail(At(node["name"], fmt::format("key 'name': agent '{}' given twice (first on "
                                                 "line {})",
                                                 spec.name(), it->second)));
      }
      out.push_back(std::move(spec));
    }
    AddPrices(shared, out);
    return out;
  }

 private:
  std::string_view source_;
  std::string base_dir_;
};

template <typename T, typename F>
Result<T> WithYaml(std::string_view text, std::string_view source, F&& parse) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return parse(root);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      return Fail(Code::kInvalidArgument, fmt::format("{}: not valid YAML: {}", source, e.msg));
    }
    return Fail(Code::kInvalidArgument, fmt::format("{}:{}:{}: not valid YAML: {}", source,
                                                    e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

}  // namespace

Result<std::vector<v1::AgentSpec>> ParseAgentFile(std::string_view yaml_text,
                                                  std::string_view source_name,
                                                  const std::string& base_dir) {
  Parser parser(source_name, base_dir);
  return WithYaml<std::vector<v1::AgentSpec>>(
      yaml_text, source_name, [&](const YAML::Node& root) { return parser.File(root); });
}

Result<std::vector<v1::AgentSpec>> LoadAgentFile(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    return Fail(Code::kNotFound,
                fmt::format("--agents {}: cannot read: {}", path, text.error().message()));
  }
  std::string dir = std::filesystem::absolute(path).parent_path().lexically_normal().string();
  return ParseAgentFile(*text, path, dir);
}

Result<std::vector<v1::ModelPrice>> ParsePriceTable(std::string_view yaml_text,
                                                    std::string_view source_name) {
  Parser parser(source_name, ".");
  return WithYaml<std::vector<v1::ModelPrice>>(
      yaml_text, source_name, [&](const YAML::Node& root) { return parser.Prices(root); });
}

Result<std::vector<v1::ModelPrice>> LoadPriceFile(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    return Fail(Code::kNotFound,
                fmt::format("--prices {}: cannot read: {}", path, text.error().message()));
  }
  return ParsePriceTable(*text, path);
}

void AddPrices(const std::vector<v1::ModelPrice>& prices, std::vector<v1::AgentSpec>& agents) {
  for (auto& agent : agents) {
    std::set<std::string> own;
    for (const auto& p : agent.prices()) own.insert(p.model());
    for (const auto& p : prices) {
      if (!own.contains(p.model())) *agent.add_prices() = p;
    }
  }
}

Status CheckTraceFormat(std::string_view what, std::string_view format) {
  const auto& known = runner::TraceFormats();
  if (std::find(known.begin(), known.end(), format) != known.end()) return {};
  return Fail(Code::kInvalidArgument, fmt::format("{}: unknown trace format '{}' (known: {})", what,
                                                  format, fmt::join(known, ", ")));
}

Status ApplyTraceFormats(const std::vector<std::string>& values,
                         std::vector<v1::AgentSpec>& cli_agents,
                         std::vector<v1::AgentSpec>& file_agents) {
  for (const auto& value : values) {
    const std::string what = "--trace-format '" + value + "'";
    size_t eq = value.find('=');
    if (eq == std::string::npos) {
      CRUCIBLE_RETURN_IF_ERROR(CheckTraceFormat(what, value));
      if (cli_agents.empty()) {
        return Fail(Code::kInvalidArgument,
                    what +
                        ": a plain format applies to the --agent agents, and there are none "
                        "(use NAME=FORMAT for an agent of an --agents file)");
      }
      for (auto& a : cli_agents) a.set_trace_format(value);
      continue;
    }
    const std::string name = value.substr(0, eq);
    const std::string format = value.substr(eq + 1);
    CRUCIBLE_RETURN_IF_ERROR(CheckTraceFormat(what, format));
    bool found = false;
    for (auto* list : {&cli_agents, &file_agents}) {
      for (auto& a : *list) {
        if (a.name() == name) {
          a.set_trace_format(format);
          found = true;
        }
      }
    }
    if (!found) {
      return Fail(Code::kInvalidArgument, fmt::format("{}: no agent is named '{}'", what, name));
    }
  }
  return {};
}

}  // namespace crucible::cli
