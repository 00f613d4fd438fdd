#include "golden/suite_config.h"

#include <fmt/core.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>

#include "base/fs.h"
#include "golden/log_results.h"
#include "sandbox/policy.h"

namespace crucible::golden {

namespace {

// `text` with every character outside the value of a block-mapping key
// replaced by a space (newlines kept): the value starts at `value`
// (0-based line and column) and runs until the next line indented at or
// left of `key_column`. Parsing the result alone reports the same line and
// column as the whole file would.
std::string OnlyTheValue(std::string_view text, int value_line, int value_column, int key_column) {
  std::string out(text);
  int line = 0;
  size_t at = 0;
  bool ended = false;
  while (at < out.size()) {
    size_t nl = out.find('\n', at);
    size_t end = nl == std::string::npos ? out.size() : nl;
    std::string_view content(out.data() + at, end - at);
    size_t indent = content.find_first_not_of(' ');
    bool blank =
        indent == std::string_view::npos || content[indent] == '#' || content[indent] == '\r';
    if (line > value_line && !blank && static_cast<int>(indent) <= key_column) ended = true;
    size_t keep_from = at;
    if (line < value_line || ended) {
      keep_from = end;
    } else if (line == value_line) {
      keep_from = std::min(end, at + static_cast<size_t>(value_column));
    }
    for (size_t i = at; i < keep_from; ++i) {
      if (out[i] != '\r') out[i] = ' ';
    }
    at = end + 1;
    ++line;
  }
  return out;
}

class Parser {
 public:
  Parser(const std::string& file, std::string_view text) : file_(file), text_(text) {}

  Error At(const YAML::Node& node, std::string_view what) const {
    YAML::Mark m = node.Mark();
    if (m.is_null()) return Error(Code::kInvalidArgument, fmt::format("{}: {}", file_, what));
    return Error(Code::kInvalidArgument,
                 fmt::format("{}:{}:{}: {}", file_, m.line + 1, m.column + 1, what));
  }

  Result<std::string> String(const YAML::Node& v, std::string_view key) const {
    if (!v.IsScalar()) return Fail(At(v, fmt::format("key '{}' must be a string", key)));
    return v.Scalar();
  }

  Result<long long> Integer(const YAML::Node& v, std::string_view key, long long min,
                            long long max) const {
    long long n = 0;
    if (!v.IsScalar() || !YAML::convert<long long>::decode(v, n)) {
      return Fail(At(v, fmt::format("key '{}' must be an integer", key)));
    }
    if (n < min || n > max) {
      return Fail(
          At(v, fmt::format("key '{}' must be between {} and {}, not {}", key, min, max, n)));
    }
    return n;
  }

  Result<double> Number(const YAML::Node& v, std::string_view key) const {
    double d = 0;
    if (!v.IsScalar() || !YAML::convert<double>::decode(v, d) || !(d > 0) || d > 1e9) {
      return Fail(At(v, fmt::format("key '{}' must be a number above 0", key)));
    }
    return d;
  }

  Result<v1::ReviewRules> Review(const YAML::Node& v) const {
    CRUCIBLE_RETURN_IF_ERROR(
        Keys(v, "review", {"allowed_paths", "oversized", "modules", "contained_files", "rounds"}));
    v1::ReviewRules r;
    for (const auto& kv : v) {
      const std::string k = kv.first.Scalar();
      const std::string full = "review." + k;
      if (k == "allowed_paths" || k == "modules") {
        CRUCIBLE_ASSIGN_OR_RETURN(std::vector<std::string> globs, Strings(kv.second, full));
        for (auto& g : globs) (k == "modules" ? r.add_modules(g) : r.add_allowed_paths(g));
      } else if (k == "rounds") {
        CRUCIBLE_ASSIGN_OR_RETURN(long long n, Integer(kv.second, full, 1, kMaxReviewRounds));
        r.set_rounds(static_cast<int32_t>(n));
      } else if (k == "contained_files") {
        CRUCIBLE_ASSIGN_OR_RETURN(long long n, Integer(kv.second, full, 0, 1000000));
        r.set_contained_files(static_cast<int32_t>(n));
      } else {
        CRUCIBLE_RETURN_IF_ERROR(Keys(kv.second, full, {"factor", "min_extra_lines"}));
        for (const auto& o : kv.second) {
          const std::string ok = o.first.Scalar();
          if (ok == "factor") {
            CRUCIBLE_ASSIGN_OR_RETURN(double f, Number(o.second, full + ".factor"));
            r.set_oversized_factor(f);
          } else {
            CRUCIBLE_ASSIGN_OR_RETURN(long long n,
                                      Integer(o.second, full + "." + ok, 0, 100000000));
            r.set_oversized_min_extra_lines(static_cast<int32_t>(n));
          }
        }
      }
    }
    return r;
  }

