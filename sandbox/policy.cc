#include "sandbox/policy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "base/fs.h"

namespace crucible::sandbox {
namespace {

constexpr std::string_view kKeys[] = {
    "network",        "memory",         "pids", "cpu_time", "timeout",  "file_size", "open_files",
    "tmp_size",       "output_cap",     "env",  "ro_binds", "rw_binds", "rootfs",    "hostname",
    "user_namespace", "workspace_quota"};

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  Error At(const YAML::Node& node, std::string_view what) const {
    YAML::Mark m = node.Mark();
    if (m.is_null()) return Error(Code::kInvalidArgument, fmt::format("{}: {}", source_, what));
    return Error(Code::kInvalidArgument,
                 fmt::format("{}:{}:{}: {}", source_, m.line + 1, m.column + 1, what));
  }

  // The error of a value parser ("what 'text': ..."), placed at `node`.
  Error At(const YAML::Node& node, const Error& error) const { return At(node, error.message()); }

  Result<std::string> Scalar(const YAML::Node& v, std::string_view key) const {
    if (!v.IsScalar()) return Fail(At(v, fmt::format("key '{}' must be a single value", key)));
    return v.Scalar();
  }

  Result<uint64_t> Size(const YAML::Node& v, std::string_view key) const {
    CRUCIBLE_ASSIGN_OR_RETURN(std::string text, Scalar(v, key));
    auto size = ParseSize(fmt::format("key '{}'", key), text);
    if (!size) return Fail(At(v, size.error()));
    return *size;
  }

  Result<std::chrono::milliseconds> Duration(const YAML::Node& v, std::string_view key) const {
    CRUCIBLE_ASSIGN_OR_RETURN(std::string text, Scalar(v, key));
    auto d = ParseDuration(fmt::format("key '{}'", key), text);
    if (!d) return Fail(At(v, d.error()));
    return *d;
  }

  Result<bool> Bool(const YAML::Node& v, std::string_view key) const {
    bool b = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
      return Fail(At(v, fmt::format("key '{}' must be true or false", key)));
    }
    return b;
  }

  Result<std::string> AbsolutePath(const YAML::Node& v, std::string_view key) const {
    CRUCIBLE_ASSIGN_OR_RETURN(std::string path, Scalar(v, key));
    if (path.empty() || path[0] != '/') {
      return Fail(At(v, fmt::format("key '{}' must be an absolute path, not '{}'", key, path)));
    }
    return path;
  }

  Result<std::vector<std::string>> Env(const YAML::Node& v) const {
    std::vector<std::string> out;
    if (v.IsMap()) {
      for (const auto& kv : v) {
        if (!kv.first.IsScalar() || kv.first.Scalar().empty() || !kv.second.IsScalar() ||
            kv.first.Scalar().find('=') != std::string::npos) {
          return Fail(At(kv.first, "key 'env' must map variable names to values"));
        }
        out.push_back(kv.first.Scalar() + "=" + kv.second.Scalar());
      }
      return out;
    }
    if (!v.IsSequence()) {
      return Fail(At(v, "key 'env' must be a list of KEY=VALUE or a mapping of KEY: VALUE"));
    }
    for (const auto& item : v) {
      size_t eq = item.IsScalar() ? item.Scalar().find('=') : std::string::npos;
      if (eq == std::string::npos || eq == 0) {
        return Fail(At(item, fmt::format("key 'env': entry '{}' is not KEY=VALUE",
                                         item.IsScalar() ? item.Scalar() : "?")));
      }
      out.push_back(item.Scalar());
    }
    return out;
  }

  Status Binds(const YAML::Node& v, std::string_view key, bool writable,
               std::vector<Bind>& out) const {
    if (!v.IsSequence()) {
      return Fail(At(v, fmt::format("key '{}' must be a list of SRC[:DST] paths", key)));
    }
    for (const auto& item : v) {
      CRUCIBLE_ASSIGN_OR_RETURN(std::string text, Scalar(item, key));
      size_t colon = text.find(':');
      std::string src = text.substr(0, colon);
      std::string dst = colon == std::string::npos ? src : text.substr(colon + 1);
      if (src.empty() || src[0] != '/' || dst.empty() || dst[0] != '/') {
        return Fail(At(
            item, fmt::format("key '{}': '{}' is not SRC[:DST] with absolute paths", key, text)));
      }
      out.push_back(Bind{.host_path = src, .sandbox_path = dst, .writable = writable});
    }
    return {};
  }

