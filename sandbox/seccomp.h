// The sandbox's seccomp policy, and the recorder of the calls it blocks.
//
// The policy is default-allow with a deny list modelled on Docker's default
// profile (see kBlockedSyscalls in seccomp.cc and docs/sandbox.md): the mount
// family, namespaces (unshare, setns, clone with a CLONE_NEW* flag), ptrace and
// cross-process memory access, kexec and kernel modules, bpf, perf_event_open,
// the keyring, reboot, swap, handle-based opens, userfaultfd, io_uring, setting
// the clock, acct, iopl/ioperm, quotactl, syslog, fanotify, personality() with
// anything but Docker's allowed values, ... It covers x86-64, the 32-bit x86
// ABI (int 0x80) and x32. clone3 fails with ENOSYS (its flags live in memory a
// filter cannot read; the C library then falls back to clone, whose flags it
// can); everything else blocked fails with EPERM.
//
// Blocked calls are answered by the parent through a user-notification
// listener (SECCOMP_RET_USER_NOTIF) so that each one is counted by name. On a
// kernel without user notification the filter returns EPERM itself and the
// calls are not recorded (Run then adds a warning to the Report).
//
// The filter is compiled to BPF in the parent (libseccomp allocates); the
// sandbox's init only hands the finished program to seccomp(2).
#pragma once

#include <linux/filter.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "sandbox/sandbox.h"

struct seccomp_notif;
struct seccomp_notif_resp;

namespace crucible::sandbox::internal {

// True when this kernel supports SECCOMP_RET_USER_NOTIF.
bool UserNotificationAvailable();

// The BPF program of the policy. With `notify`, blocked calls (but clone3's
// ENOSYS) return SECCOMP_RET_USER_NOTIF; otherwise SECCOMP_RET_ERRNO(EPERM).
// With `notify_exec` (needs `notify`), so do execve and execveat, which the
// recorder then lets run (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
Result<std::vector<sock_filter>> BuildSeccompProgram(bool notify, bool notify_exec = false);

// The syscalls the policy blocks (names as libseccomp spells them), for
// documentation and tests.
const std::vector<std::string>& BlockedSyscallNames();

// Answers the notifications of one sandbox's listener with EPERM (ENOSYS for
// numbers libseccomp does not know) and counts them by syscall name ("mount";
// "x86:mount" for the 32-bit ABI, "x32:mount" for x32; "unknown:452").
//
// At most kRefusalsPerSecond are answered per second (after a burst of as
// many): a sandbox looping on a refused call would otherwise cost the runner
// a core outside the sandbox's cgroup. A caller beyond the rate just waits
// for its answer (its time is the sandbox's); every call is still counted.
//
// With a program built with notify_exec, execve and execveat notifications
// are let through (SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel then runs the
// call as if the filter had allowed it), at most kObservedExecsPerSecond per
// second after a burst of as many, and, while `observe` wants more, read and
// passed to it (ReadExec; dropped when the caller died meanwhile).
class ViolationRecorder {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kRefusalsPerSecond = 1000;

  // Called with each exec observed; returns whether more are wanted (when
  // not, the rest are only counted).
  using ExecObserver = std::function<bool(Observation)>;

  ViolationRecorder();
  explicit ViolationRecorder(ExecObserver observe);
  ~ViolationRecorder();
  ViolationRecorder(const ViolationRecorder&) = delete;
  ViolationRecorder& operator=(const ViolationRecorder&) = delete;

  // Zero when a notification may be answered now; otherwise how long until
  // one may (poll the listener only then).
  std::chrono::milliseconds UntilReady(Clock::time_point now);

  // Receives and answers one pending notification of `listener` (call when it
  // polls readable and UntilReady() is zero). A notification whose caller
  // died meanwhile is ignored.
  void HandleOne(int listener);

  // The calls answered so far, by name.
  std::map<std::string, uint64_t> counts() const;
  // The execs let through so far (observed or not).
  uint64_t execs() const { return execs_; }

 private:
  // A token bucket: at most `rate` per second after a burst of as many.
  struct Bucket {
    double rate;
    double tokens;
    Clock::time_point refilled = Clock::now();
    std::chrono::milliseconds UntilReady(Clock::time_point now);
  };
  // What one distinct call is: refused (libseccomp knows it or not), or an exec.
  struct CallInfo {
    bool known = false;
    int exec = 0;  // ExecCall (observe.h)
  };

  void AnswerExec(int listener, int call);

  ::seccomp_notif* req_ = nullptr;
  ::seccomp_notif_resp* resp_ = nullptr;
  // By (audit arch << 32 | nr): how often, and what it is (looked up once per
  // distinct call, not per notification).
  std::map<uint64_t, uint64_t> counts_;
  std::map<uint64_t, CallInfo> known_;
  Bucket refusals_{kRefusalsPerSecond, kRefusalsPerSecond};
  Bucket execs_bucket_{kObservedExecsPerSecond, kObservedExecsPerSecond};
  ExecObserver observe_;
  bool wants_more_ = true;
  uint64_t execs_ = 0;
};

}  // namespace crucible::sandbox::internal
