// The observation of a running sandbox (Spec::observe_exec,
// Spec::observe_writes): reading an exec's arguments out of the caller's
// memory, and watching the workspace mount for files closed after writing.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "sandbox/sandbox.h"

struct seccomp_notif;

namespace crucible::sandbox::internal {

// The call a user notification is about, as far as observation cares.
enum class ExecCall { kNone, kExecve, kExecveat };

// Whether syscall `nr` of `audit_arch` is execve or execveat (any x86 ABI).
ExecCall ClassifyExec(uint32_t audit_arch, uint32_t nr);

// The program and argv of the exec `req` (kind `call`) announces, read from
// the caller's memory with process_vm_readv (argv capped at kMaxObservedArgs
// arguments and kMaxObservedArgBytes bytes, then marked cut). What cannot be
// read (the caller passed a bad pointer) is left empty. The caller may change
// that memory meanwhile from another thread: evidence, not proof.
Observation ReadExec(const ::seccomp_notif& req, ExecCall call);

// Files of a sandbox's workspace closed after writing, through fanotify
// (FAN_CLOSE_WRITE) on the sandbox's own workspace mount.
class WriteWatcher {
 public:
  // Watches the mount at `workspace` (a path reaching the sandbox's
  // workspace, e.g. /proc/<init>/root/workspace). kFailedPrecondition with
  // the reason when it cannot (not root, no fanotify).
  static Result<WriteWatcher> Start(const std::string& workspace);

  WriteWatcher(WriteWatcher&& other) noexcept;
  WriteWatcher& operator=(WriteWatcher&& other) noexcept;
  WriteWatcher(const WriteWatcher&) = delete;
  WriteWatcher& operator=(const WriteWatcher&) = delete;
  ~WriteWatcher();

  int fd() const { return fd_; }

  // Reads what is queued now (a bounded amount) and calls `on_write` with
  // the workspace-relative path of each regular file closed after writing,
  // or, once `wanted` is false, only counts it. Returns how many were seen.
  uint64_t Drain(bool wanted, const std::function<void(std::string_view)>& on_write);

  // True once the kernel's queue overflowed (writes were lost).
  bool overflowed() const { return overflowed_; }

 private:
  WriteWatcher(int fd, std::string prefix) : fd_(fd), prefix_(std::move(prefix)) {}

  int fd_ = -1;
  std::string prefix_;  // how the kernel names the workspace's root, with a trailing '/'
  bool overflowed_ = false;
};

}  // namespace crucible::sandbox::internal
