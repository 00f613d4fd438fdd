#include "sandbox/child.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "sandbox/sandbox.h"

namespace crucible::sandbox::internal {
namespace {

// Returns 0, or errno of the failed call.
inline int Check(long rc) { return rc < 0 ? errno : 0; }

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void WriteString(int fd, const char* s) { WriteAll(fd, s, std::strlen(s)); }

void SendMessage(const ChildContext& ctx, int32_t kind, size_t step, int value) {
  InitMessage msg{kind, static_cast<int32_t>(step), value};
  while (::send(ctx.report_fd, &msg, sizeof(msg), MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

// fork() without glibc's atfork handlers and malloc locking: in this copy of
// a multi-threaded caller those locks may be held by threads that do not
// exist here.
pid_t RawFork() { return static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)); }

int ResetSignals() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    (void)::sigaction(sig, &sa, nullptr);  // EINVAL for the C library's own signals
  }
  sigset_t none;
  sigemptyset(&none);
  return Check(::sigprocmask(SIG_SETMASK, &none, nullptr));
}

// Init is a copy of the caller: its /proc/1/cmdline (readable by anyone,
// unlike environ or memory) would show the caller's argv. Overwrites that
// memory, found through /proc/self/stat (fields 48 and 49: arg_start, arg_end).
int Rename() {
  static constexpr char kName[] = "crucible-init";
  if (::prctl(PR_SET_NAME, kName, 0, 0, 0) != 0) return errno;
  int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[2048];
  size_t len = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf + len, sizeof(buf) - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  const char* p = std::strrchr(buf, ')');  // after comm, which may hold anything
  if (p == nullptr) return EINVAL;
  unsigned long values[2] = {0, 0};
  int field = 2;
  for (++p; *p != '\0'; ++p) {
    if (*p == ' ') {
      ++field;
      continue;
    }
    if (field == 48 || field == 49) {
      if (*p < '0' || *p > '9') return EINVAL;
      values[field - 48] = values[field - 48] * 10 + static_cast<unsigned long>(*p - '0');
    }
  }
  unsigned long start = values[0], end = values[1];
  if (field < 49 || start == 0 || end <= start) return EINVAL;
  char* args = reinterpret_cast<char*>(start);
  std::memset(args, 0, end - start);
  std::memcpy(args, kName, std::min(sizeof(kName), end - start) - 1);
  return 0;
}

int RedirectStdio(ChildContext& ctx) {
  // The parent made every pipe descriptor >= 3.
  if (ctx.stdout_fd >= 0 && ::dup2(ctx.stdout_fd, 1) < 0) return errno;
  if (ctx.stderr_fd >= 0 && ::dup2(ctx.stderr_fd, 2) < 0) return errno;
  if (ctx.report_fd != 3) {
    if (::dup3(ctx.report_fd, 3, O_CLOEXEC) < 0) return errno;
    ctx.report_fd = 3;
  }
  if (ctx.keep_stdin) return 0;
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  if (fd == 0) return Check(::fcntl(0, F_SETFD, 0));
  int err = Check(::dup2(fd, 0));
  ::close(fd);
  return err;
}

int CloseInheritedFds() {
  if (::close_range(4, ~0U, 0) == 0) return 0;
  if (errno != ENOSYS) return errno;
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return errno;
  for (rlim_t fd = 4; fd < rl.rlim_cur; ++fd) ::close(static_cast<int>(fd));
  return 0;
}

int SetParentDeathSignal(const ChildContext& ctx) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return errno;
  // The caller may have died before the line above: then nobody reads the
  // report pipe any more (the parent held the only read end).
  struct pollfd p = {ctx.report_fd, 0, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP))) ::_exit(kSetupFailedExitStatus);
  return 0;
}

