// The parent side of the sandbox: prepares everything, clone()s the init
// process into new namespaces, then supervises it (output, timeout, ticks)
// until it is reaped. See child.cc for the other side.
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "sandbox/cgroup.h"
#include "sandbox/child.h"
#include "sandbox/egress.h"
#include "sandbox/observe.h"
#include "sandbox/plan.h"
#include "sandbox/seccomp.h"
#include "sandbox/setid.h"

namespace crucible::sandbox {
namespace {

using Clock = std::chrono::steady_clock;
using internal::InitMessage;

constexpr auto kTickInterval = std::chrono::milliseconds(100);
// After init is reaped every writer of the capture pipes is dead (the kernel
// kills the whole pid namespace first), so EOF follows at once; this only
// bounds the wait if a descriptor somehow escaped the sandbox.
constexpr auto kDrainLimit = std::chrono::seconds(2);
constexpr size_t kStackSize = 512 * 1024;
constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  explicit operator bool() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Moves `fd` to a number >= 3, so init can dup2() onto 0..3 without clobbering it.
Result<Fd> AboveStdio(Fd fd) {
  if (fd.get() >= 3) return fd;
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return FailErrno("sandbox: fcntl");
  return Fd(moved);  // the low descriptor closes with `fd`
}

// A CLOEXEC pipe whose read end is non-blocking.
Status MakePipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return FailErrno("sandbox: pipe");
  Fd r(fds[0]);
  Fd w(fds[1]);
  CRUCIBLE_ASSIGN_OR_RETURN(read_end, AboveStdio(std::move(r)));
  CRUCIBLE_ASSIGN_OR_RETURN(write_end, AboveStdio(std::move(w)));
  if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) != 0) return FailErrno("sandbox: fcntl");
  return {};
}

constexpr std::string_view kRootDirPrefix = "crucible-sandbox-";

// Removes the empty root directories that processes killed while a sandbox
// ran left in `base` ("crucible-sandbox-<pid>-XXXXXX" of a pid that is gone).
// rmdir only: a directory that is not empty stays.
void SweepDeadRootDirs(const std::string& base) {
  DIR* d = ::opendir(base.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (!name.starts_with(kRootDirPrefix)) continue;
    name.remove_prefix(kRootDirPrefix.size());
    pid_t pid = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (ec != std::errc() || end == name.data() || *end != '-' || pid <= 0) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    ::rmdir(fmt::format("{}/{}", base, e->d_name).c_str());
  }
  ::closedir(d);
}

// The host directory the sandbox's root tmpfs is mounted on (in the child's
// mount namespace only: the host always sees it empty). Removed with rmdir,
// never recursively. Its name carries the pid of the process that made it, so
// that the first sandbox of a later process can remove it if that process
// was killed before it could.
class RootDir {
 public:
  static Result<RootDir> Create() {
    const char* env = std::getenv("TMPDIR");
    std::string base = env && *env ? env : "/tmp";
    static std::once_flag swept;
    std::call_once(swept, [&] { SweepDeadRootDirs(base); });
    std::string tmpl = fmt::format("{}/{}{}-XXXXXX", base, kRootDirPrefix, ::getpid());
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return FailErrno(fmt::format("sandbox: cannot create {}", tmpl));
    }
    RootDir dir;
    char resolved[PATH_MAX];
    if (::realpath(tmpl.c_str(), resolved) == nullptr) {
      ::rmdir(tmpl.c_str());
      return FailErrno(fmt::format("sandbox: cannot resolve {}", tmpl));
    }
    dir.path_ = resolved;
    return dir;
  }
  RootDir() = default;
  RootDir(RootDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  RootDir& operator=(RootDir&&) = delete;
  ~RootDir() {
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Kills and reaps init unless it was reaped normally (e.g. on_tick threw).
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  ~ChildGuard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  void Reaped() { pid_ = -1; }

 private:
  pid_t pid_;
};

// How much relayed output is held while the caller's descriptor is not
// ready for it; beyond that the pipe is not read, and the command waits.
constexpr size_t kRelayBuffer = 64 * 1024;

// A read end of a pipe and where its bytes go.
struct Stream {
  Fd fd;
  std::string* data = nullptr;
  int64_t* dropped = nullptr;
  size_t cap = 0;
  bool open = false;
  int relay_to = -1;    // relay mode: the caller's descriptor the bytes are copied to
  std::string pending;  // relay mode: read, not yet written to relay_to
  // Capture mode: sees every chunk read, before the cap (Spec::on_stdout).
  const std::function<void(std::string_view)>* observer = nullptr;

  bool Relays() const { return relay_to >= 0; }
  // Whether the pipe should be read now (a relay waits while its buffer is full).
  bool Readable() const { return open && (!Relays() || pending.size() < kRelayBuffer); }
};

// write(2) that reports a closed reader as EPIPE without raising SIGPIPE in
// the caller's process.
ssize_t WriteWithoutSigpipe(int fd, const char* data, size_t size) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE);
  ssize_t n = ::write(fd, data, size);
  int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    const struct timespec zero = {0, 0};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

