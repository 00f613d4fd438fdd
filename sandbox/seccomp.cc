#include "sandbox/seccomp.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "base/fs.h"

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

constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

constexpr uint32_t kX32Bit = 0x40000000;

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

Result<std::vector<sock_filter>> Build(bool notify) {
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
  rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc < 0) return SeccompError("rule for clone3", rc);
  for (uint64_t flag : kNamespaceFlags) {
    rc = seccomp_rule_add(ctx.get(), deny, SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
    if (rc < 0) return SeccompError("rule for clone", rc);
  }

  int fd = ::memfd_create("crucible-seccomp", MFD_CLOEXEC);
  if (fd < 0) return FailErrno("sandbox: seccomp: memfd_create");
  rc = seccomp_export_bpf(ctx.get(), fd);
  off_t size = ::lseek(fd, 0, SEEK_END);
  std::vector<sock_filter> program = PersonalityPrefix();
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

Result<std::vector<sock_filter>> BuildSeccompProgram(bool notify) {
  // The same for every sandbox: built once per process.
  static const Result<std::vector<sock_filter>> with_notify = Build(true);
  static const Result<std::vector<sock_filter>> without_notify = Build(false);
  return notify ? with_notify : without_notify;
}

const std::vector<std::string>& BlockedSyscallNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v(std::begin(kBlocked), std::end(kBlocked));
    v.push_back("clone (with CLONE_NEW* flags)");
    v.push_back("clone3 (ENOSYS)");
    return v;
  }();
  return names;
}

ViolationRecorder::ViolationRecorder() {
  if (seccomp_notify_alloc(&req_, &resp_) != 0) {
    req_ = nullptr;
    resp_ = nullptr;
  }
}

ViolationRecorder::~ViolationRecorder() { seccomp_notify_free(req_, resp_); }

void ViolationRecorder::HandleOne(int listener) {
  if (req_ == nullptr) return;
  std::memset(req_, 0, sizeof(*req_));
  if (seccomp_notify_receive(listener, req_) != 0) return;  // e.g. the caller was killed
  std::memset(resp_, 0, sizeof(*resp_));
  resp_->id = req_->id;
  resp_->error = -EPERM;
  (void)seccomp_notify_respond(listener, resp_);  // ENOENT if the caller died meanwhile

  uint32_t arch = req_->data.arch;
  int nr = req_->data.nr;
  std::string prefix;
  uint32_t scmp_arch = SCMP_ARCH_X86_64;
  if (arch == AUDIT_ARCH_I386) {
    prefix = "x86:";
    scmp_arch = SCMP_ARCH_X86;
  } else if (arch == AUDIT_ARCH_X86_64 && (static_cast<uint32_t>(nr) & kX32Bit) != 0) {
    prefix = "x32:";
    scmp_arch = SCMP_ARCH_X32;
  }
  char* name = seccomp_syscall_resolve_num_arch(scmp_arch, nr);
  std::string key = prefix + (name != nullptr ? std::string(name) : fmt::format("syscall_{}", nr));
  std::free(name);
  ++counts_[key];
}

}  // namespace crucible::sandbox::internal