// The parent sends one byte once init is in the sandbox's cgroups; EOF means
// it gave up (or died).
int WaitForParent(const ChildContext& ctx) {
  char go = 0;
  ssize_t n;
  do {
    n = ::read(ctx.report_fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno;
  return n == 1 ? 0 : ECONNRESET;
}

// Sends `fd` to the parent in a message of `kind` (SCM_RIGHTS) and closes it
// here.
int SendDescriptor(const ChildContext& ctx, int32_t kind, int fd) {
  InitMessage msg{kind, 0, 0};
  struct iovec iov = {&msg, sizeof(msg)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  std::memset(control, 0, sizeof(control));
  struct msghdr mh;
  std::memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof(control);
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&mh);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(ctx.report_fd, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  ::close(fd);
  return err;
}

// Installs the filter. With a listener, sends it to the parent (which answers
// the notifications) and closes it here: nothing in the sandbox may hold it,
// or it could allow its own blocked calls.
int InstallSeccomp(const ChildContext& ctx) {
  struct sock_fprog prog;
  prog.len = ctx.seccomp_length;
  prog.filter = const_cast<sock_filter*>(ctx.seccomp_filter);
  unsigned long flags = ctx.seccomp_notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
  long fd = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (fd < 0) return errno;
  if (!ctx.seccomp_notify) return 0;
  return SendDescriptor(ctx, InitMessage::kSeccompListener, static_cast<int>(fd));
}

// The egress proxy's listening socket, made here so that it lives in the
// sandbox's network namespace, served by the parent: it exists before the
// command starts, and nothing in the sandbox holds it.
int EgressListener(const Step& step, const ChildContext& ctx) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(step.limit));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 128) != 0) {
    int err = errno;
    ::close(fd);
    return err;
  }
  return SendDescriptor(ctx, InitMessage::kEgressListener, fd);
}

// Writes b to /proc/sys/user/<a>: the kernel picks the calling process's
// user namespace's value, which init (all capabilities there) may change.
int WriteUserNsLimit(const Step& step) {
  char path[128] = "/proc/sys/user/";
  size_t len = std::strlen(path);
  if (len + step.a.size() >= sizeof(path)) return ENAMETOOLONG;
  std::memcpy(path + len, step.a.c_str(), step.a.size() + 1);
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = ::write(fd, step.b.data(), step.b.size());
  int err = n < 0 ? errno : 0;
  ::close(fd);
  if (n >= 0 && static_cast<size_t>(n) != step.b.size()) err = EIO;
  return err;
}

int SetRlimit(const Step& step) {
  struct rlimit rl;
  rl.rlim_cur = static_cast<rlim_t>(step.limit);
  rl.rlim_max = static_cast<rlim_t>(step.limit_max);
  return Check(::setrlimit(static_cast<__rlimit_resource>(step.flags), &rl));
}

// Creates the directory or file `path` (absolute, normalized) and its missing
// parents. Fails with ELOOP on any existing symlink on the way: setup runs as
// root before the old root is detached, so a symlink (say, in the workspace)
// could otherwise lead a mkdir or a mount onto the host.
int MakeMountPoint(const char* path, bool is_dir) {
  char buf[PATH_MAX];
  size_t len = std::strlen(path);
  if (len == 0 || len >= sizeof(buf) || path[0] != '/') return EINVAL;
  std::memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; ++i) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char saved = buf[i];
    buf[i] = '\0';
    bool last = i == len;
    struct stat st;
    if (::lstat(buf, &st) == 0) {
      if (S_ISLNK(st.st_mode)) return ELOOP;
      if (!last && !S_ISDIR(st.st_mode)) return ENOTDIR;
    } else if (errno != ENOENT) {
      return errno;
    } else if (!last || is_dir) {
      if (::mkdir(buf, 0755) != 0 && errno != EEXIST) return errno;
    } else {
      int fd = ::open(buf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0) return errno;
      ::close(fd);
    }
    buf[i] = saved;
  }
  return 0;
}

