// The sandbox's init process: the first process of the new pid namespace.
//
// It runs the setup Steps, starts the command, reaps every process reparented
// to it, and exits when the command does (the kernel then kills whatever is
// left in the namespace). Everything here runs between clone() and execve() in
// a copy of a possibly multi-threaded caller, so it only uses async-signal-safe
// calls on data the parent prepared: no allocation, no locks, no stdio.
#pragma once

#include <linux/filter.h>
#include <cstddef>

#include <cstdint>

#include "sandbox/plan.h"

namespace crucible::sandbox::internal {

// What init sends the parent on the report socket (a SOCK_SEQPACKET pair: one
// record per message). The parent sends init one byte on it when init may
// start setting up (it is in its cgroups by then).
struct InitMessage {
  enum Kind : int32_t {
    kSetupFailed = 1,  // step: index into the steps (== count: starting the command); value: errno
    kCommandFinished = 2,  // value: the command's wait status
    kSeccompListener = 3,  // carries the filter's listener descriptor (SCM_RIGHTS)
    kEgressListener = 4,   // carries the egress proxy's listening socket (SCM_RIGHTS)
  };
  int32_t kind;
  int32_t step;
  int32_t value;
};

// Everything init needs, prepared by the parent.
struct ChildContext {
  const Step* steps = nullptr;
  size_t step_count = 0;
  int report_fd = -1;  // init's end of the report socket (CLOEXEC)
  int stdout_fd = -1;  // write ends of the output pipes, or -1 to inherit
  int stderr_fd = -1;
  bool keep_stdin = false;     // inherit stdin (Spec::interactive) instead of /dev/null
  char** argv = nullptr;       // the command, NULL-terminated
  char** sh_argv = nullptr;    // {"/bin/sh", <slot>, argv[1..], NULL}: for scripts without #!
  char** envp = nullptr;       // NULL-terminated
  const char* path = nullptr;  // PATH used to look argv[0] up
  const sock_filter* seccomp_filter = nullptr;  // the seccomp program (kSeccomp)
  unsigned short seccomp_length = 0;
  bool seccomp_notify = false;  // ask for a listener and send it to the parent
  // Init runs in a new user namespace: read-only remounts of binds keep the
  // source mount's nosuid/nodev/noexec/atime flags, which are locked there.
  bool user_namespace = false;
};

// clone() entry point; `arg` is a ChildContext*. Never returns.
int InitMain(void* arg);

}  // namespace crucible::sandbox::internal