  Result<Policy> Parse(const YAML::Node& root) const {
    Policy p;
    if (!root || root.IsNull()) return p;  // an empty document sets nothing
    if (!root.IsMap()) return Fail(At(root, "a sandbox policy must be a mapping of keys"));
    std::vector<Bind> ro, rw;
    for (const auto& kv : root) {
      if (!kv.first.IsScalar()) return Fail(At(kv.first, "keys must be plain names"));
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
        return Fail(At(kv.first, fmt::format("unknown key '{}' (known keys: {})", key,
                                             fmt::join(kKeys, ", "))));
      }
      if (key == "network") {
        CRUCIBLE_ASSIGN_OR_RETURN(std::string n, Scalar(v, key));
        if (n == "none") {
          p.network = Network::kNone;
        } else if (n == "host") {
          p.network = Network::kHost;
        } else {
          return Fail(At(v, fmt::format("key 'network' must be none or host, not '{}'", n)));
        }
      } else if (key == "memory") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.memory_limit_bytes, Size(v, key));
      } else if (key == "pids") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.pids_limit, Size(v, key));
      } else if (key == "cpu_time") {
        CRUCIBLE_ASSIGN_OR_RETURN(auto d, Duration(v, key));
        if (d.count() % 1000 != 0) {
          return Fail(At(v, "key 'cpu_time' must be a whole number of seconds"));
        }
        p.cpu_time_s = static_cast<uint64_t>(d.count() / 1000);
      } else if (key == "timeout") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.timeout, Duration(v, key));
      } else if (key == "file_size") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.file_size_bytes, Size(v, key));
      } else if (key == "open_files") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.open_files, Size(v, key));
      } else if (key == "tmp_size") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.tmp_size_bytes, Size(v, key));
      } else if (key == "output_cap") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.output_cap, Size(v, key));
      } else if (key == "env") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.env, Env(v));
      } else if (key == "ro_binds") {
        CRUCIBLE_RETURN_IF_ERROR(Binds(v, key, false, ro));
      } else if (key == "rw_binds") {
        CRUCIBLE_RETURN_IF_ERROR(Binds(v, key, true, rw));
      } else if (key == "rootfs") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.rootfs, AbsolutePath(v, key));
      } else if (key == "hostname") {
        CRUCIBLE_ASSIGN_OR_RETURN(std::string h, Scalar(v, key));
        if (h.empty() || h.size() > 64) {
          return Fail(At(v, "key 'hostname' must be 1 to 64 characters"));
        }
        p.hostname = h;
      } else if (key == "user_namespace") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.user_namespace, Bool(v, key));
      } else if (key == "workspace_quota") {
        CRUCIBLE_ASSIGN_OR_RETURN(p.workspace_quota_bytes, Size(v, key));
      }
    }
    p.binds = std::move(ro);
    p.binds.insert(p.binds.end(), rw.begin(), rw.end());
    return p;
  }

 private:
  std::string_view source_;
};

}  // namespace

Result<uint64_t> ParseSize(std::string_view what, std::string_view text) {
  auto bad = [&] {
    return Fail(
        Code::kInvalidArgument,
        fmt::format("{}: expected a size such as 1048576, 64k, 512M or 4G, not '{}'", what, text));
  };
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return bad();
  std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
  int shift = 0;
  if (suffix == "k" || suffix == "K") {
    shift = 10;
  } else if (suffix == "m" || suffix == "M") {
    shift = 20;
  } else if (suffix == "g" || suffix == "G") {
    shift = 30;
  } else if (suffix == "t" || suffix == "T") {
    shift = 40;
  } else if (!suffix.empty()) {
    return bad();
  }
  if (shift > 0 && value > (UINT64_MAX >> shift)) return bad();
  return value << shift;
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view what, std::string_view text) {
  auto bad = [&] {
    return Fail(
        Code::kInvalidArgument,
        fmt::format("{}: expected a duration such as 500ms, 30s, 5m or 1h, not '{}'", what, text));
  };
  if (text.empty() || text[0] < '0' || text[0] > '9') return bad();
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || !std::isfinite(value) || value < 0) return bad();
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  double ms = 0;
  if (unit == "ms") {
    ms = value;
  } else if (unit.empty() || unit == "s") {
    ms = value * 1000;
  } else if (unit == "m") {
    ms = value * 60'000;
  } else if (unit == "h") {
    ms = value * 3'600'000;
  } else {
    return bad();
  }
  if (ms > 1e15) return bad();  // about 30,000 years
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

Result<Policy> ParsePolicy(std::string_view yaml_text, std::string_view source_name) {
  Parser parser(source_name);
  try {
    YAML::Node root = YAML::Load(std::string(yaml_text));
    return parser.Parse(root);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("{}: not valid YAML: {}", source_name, e.msg));
    }
    return Fail(Code::kInvalidArgument, fmt::format("{}:{}:{}: not valid YAML: {}", source_name,
                                                    e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

Result<Policy> LoadPolicyFile(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    return Fail(Code::kNotFound,
                fmt::format("cannot read the sandbox policy {}: {}", path, text.error().message()));
  }
  return ParsePolicy(*text, path);
}

Status ApplyPolicy(const Policy& policy, Spec& spec) {
  if (policy.network) spec.network = *policy.network;
  if (policy.memory_limit_bytes) spec.memory_limit_bytes = policy.memory_limit_bytes;
  if (policy.pids_limit) spec.pids_limit = policy.pids_limit;
  if (policy.cpu_time_s) spec.cpu_time_s = *policy.cpu_time_s;
  if (policy.timeout) spec.timeout = *policy.timeout;
  if (policy.file_size_bytes) spec.file_size_bytes = *policy.file_size_bytes;
  if (policy.open_files) spec.open_files = *policy.open_files;
  if (policy.tmp_size_bytes) spec.tmp_size_bytes = *policy.tmp_size_bytes;
  if (policy.output_cap) {
    if (*policy.output_cap > std::numeric_limits<size_t>::max()) {
      return Fail(Code::kInvalidArgument, "sandbox policy: output_cap is too large");
    }
    spec.output_cap = static_cast<size_t>(*policy.output_cap);
  }
  spec.env.insert(spec.env.end(), policy.env.begin(), policy.env.end());
  spec.binds.insert(spec.binds.end(), policy.binds.begin(), policy.binds.end());
  if (policy.rootfs) spec.rootfs = *policy.rootfs;
  if (policy.hostname) spec.hostname = *policy.hostname;
  if (policy.user_namespace) spec.user_namespace = *policy.user_namespace;
  return {};
}

}  // namespace crucible::sandbox
