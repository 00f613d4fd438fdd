// Tries the syscalls named in argv, each in a form that is harmless even if
// nothing blocked it (invalid magic numbers, clocks that cannot be set, the
// caller's own namespaces; a pid for ptrace), and prints "name: ok" or
// "name: <errno name>". "x86-*" go through the 32-bit ABI (int 0x80); when
// this kernel has no 32-bit ABI they print "name: unavailable".
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

#include "common.h"

static sigjmp_buf segv_jump;
static void OnSegv(int sig) {
  (void)sig;
  siglongjmp(segv_jump, 1);
}

// A syscall through int 0x80 (arguments must fit 32 bits); -1 with errno set
// on error. Sets *unavailable when the 32-bit ABI is off (SIGSEGV).
static long Int80(long nr, long a, long b, long c, int* unavailable) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSegv;
  sigaction(SIGSEGV, &sa, &old);
  long ret = 0;
  *unavailable = 0;
  if (sigsetjmp(segv_jump, 1) == 0) {
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
  } else {
    *unavailable = 1;
  }
  sigaction(SIGSEGV, &old, NULL);
  if (ret < 0 && ret > -4096) {
    errno = (int)-ret;
    return -1;
  }
  return ret;
}

// A clone that must not succeed; if it does, the child exits at once.
static long TryClone(unsigned long flags) {
  long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) syscall(SYS_exit_group, 0);
  if (pid > 0) waitpid((pid_t)pid, NULL, 0);
  return pid;
}

static long TryClone3(unsigned long flags) {
  struct clone_args args;
  memset(&args, 0, sizeof(args));
  args.flags = flags;
  args.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid == 0) syscall(SYS_exit_group, 0);
  if (pid > 0) waitpid((pid_t)pid, NULL, 0);
  return pid;
}