// Writes what `s` holds to the caller's descriptor, in chunks a pipe that
// polled writable takes without blocking. When that descriptor fails (its
// reader is gone, it is closed), the rest is discarded and the pipe closed,
// so the command sees EPIPE as if it had written there itself.
void Relay(Stream& s) {
  while (!s.pending.empty()) {
    ssize_t n = WriteWithoutSigpipe(s.relay_to, s.pending.data(),
                                    std::min<size_t>(s.pending.size(), PIPE_BUF));
    if (n > 0) {
      s.pending.erase(0, static_cast<size_t>(n));
      return;  // poll again before the next chunk
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    s.pending.clear();
    s.open = false;
    s.fd.Reset();
    return;
  }
}

// Writes out everything `s` still holds once the sandbox is gone, waiting for
// the caller's descriptor as long as it takes (as a writer to a slow pipe
// would), unless it fails.
void FlushRelay(Stream& s) {
  while (!s.pending.empty()) {
    pollfd p = {s.relay_to, POLLOUT, 0};
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) return;
    Relay(s);
  }
}

// Reads what `s` has now (a bounded amount, so a flooding writer cannot
// starve the timeout). Closes it at EOF.
void Drain(Stream& s, bool& truncated) {
  char buf[64 * 1024];
  for (int round = 0; round < 16; ++round) {
    size_t want = sizeof(buf);
    if (s.Relays()) {
      want = std::min(want, kRelayBuffer - std::min(kRelayBuffer, s.pending.size()));
      if (want == 0) return;
    }
    ssize_t n = ::read(s.fd.get(), buf, want);
    if (n > 0 && s.Relays()) {
      s.pending.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n > 0) {
      size_t got = static_cast<size_t>(n);
      if (s.observer != nullptr && *s.observer) (*s.observer)(std::string_view(buf, got));
      size_t room = s.cap > s.data->size() ? s.cap - s.data->size() : 0;
      size_t take = std::min(room, got);
      s.data->append(buf, take);
      if (take < got) {
        if (s.dropped != nullptr) *s.dropped += static_cast<int64_t>(got - take);
        truncated = true;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    s.open = false;  // EOF, or an error we cannot recover from
    s.fd.Reset();
    return;
  }
}

// The sandbox's environment: the defaults, overridden or extended by `extra`.
std::vector<std::string> BuildEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env = {std::string("PATH=") + kDefaultPath, "HOME=/tmp", "LANG=C.UTF-8"};
  for (const auto& entry : extra) {
    std::string_view key(entry.data(), entry.find('=') + 1);  // "KEY="
    auto it = std::find_if(env.begin(), env.end(),
                           [&](const std::string& e) { return e.starts_with(key); });
    if (it != env.end()) {
      *it = entry;
    } else {
      env.push_back(entry);
    }
  }
  return env;
}

// Spec::env, after the proxy variables that point at the egress proxy (when
// there is one), so that entries of Spec::env win.
std::vector<std::string> WithEgressEnv(const Spec& spec) {
  if (spec.egress.empty()) return spec.env;
  std::string proxy = fmt::format("http://127.0.0.1:{}", kEgressProxyPort);
  std::vector<std::string> env;
  for (const char* key : {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"}) {
    env.push_back(fmt::format("{}={}", key, proxy));
  }
  // Servers the command starts on loopback stay direct.
  env.push_back("NO_PROXY=localhost,127.0.0.1");
  env.push_back("no_proxy=localhost,127.0.0.1");
  env.insert(env.end(), spec.env.begin(), spec.env.end());
  return env;
}

// Starts the egress proxy on the listener init sent, once.
void StartEgressProxy(const Spec& spec, Fd& listener, std::unique_ptr<internal::EgressProxy>& proxy,
                      Report& report) {
  if (proxy || !listener) return;
  std::vector<internal::EgressTarget> allowed;
  for (const auto& entry : spec.egress) {
    if (auto t = internal::ParseEgressTarget(entry)) allowed.push_back(std::move(*t));
  }
  auto started = internal::EgressProxy::Start(listener.get(), std::move(allowed));
  if (!started) {
    report.warnings.push_back(fmt::format("no egress: {}", started.error().message()));
    return;  // `listener` stays open: connections wait, then fail with the sandbox
  }
  (void)listener.Release();  // the proxy owns it now
  proxy = std::move(*started);
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The parent's end of the report socket: init's messages, and the seccomp
// listener init sends along.
struct ReportChannel {
  Fd fd;
  bool open = true;
  std::vector<InitMessage> messages;
  Fd listener;
  bool listener_lost = false;  // init sent it, but it did not arrive
  Fd egress_listener;          // the egress proxy's socket (Spec::egress)

  // Reads what is there now, without blocking. Closes at EOF.
  void Drain() {
    for (int round = 0; round < 64; ++round) {
      InitMessage msg;
      struct iovec iov = {&msg, sizeof(msg)};
      alignas(struct cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
      struct msghdr mh;
      std::memset(&mh, 0, sizeof(mh));
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = control;
      mh.msg_controllen = sizeof(control);
      ssize_t n = ::recvmsg(fd.get(), &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        open = false;
        fd.Reset();
        return;
      }
      bool complete = static_cast<size_t>(n) == sizeof(msg) && !(mh.msg_flags & MSG_TRUNC);
      for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int received;
          std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          if (complete && msg.kind == InitMessage::kSeccompListener && !listener) {
            listener = Fd(received);
          } else if (complete && msg.kind == InitMessage::kEgressListener && !egress_listener) {
            egress_listener = Fd(received);
          } else {
            ::close(received);
          }
        }
      }
      if (complete && msg.kind == InitMessage::kSeccompListener &&
          ((mh.msg_flags & MSG_CTRUNC) || !listener)) {
        listener_lost = true;  // e.g. this process is out of descriptors
      }
      if (complete) messages.push_back(msg);
    }
  }
};

// The sandbox's cgroup, or a warning (or an error, for required limits) when
// this host has none usable.
Result<std::optional<internal::Cgroup>> MakeCgroup(const Spec& spec, Report& report) {
  internal::CgroupLimits limits;
  limits.memory_bytes = spec.memory_limit_bytes.value_or(kDefaultMemoryLimitBytes);
  limits.pids = spec.pids_limit.value_or(kDefaultPidsLimit);
  auto cgroup = internal::Cgroup::Create(limits);
  if (cgroup) {
    report.cgroup_version = cgroup->version();
    return std::optional<internal::Cgroup>(std::move(*cgroup));
  }
  bool required = (spec.memory_limit_bytes && *spec.memory_limit_bytes > 0) ||
                  (spec.pids_limit && *spec.pids_limit > 0);
  if (required) return Fail(cgroup.error());
  report.warnings.push_back(fmt::format("no memory or pids limit, and no memory measurement: {}",
                                        cgroup.error().message()));
  return std::optional<internal::Cgroup>();
}

// Maps root of the user namespace of `pid` to `uid` and `gid` of the
// caller (setgroups denied first, as an unprivileged caller must).
Status WriteIdMaps(pid_t pid, uid_t uid, gid_t gid) {
  auto write = [&](const char* file, const std::string& text) -> Status {
    std::string path = fmt::format("/proc/{}/{}", pid, file);
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("sandbox setup: write {}: {}", path, std::strerror(errno)));
    }
    ssize_t n = ::write(fd, text.data(), text.size());
    int err = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(text.size())) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("sandbox setup: write {}: {}", path,
                              n < 0 ? std::strerror(err) : "short write"));
    }
    return {};
  };
  CRUCIBLE_RETURN_IF_ERROR(write("setgroups", "deny"));
  CRUCIBLE_RETURN_IF_ERROR(write("uid_map", fmt::format("0 {} 1\n", uid)));
  return write("gid_map", fmt::format("0 {} 1\n", gid));
}

}  // namespace

