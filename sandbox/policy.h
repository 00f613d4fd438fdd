// Sandbox policies in YAML files, so that suites and agents can name one.
//
// A policy sets some of a Spec's settings; everything it leaves out keeps the
// Spec's value (its default, or what the caller set). Every key is optional
// and unknown keys are errors:
//
//   network: none            # none | host
//   memory: 512M             # whole sandbox; 0: no limit (sizes: 1048576, 64k, 512M, 4G)
//   pids: 128                # whole sandbox; 0: no limit
//   cpu_time: 30s            # per process, whole seconds (durations: 500ms, 30s, 5m, 1h; a
//                            # bare number is seconds); 0: no limit
//   timeout: 10m             # wall clock; 0: no limit
//   file_size: 1G            # largest file a process may write
//   open_files: 1024         # file descriptors per process
//   tmp_size: 256M           # /tmp and /dev/shm
//   output_cap: 1M           # captured stdout/stderr kept per stream
//   env: [CC=gcc, LANG=C]    # added to the clean environment (or a mapping KEY: VALUE)
//   ro_binds: [/opt/tools, /srv/data:/data]   # SRC[:DST], SRC absolute
//   rw_binds: [/srv/cache:/cache]
//   rootfs: /srv/images/debian               # system directories from here, not the host
//   hostname: crucible
//   user_namespace: false    # root only: no user namespace (weaker; default true)
//   workspace_quota: 2G      # cap on what may be written into the workspace
//
// workspace_quota is not a Spec setting: the caller mounts a QuotaDir (see
// quota.h) at the workspace before Run.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "sandbox/sandbox.h"

namespace crucible::sandbox {

struct Policy {
  std::optional<Network> network;
  std::optional<uint64_t> memory_limit_bytes;
  std::optional<uint64_t> pids_limit;
  std::optional<uint64_t> cpu_time_s;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<uint64_t> file_size_bytes;
  std::optional<uint64_t> open_files;
  std::optional<uint64_t> tmp_size_bytes;
  std::optional<uint64_t> output_cap;
  std::vector<std::string> env;  // "KEY=VALUE", appended to the Spec's
  std::vector<Bind> binds;       // ro_binds then rw_binds, appended to the Spec's
  std::optional<std::string> rootfs;
  std::optional<std::string> hostname;
  std::optional<bool> user_namespace;
  std::optional<uint64_t> workspace_quota_bytes;
};

// Parses a policy. `source_name` (usually the file name) prefixes every error
// message, with the line and column and the offending key:
// "p.yaml:3:9: key 'memory': expected a size such as 1048576, 64k, 512M or 4G, not '5X'".
// kInvalidArgument on any error. An empty document is an empty policy.
Result<Policy> ParsePolicy(std::string_view yaml_text, std::string_view source_name);

// Reads and parses the policy file at `path` (kNotFound when it cannot be read).
Result<Policy> LoadPolicyFile(const std::string& path);

// Sets in `spec` every setting `policy` sets (env and binds are appended).
// kInvalidArgument when a value cannot go into a Spec.
Status ApplyPolicy(const Policy& policy, Spec& spec);

// "1048576", "64k", "512M", "4G" (powers of 1024); "0" is 0. The error names
// `what` (an option or key) and the text.
Result<uint64_t> ParseSize(std::string_view what, std::string_view text);

// "500ms", "30s", "5m", "1h", or a bare number of seconds ("2", "0.5").
Result<std::chrono::milliseconds> ParseDuration(std::string_view what, std::string_view text);

}  // namespace crucible::sandbox
