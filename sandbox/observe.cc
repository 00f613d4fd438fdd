#include "sandbox/observe.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

#include <fmt/format.h>

namespace crucible::sandbox::internal {
namespace {

constexpr uint32_t kX32Bit = 0x40000000;
constexpr uint64_t kPage = 4096;

// Reads up to `len` bytes at `addr` of process `pid`, page by page, stopping
// at the first page that cannot be read. Returns how many bytes were read.
size_t ReadMemory(pid_t pid, uint64_t addr, char* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    uint64_t at = addr + done;
    size_t chunk = std::min<uint64_t>(len - done, kPage - at % kPage);
    struct iovec local = {buf + done, chunk};
    struct iovec remote = {reinterpret_cast<void*>(at), chunk};
    ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < chunk) break;
  }
  return done;
}

// The NUL-terminated string at `addr`, at most `max` bytes; `cut` when it
// was longer. nullopt when nothing could be read.
std::optional<std::string> ReadString(pid_t pid, uint64_t addr, size_t max, bool* cut) {
  std::string out;
  char buf[512];
  while (out.size() <= max) {
    uint64_t at = addr + out.size();
    size_t want = std::min<uint64_t>(sizeof(buf), kPage - at % kPage);
    size_t got = ReadMemory(pid, at, buf, want);
    if (got == 0) {
      if (out.empty()) return std::nullopt;
      break;  // runs into memory that cannot be read: the kernel fails the call
    }
    const char* nul = static_cast<const char*>(std::memchr(buf, '\0', got));
    if (nul != nullptr) {
      out.append(buf, static_cast<size_t>(nul - buf));
      break;
    }
    out.append(buf, got);
  }
  if (out.size() > max) {
    out.resize(max);
    *cut = true;
  }
  return out;
}

}  // namespace

ExecCall ClassifyExec(uint32_t audit_arch, uint32_t nr) {
  uint32_t scmp_arch = SCMP_ARCH_X86_64;
  if (audit_arch == AUDIT_ARCH_I386) {
    scmp_arch = SCMP_ARCH_X86;
  } else if (audit_arch != AUDIT_ARCH_X86_64) {
    return ExecCall::kNone;
  } else if ((nr & kX32Bit) != 0) {
    scmp_arch = SCMP_ARCH_X32;
  }
  static const int numbers[3][2] = {
      {seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, "execve"),
       seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, "execveat")},
      {seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86, "execve"),
       seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86, "execveat")},
      {seccomp_syscall_resolve_name_arch(SCMP_ARCH_X32, "execve"),
       seccomp_syscall_resolve_name_arch(SCMP_ARCH_X32, "execveat")},
  };
  int abi = scmp_arch == SCMP_ARCH_X86_64 ? 0 : scmp_arch == SCMP_ARCH_X86 ? 1 : 2;
  auto n = static_cast<int>(nr);
  if (n == numbers[abi][0]) return ExecCall::kExecve;
  if (n == numbers[abi][1]) return ExecCall::kExecveat;
  return ExecCall::kNone;
}

Observation ReadExec(const ::seccomp_notif& req, ExecCall call) {
  Observation o;
  o.kind = Observation::Kind::kExec;
  o.time = std::chrono::system_clock::now();
  o.pid = static_cast<int>(req.pid);
  const auto pid = static_cast<pid_t>(req.pid);
  // The 32-bit and x32 ABIs pass 32-bit pointers.
  const bool narrow = req.data.arch == AUDIT_ARCH_I386 || (req.data.nr & kX32Bit) != 0;
  auto arg = [&](int i) {
    uint64_t v = req.data.args[i];
    return narrow ? v & 0xffffffffu : v;
  };
  uint64_t path_addr = arg(0), argv_addr = arg(1);
  if (call == ExecCall::kExecveat) {
    path_addr = arg(1);
    argv_addr = arg(2);
  }
  bool path_cut = false;
  std::string path = ReadString(pid, path_addr, PATH_MAX, &path_cut).value_or("");
  if (call == ExecCall::kExecveat) {
    auto dirfd = static_cast<int>(static_cast<uint32_t>(req.data.args[0]));
    if (dirfd != AT_FDCWD && (path.empty() || path[0] != '/')) {
      path = path.empty() ? fmt::format("<fd {}>", dirfd) : fmt::format("<fd {}>/{}", dirfd, path);
    }
  }
  o.path = std::move(path);

  const size_t ptr_size = narrow ? 4 : 8;
  char ptrs[(kMaxObservedArgs + 1) * 8];
  size_t got = ReadMemory(pid, argv_addr, ptrs, (kMaxObservedArgs + 1) * ptr_size) / ptr_size;
  size_t bytes = 0;
  for (size_t i = 0; i < got; ++i) {
    uint64_t p = 0;
    if (narrow) {
      uint32_t p32;
      std::memcpy(&p32, ptrs + i * 4, 4);
      p = p32;
    } else {
      std::memcpy(&p, ptrs + i * 8, 8);
    }
    if (p == 0) break;
    if (i == kMaxObservedArgs || bytes >= kMaxObservedArgBytes) {
      o.argv_cut = true;
      break;
    }
    bool cut = false;
    std::optional<std::string> a = ReadString(pid, p, kMaxObservedArgBytes - bytes, &cut);
    if (!a) break;  // a bad pointer: the kernel fails the call with EFAULT
    bytes += a->size();
    o.argv.push_back(std::move(*a));
    if (cut) {
      o.argv_cut = true;
      break;
    }
  }
  return o;
}

