// Runs an untrusted command in a Linux sandbox.
//
// The command runs in new mount, pid, net (unless Spec::network is kHost),
// uts, ipc and cgroup namespaces, on a fresh root filesystem (a read-only
// tmpfs): host system directories (/usr, /bin, /sbin, /lib, /lib32, /lib64,
// /etc where present; symlinks such as /bin -> usr/bin are recreated as
// symlinks) bound read-only, the workspace read-write at /workspace, a private
// /tmp (a tmpfs of at most Spec::tmp_size_bytes), a fresh /proc (with
// /proc/sys and friends read-only), a minimal /dev (null, zero, full, random,
// urandom, tty, shm, pts), only a loopback network interface (up),
// Spec::hostname, and a clean environment. Binds are not recursive: mounts
// below a bound host directory are not visible.
//
// The first process of the pid namespace is a tiny init that starts the
// command and exits with it; the kernel then kills everything left in the
// namespace, so background and setsid() daemons never outlive the command. A
// wall-clock timeout kills the whole namespace.
//
// The sandbox has a user namespace of its own whose root (uid and gid 0, the
// only ids mapped) is the caller's uid and gid on the host: for a root caller
// the map is "0 0 1", so files keep the ownership they have today, but the
// namespace's per-user limits (inotify instances and watches) are capped for
// the sandbox instead of shared with host root's. Its capabilities only reach
// the sandbox's own namespaces, and it keeps only CAP_CHOWN, CAP_DAC_OVERRIDE,
// CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP and
// CAP_NET_BIND_SERVICE, with no_new_privs, no controlling terminal, and no file
// descriptor of the caller (its output is relayed through pipes; stdin is
// /dev/null; see Spec::interactive). Binds keep the
// nosuid/nodev/noexec and atime flags of their source mounts (the kernel locks
// them). A root caller may opt out (Spec::user_namespace = false): the command
// then runs as root of the host's user namespace (weaker: it shares root's
// per-user limits). An unprivileged caller usually cannot create cgroups: the
// default memory and pids limits are then only a warning in the Report,
// explicitly requested ones a setup error.
//
// Host files and directories under the system directories that are not
// world-readable (/etc/shadow, /etc/ssl/private, /etc/.pwd.lock) are masked:
// an empty private file or an empty read-only directory is mounted over each,
// so root inside can neither read them nor lock the host's copy.
//
// Limits: a seccomp filter (see seccomp.h) refuses with EPERM what Docker's
// default profile refuses, on the 64-bit, 32-bit and x32 ABIs, and every
// refused call is counted in Report::seccomp_violations; memory and pids are
// limited by a per-sandbox cgroup (v2 or v1, detected); CPU time, file size,
// open files and core dumps by rlimits; captured output by output_cap.
//
// Works for root and, where the kernel allows unprivileged user namespaces,
// for any user. Both `crucible sandbox` and the runner use this one
// implementation. Safe to call from a multi-threaded
// process: nothing between clone() and execve() allocates or takes a lock.
// docs/sandbox.md has the threat model and every default.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace crucible::sandbox {

// A host path made visible inside the sandbox.
struct Bind {
  std::string host_path;  // must exist (file or directory); symlinks are resolved on the host
  // Absolute, without "..". Missing parents and the mount point itself are
  // created (in the new root, or in whatever bind they fall into, e.g. the
  // workspace). The path must not go through a symlink inside the sandbox
  // (e.g. /bin/x where /bin -> usr/bin): use /usr/bin/x.
  std::string sandbox_path;
  bool writable = false;
};

// Something the sandbox itself saw a command do (Spec::observe_exec,
// Spec::observe_writes), whatever the command says about it.
struct Observation {
  enum class Kind { kExec, kFileWrite };
  Kind kind = Kind::kExec;
  std::chrono::system_clock::time_point time;  // when the runner saw it
  // kExec: the program as the caller passed it to execve or execveat (for
  // execveat relative to a descriptor N: "<fd N>/path", or "<fd N>" with an
  // empty path). kFileWrite: the file's path relative to the workspace.
  std::string path;
  std::vector<std::string> argv;  // kExec: the arguments, at most kMaxObservedArgs
  bool argv_cut = false;          // kExec: argv was longer than the caps; the rest is missing
  int pid = 0;                    // kExec: the caller's process id on the host
};

// Caps on one observed exec's argv: arguments, and bytes of them together.
inline constexpr size_t kMaxObservedArgs = 64;
inline constexpr size_t kMaxObservedArgBytes = 4096;

// The network the sandbox sees. With kNone, Spec::egress adds an allowlisted
// way out: an HTTP proxy to listed destinations only (for an agent that must
// reach its model API).
enum class Network {
  kNone,  // a new network namespace with only loopback (the default)
  kHost,  // the host's network namespace: for trusted commands only
};