  // The `log` mapping of results: regex, validated (golden/log_results.h).
  Result<v1::LogResults> Log(const YAML::Node& v) const {
    CRUCIBLE_RETURN_IF_ERROR(Keys(v, "log", {"pattern", "status", "absent"}));
    v1::LogResults log;
    for (const auto& kv : v) {
      const std::string k = kv.first.Scalar();
      const std::string full = "log." + k;
      if (k == "pattern") {
        CRUCIBLE_ASSIGN_OR_RETURN(*log.mutable_pattern(), String(kv.second, full));
      } else if (k == "absent") {
        CRUCIBLE_ASSIGN_OR_RETURN(*log.mutable_absent(), String(kv.second, full));
      } else {
        if (!kv.second.IsMap()) {
          return Fail(At(kv.second,
                         "key 'log.status' must be a mapping of status words to "
                         "passed, failed, skipped, error or absent"));
        }
        for (const auto& w : kv.second) {
          if (!w.first.IsScalar() || !w.second.IsScalar()) {
            return Fail(At(w.first,
                           "key 'log.status' must map each status word to one of "
                           "passed, failed, skipped, error or absent"));
          }
          (*log.mutable_status())[w.first.Scalar()] = w.second.Scalar();
        }
      }
    }
    if (auto problem = internal::LogResultsProblem(log)) {
      const YAML::Node& at = v[problem->first] ? v[problem->first] : v;
      return Fail(At(at, fmt::format("key 'log.{}': {}", problem->first, problem->second)));
    }
    return log;
  }

  Result<bool> Bool(const YAML::Node& v, std::string_view key) const {
    bool b = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
      return Fail(At(v, fmt::format("key '{}' must be true or false", key)));
    }
    return b;
  }