Result<WriteWatcher> WriteWatcher::Start(const std::string& workspace) {
  int fd = ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK,
                           O_RDONLY | O_LARGEFILE | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    return Fail(Code::kFailedPrecondition,
                fmt::format("file writes not observed: fanotify: {}{}", std::strerror(err),
                            err == EPERM ? " (needs root)" : ""));
  }
  int root = ::open(workspace.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    int err = errno;
    ::close(fd);
    return Fail(Code::kFailedPrecondition, fmt::format("file writes not observed: open {}: {}",
                                                       workspace, std::strerror(err)));
  }
  WriteWatcher w(fd, root);
  if (::fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD,
                      workspace.c_str()) != 0) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("file writes not observed: fanotify mark on {}: {}", workspace,
                            std::strerror(errno)));
  }
  // How the kernel names the workspace's root in the paths of its events
  // while it is mounted (as seen from this process: the mount belongs to
  // another namespace).
  w.prefix_ = w.RootName();
  if (w.prefix_ == "/") {
    return Fail(Code::kFailedPrecondition,
                fmt::format("file writes not observed: {} is not mounted", workspace));
  }
  return w;
}

WriteWatcher::WriteWatcher(WriteWatcher&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      root_(std::exchange(other.root_, -1)),
      prefix_(std::move(other.prefix_)),
      detached_(other.detached_),
      overflowed_(other.overflowed_) {}

WriteWatcher& WriteWatcher::operator=(WriteWatcher&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    if (root_ >= 0) ::close(root_);
    fd_ = std::exchange(other.fd_, -1);
    root_ = std::exchange(other.root_, -1);
    prefix_ = std::move(other.prefix_);
    detached_ = other.detached_;
    overflowed_ = other.overflowed_;
  }
  return *this;
}

WriteWatcher::~WriteWatcher() {
  if (fd_ >= 0) ::close(fd_);
  if (root_ >= 0) ::close(root_);
}

namespace {

// The path the kernel gives descriptor `fd` of this process ("" if none).
std::string FdPath(int fd) {
  char path[PATH_MAX];
  ssize_t n = ::readlink(fmt::format("/proc/self/fd/{}", fd).c_str(), path, sizeof(path) - 1);
  return std::string(path, n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace

std::string WriteWatcher::RootName() const {
  std::string name = FdPath(root_);
  if (!name.ends_with('/')) name += '/';
  return name;
}

std::optional<std::string> WriteWatcher::RelativePath(int event_fd) {
  std::string p = FdPath(event_fd);
  if (p.ends_with(" (deleted)")) p.resize(p.size() - 10);
  // Detaching is one-way: a root still attached after the event's path was
  // read was attached when it was read.
  bool was_attached = false;
  if (!detached_) {
    if (RootName() == prefix_) {
      was_attached = true;
    } else {
      detached_ = true;
      // Detached meanwhile: read either way (an attached name is the likelier).
      was_attached = p.starts_with(prefix_);
    }
  }
  std::string_view root = was_attached ? std::string_view(prefix_) : std::string_view("/");
  if (!p.starts_with(root) || p.size() == root.size()) return std::nullopt;
  return p.substr(root.size());
}

uint64_t WriteWatcher::Drain(bool wanted, const std::function<void(std::string_view)>& on_write) {
  // Every event carries a descriptor this process must close: a small buffer
  // keeps the number open at once small.
  alignas(fanotify_event_metadata) char buf[4096];
  uint64_t seen = 0;
  for (int round = 0; round < 16; ++round) {
    ssize_t len = ::read(fd_, buf, sizeof(buf));
    if (len < 0 && errno == EINTR) continue;
    if (len < 0 && errno != EAGAIN && read_error_.empty()) {
      // The kernel could not open an event's file for this process: that
      // event is gone.
      read_error_ = std::strerror(errno);
    }
    if (len <= 0) break;
    auto* m = reinterpret_cast<fanotify_event_metadata*>(buf);
    for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
      if (m->mask & FAN_Q_OVERFLOW) overflowed_ = true;
      if (m->fd < 0) continue;
      struct stat st;
      bool regular = ::fstat(m->fd, &st) == 0 && S_ISREG(st.st_mode);
      if (regular && wanted) {
        if (std::optional<std::string> path = RelativePath(m->fd)) {
          ++seen;
          on_write(*path);
        }
      } else if (regular) {
        ++seen;
      }
      ::close(m->fd);
    }
  }
  return seen;
}

}  // namespace crucible::sandbox::internal
