// The observation of a running sandbox (Spec::observe_exec,
// Spec::observe_writes): reading an exec's arguments out of the caller's
// memory, and watching the workspace mount for files closed after writing.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
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
  // Why reading an event failed (an event was lost), or empty.
  const std::string& read_error() const { return read_error_; }

 private:
  WriteWatcher(int fd, int root) : fd_(fd), root_(root) {}
  // The workspace-relative path of an event's file, or nullopt.
  std::optional<std::string> RelativePath(int event_fd);
  // How the kernel names the workspace's root now, with a trailing '/'.
  std::string RootName() const;

  int fd_ = -1;
  // The workspace's root (O_PATH). Once the sandbox's mount namespace is gone
  // its mount is detached, and the kernel names the paths of queued events
  // relative to the mount ("/pkg/a.py" instead of "/workspace/pkg/a.py").
  int root_ = -1;
  std::string prefix_;     // RootName() while the mount was attached
  bool detached_ = false;  // seen detached (it never comes back)
  bool overflowed_ = false;
  std::string read_error_;
};

}  // namespace crucible::sandbox::internal