  Result<std::vector<std::string>> Strings(const YAML::Node& v, std::string_view key) const {
    if (!v.IsSequence()) return Fail(At(v, fmt::format("key '{}' must be a list of strings", key)));
    std::vector<std::string> out;
    for (const auto& item : v) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        return Fail(At(item, fmt::format("key '{}' must be a list of non-empty strings", key)));
      }
      out.push_back(item.Scalar());
    }
    return out;
  }

  // Checks that `map` is a mapping whose keys are all in `known`.
  Status Keys(const YAML::Node& map, std::string_view where,
              const std::vector<std::string_view>& known) const {
    if (!map.IsMap()) return Fail(At(map, fmt::format("{} must be a mapping of keys", where)));
    for (const auto& kv : map) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        return Fail(At(kv.first, fmt::format("unknown key '{}' in {} (known keys: {})", key, where,
                                             fmt::join(known, ", "))));
      }
    }
    return {};
  }

  Result<SuiteConfig> Parse(const YAML::Node& root) const {
    SuiteConfig c;
    if (!root || root.IsNull()) return c;  // an empty file sets nothing
    CRUCIBLE_RETURN_IF_ERROR(
        Keys(root, "the suite configuration",
             {"test_cmd", "setup_cmd", "results", "log", "test_files", "skip", "timeouts", "repeat",
              "jobs", "require_f2p", "banned_patterns", "sandbox", "test_infrastructure",
              "regression_tests", "review"}));
    std::optional<v1::LogResults> preset;  // `results` named a preset
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (key == "test_cmd") {
        CRUCIBLE_ASSIGN_OR_RETURN(c.test_cmd, String(v, key));
      } else if (key == "setup_cmd") {
        CRUCIBLE_ASSIGN_OR_RETURN(c.setup_cmd, String(v, key));
      } else if (key == "results") {
        CRUCIBLE_ASSIGN_OR_RETURN(std::string r, String(v, key));
        if (r != "junit" && r != "tap" && r != "exit-code" && r != "regex") {
          auto p = LogPreset(r);
          if (!p) {
            return Fail(At(v, fmt::format("key 'results' must be junit, tap, exit-code, regex or "
                                          "a log preset ({}), not '{}'",
                                          fmt::join(LogPresetNames(), ", "), r)));
          }
          preset = std::move(*p);
          r = "regex";
        }
        c.results = r;
      } else if (key == "log") {
        // read below, once `results` is known
      } else if (key == "test_files") {
        CRUCIBLE_ASSIGN_OR_RETURN(c.test_files, Strings(v, key));
      } else if (key == "skip") {
        CRUCIBLE_RETURN_IF_ERROR(Keys(
            v, "skip", {"defaults", "generated", "docs", "version_files", "max_changed_lines"}));
        for (const auto& s : v) {
          const std::string k = s.first.Scalar();
          const std::string full = "skip." + k;
          if (k == "defaults") {
            CRUCIBLE_ASSIGN_OR_RETURN(c.skip_defaults, Bool(s.second, full));
          } else if (k == "generated") {
            CRUCIBLE_ASSIGN_OR_RETURN(c.skip_generated, Strings(s.second, full));
          } else if (k == "docs") {
            CRUCIBLE_ASSIGN_OR_RETURN(c.skip_docs, Strings(s.second, full));
          } else if (k == "version_files") {
            CRUCIBLE_ASSIGN_OR_RETURN(c.skip_version_files, Strings(s.second, full));
          } else {
            CRUCIBLE_ASSIGN_OR_RETURN(long long n, Integer(s.second, full, 0, 1LL << 40));
            c.max_changed_lines = static_cast<size_t>(n);
          }
        }
      } else if (key == "timeouts") {
        CRUCIBLE_RETURN_IF_ERROR(Keys(v, "timeouts", {"test", "setup"}));
        for (const auto& t : v) {
          const std::string k = t.first.Scalar();
          CRUCIBLE_ASSIGN_OR_RETURN(long long n, Integer(t.second, "timeouts." + k, 1, 86400));
          (k == "test" ? c.test_timeout_s : c.setup_timeout_s) = static_cast<int>(n);
        }
      } else if (key == "repeat") {
        CRUCIBLE_ASSIGN_OR_RETURN(long long n, Integer(v, key, 1, 100));
        c.repeat = static_cast<int>(n);
      } else if (key == "jobs") {
        CRUCIBLE_ASSIGN_OR_RETURN(long long n, Integer(v, key, 1, 1024));
        c.jobs = static_cast<int>(n);
      } else if (key == "require_f2p") {
        CRUCIBLE_ASSIGN_OR_RETURN(c.require_f2p, Bool(v, key));
      } else if (key == "banned_patterns") {
        CRUCIBLE_ASSIGN_OR_RETURN(c.banned_patterns, Strings(v, key));
      } else if (key == "sandbox") {
        CRUCIBLE_ASSIGN_OR_RETURN(c.sandbox_policy, SandboxPolicy(kv.first, v));
      } else if (key == "test_infrastructure") {
        CRUCIBLE_ASSIGN_OR_RETURN(c.test_infrastructure, Strings(v, key));
      } else if (key == "regression_tests") {
        CRUCIBLE_ASSIGN_OR_RETURN(std::string mode, String(v, key));
        if (mode != "newest" && mode != "none") {
          return Fail(
              At(v, fmt::format("key 'regression_tests' must be newest or none, not '{}'", mode)));
        }
        c.regression_tests = mode == "newest";
      } else if (key == "review") {
        CRUCIBLE_ASSIGN_OR_RETURN(c.review, Review(v));
      }
    }
    if (root["log"] && (c.results != "regex" || preset)) {
      return Fail(At(root["log"],
                     preset ? fmt::format("key 'log' is read only with results: regex, not with "
                                          "the preset '{}'",
                                          preset->preset())
                            : std::string("key 'log' is read only with results: regex")));
    }
    if (root["log"]) {
      CRUCIBLE_ASSIGN_OR_RETURN(c.log_results, Log(root["log"]));
    }
    if (preset) c.log_results = std::move(preset);
    if (c.results == "regex" && !c.log_results) {
      return Fail(At(root["results"],
                     fmt::format("key 'results' is regex but there is no key 'log' (pattern, "
                                 "status, absent); or name a log preset ({})",
                                 fmt::join(LogPresetNames(), ", "))));
    }
    if (c.test_cmd && c.results.value_or("junit") == "junit" &&
        c.test_cmd->find("{junit}") == std::string::npos) {
      return Fail(At(root["test_cmd"],
                     "key 'test_cmd' has no {junit} placeholder for its JUnit report (or set "
                     "results: tap or results: exit-code)"));
    }
    return c;
  }

  // The `sandbox` value as policy YAML, validated by sandbox::ParsePolicy.
  Result<std::string> SandboxPolicy(const YAML::Node& key, const YAML::Node& v) const {
    if (v.IsScalar()) {
      std::filesystem::path path(v.Scalar());
      if (path.empty()) return Fail(At(v, "key 'sandbox' names no policy file"));
      if (path.is_relative()) path = std::filesystem::path(file_).parent_path() / path;
      auto text = ReadFile(path.string());
      if (!text) {
        return Fail(At(v, fmt::format("key 'sandbox': cannot read the policy file {}: {}",
                                      path.string(), text.error().message())));
      }
      CRUCIBLE_RETURN_IF_ERROR(sandbox::ParsePolicy(*text, path.string()));
      return *text;
    }
    if (!v.IsMap()) {
      return Fail(At(v,
                     "key 'sandbox' must be a mapping of policy keys (network, memory, pids, "
                     "timeout, ...) or the name of a policy file"));
    }
    // Parse the mapping where it stands, so that errors name this file's
    // lines and columns; a flow mapping ({pids: 64}) is kept from its brace.
    YAML::Mark k = key.Mark(), m = v.Mark();
    if (!k.is_null() && !m.is_null()) {
      std::string alone = OnlyTheValue(text_, m.line, m.column, k.column);
      CRUCIBLE_RETURN_IF_ERROR(sandbox::ParsePolicy(alone, file_));
    }
    YAML::Emitter out;
    out << v;
    std::string yaml = std::string(out.c_str()) + "\n";
    CRUCIBLE_RETURN_IF_ERROR(sandbox::ParsePolicy(yaml, file_));
    return yaml;
  }

 private:
  const std::string& file_;
  std::string_view text_;
};

}  // namespace

Result<SuiteConfig> ParseSuiteConfig(std::string_view text, const std::string& file) {
  Parser parser(file, text);
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return parser.Parse(root);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      return Fail(Code::kInvalidArgument, fmt::format("{}: not valid YAML: {}", file, e.msg));
    }
    return Fail(Code::kInvalidArgument, fmt::format("{}:{}:{}: not valid YAML: {}", file,
                                                    e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

Result<SuiteConfig> LoadSuiteConfig(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    return Fail(Code::kNotFound, fmt::format("cannot read the suite configuration {}: {}", path,
                                             text.error().message()));
  }
  return ParseSuiteConfig(*text, path);
}

}  // namespace crucible::golden