// Where the egress proxy listens inside the sandbox (127.0.0.1).
inline constexpr uint16_t kEgressProxyPort = 3128;

// One connection the sandbox made to the egress proxy.
struct EgressConnection {
  std::string host;  // the destination asked for (empty: no request was read)
  uint16_t port = 0;
  std::string method;  // "CONNECT", "GET", ... (empty: no request was read)
  bool allowed = false;
  std::string reason;      // why it was refused or failed; empty when relayed to the end
  uint64_t bytes_out = 0;  // from the sandbox to the destination (after the request head)
  uint64_t bytes_in = 0;   // from the destination to the sandbox
};

inline constexpr uint64_t kDefaultMemoryLimitBytes = uint64_t{4} << 30;  // 4 GiB
inline constexpr uint64_t kDefaultPidsLimit = 512;

struct Spec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH inside the sandbox
  std::string workspace;          // host directory bound read-write at /workspace; may be empty
  std::vector<Bind> binds;        // extra binds
  // "KEY=VALUE" entries. The environment is otherwise clean apart from
  // PATH=/usr/local/bin:/usr/bin:/bin, HOME=/tmp and LANG=C.UTF-8, which these
  // may override.
  std::vector<std::string> env;
  // Absolute. The default falls back to "/" when there is no workspace.
  std::string cwd = "/workspace";
  std::chrono::milliseconds timeout{0};  // 0: no limit
  // When true, stdout and stderr are captured into the Report (each capped at
  // output_cap bytes, the rest counted and dropped). Otherwise they are
  // relayed: the command writes into pipes and Run copies what arrives to the
  // caller's own stdout and stderr as it comes, so the command never holds a
  // descriptor of the caller's (a terminal it could read or reconfigure, a
  // file it could reopen by path through /proc/self/fd). stdin is /dev/null.
  bool capture_output = false;
  size_t output_cap = 1 << 20;
  // With capture_output: called on the calling thread with every chunk of
  // stdout as it is read, before output_cap applies (the runner reads an
  // agent's stream-json telemetry this way). Chunks split lines anywhere.
  std::function<void(std::string_view)> on_stdout;
  // For trusted commands only: the command gets the caller's stdin, and
  // (unless capture_output) its stdout and stderr, themselves, e.g. a
  // terminal to work in. It can then read and reconfigure that terminal and
  // reopen files those descriptors refer to.
  bool interactive = false;
  std::string hostname = "crucible";
  Network network = Network::kNone;
  // Allowed destinations, "host:port" ("[::1]:443" for IPv6 literals); only
  // with Network::kNone. When set, an HTTP proxy (CONNECT and absolute-URI
  // requests) listens on 127.0.0.1:kEgressProxyPort inside the sandbox before
  // the command starts, and relays to these exact hosts and ports only (names
  // resolved on the host; an IP literal only when listed as such); everything
  // else is answered 403. HTTPS_PROXY, HTTP_PROXY (and lower case) point at it
  // and NO_PROXY/no_proxy is "localhost,127.0.0.1", unless env sets them.
  // Every connection is in Report::egress.
  std::vector<std::string> egress;

  // Limits of the whole sandbox (a cgroup). Unset: the default
  // (kDefaultMemoryLimitBytes, kDefaultPidsLimit), applied when this host's
  // cgroups are usable and otherwise only a warning in the Report. Set: the
  // limit is required, and a host where it cannot be applied is a setup
  // error; 0 means no limit.
  std::optional<uint64_t> memory_limit_bytes;  // memory (and no swap) of all processes together
  std::optional<uint64_t> pids_limit;          // processes and threads together

  // Limits of each process (rlimits); 0: no limit.
  uint64_t cpu_time_s = 0;  // CPU seconds (SIGXCPU, then SIGKILL a second later)
  uint64_t file_size_bytes = uint64_t{1} << 30;  // largest file written (SIGXFSZ / EFBIG)
  uint64_t open_files = 1024;                    // file descriptors
  // Size of the /tmp tmpfs (and of /dev/shm); 0: the kernel's default (half
  // of RAM). tmpfs pages count against the memory limit too.
  uint64_t tmp_size_bytes = uint64_t{256} << 20;

  // When set, the system directories (/usr, /bin, /lib, /etc, ... as far as
  // they exist there; symlinks recreated) come read-only from this host
  // directory (an unpacked image, a debootstrap tree) instead of the host's.
  // A missing directory is a setup error.
  std::string rootfs;
  // Run in a new user namespace (sandbox root mapped to the caller's uid and
  // gid). The default; false opts a root caller out (the command then runs as
  // host root and shares root's per-user limits: weaker). A caller that is not
  // root always gets one.
  bool user_namespace = true;

  // Observation of what runs and what is written inside the sandbox (see
  // docs/sandbox.md "Observation"). Each observation is passed to
  // on_observation on the calling thread, as it is seen, up to
  // max_observations of each kind; the rest are only counted in the Report.
  // Evidence, not proof: see the threat model.
  //
  // observe_exec: every execve and execveat (all ABIs), with its argv, seen
  // through seccomp user notification before the kernel runs it; the call is
  // allowed as without observation, at most kObservedExecsPerSecond per
  // second (a caller beyond that waits). Needs seccomp user notification
  // (else a warning in Report::observation_warnings, and nothing observed).
  bool observe_exec = false;
  // observe_writes: every regular file of the workspace closed after being
  // opened for writing, through fanotify on the sandbox's workspace mount.
  // Needs a workspace, root (CAP_SYS_ADMIN) and seccomp user notification
  // (else a warning, and nothing observed). Deletions and renames are not
  // reported.
  bool observe_writes = false;
  std::function<void(const Observation&)> on_observation;
  size_t max_observations = 10000;
};