// The flags of the mount at `path` that an unprivileged remount may not clear
// (the kernel locks them on mounts inherited into a user namespace), as MS_*.
unsigned long LockedFlags(const char* path) {
  constexpr unsigned long kValid = 0x0020;  // ST_VALID: f_flags is filled in (Linux >= 2.6.36)
  struct statfs st;
  if (::statfs(path, &st) != 0 || !(static_cast<unsigned long>(st.f_flags) & kValid)) return 0;
  unsigned long flags = 0;
  if (st.f_flags & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flags & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flags & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flags & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

int Bind(const Step& step, const ChildContext& ctx) {
  if (::mount(step.a.c_str(), step.b.c_str(), nullptr, MS_BIND, nullptr) != 0) return errno;
  unsigned long flags = step.flags;
  if (ctx.user_namespace) flags |= LockedFlags(step.b.c_str());
  return Check(::mount(nullptr, step.b.c_str(), nullptr, MS_BIND | MS_REMOUNT | flags, nullptr));
}

int LoopbackUp() {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof(ifr));
  std::memcpy(ifr.ifr_name, "lo", 3);
  int err = Check(::ioctl(fd, SIOCGIFFLAGS, &ifr));
  if (err == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    err = Check(::ioctl(fd, SIOCSIFFLAGS, &ifr));
  }
  ::close(fd);
  return err;
}

int DropCapabilities() {
  for (int cap = 0; cap < 64; ++cap) {
    if (kKeptCapabilities & (1ull << cap)) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return errno;
  }
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  std::memset(data, 0, sizeof(data));
  if (::syscall(SYS_capget, &header, data) != 0) return errno;
  for (int i = 0; i < 2; ++i) {
    auto keep = static_cast<uint32_t>(kKeptCapabilities >> (32 * i));
    data[i].effective &= keep;
    data[i].permitted &= keep;
    data[i].inheritable = 0;
  }
  return Check(::syscall(SYS_capset, &header, data));
}

int RunStep(const Step& step, ChildContext& ctx) {
  switch (step.op) {
    case Op::kResetSignals:
      return ResetSignals();
    case Op::kNonDumpable:
      return Check(::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0));
    case Op::kRename:
      return Rename();
    case Op::kStdio:
      return RedirectStdio(ctx);
    case Op::kCloseFds:
      return CloseInheritedFds();
    case Op::kNewSession:
      return Check(::setsid());
    case Op::kParentDeathSignal:
      return SetParentDeathSignal(ctx);
    case Op::kWaitForParent:
      return WaitForParent(ctx);
    case Op::kUserNsLimit:
      return ctx.user_namespace ? WriteUserNsLimit(step) : 0;
    case Op::kUnshareCgroup:
      return Check(::unshare(CLONE_NEWCGROUP));
    case Op::kMakeMountsPrivate:
      return Check(::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr));
    case Op::kMkdir:
      if (::mkdir(step.a.c_str(), 0700) != 0 && errno != EEXIST) return errno;
      return 0;
    case Op::kMount:
      return Check(::mount(step.a.c_str(), step.b.c_str(), step.c.c_str(), step.flags,
                           step.d.empty() ? nullptr : step.d.c_str()));
    case Op::kPivotRoot:
      if (::syscall(SYS_pivot_root, step.a.c_str(), step.b.c_str()) != 0) return errno;
      return Check(::chdir("/"));
    case Op::kMakeMountPoint:
      return MakeMountPoint(step.a.c_str(), step.is_dir);
    case Op::kBind:
      return Bind(step, ctx);
    case Op::kSymlink:
      return Check(::symlink(step.a.c_str(), step.b.c_str()));
    case Op::kDetach:
      if (::umount2(step.a.c_str(), MNT_DETACH) != 0) return errno;
      return Check(::rmdir(step.a.c_str()));
    case Op::kRemove:
      return Check(step.is_dir ? ::rmdir(step.a.c_str()) : ::unlink(step.a.c_str()));
    case Op::kRemount: {
      unsigned long flags = step.flags;
      if (ctx.user_namespace) flags |= LockedFlags(step.a.c_str());
      return Check(
          ::mount(nullptr, step.a.c_str(), nullptr, MS_BIND | MS_REMOUNT | flags, nullptr));
    }
    case Op::kSetHostname:
      return Check(::sethostname(step.a.c_str(), step.a.size()));
    case Op::kLoopbackUp:
      return LoopbackUp();
    case Op::kEgressListener:
      return EgressListener(step, ctx);
    case Op::kChdir:
      return Check(::chdir(step.a.c_str()));
    case Op::kDropCapabilities:
      return DropCapabilities();
    case Op::kNoNewPrivs:
      return Check(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    case Op::kSetRlimit:
      return SetRlimit(step);
    case Op::kSeccomp:
      return InstallSeccomp(ctx);
  }
  return EINVAL;
}

