#include "sandbox/plan.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

#include <fmt/format.h>

#include "sandbox/egress.h"

namespace crucible::sandbox::internal {
namespace {

// Host device nodes shared into /dev.
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};

// /proc entries that would let root in the sandbox change the host kernel
// (sysctls, sysrq) are made read-only; some that only leak host state are
// hidden under /dev/null. Docker does the same.
constexpr const char* kProcReadOnly[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq",
                                         "/proc/bus", "/proc/fs"};
constexpr const char* kProcMasked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
                                       "/proc/sched_debug"};

// What masks are mounted from: an empty file and an empty directory on the
// sandbox's own root tmpfs (not the host's /dev/null: a lock taken on a
// masked file must reach nothing of the host). Removed once mounted.
constexpr const char* kMaskFile = "/.crucible-mask";
constexpr const char* kMaskDir = "/.crucible-mask-dir";

constexpr unsigned long kReadOnly = MS_RDONLY | MS_NOSUID | MS_NODEV;
constexpr unsigned long kReadWrite = MS_NOSUID | MS_NODEV;

std::unexpected<Error> SetupError(std::string_view label, int err) {
  return Fail(Code::kFailedPrecondition,
              fmt::format("sandbox setup: {}: {}", label, std::strerror(err)));
}

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

// Resolves a host path (all symlinks, on the host) for use as a bind source.
Result<std::string> ResolveHostPath(const std::string& path, std::string_view label) {
  if (path.empty()) return SetupError(label, ENOENT);
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return SetupError(label, errno);
  return std::string(buf);
}

class Builder {
 public:
  std::vector<Step>& steps() { return steps_; }

  void Add(Op op, std::string label, std::string a = {}, std::string b = {}) {
    Step& s = steps_.emplace_back();
    s.op = op;
    s.label = std::move(label);
    s.a = std::move(a);
    s.b = std::move(b);
  }

  Step& Last() { return steps_.back(); }

  void Mount(std::string label, std::string source, std::string target, std::string fstype,
             unsigned long flags, std::string data) {
    Add(Op::kMount, std::move(label), std::move(source), std::move(target));
    Last().c = std::move(fstype);
    Last().d = std::move(data);
    Last().flags = flags;
  }

  void MountPoint(std::string label, std::string path, bool is_dir) {
    Add(Op::kMakeMountPoint, std::move(label), std::move(path));
    Last().is_dir = is_dir;
  }

  // Binds host path `host` (resolved) at `target` in the new root.
  void BindFromHost(const std::string& label, const std::string& host, const std::string& target,
                    bool is_dir, unsigned long flags) {
    MountPoint(label, target, is_dir);
    Add(Op::kBind, label, std::string(kOldRoot) + host, target);
    Last().flags = flags;
  }

 private:
  std::vector<Step> steps_;
};

bool WorldReadable(mode_t mode) {
  if (S_ISDIR(mode)) return (mode & S_IROTH) && (mode & S_IXOTH);
  return (mode & S_IROTH) != 0;
}

// Adds the masks below directory `fd` (closed here), whose path inside the
// sandbox is `path`. Symlinks are not followed and mount points are skipped.
// `files`: whether files are checked too, or only directories (which readdir
// tells apart without a stat per entry).
void ScanForMasks(int fd, const std::string& path, int depth, bool files, std::vector<Mask>& out) {
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return;
  }
  while (const dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (!files && entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN) continue;
    struct statx stx;
    if (::statx(::dirfd(dir), entry->d_name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
                STATX_TYPE | STATX_MODE, &stx) != 0) {
      continue;
    }
    const mode_t mode = stx.stx_mode;
    if (S_ISLNK(mode)) continue;
    if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
        (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
      continue;
    }
    std::string child = fmt::format("{}/{}", path, name);
    if (!WorldReadable(mode)) {
      out.push_back({std::move(child), S_ISDIR(mode)});
    } else if (S_ISDIR(mode) && depth < 64) {
      int sub =
          ::openat(::dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) ScanForMasks(sub, child, depth + 1, files, out);
    }
  }
  ::closedir(dir);
}

