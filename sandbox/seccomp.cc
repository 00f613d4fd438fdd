#include "sandbox/seccomp.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/net.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "base/fs.h"
#include "sandbox/observe.h"

namespace crucible::sandbox::internal {
namespace {

// Docker's default profile blocks these (most of them by not allowing them
// without a capability the sandbox drops anyway; the filter is a second
// layer). Names unknown to this libseccomp are skipped; names a given ABI
// lacks (umount and vm86 on x86-64) only apply to the others.
const char* const kBlocked[] = {
    // The mount family and changing the root.
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fspick",
    "mount_setattr",
    // Namespaces (clone with CLONE_NEW* flags: below).
    "unshare",
    "setns",
    // Other processes' memory and descriptors.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    // The kernel itself.
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "bpf",
    "perf_event_open",
    "lookup_dcookie",
    "syslog",
    "nfsservctl",
    "_sysctl",
    "sysfs",
    "uselib",
    "ustat",
    "vm86",
    "vm86old",
    "iopl",
    "ioperm",
    "acct",
    "quotactl",
    "quotactl_fd",
    "vhangup",
    "reboot",
    "swapon",
    "swapoff",
    "fanotify_init",
    // The keyring (not namespaced).
    "keyctl",
    "add_key",
    "request_key",
    // Handles that bypass path permission checks.
    "open_by_handle_at",
    "name_to_handle_at",
    // Exploit primitives with a long CVE history.
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // The clock (not namespaced).
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_settime64",
    "clock_adjtime",
    "clock_adjtime64",
    "adjtimex",
    // personality() with other values than Docker allows (see kPersonalityPrefix).
    "personality",
};

// The calls that take a file mode, and which argument holds it (and, for
// the opens, the flags that make them create a file: O_CREAT, O_TMPFILE).
// mkdir and mkdirat are not here: the kernel ignores S_ISUID and S_ISGID in
// their mode.
struct SetidRule {
  const char* name;
  unsigned mode_arg;
  int flags_arg;  // -1: the call always uses the mode
};
constexpr SetidRule kSetidRules[] = {
    {"chmod", 1, -1},     {"fchmod", 1, -1}, {"fchmodat", 2, -1},
    {"fchmodat2", 2, -1}, {"creat", 1, -1},  {"mknod", 1, -1},
    {"mknodat", 2, -1},   {"open", 2, 1},    {"openat", 3, 2},
};

constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

constexpr uint32_t kX32Bit = 0x40000000;

// Syscall numbers beyond this are never looked up in libseccomp's tables
// (the highest known one is in the 450s on every x86 ABI; x32's own are
// 512..547): they are all unknown.
constexpr int kHighestScanned = 1023;

// The name libseccomp gives `nr` on `audit_arch` (x32 when the x32 bit is
// set on x86-64), or nothing when it does not know the number.
std::optional<std::string> SyscallName(uint32_t audit_arch, uint32_t nr) {
  uint32_t scmp_arch = SCMP_ARCH_X86_64;
  if (audit_arch == AUDIT_ARCH_I386) {
    scmp_arch = SCMP_ARCH_X86;
  } else if (audit_arch != AUDIT_ARCH_X86_64) {
    return std::nullopt;
  } else if ((nr & kX32Bit) != 0) {
    scmp_arch = SCMP_ARCH_X32;
  }
  uint32_t index = scmp_arch == SCMP_ARCH_X32 ? nr & ~kX32Bit : nr;
  if (index > static_cast<uint32_t>(kHighestScanned)) return std::nullopt;
  char* name = seccomp_syscall_resolve_num_arch(scmp_arch, static_cast<int>(nr));
  if (name == nullptr) return std::nullopt;
  std::string result(name);
  std::free(name);
  return result;
}

// The syscall numbers libseccomp knows on `audit_arch`, ascending.
std::vector<uint32_t> KnownSyscalls(uint32_t audit_arch) {
  std::vector<uint32_t> known;
  for (uint32_t base : {0u, kX32Bit}) {
    if (base != 0 && audit_arch != AUDIT_ARCH_X86_64) continue;
    for (int nr = 0; nr <= kHighestScanned; ++nr) {
      uint32_t n = base | static_cast<uint32_t>(nr);
      if (SyscallName(audit_arch, n)) known.push_back(n);
    }
  }
  return known;
}

// libseccomp only filters the syscalls it knows, and the filter allows by
// default: numbers newer than the installed libseccomp (and everything above
// its highest known number) would pass unrecorded. This hand-written prefix
// sends every number libseccomp does not know on the caller's ABI to
// `unknown` (the parent answers ENOSYS, so the C library falls back to the
// older call, and records "unknown:N"), as ranges: for each range [lo, hi]
// of unknown numbers, "nr > hi: next range; nr >= lo: unknown; else known".
// Other architectures fall through to libseccomp's program, which kills.
std::vector<sock_filter> UnknownSyscallPrefix(uint32_t unknown) {
  constexpr uint32_t kArch = offsetof(struct seccomp_data, arch);
  constexpr uint32_t kNr = offsetof(struct seccomp_data, nr);
  struct Range {
    uint32_t lo, hi;
  };
  auto unknown_ranges = [](uint32_t audit_arch) {
    std::vector<Range> ranges;
    uint64_t next = 0;  // the lowest number not yet covered
    for (uint32_t nr : KnownSyscalls(audit_arch)) {
      if (nr > next) ranges.push_back({static_cast<uint32_t>(next), nr - 1});
      next = uint64_t{nr} + 1;
    }
    if (next <= 0xffffffffu) ranges.push_back({static_cast<uint32_t>(next), 0xffffffffu});
    return ranges;
  };
  // Layout: ld arch; jeq x86-64 (no: skip 1); ja L64; jeq i386 (no: skip 1);
  // ja L32; ja end; L64: ...; L32: ...; end. `ja` takes 32-bit offsets, so
  // no conditional jump here goes further than 3 instructions.
  std::vector<sock_filter> p;
  std::vector<std::pair<size_t, const size_t*>> jumps;  // `ja` at index -> target
  size_t l64 = 0, l32 = 0, end = 0;
  auto ja = [&](const size_t* target) {
    jumps.emplace_back(p.size(), target);
    p.push_back(BPF_STMT(BPF_JMP | BPF_JA, 0));
  };
  auto emit_abi = [&](const std::vector<Range>& ranges) {
    p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr));
    for (const Range& r : ranges) {
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, r.hi, 3, 0));
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, r.lo, 0, 1));
      p.push_back(BPF_STMT(BPF_RET | BPF_K, unknown));
      ja(&end);
    }
    ja(&end);  // not reached: the last range ends at 0xffffffff
  };
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch));
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 1));
  ja(&l64);
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 0, 1));
  ja(&l32);
  ja(&end);
  l64 = p.size();
  emit_abi(unknown_ranges(AUDIT_ARCH_X86_64));
  l32 = p.size();
  emit_abi(unknown_ranges(AUDIT_ARCH_I386));
  end = p.size();
  for (const auto& [at, target] : jumps) p[at].k = static_cast<uint32_t>(*target - at - 1);
  return p;
}