// execve(), falling back to /bin/sh for a file without #! (like execvp).
int TryExec(ChildContext& ctx, const char* path) {
  ::execve(path, ctx.argv, ctx.envp);
  int err = errno;
  if (err == ENOEXEC) {
    ctx.sh_argv[1] = const_cast<char*>(path);
    ::execve("/bin/sh", ctx.sh_argv, ctx.envp);
    err = errno;
  }
  return err;
}

// Runs the command; on failure, reports like a shell: 127 when not found,
// 126 when found but not executable.
[[noreturn]] void ExecCommand(ChildContext& ctx) {
  const char* file = ctx.argv[0];
  int err = ENOENT;
  if (std::strchr(file, '/') != nullptr) {
    err = TryExec(ctx, file);
  } else {
    size_t file_len = std::strlen(file);
    bool denied = false;
    bool fatal = false;
    const char* dir = ctx.path;
    char buf[PATH_MAX];
    while (!fatal) {
      const char* end = dir;
      while (*end != '\0' && *end != ':') ++end;
      size_t dir_len = static_cast<size_t>(end - dir);
      if (dir_len == 0) {  // an empty entry is the working directory
        buf[0] = '.';
        dir_len = 1;
      } else if (dir_len < sizeof(buf)) {
        std::memcpy(buf, dir, dir_len);
      }
      if (dir_len + 1 + file_len < sizeof(buf)) {
        buf[dir_len] = '/';
        std::memcpy(buf + dir_len + 1, file, file_len + 1);
        int e = TryExec(ctx, buf);
        switch (e) {
          case EACCES:
            denied = true;
            break;
          case ENOENT:
          case ENOTDIR:
          case ELOOP:
          case ENAMETOOLONG:
          case ESTALE:
          case ENODEV:
          case ETIMEDOUT:
            break;
          default:
            err = e;
            fatal = true;
        }
      }
      if (*end == '\0') break;
      dir = end + 1;
    }
    if (!fatal) err = denied ? EACCES : ENOENT;
  }
  WriteString(2, "crucible sandbox: ");
  WriteString(2, file);
  WriteString(2, ": ");
  const char* desc = ::strerrordesc_np(err);
  WriteString(2, desc != nullptr ? desc : "cannot execute");
  WriteString(2, "\n");
  ::_exit(err == ENOENT ? 127 : 126);
}

}  // namespace

int InitMain(void* arg) {
  ChildContext& ctx = *static_cast<ChildContext*>(arg);
  for (size_t i = 0; i < ctx.step_count; ++i) {
    const Step& step = ctx.steps[i];
    int err = RunStep(step, ctx);
    if (err == 0 || step.optional || (err == ENOENT && step.skip_if_missing)) continue;
    SendMessage(ctx, InitMessage::kSetupFailed, i, err);
    ::_exit(kSetupFailedExitStatus);
  }

  pid_t command = RawFork();
  if (command < 0) {
    SendMessage(ctx, InitMessage::kSetupFailed, ctx.step_count, errno);
    ::_exit(kSetupFailedExitStatus);
  }
  if (command == 0) ExecCommand(ctx);

  // Reap everything reparented to us until the command itself exits. Exiting
  // then makes the kernel kill the rest of the namespace.
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      ::_exit(kSetupFailedExitStatus);  // cannot happen: the command is our child
    }
    if (pid != command) continue;
    SendMessage(ctx, InitMessage::kCommandFinished, 0, status);
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
}

}  // namespace crucible::sandbox::internal