// How many execs an observing sandbox may start per second (after a burst
// of as many): each costs the runner a notification and a memory read.
inline constexpr int kObservedExecsPerSecond = 2000;

// How often the seccomp policy refused a syscall. The name is libseccomp's,
// prefixed with "x86:" or "x32:" for the 32-bit and x32 ABIs ("x86:mount").
struct SyscallCount {
  std::string syscall;
  uint64_t count = 0;
};

struct Report {
  int exit_code = -1;      // the command's exit code; -1 when killed by a signal
  int signal = 0;          // the signal that killed it, 0 if none
  bool timed_out = false;  // the wall-clock timeout fired and the tree was killed
  int64_t wall_ms = 0;
  std::string stdout_data;  // only with capture_output
  std::string stderr_data;
  bool output_truncated = false;  // some output beyond output_cap was dropped
  int64_t stdout_dropped = 0;     // bytes dropped beyond output_cap
  int64_t stderr_dropped = 0;
  int64_t stdout_bytes = 0;  // everything written (captured + dropped), with capture_output
  int64_t stderr_bytes = 0;

  bool oom_killed = false;         // the memory limit was hit and a process was OOM-killed
  uint64_t memory_peak_bytes = 0;  // peak memory of the sandbox's cgroup (0: not measured)
  bool pids_limit_hit = false;     // a fork or clone failed on the pids limit
  // User + system CPU time of every process of the sandbox (from the cgroup
  // when it accounts CPU, so processes killed at teardown count too).
  int64_t cpu_ms = 0;
  // Refused syscalls, by name (sorted). Empty when the kernel lacks seccomp
  // user notification: then a warning says that calls were refused unrecorded.
  std::vector<SyscallCount> seccomp_violations;
  std::string cgroup_version;  // "v1", "v2", or empty when no cgroup was used
  // With Spec::observe_exec / observe_writes: how many execs and file writes
  // were seen (also those beyond max_observations, which were not passed on),
  // and what could not be observed and why, one sentence each.
  uint64_t observed_execs = 0;
  uint64_t observed_writes = 0;
  std::vector<std::string> observation_warnings;
  // Connections to the egress proxy (Spec::egress), in the order accepted.
  std::vector<EgressConnection> egress;
  // What the sandbox could not do as configured but ran anyway (e.g. no
  // usable cgroup for a default limit), one sentence each.
  std::vector<std::string> warnings;
};

// Runs `spec` and waits for it. `on_tick`, when set, is called about every
// 100 ms on the calling thread while the command runs (the runner uses it to
// stream the agent's trace file).
//
// Returns the Report when the command ran (whatever its exit status; a command
// that cannot be found or executed exits 127 or 126 with a message on its
// stderr, like in a shell). Returns an Error when the sandbox could not be set
// up, naming the failed step: kFailedPrecondition with e.g. "sandbox setup:
// bind /work/ws at /workspace: No such file or directory";
// kInvalidArgument for a malformed Spec (empty argv, relative sandbox path,
// env entry without '=').
Result<Report> Run(const Spec& spec, const std::function<void()>& on_tick = {});

// True when `path` (absolute) lies inside one of the host system directories
// every sandbox shows read-only (/usr, /bin, /sbin, /lib, /lib32, /lib64,
// /libx32, /etc), so it need not be bound again. (With Spec::rootfs these
// come from the tree instead, and host paths under them are not visible.)
bool IsSystemPath(std::string_view path);

// The exit status `crucible sandbox` reports for `report`: the command's exit
// code, 128+N when killed by signal N, 124 on timeout (125 if there is no
// status at all, which Run does not produce).
int ExitStatus(const Report& report);

// Checks one Spec::egress entry: kInvalidArgument, naming it, unless it is
// "host:port" (or "[v6 address]:port").
Status CheckEgressEntry(std::string_view entry);

// Exit status when the sandbox itself could not be set up.
inline constexpr int kSetupFailedExitStatus = 125;

}  // namespace crucible::sandbox
