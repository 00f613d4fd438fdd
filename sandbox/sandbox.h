// Runs an untrusted command in a Linux sandbox.
//
// The command runs in new mount, pid, net, uts and ipc namespaces, on a fresh
// root filesystem: host system directories (/usr, /bin, /lib, /lib64, /etc,
// /sbin where present) read-only, the workspace read-write at /workspace, a
// private /tmp, a fresh /proc, a minimal /dev, only a loopback network
// interface, and a clean environment. A wall-clock timeout kills the whole
// process tree (the sandbox's pid namespace).
//
// Requires root (CAP_SYS_ADMIN) for now. Both `crucible sandbox` and the
// runner use this one implementation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"

namespace crucible::sandbox {

// A host path made visible inside the sandbox.
struct Bind {
  std::string host_path;     // must exist (file or directory)
  std::string sandbox_path;  // absolute; parents are created in the new root
  bool writable = false;
};

struct Spec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH inside the sandbox
  std::string workspace;          // host directory bound read-write at /workspace; may be empty
  std::vector<Bind> binds;        // extra binds
  // "KEY=VALUE" entries. The environment is otherwise clean apart from
  // PATH=/usr/local/bin:/usr/bin:/bin, HOME=/tmp and LANG=C.UTF-8, which these
  // may override.
  std::vector<std::string> env;
  std::string cwd = "/workspace";  // falls back to "/" when there is no workspace
  std::chrono::milliseconds timeout{0};  // 0: no limit
  // When true, stdout and stderr are captured into the Report (each capped at
  // output_cap bytes, the rest counted and dropped); otherwise the command
  // inherits the caller's stdout and stderr. stdin is /dev/null either way.
  bool capture_output = false;
  size_t output_cap = 1 << 20;
  std::string hostname = "crucible";
};

struct Report {
  int exit_code = -1;      // the command's exit code; -1 when killed by a signal
  int signal = 0;          // the signal that killed it, 0 if none
  bool timed_out = false;  // the wall-clock timeout fired and the tree was killed
  int64_t wall_ms = 0;
  std::string stdout_data;  // only with capture_output
  std::string stderr_data;
  bool output_truncated = false;
};

// Runs `spec` and waits for it. `on_tick`, when set, is called about every
// 100 ms on the calling thread while the command runs (the runner uses it to
// stream the agent's trace file).
//
// Returns the Report when the command ran (whatever its exit status). Returns
// an Error when the sandbox could not be set up, naming the failed step, e.g.
// "bind /work/ws at /workspace: No such file or directory".
Result<Report> Run(const Spec& spec, const std::function<void()>& on_tick = {});

// The exit status `crucible sandbox` reports for `report`: the command's exit
// code, 128+N when killed by signal N, 124 on timeout.
int ExitStatus(const Report& report);

// Exit status when the sandbox itself could not be set up.
inline constexpr int kSetupFailedExitStatus = 125;

}  // namespace crucible::sandbox
