// The sandbox setup as data.
//
// The parent turns a Spec into an ordered list of Steps (where allocating,
// stat-ing host paths and formatting messages is fine); the sandbox's init
// process executes them one by one right after clone() (where none of that is
// safe: the caller may have other threads). Each Step carries the label the
// caller sees when it fails, so the child only has to send back "step i failed
// with errno e" and the parent prints "bind /x at /workspace: No such file or
// directory".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "sandbox/sandbox.h"

namespace crucible::sandbox::internal {

// Host directories shared read-only, in this order (/usr first: the others are
// often symlinks into it).
inline constexpr const char* kSystemDirs[] = {"/usr",   "/bin",   "/sbin",   "/lib",
                                              "/lib32", "/lib64", "/libx32", "/etc"};

// Where the host's root stays visible inside the new root while the sandbox is
// being built (bind sources are read from here), then detached.
inline constexpr const char* kOldRoot = "/.crucible-oldroot";

// The per-user limits of the sandbox's user namespace (/proc/sys/user/*),
// when it has one. Its usage is also charged to its creator's user in the
// parent namespace (for a root caller: root's fs.inotify.max_user_instances,
// typically 128): these keep most of that for the host.
struct UserNsLimit {
  const char* name;
  uint64_t value;
};
inline constexpr UserNsLimit kUserNsLimits[] = {
    {"max_inotify_instances", 16},
    {"max_inotify_watches", 16384},
};

enum class Op : uint8_t {
  // Process hygiene of the init process (before any mount).
  kResetSignals,       // default dispositions, empty signal mask
  kNonDumpable,        // no ptrace / /proc/1/mem of init (a copy of the caller's memory)
  kRename,             // comm and /proc/1/cmdline "crucible-init", not the caller's argv
  kStdio,              // stdout/stderr to the capture pipes, report pipe to fd 3, stdin /dev/null
  kCloseFds,           // close every other inherited descriptor
  kNewSession,         // setsid(): no controlling terminal (no TIOCSTI into the caller's tty)
  kParentDeathSignal,  // SIGKILL when the caller dies; exit if it already has
  kWaitForParent,      // block until the parent has put init into the sandbox's cgroups
  kUnshareCgroup,      // a new cgroup namespace, rooted at the sandbox's cgroup
  kUserNsLimit,        // in a user namespace only: write b to its /proc/sys/user/<a>

  // File system.
  kMakeMountsPrivate,  // MS_REC|MS_PRIVATE on /: nothing propagates back to the host
  kMkdir,              // mkdir(a, 0700); an existing directory is fine
  kMount,              // mount(a, b, fstype c, flags, data d)
  kPivotRoot,          // pivot_root(a, b), then chdir("/")
  kMakeMountPoint,     // create directory or file a and its parents; refuses symlinks
  kBind,               // bind a at b (not recursive), then remount b with MS_BIND|flags
  kSymlink,            // symlink b -> a
  kDetach,             // umount2(a, MNT_DETACH), then rmdir(a)
  kRemount,            // remount a with MS_BIND|flags
  kRemove,             // rmdir(a) if is_dir, else unlink(a)

  // Namespaces' contents and credentials.
  kSetHostname,       // sethostname(a)
  kLoopbackUp,        // IFF_UP on "lo"
  kEgressListener,    // listen on 127.0.0.1:limit; send the socket to the parent (Spec::egress)
  kChdir,             // chdir(a)
  kDropCapabilities,  // keep only kKeptCapabilities, in every set and the bounding set
  kNoNewPrivs,        // PR_SET_NO_NEW_PRIVS
  kSetRlimit,         // setrlimit(flags, {limit, limit_max})
  kSeccomp,           // install ChildContext's filter; send its listener to the parent
};

struct Step {
  Op op = Op::kResetSignals;
  std::string label;  // what failed, e.g. "bind /usr at /usr"
  std::string a, b, c, d;
  unsigned long flags = 0;
  uint64_t limit = 0, limit_max = 0;  // kSetRlimit
  bool is_dir = true;                 // kMakeMountPoint, kRemove: directory or file
  bool skip_if_missing = false;       // ENOENT means: nothing to do
  bool optional = false;              // any failure means: nothing to do
};

// Capabilities the command keeps (as root): those of Docker's default set that
// cannot reach outside the namespaces set up here (no CAP_SYS_ADMIN,
// CAP_DAC_READ_SEARCH, CAP_MKNOD, CAP_NET_RAW, CAP_SYS_CHROOT, CAP_SETFCAP, ...).
// CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID,
// CAP_SETUID, CAP_SETPCAP and CAP_NET_BIND_SERVICE.
inline constexpr uint64_t kKeptCapabilities = (1ull << 0) | (1ull << 1) | (1ull << 3) |
                                              (1ull << 4) | (1ull << 5) | (1ull << 6) |
                                              (1ull << 7) | (1ull << 8) | (1ull << 10);

struct Plan {
  std::vector<Step> steps;
  std::string cwd;  // inside the sandbox
};

// A host file or directory under the system directories that is not
// world-readable (a file without S_IROTH, a directory without S_IROTH or
// S_IXOTH), as its path inside the sandbox ("/etc/shadow"). The sandbox
// mounts an empty file or directory of its own over each.
struct Mask {
  std::string path;
  bool is_dir = false;
};

// The masks of the system directories taken from `system_root` ("" for the
// host's). Scanned once per process and `system_root`, then cached: files
// that change later are not seen until the process restarts. Mount points
// below the system directories are skipped (the non-recursive binds show
// what lies under them, which cannot be inspected from here).
const std::vector<Mask>& SystemDirMasks(const std::string& system_root);

// Checks `spec` and builds the steps that turn a fresh clone (in new
// namespaces) into the sandbox it describes, the new root being a tmpfs
// mounted at `root_dir`, an empty host directory. Host paths are resolved
// here, so a missing workspace or bind source fails before anything starts.
Result<Plan> BuildPlan(const Spec& spec, const std::string& root_dir);

// Returns `path` ("/a//b/./c") as "/a/b/c". kInvalidArgument when it is not
// absolute, contains "..", or is "/".
Result<std::string> NormalizeSandboxPath(const std::string& path);

}  // namespace crucible::sandbox::internal