Status CheckSpec(const Spec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return Fail(Code::kInvalidArgument, "sandbox: empty command");
  }
  for (const auto& arg : spec.argv) {
    if (HasNul(arg)) return Fail(Code::kInvalidArgument, "sandbox: command argument contains NUL");
  }
  for (const auto& entry : spec.env) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || HasNul(entry)) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("sandbox: environment entry '{}' is not KEY=VALUE", entry));
    }
  }
  if (spec.hostname.empty() || spec.hostname.size() > 64 || HasNul(spec.hostname)) {
    return Fail(Code::kInvalidArgument,
                fmt::format("sandbox: invalid hostname '{}'", spec.hostname));
  }
  if (HasNul(spec.workspace) || HasNul(spec.cwd)) {
    return Fail(Code::kInvalidArgument, "sandbox: path contains NUL");
  }
  if (!spec.cwd.empty() && spec.cwd[0] != '/') {
    return Fail(Code::kInvalidArgument,
                fmt::format("sandbox: working directory '{}' is not absolute", spec.cwd));
  }
  if (!spec.egress.empty() && spec.network != Network::kNone) {
    return Fail(Code::kInvalidArgument,
                "sandbox: egress needs the sandbox's own network (network none): with the host's "
                "network there is nothing to allowlist");
  }
  for (const auto& entry : spec.egress) CRUCIBLE_RETURN_IF_ERROR(ParseEgressTarget(entry));
  return {};
}

}  // namespace

Result<std::string> NormalizeSandboxPath(const std::string& path) {
  if (path.empty() || path[0] != '/' || HasNul(path)) {
    return Fail(Code::kInvalidArgument,
                fmt::format("sandbox: path '{}' in the sandbox is not absolute", path));
  }
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string_view part(path.data() + i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return Fail(Code::kInvalidArgument,
                  fmt::format("sandbox: path '{}' in the sandbox contains '..'", path));
    }
    out += '/';
    out += part;
  }
  if (out.empty()) {
    return Fail(Code::kInvalidArgument, fmt::format("sandbox: cannot bind over '{}'", path));
  }
  if (out == kOldRoot || out.starts_with(std::string(kOldRoot) + "/")) {
    return Fail(Code::kInvalidArgument, fmt::format("sandbox: path '{}' is reserved", path));
  }
  if (out.size() >= PATH_MAX) {
    return Fail(Code::kInvalidArgument, fmt::format("sandbox: path '{}' is too long", path));
  }
  return out;
}