static long Try(const char* name, const char* arg) {
  if (strcmp(name, "mount") == 0) return mount("none", "/tmp", "tmpfs", 0, NULL);
  if (strcmp(name, "umount2") == 0) return umount2("/tmp", MNT_DETACH);
  if (strcmp(name, "unshare") == 0) return unshare(CLONE_NEWUSER);
  if (strcmp(name, "setns") == 0) {
    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long rc = setns(fd, 0);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
  }
  if (strcmp(name, "clone-newuser") == 0) return TryClone(CLONE_NEWUSER);
  if (strcmp(name, "clone-newns") == 0) return TryClone(CLONE_NEWNS);
  if (strcmp(name, "clone3-newuser") == 0) return TryClone3(CLONE_NEWUSER);
  if (strcmp(name, "fork") == 0) return TryClone(0);
  if (strcmp(name, "ptrace") == 0) {
    return ptrace(PTRACE_ATTACH, (pid_t)atol(arg != NULL ? arg : "1"), NULL, NULL);
  }
  if (strcmp(name, "process_vm_readv") == 0) {
    char buf[8];
    struct iovec local = {buf, sizeof(buf)}, remote = {buf, sizeof(buf)};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  }
  if (strcmp(name, "keyctl") == 0) {
    return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
  }
  if (strcmp(name, "add_key") == 0) {
    return syscall(SYS_add_key, "user", "crucible-hostile", "x", 1, KEY_SPEC_PROCESS_KEYRING);
  }
  if (strcmp(name, "bpf") == 0) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    return syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
  }
  if (strcmp(name, "perf_event_open") == 0) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    return syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
  }
  if (strcmp(name, "reboot") == 0) return syscall(SYS_reboot, 0, 0, 0, NULL);  // bad magic
  if (strcmp(name, "clock_settime") == 0) {
    struct timespec ts = {0, 0};
    return clock_settime(CLOCK_MONOTONIC, &ts);  // the monotonic clock cannot be set
  }
  if (strcmp(name, "settimeofday") == 0) return syscall(SYS_settimeofday, NULL, NULL);  // no-op
  if (strcmp(name, "userfaultfd") == 0) return syscall(SYS_userfaultfd, O_CLOEXEC);
  if (strcmp(name, "io_uring_setup") == 0) {
    char params[120];
    memset(params, 0, sizeof(params));
    return syscall(SYS_io_uring_setup, 1, params);
  }
  if (strcmp(name, "init_module") == 0) return syscall(SYS_init_module, NULL, 0, "");
  if (strcmp(name, "personality-query") == 0) return syscall(SYS_personality, 0xffffffffUL);
  if (strcmp(name, "personality-linux32") == 0) {
    long old = syscall(SYS_personality, 0xffffffffUL);
    long rc = syscall(SYS_personality, 0x0008UL);
    if (old >= 0) syscall(SYS_personality, (unsigned long)old);
    return rc;
  }
  if (strcmp(name, "personality-norandom") == 0) return syscall(SYS_personality, 0x0040000UL);
  if (strcmp(name, "personality-highbits") == 0) return syscall(SYS_personality, 0x100000000UL);
  if (strcmp(name, "chroot") == 0) return chroot("/tmp");
  if (strcmp(name, "getpid") == 0) return getpid();
  if (strcmp(name, "vsock") == 0) return socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (strcmp(name, "vsock-highbits") == 0) {
    return syscall(SYS_socket, 0x100000000UL | AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  if (strcmp(name, "vsock-pair") == 0) {
    int sv[2];
    return socketpair(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  }
  if (strcmp(name, "unix-socket") == 0) return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // "raw=N": syscall N with all-zero arguments (for numbers above what
  // libseccomp knows: e.g. 462 is mseal(NULL, 0, 0), which seals nothing).
  if (strcmp(name, "raw") == 0) return syscall(strtol(arg, NULL, 0), 0, 0, 0, 0, 0, 0);
  // "fchmodat2=PATH": fchmodat2(AT_FDCWD, PATH, 04755, 0), raw.
  if (strcmp(name, "fchmodat2") == 0) return syscall(452, AT_FDCWD, arg, 04755, 0);
  // "mknod=PATH": a regular file with S_ISGID.
  if (strcmp(name, "mknod") == 0) return mknod(arg, S_IFREG | 02755, 0);
  // "inotify-hold=DIR": takes every inotify instance it can get, prints how
  // many and why it stopped, creates DIR/held and holds them until DIR/release
  // exists (at most 10 s).
  if (strcmp(name, "inotify-hold") == 0) {
    long count = 0;
    while (count < 100000 && inotify_init1(IN_CLOEXEC) >= 0) ++count;
    printf("inotify-instances: %ld\ninotify-stop: %s\n", count, ErrName(errno));
    fflush(stdout);
    char path[4096];
    snprintf(path, sizeof(path), "%s/held", arg);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);
    snprintf(path, sizeof(path), "%s/release", arg);
    for (int i = 0; i < 1000 && access(path, F_OK) != 0; ++i) usleep(10000);
    return count;
  }
  // "flock=PATH": opens PATH read-only and takes an exclusive flock on it
  // (released at once if taken).
  if (strcmp(name, "flock") == 0) {
    int fd = open(arg, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long rc = flock(fd, LOCK_EX | LOCK_NB);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
  }
  // "flood=MS": mount() (refused) in a loop for MS milliseconds; prints the count.
  if (strcmp(name, "flood") == 0) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long calls = 0, limit_ms = atol(arg);
    do {
      mount("none", "/tmp", "tmpfs", 0, NULL);
      ++calls;
      clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 <
             limit_ms);
    printf("flood-calls: %ld\n", calls);
    return 0;
  }
  errno = EINVAL;
  return -1;
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char name[64];
    snprintf(name, sizeof(name), "%s", argv[i]);
    char* arg = strchr(name, '=');
    if (arg != NULL) *arg++ = '\0';
    // "raw=N" and "x86-raw=N" are reported under their whole argument.
    const char* label = strcmp(name, "raw") == 0 || strcmp(name, "x86-raw") == 0 ? argv[i] : name;
    if (strncmp(name, "x86-", 4) == 0) {
      // i386 numbers: getpid 20, mount 21, unshare 310, socket 359 (AF_VSOCK);
      // "x86-raw=N": N with zero arguments.
      long nr = strcmp(name, "x86-getpid") == 0    ? 20
                : strcmp(name, "x86-mount") == 0   ? 21
                : strcmp(name, "x86-unshare") == 0 ? 310
                : strcmp(name, "x86-vsock") == 0   ? 359
                : strcmp(name, "x86-raw") == 0     ? strtol(arg, NULL, 0)
                                                   : -1;
      long a = nr == 310 ? CLONE_NEWUSER : nr == 359 ? AF_VSOCK : 0;
      long b = nr == 359 ? SOCK_STREAM : 0;
      int unavailable = 0;
      long rc = Int80(nr, a, b, 0, &unavailable);
      if (unavailable) {
        printf("%s: unavailable\n", label);
        fflush(stdout);
      } else {
        Report(label, rc);
      }
      continue;
    }
    Report(label, Try(name, arg));
  }
  return 0;
}