Result<Report> Run(const Spec& spec, const std::function<void()>& on_tick) {
  CRUCIBLE_ASSIGN_OR_RETURN(RootDir root, RootDir::Create());
  CRUCIBLE_ASSIGN_OR_RETURN(internal::Plan plan, internal::BuildPlan(spec, root.path()));

  Report report;
  const bool notify = internal::UserNotificationAvailable();
  // Write observation starts when the seccomp listener arrives, before the
  // command's own exec is answered, so exec notifications are on for it too.
  bool observe_writes = spec.observe_writes;
  if (observe_writes && spec.workspace.empty()) {
    report.observation_warnings.push_back("file writes not observed: the sandbox has no workspace");
    observe_writes = false;
  }
  if ((spec.observe_exec || observe_writes) && !notify) {
    report.observation_warnings.push_back(
        "commands executed and file writes not observed: this kernel has no seccomp user "
        "notification");
    observe_writes = false;
  }
  const bool notify_exec = notify && (spec.observe_exec || observe_writes);
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<sock_filter> filter,
                            internal::BuildSeccompProgram(notify, notify_exec));
  if (!notify) {
    report.warnings.push_back(
        "this kernel has no seccomp user notification: blocked syscalls were refused (EPERM) but "
        "not recorded in seccomp_violations");
  }
  CRUCIBLE_ASSIGN_OR_RETURN(std::optional<internal::Cgroup> cgroup, MakeCgroup(spec, report));

  // Everything init and the command need, prepared before clone().
  std::vector<std::string> env = BuildEnv(WithEgressEnv(spec));
  std::string path = kDefaultPath;
  for (const auto& e : env) {
    if (e.starts_with("PATH=") && e.size() > 5) path = e.substr(5);
  }
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv = CStrings(args);
  std::string sh = "/bin/sh";
  std::vector<char*> sh_argv = {sh.data(), nullptr};
  sh_argv.insert(sh_argv.end(), argv.begin() + 1, argv.end());  // argv[1..] and the NULL
  std::vector<char*> envp = CStrings(env);

  ReportChannel rep;
  Fd report_w;
  {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      return FailErrno("sandbox: socketpair");
    }
    Fd a(sv[0]), b(sv[1]);
    CRUCIBLE_ASSIGN_OR_RETURN(rep.fd, AboveStdio(std::move(a)));
    CRUCIBLE_ASSIGN_OR_RETURN(report_w, AboveStdio(std::move(b)));
  }
  Stream out{Fd(), &report.stdout_data, &report.stdout_dropped, spec.output_cap, false, -1, {}};
  Stream err{Fd(), &report.stderr_data, &report.stderr_dropped, spec.output_cap, false, -1, {}};
  if (spec.capture_output) out.observer = &spec.on_stdout;
  Fd out_w, err_w;
  if (spec.capture_output || !spec.interactive) {
    CRUCIBLE_RETURN_IF_ERROR(MakePipe(out.fd, out_w));
    CRUCIBLE_RETURN_IF_ERROR(MakePipe(err.fd, err_w));
    out.open = err.open = true;
  }
  if (!spec.capture_output && !spec.interactive) {
    out.relay_to = STDOUT_FILENO;
    err.relay_to = STDERR_FILENO;
  }

  internal::ChildContext ctx;
  ctx.steps = plan.steps.data();
  ctx.step_count = plan.steps.size();
  ctx.report_fd = report_w.get();
  ctx.stdout_fd = out_w.get();
  ctx.stderr_fd = err_w.get();
  ctx.keep_stdin = spec.interactive;
  ctx.argv = argv.data();
  ctx.sh_argv = sh_argv.data();
  ctx.envp = envp.data();
  ctx.path = path.c_str();
  ctx.seccomp_filter = filter.data();
  ctx.seccomp_length = static_cast<unsigned short>(filter.size());
  ctx.seccomp_notify = notify;
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  ctx.user_namespace = spec.user_namespace || uid != 0;

  void* stack = ::mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return FailErrno("sandbox: mmap");

  // Signals stay blocked until init has reset their handlers (which are the
  // caller's until then). The cgroup namespace is created by init once it is
  // in its cgroups, so that it is rooted there.
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD | SIGCHLD;
  if (spec.network == Network::kNone) flags |= CLONE_NEWNET;
  if (ctx.user_namespace) flags |= CLONE_NEWUSER;
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd_raw = -1;
  const auto start = Clock::now();
  // File timestamps come from the coarse clock; a second's margin covers a
  // small step of the clock as well.
  timespec started_real{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &started_real);
  started_real.tv_sec -= 1;
  pid_t pid =
      ::clone(internal::InitMain, static_cast<char*>(stack) + kStackSize, flags, &ctx, &pidfd_raw);
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kStackSize);  // the child has its own copy
  if (pid < 0) {
    std::string message =
        fmt::format("sandbox setup: create namespaces: {}", std::strerror(clone_errno));
    if (clone_errno == EPERM && ctx.user_namespace) {
      message +=
          " (are unprivileged user namespaces disabled on this host? see "
          "/proc/sys/kernel/unprivileged_userns_clone and user.max_user_namespaces)";
    } else if (clone_errno == EPERM) {
      message += " (the sandbox needs root)";
    }
    return Fail(Code::kFailedPrecondition, std::move(message));
  }
  ChildGuard guard(pid);  // declared after `cgroup`: init is reaped before the cgroup goes
  Fd pidfd(pidfd_raw);
  report_w.Reset();
  out_w.Reset();
  err_w.Reset();

  // Into the cgroups and its ids mapped before init does anything, then let it go.
  if (cgroup) CRUCIBLE_RETURN_IF_ERROR(cgroup->AddProcess(pid));
  if (ctx.user_namespace) CRUCIBLE_RETURN_IF_ERROR(WriteIdMaps(pid, uid, gid));
  if (::send(rep.fd.get(), "g", 1, MSG_NOSIGNAL) != 1) {
    return FailErrno("sandbox setup: start init");
  }

  // The deadline, as milliseconds since start (no time_point arithmetic that
  // could overflow with a huge timeout).
  const int64_t timeout_ms = spec.timeout.count() > 0 ? spec.timeout.count() : -1;
  auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  };
  auto next_tick = start + kTickInterval;
  std::optional<Clock::time_point> drain_until;
  bool exited = false;
  bool killed = false;
  std::optional<int> init_status;
  struct rusage usage;
  std::memset(&usage, 0, sizeof(usage));
  uint64_t execs_passed_on = 0;
  internal::ViolationRecorder violations(
      spec.observe_exec ? internal::ViolationRecorder::ExecObserver([&](Observation o) {
        if (execs_passed_on >= spec.max_observations) return false;
        ++execs_passed_on;
        if (spec.on_observation) spec.on_observation(o);
        return execs_passed_on < spec.max_observations;
      })
                        : internal::ViolationRecorder::ExecObserver());
  std::optional<internal::WriteWatcher> writes;
  bool writes_tried = false;
  uint64_t writes_passed_on = 0;
  auto drain_writes = [&] {
    report.observed_writes +=
        writes->Drain(writes_passed_on < spec.max_observations, [&](std::string_view path) {
          if (writes_passed_on >= spec.max_observations) return;
          ++writes_passed_on;
          Observation o;
          o.kind = Observation::Kind::kFileWrite;
          o.time = std::chrono::system_clock::now();
          o.path = path;
          if (spec.on_observation) spec.on_observation(o);
        });
  };
  Stream* streams[] = {&out, &err};
  std::unique_ptr<internal::EgressProxy> egress;  // stopped when init is reaped

  for (;;) {
    bool streams_open = rep.open || out.open || err.open;
    if (exited && (!streams_open || Clock::now() >= *drain_until)) break;

    // What each polled descriptor is: 0 init, 1 report, 2 listener, 3+ streams,
    // 5+ the caller's descriptors output is relayed to, 7 the write watcher.
    pollfd fds[8];
    int what[8];
    nfds_t n = 0;
    if (!exited) {
      what[n] = 0;
      fds[n++] = {pidfd.get(), POLLIN, 0};
    }
    if (rep.open) {
      what[n] = 1;
      fds[n++] = {rep.fd.get(), POLLIN, 0};
    }
    // Refused calls are answered at a bounded rate (see ViolationRecorder).
    const auto refusal_wait = violations.UntilReady(Clock::now());
    if (rep.listener && refusal_wait.count() == 0) {
      what[n] = 2;
      fds[n++] = {rep.listener.get(), POLLIN, 0};
    }
    for (int i = 0; i < 2; ++i) {
      if (streams[i]->Readable()) {
        what[n] = 3 + i;
        fds[n++] = {streams[i]->fd.get(), POLLIN, 0};
      }
      if (!streams[i]->pending.empty()) {
        what[n] = 5 + i;
        fds[n++] = {streams[i]->relay_to, POLLOUT, 0};
      }
    }
    if (writes) {
      what[n] = 7;
      fds[n++] = {writes->fd(), POLLIN, 0};
    }
    auto now = Clock::now();
    auto wake = exited ? *drain_until : next_tick;
    int64_t wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1;
    if (!exited && !killed && timeout_ms >= 0) {
      wait_ms = std::min(wait_ms, timeout_ms - elapsed_ms());
    }
    if (rep.listener && refusal_wait.count() > 0) {
      wait_ms = std::min<int64_t>(wait_ms, refusal_wait.count());
    }
    int poll_ms = static_cast<int>(std::clamp<int64_t>(wait_ms, 0, 100));
    if (::poll(fds, n, poll_ms) < 0 && errno != EINTR) return FailErrno("sandbox: poll");

    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      switch (what[i]) {
        case 0: {
          int status = 0;
          pid_t r;
          do {
            r = ::wait4(pid, &status, 0, &usage);
          } while (r < 0 && errno == EINTR);
          guard.Reaped();
          report.wall_ms =
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
          if (r == pid) init_status = status;  // else ECHILD: SIGCHLD ignored by the caller
          exited = true;
          // Every process of the sandbox is gone: so are its connections.
          if (egress) report.egress = egress->Stop();
          drain_until = Clock::now() + kDrainLimit;
          break;
        }
        case 1:
          rep.Drain();
          // The workspace is mounted by now (the filter is init's last
          // step), and the command's exec waits for its answer.
          if (rep.listener && observe_writes && !writes_tried) {
            writes_tried = true;
            auto w = internal::WriteWatcher::Start(fmt::format("/proc/{}/root/workspace", pid));
            if (w) {
              writes.emplace(std::move(*w));
            } else {
              report.observation_warnings.push_back(w.error().message());
            }
          }
          StartEgressProxy(spec, rep.egress_listener, egress, report);
          break;
        case 2:
          if (fds[i].revents & POLLIN) {
            // Writes closed before this call are queued already: stamp them
            // first, so a write and the exec that follows it (an edit, then
            // the test run) are observed in the order they happened.
            if (writes) drain_writes();
            violations.HandleOne(rep.listener.get());
          } else {
            rep.listener.Reset();  // no process uses the filter any more
          }
          break;
        case 3:
        case 4:
          Drain(*streams[what[i] - 3], report.output_truncated);
          break;
        case 7:
          drain_writes();
          break;
        default:
          Relay(*streams[what[i] - 5]);
      }
    }

    now = Clock::now();
    if (!exited && !killed && timeout_ms >= 0 && elapsed_ms() >= timeout_ms) {
      ::kill(pid, SIGKILL);  // init: the kernel then kills the whole pid namespace
      killed = true;
    }
    if (!exited && now >= next_tick) {
      if (on_tick) on_tick();
      next_tick = Clock::now() + kTickInterval;
    }
  }
  if (!spec.capture_output) {
    for (Stream* s : {&out, &err}) {
      if (s->Relays()) FlushRelay(*s);
    }
  }
  if (spec.capture_output) {
    // Whatever is still buffered in the capture pipes, without blocking.
    for (Stream* s : {&out, &err}) {
      if (s->open) Drain(*s, report.output_truncated);
    }
    report.stdout_bytes = static_cast<int64_t>(report.stdout_data.size()) + report.stdout_dropped;
    report.stderr_bytes = static_cast<int64_t>(report.stderr_data.size()) + report.stderr_dropped;
  }
  if (rep.open) rep.Drain();
  if (writes) {
    // Every writer is dead by now: what it closed is queued.
    for (int round = 0; round < 64; ++round) {
      uint64_t before = report.observed_writes;
      drain_writes();
      if (report.observed_writes == before) break;
    }
    if (writes->overflowed()) {
      report.observation_warnings.push_back(
          "some file writes were not observed: the kernel's event queue overflowed");
    }
    if (!writes->read_error().empty()) {
      report.observation_warnings.push_back(
          fmt::format("some file writes were not observed: reading fanotify events failed: {}",
                      writes->read_error()));
    }
  }
  if (spec.observe_exec) report.observed_execs = violations.execs();
  if (report.observed_execs > execs_passed_on && spec.observe_exec) {
    report.observation_warnings.push_back(fmt::format(
        "{} of {} commands executed were counted but not recorded (the limit is {})",
        report.observed_execs - execs_passed_on, report.observed_execs, spec.max_observations));
  }
  if (report.observed_writes > writes_passed_on) {
    report.observation_warnings.push_back(fmt::format(
        "{} of {} file writes were counted but not recorded (the limit is {})",
        report.observed_writes - writes_passed_on, report.observed_writes, spec.max_observations));
  }
  // A proxy started in the poll round that also saw init exit.
  if (egress && report.egress.empty()) report.egress = egress->Stop();

  // Everything init waited for is in its children's times.
  auto ms = [](const timeval& tv) {
    return static_cast<int64_t>(tv.tv_sec) * 1000 + static_cast<int64_t>(tv.tv_usec) / 1000;
  };
  report.cpu_ms = ms(usage.ru_utime) + ms(usage.ru_stime);
  if (cgroup) {
    internal::CgroupStats stats = cgroup->Stats();
    report.oom_killed = stats.oom_killed;
    report.memory_peak_bytes = stats.memory_peak_bytes;
    report.pids_limit_hit = stats.pids_limit_hit;
    // The cgroup also counts processes the kernel killed and reaped when the
    // namespace was torn down, which init's rusage misses.
    if (stats.cpu_usec) {
      report.cpu_ms = std::max(report.cpu_ms, static_cast<int64_t>(*stats.cpu_usec / 1000));
    }
  }
  // Behind the seccomp rules that refuse making set-uid and set-gid files: no
  // such file made or changed during the run is left where host users could
  // run it.
  std::vector<std::string> writable;
  if (!spec.workspace.empty()) writable.push_back(spec.workspace);
  for (const Bind& b : spec.binds) {
    if (b.writable) writable.push_back(b.host_path);
  }
  for (const std::string& dir : writable) {
    auto cleared = internal::ClearSetidBits(dir, started_real);
    if (!cleared) {
      report.warnings.push_back(cleared.error().message());
    } else if (*cleared > 0) {
      report.warnings.push_back(
          fmt::format("cleared the set-uid/set-gid bits of {} entries under {}", *cleared, dir));
    }
  }
  if (rep.listener_lost) {
    report.warnings.push_back(
        "the seccomp listener did not reach the runner: blocked syscalls failed with ENOSYS and "
        "were not recorded");
  }
  for (const auto& [name, count] : violations.counts()) {
    report.seccomp_violations.push_back({name, count});
  }

  std::optional<int> command_status;
  for (const InitMessage& msg : rep.messages) {
    if (msg.kind == InitMessage::kSetupFailed) {
      auto step = static_cast<size_t>(msg.step);
      std::string what = step < plan.steps.size() ? plan.steps[step].label : "start the command";
      return Fail(Code::kFailedPrecondition,
                  fmt::format("sandbox setup: {}: {}", what, std::strerror(msg.value)));
    }
    if (msg.kind == InitMessage::kCommandFinished) command_status = msg.value;
  }

  if (command_status) {
    if (WIFSIGNALED(*command_status)) {
      report.signal = WTERMSIG(*command_status);
    } else {
      report.exit_code = WEXITSTATUS(*command_status);
    }
  } else if (killed) {
    report.timed_out = true;
    report.signal = SIGKILL;
  } else if (init_status && WIFSIGNALED(*init_status)) {
    report.signal = WTERMSIG(*init_status);  // init itself was killed (from outside, or OOM)
  } else if (init_status && WIFEXITED(*init_status)) {
    report.exit_code = WEXITSTATUS(*init_status);
  } else {
    return Fail(Code::kInternal, "sandbox: init exited without reporting the command's status");
  }
  return report;
}

int ExitStatus(const Report& report) {
  if (report.timed_out) return 124;
  if (report.signal != 0) return 128 + report.signal;
  return report.exit_code >= 0 ? report.exit_code : kSetupFailedExitStatus;
}

Status CheckEgressEntry(std::string_view entry) {
  CRUCIBLE_RETURN_IF_ERROR(internal::ParseEgressTarget(entry));
  return {};
}

bool IsSystemPath(std::string_view path) {
  for (std::string_view dir : internal::kSystemDirs) {
    if (path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/') return true;
  }
  return false;
}

}  // namespace crucible::sandbox