// libseccomp cannot express "personality(x) unless x is one of ..." under a
// default-allow policy (an ALLOW rule equal to the default is refused, and a
// rule may compare an argument only once), so this hand-written prefix allows
// Docker's values (PER_LINUX, PER_LINUX32, UNAME26, both, and the query
// 0xffffffff) and falls through to the libseccomp program otherwise, which
// blocks personality unconditionally.
std::vector<sock_filter> PersonalityPrefix() {
  constexpr uint32_t kArch = offsetof(struct seccomp_data, arch);
  constexpr uint32_t kNr = offsetof(struct seccomp_data, nr);
  constexpr uint32_t kArg0Lo = offsetof(struct seccomp_data, args);  // little endian
  constexpr uint32_t kArg0Hi = kArg0Lo + 4;
  constexpr uint32_t kPersonality64 = 135, kPersonality32 = 136;
  // Instruction indexes; kEnd is the first instruction of libseccomp's program.
  constexpr uint8_t kAllow = 16, kEnd = 17;
  auto jeq = [](uint32_t k, uint8_t self, uint8_t jt, uint8_t jf) {
    return sock_filter BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, static_cast<uint8_t>(jt - self - 1),
                                static_cast<uint8_t>(jf - self - 1));
  };
  auto ld = [](uint32_t off) { return sock_filter BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off); };
  std::vector<sock_filter> p = {
      /* 0 */ ld(kArch),
      /* 1 */ jeq(AUDIT_ARCH_X86_64, 1, 2, 7),
      /* 2 */ ld(kNr),
      /* 3 */ jeq(kPersonality64, 3, 5, 4),
      /* 4 */ jeq(kX32Bit | kPersonality64, 4, 5, kEnd),
      /* 5 */ ld(kArg0Hi),
      /* 6 */ jeq(0, 6, 10, kEnd),
      /* 7 */ jeq(AUDIT_ARCH_I386, 7, 8, kEnd),
      /* 8 */ ld(kNr),
      /* 9 */ jeq(kPersonality32, 9, 10, kEnd),
      /* 10 */ ld(kArg0Lo),
      /* 11 */ jeq(0x0, 11, kAllow, 12),
      /* 12 */ jeq(0x8, 12, kAllow, 13),
      /* 13 */ jeq(0x20000, 13, kAllow, 14),
      /* 14 */ jeq(0x20008, 14, kAllow, 15),
      /* 15 */ jeq(0xffffffff, 15, kAllow, kEnd),
      /* 16 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  return p;
}

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

std::unexpected<Error> SeccompError(std::string_view what, int rc) {
  return Fail(Code::kInternal,
              fmt::format("sandbox: seccomp: {}: {}", what, std::strerror(rc < 0 ? -rc : rc)));
}

Result<std::vector<sock_filter>> Build(bool notify, bool notify_exec) {
  std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return Fail(Code::kInternal, "sandbox: seccomp_init failed");
  const uint32_t deny = notify ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO(EPERM);
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc < 0) return SeccompError("bad-arch action", rc);
  for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
    rc = seccomp_arch_add(ctx.get(), arch);
    if (rc < 0 && rc != -EEXIST) return SeccompError("add architecture", rc);
  }
  for (const char* name : kBlocked) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;
    rc = seccomp_rule_add(ctx.get(), deny, nr, 0);
    if (rc < 0) return SeccompError(fmt::format("rule for {}", name), rc);
  }
  // clone3 and openat2 pass their flags and mode in memory a filter cannot
  // read: ENOSYS, so that the C library falls back to clone and openat.
  for (int nr : {SCMP_SYS(clone3), SCMP_SYS(openat2)}) {
    rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    if (rc < 0) return SeccompError("rule for clone3/openat2", rc);
  }
  // AF_VSOCK reaches the host (and its VMs) past the network namespace. The
  // domain is an int: only its low 32 bits count.
  for (int nr : {SCMP_SYS(socket), SCMP_SYS(socketpair)}) {
    rc = seccomp_rule_add(ctx.get(), deny, nr, 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_VSOCK));
    if (rc < 0) return SeccompError("rule for socket", rc);
  }
  // The 32-bit ABI's socketcall() passes the domain in memory: creating
  // sockets through it is refused (32-bit programs must use the direct socket
  // syscalls of Linux 4.3+).
  for (uint64_t call : {SYS_SOCKET, SYS_SOCKETPAIR}) {
    rc = seccomp_rule_add(ctx.get(), deny, SCMP_SYS(socketcall), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, call));
    if (rc < 0) return SeccompError("rule for socketcall", rc);
  }
  // No set-uid or set-gid file may be made: the workspace outlives the
  // sandbox, and a host user could run such a file as its owner (root).
  for (uint64_t bit : {uint64_t{S_ISUID}, uint64_t{S_ISGID}}) {
    for (const SetidRule& r : kSetidRules) {
      int nr = seccomp_syscall_resolve_name(r.name);
      if (nr == __NR_SCMP_ERROR) continue;
      if (r.flags_arg < 0) {
        rc = seccomp_rule_add(ctx.get(), deny, nr, 1,
                              SCMP_CMP(r.mode_arg, SCMP_CMP_MASKED_EQ, bit, bit));
        if (rc < 0) return SeccompError(fmt::format("rule for {}", r.name), rc);
        continue;
      }
      for (uint64_t flag : {uint64_t{O_CREAT}, uint64_t{__O_TMPFILE}}) {
        rc = seccomp_rule_add(
            ctx.get(), deny, nr, 2,
            SCMP_CMP(static_cast<unsigned>(r.flags_arg), SCMP_CMP_MASKED_EQ, flag, flag),
            SCMP_CMP(r.mode_arg, SCMP_CMP_MASKED_EQ, bit, bit));
        if (rc < 0) return SeccompError(fmt::format("rule for {}", r.name), rc);
      }
    }
  }
  // Observation only: the recorder lets these run (see ViolationRecorder).
  if (notify && notify_exec) {
    for (int nr : {SCMP_SYS(execve), SCMP_SYS(execveat)}) {
      rc = seccomp_rule_add(ctx.get(), SCMP_ACT_NOTIFY, nr, 0);
      if (rc < 0) return SeccompError("rule for execve/execveat", rc);
    }
  }
  for (uint64_t flag : kNamespaceFlags) {
    rc = seccomp_rule_add(ctx.get(), deny, SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
    if (rc < 0) return SeccompError("rule for clone", rc);
  }

  int fd = ::memfd_create("crucible-seccomp", MFD_CLOEXEC);
  if (fd < 0) return FailErrno("sandbox: seccomp: memfd_create");
  rc = seccomp_export_bpf(ctx.get(), fd);
  off_t size = ::lseek(fd, 0, SEEK_END);
  std::vector<sock_filter> program =
      UnknownSyscallPrefix(notify ? SECCOMP_RET_USER_NOTIF : SECCOMP_RET_ERRNO | ENOSYS);
  std::vector<sock_filter> personality = PersonalityPrefix();
  program.insert(program.end(), personality.begin(), personality.end());
  size_t prefix = program.size();
  if (rc == 0 && size > 0 && size % sizeof(sock_filter) == 0) {
    program.resize(prefix + static_cast<size_t>(size) / sizeof(sock_filter));
    ssize_t n = ::pread(fd, program.data() + prefix, static_cast<size_t>(size), 0);
    if (n != size) rc = -EIO;
  } else if (rc == 0) {
    rc = -EIO;
  }
  ::close(fd);
  if (rc < 0) return SeccompError("export BPF", rc);
  if (program.size() > BPF_MAXINSNS) return SeccompError("program too long", E2BIG);
  return program;
}

}  // namespace

bool UserNotificationAvailable() {
  static const bool available = [] {
    auto actions = ReadFile("/proc/sys/kernel/seccomp/actions_avail");
    return actions && actions->find("user_notif") != std::string::npos;
  }();
  return available;
}

Result<std::vector<sock_filter>> BuildSeccompProgram(bool notify, bool notify_exec) {
  // The same for every sandbox: each variant built once per process.
  if (notify && notify_exec) {
    static const Result<std::vector<sock_filter>> with_exec = Build(true, true);
    return with_exec;
  }
  static const Result<std::vector<sock_filter>> with_notify = Build(true, false);
  static const Result<std::vector<sock_filter>> without_notify = Build(false, false);
  return notify ? with_notify : without_notify;
}

const std::vector<std::string>& BlockedSyscallNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v(std::begin(kBlocked), std::end(kBlocked));
    v.push_back("clone (with CLONE_NEW* flags)");
    v.push_back("clone3 (ENOSYS)");
    v.push_back("openat2 (ENOSYS)");
    v.push_back("socket and socketpair (AF_VSOCK)");
    v.push_back("socketcall (SYS_SOCKET, SYS_SOCKETPAIR; 32-bit x86)");
    for (const SetidRule& r : kSetidRules) {
      v.push_back(fmt::format("{} (mode with S_ISUID or S_ISGID)", r.name));
    }
    v.push_back("syscalls unknown to libseccomp (ENOSYS)");
    return v;
  }();
  return names;
}

ViolationRecorder::ViolationRecorder() : ViolationRecorder(ExecObserver()) {}

ViolationRecorder::ViolationRecorder(ExecObserver observe) : observe_(std::move(observe)) {
  if (seccomp_notify_alloc(&req_, &resp_) != 0) {
    req_ = nullptr;
    resp_ = nullptr;
  }
}

ViolationRecorder::~ViolationRecorder() { seccomp_notify_free(req_, resp_); }

std::chrono::milliseconds ViolationRecorder::Bucket::UntilReady(Clock::time_point now) {
  double elapsed = std::chrono::duration<double>(now - refilled).count();
  if (elapsed > 0) {
    tokens = std::min<double>(rate, tokens + elapsed * rate);
    refilled = now;
  }
  if (tokens >= 1) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(1 + static_cast<int64_t>((1 - tokens) * 1000 / rate));
}

std::chrono::milliseconds ViolationRecorder::UntilReady(Clock::time_point now) {
  // The next notification may be of either kind: both buckets must allow it.
  return std::max(refusals_.UntilReady(now), execs_bucket_.UntilReady(now));
}

void ViolationRecorder::HandleOne(int listener) {
  if (req_ == nullptr) {
    refusals_.tokens -= 1;
    return;
  }
  std::memset(req_, 0, sizeof(*req_));
  if (seccomp_notify_receive(listener, req_) != 0) {  // e.g. the caller was killed
    refusals_.tokens -= 1;
    return;
  }
  uint32_t arch = req_->data.arch;
  auto nr = static_cast<uint32_t>(req_->data.nr);
  uint64_t key = (uint64_t{arch} << 32) | nr;
  auto info = known_.find(key);
  if (info == known_.end()) {
    CallInfo ci;
    ci.known = SyscallName(arch, nr).has_value();
    ci.exec = static_cast<int>(ClassifyExec(arch, nr));
    info = known_.emplace(key, ci).first;
  }
  if (info->second.exec != static_cast<int>(ExecCall::kNone)) {
    AnswerExec(listener, info->second.exec);
    return;
  }
  refusals_.tokens -= 1;
  std::memset(resp_, 0, sizeof(*resp_));
  resp_->id = req_->id;
  // Unknown numbers: as if this kernel lacked them.
  resp_->error = info->second.known ? -EPERM : -ENOSYS;
  (void)seccomp_notify_respond(listener, resp_);  // ENOENT if the caller died meanwhile
  ++counts_[key];
}

void ViolationRecorder::AnswerExec(int listener, int call) {
  execs_bucket_.tokens -= 1;
  ++execs_;
  if (observe_ && wants_more_) {
    Observation o = ReadExec(*req_, static_cast<ExecCall>(call));
    // The memory read belongs to this notification only while its caller
    // still waits in it (a pid can be reused).
    if (seccomp_notify_id_valid(listener, req_->id) == 0) wants_more_ = observe_(std::move(o));
  }
  std::memset(resp_, 0, sizeof(*resp_));
  resp_->id = req_->id;
  resp_->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  (void)seccomp_notify_respond(listener, resp_);
}

std::map<std::string, uint64_t> ViolationRecorder::counts() const {
  std::map<std::string, uint64_t> named;
  for (const auto& [key, count] : counts_) {
    auto arch = static_cast<uint32_t>(key >> 32);
    auto nr = static_cast<uint32_t>(key);
    std::optional<std::string> name = SyscallName(arch, nr);
    std::string prefix;
    if (arch == AUDIT_ARCH_I386) {
      prefix = "x86:";
    } else if (arch == AUDIT_ARCH_X86_64 && (nr & kX32Bit) != 0) {
      prefix = "x32:";
      nr &= ~kX32Bit;
    }
    named[prefix + (name ? *name : fmt::format("unknown:{}", nr))] += count;
  }
  return named;
}

}  // namespace crucible::sandbox::internal