const std::vector<Mask>& SystemDirMasks(const std::string& system_root) {
  static std::mutex mu;
  static auto* cache = new std::map<std::string, std::unique_ptr<const std::vector<Mask>>>;
  std::lock_guard lock(mu);
  auto& masks = (*cache)[system_root];
  if (!masks) {
    std::vector<Mask> found;
    // /etc is where hosts keep secrets (shadow, host keys) and lock files
    // (.pwd.lock). The other system directories are not scanned: /usr alone
    // holds some 150,000 entries (0.5 to 1.5 s of a process's first start)
    // and the root-only entries there are rare and hold programs and
    // policies, not secrets (docs/sandbox.md, known gaps).
    for (const char* dir : {"/etc"}) {
      std::string source = system_root + dir;
      struct stat st;
      if (::lstat(source.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;  // symlinks too
      if (!WorldReadable(st.st_mode)) {
        found.push_back({dir, true});
        continue;
      }
      int fd = ::open(source.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) ScanForMasks(fd, dir, 0, /*files=*/true, found);
    }
    masks = std::make_unique<const std::vector<Mask>>(std::move(found));
  }
  return *masks;
}

Result<Plan> BuildPlan(const Spec& spec, const std::string& root_dir) {
  CRUCIBLE_RETURN_IF_ERROR(CheckSpec(spec));

  // Resolve every host path first, so that a missing one fails here.
  std::string workspace;
  if (!spec.workspace.empty()) {
    std::string label = fmt::format("bind {} at /workspace", spec.workspace);
    CRUCIBLE_ASSIGN_OR_RETURN(workspace, ResolveHostPath(spec.workspace, label));
    struct stat st;
    if (::stat(workspace.c_str(), &st) != 0) return SetupError(label, errno);
    if (!S_ISDIR(st.st_mode)) return SetupError(label, ENOTDIR);
  }
  // The directory the system directories come from: the host's root, or the rootfs.
  std::string system_root;
  if (!spec.rootfs.empty()) {
    if (HasNul(spec.rootfs)) return Fail(Code::kInvalidArgument, "sandbox: path contains NUL");
    std::string label = fmt::format("rootfs {}", spec.rootfs);
    CRUCIBLE_ASSIGN_OR_RETURN(system_root, ResolveHostPath(spec.rootfs, label));
    struct stat st;
    if (::stat(system_root.c_str(), &st) != 0) return SetupError(label, errno);
    if (!S_ISDIR(st.st_mode)) return SetupError(label, ENOTDIR);
    if (system_root == "/") system_root.clear();
  }
  struct UserBind {
    std::string label, host, target;
    bool is_dir;
    bool writable;
  };
  std::vector<UserBind> binds;
  for (const auto& bind : spec.binds) {
    CRUCIBLE_ASSIGN_OR_RETURN(std::string target, NormalizeSandboxPath(bind.sandbox_path));
    std::string label = fmt::format("bind {} at {}", bind.host_path, bind.sandbox_path);
    if (HasNul(bind.host_path)) return Fail(Code::kInvalidArgument, "sandbox: path contains NUL");
    CRUCIBLE_ASSIGN_OR_RETURN(std::string host, ResolveHostPath(bind.host_path, label));
    struct stat st;
    if (::stat(host.c_str(), &st) != 0) return SetupError(label, errno);
    binds.push_back(
        {std::move(label), std::move(host), std::move(target), S_ISDIR(st.st_mode), bind.writable});
  }

  Plan plan;
  plan.cwd = spec.cwd.empty() ? "/" : spec.cwd;
  if (spec.workspace.empty() && plan.cwd == "/workspace") plan.cwd = "/";

  Builder b;
  // The init process itself.
  // It waits for the parent first: in a user namespace the parent writes its
  // uid and gid maps meanwhile, which a non-dumpable init would forbid.
  b.Add(Op::kResetSignals, "reset signal handlers");
  b.Add(Op::kWaitForParent, "wait for the cgroup and the id maps");
  b.Add(Op::kNonDumpable, "make init non-dumpable");
  b.Add(Op::kRename, "rename init");
  b.Last().optional = true;
  b.Add(Op::kStdio, "redirect stdio");
  b.Add(Op::kCloseFds, "close inherited file descriptors");
  b.Add(Op::kUnshareCgroup, "create the cgroup namespace");
  b.Add(Op::kNewSession, "start a new session");
  b.Add(Op::kParentDeathSignal, "set the parent death signal");
  // What a user namespace's processes count against its creator's per-user
  // limits (here root's: fs.inotify.max_user_instances, typically 128, and
  // max_user_watches), capped so that one sandbox cannot take them all.
  for (const auto& [name, value] : kUserNsLimits) {
    b.Add(Op::kUserNsLimit, fmt::format("set user.{} to {}", name, value), name,
          std::to_string(value));
  }

  // A fresh root on a tmpfs, with the host's root kept at kOldRoot meanwhile.
  // Mount points are created after pivot_root so that no symlink can lead a
  // mkdir or a mount out of the new root.
  b.Add(Op::kMakeMountsPrivate, "make mounts private");
  b.Mount(fmt::format("mount tmpfs at {}", root_dir), "tmpfs", root_dir, "tmpfs",
          MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=16m");
  b.Add(Op::kMkdir, fmt::format("create {}{}", root_dir, kOldRoot), root_dir + kOldRoot);
  b.Add(Op::kPivotRoot, fmt::format("pivot_root to {}", root_dir), root_dir, root_dir + kOldRoot);

  for (const char* dir : kSystemDirs) {
    std::string source = system_root + dir;
    struct stat st;
    if (::lstat(source.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = ::readlink(source.c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      std::string link(target, static_cast<size_t>(n));
      b.Add(Op::kSymlink, fmt::format("symlink {} -> {}", dir, link), link, dir);
    } else if (S_ISDIR(st.st_mode)) {
      b.BindFromHost(fmt::format("bind {} at {}", source, dir), source, dir, true, kReadOnly);
    }
  }
  // Host files only root (or their owner) may read: root inside is uid 0 of
  // the host, so it could read them (/etc/shadow) or lock them (/etc/.pwd.lock).
  if (const auto& masks = SystemDirMasks(system_root); !masks.empty()) {
    b.MountPoint(fmt::format("create {}", kMaskFile), kMaskFile, false);
    b.Add(Op::kMkdir, fmt::format("create {}", kMaskDir), kMaskDir);
    for (const Mask& mask : masks) {
      b.Add(Op::kBind, fmt::format("mask {}", mask.path), mask.is_dir ? kMaskDir : kMaskFile,
            mask.path);
      b.Last().flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
      b.Last().skip_if_missing = true;
    }
    b.Add(Op::kRemove, fmt::format("remove {}", kMaskFile), kMaskFile);
    b.Last().is_dir = false;
    b.Add(Op::kRemove, fmt::format("remove {}", kMaskDir), kMaskDir);
  }

  // /dev: a few harmless device nodes of the host, no disks.
  b.MountPoint("create /dev", "/dev", true);
  for (const char* dev : kDevices) {
    std::string path = fmt::format("/dev/{}", dev);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) continue;
    b.BindFromHost(fmt::format("bind {} at {}", path, path), path, path, false,
                   MS_NOSUID | MS_NOEXEC);
  }
  b.MountPoint("create /dev/shm", "/dev/shm", true);
  std::string tmp_options = "mode=1777";
  if (spec.tmp_size_bytes > 0) tmp_options += fmt::format(",size={}", spec.tmp_size_bytes);
  b.Mount("mount tmpfs at /dev/shm", "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
          tmp_options);
  b.MountPoint("create /dev/pts", "/dev/pts", true);
  b.Mount("mount devpts at /dev/pts", "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=0620");
  b.Last().optional = true;
  b.Add(Op::kSymlink, "symlink /dev/ptmx -> pts/ptmx", "pts/ptmx", "/dev/ptmx");
  b.Add(Op::kSymlink, "symlink /dev/fd -> /proc/self/fd", "/proc/self/fd", "/dev/fd");
  b.Add(Op::kSymlink, "symlink /dev/stdin -> /proc/self/fd/0", "/proc/self/fd/0", "/dev/stdin");
  b.Add(Op::kSymlink, "symlink /dev/stdout -> /proc/self/fd/1", "/proc/self/fd/1", "/dev/stdout");
  b.Add(Op::kSymlink, "symlink /dev/stderr -> /proc/self/fd/2", "/proc/self/fd/2", "/dev/stderr");

  // /proc of the new pid namespace.
  b.MountPoint("create /proc", "/proc", true);
  b.Mount("mount proc at /proc", "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  for (const char* path : kProcReadOnly) {
    b.Add(Op::kBind, fmt::format("make {} read-only", path), path, path);
    b.Last().flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    b.Last().skip_if_missing = true;
  }
  for (const char* path : kProcMasked) {
    b.Add(Op::kBind, fmt::format("mask {}", path), "/dev/null", path);
    b.Last().flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    b.Last().skip_if_missing = true;
  }

  b.MountPoint("create /tmp", "/tmp", true);
  b.Mount("mount tmpfs at /tmp", "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, tmp_options);

  if (!workspace.empty()) {
    b.BindFromHost(fmt::format("bind {} at /workspace", spec.workspace), workspace, "/workspace",
                   true, kReadWrite);
  }
  for (const auto& bind : binds) {
    b.BindFromHost(bind.label, bind.host, bind.target, bind.is_dir,
                   bind.writable ? kReadWrite : kReadOnly);
  }

  b.Add(Op::kDetach, "detach the host root", kOldRoot);
  b.Add(Op::kRemount, "remount / read-only", "/");
  b.Last().flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

  b.Add(Op::kSetHostname, fmt::format("set hostname {}", spec.hostname), spec.hostname);
  if (spec.network == Network::kNone) b.Add(Op::kLoopbackUp, "bring up lo");
  if (!spec.egress.empty()) {
    b.Add(Op::kEgressListener,
          fmt::format("listen on 127.0.0.1:{} for the egress proxy", kEgressProxyPort));
    b.Last().limit = kEgressProxyPort;
  }
  b.Add(Op::kChdir, fmt::format("chdir {}", plan.cwd), plan.cwd);

  // Per-process limits (inherited by the command). Lowering needs no
  // privilege; raising above the caller's hard limit works because init still
  // has CAP_SYS_RESOURCE here.
  auto rlimit = [&](int resource, std::string_view name, uint64_t soft, uint64_t hard) {
    b.Add(Op::kSetRlimit, fmt::format("set {} to {}", name, soft));
    b.Last().flags = static_cast<unsigned long>(resource);
    b.Last().limit = soft;
    b.Last().limit_max = hard;
  };
  rlimit(RLIMIT_CORE, "RLIMIT_CORE", 0, 0);
  if (spec.cpu_time_s > 0) {
    rlimit(RLIMIT_CPU, "RLIMIT_CPU", spec.cpu_time_s, spec.cpu_time_s + 1);
  }
  if (spec.file_size_bytes > 0) {
    rlimit(RLIMIT_FSIZE, "RLIMIT_FSIZE", spec.file_size_bytes, spec.file_size_bytes);
  }
  if (spec.open_files > 0) rlimit(RLIMIT_NOFILE, "RLIMIT_NOFILE", spec.open_files, spec.open_files);

  b.Add(Op::kDropCapabilities, "drop capabilities");
  b.Add(Op::kNoNewPrivs, "set no_new_privs");
  // Last: from here on init itself runs under the filter (it only forks,
  // waits and reports).
  b.Add(Op::kSeccomp, "install the seccomp filter");

  plan.steps = std::move(b.steps());
  return plan;
}

}  // namespace crucible::sandbox::internal
