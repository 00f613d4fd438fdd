// Running shell commands and the crucible binary from tests.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <string>

#include "tests/support/timed_wait.h"

namespace crucible::testing {

struct CommandOutput {
  int status = -1;   // exit status; 128+N when killed by signal N
  std::string text;  // stdout and stderr together
};

// Quotes `s` for /bin/sh.
inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// How long a shell command of a test may run: end-to-end runs of the binary
// take minutes on a loaded machine.
inline constexpr std::chrono::seconds kCommandLimit{300};

// Runs `command` with /bin/sh in a process group of its own, stdin from
// /dev/null, and collects its output (stdout, and stderr too unless
// `with_stderr` is false: then it goes to the test's stderr). When it has not
// finished (or not closed its output) within `limit`, the whole group is
// killed: the status is then 128+SIGKILL and the text ends with a line saying
// so.
inline CommandOutput Sh(const std::string& command, std::chrono::milliseconds limit = kCommandLimit,
                        bool with_stderr = true) {
  CommandOutput out;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return out;
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return out;
  }
  if (pid == 0) {  // only async-signal-safe calls from here on
    ::setpgid(0, 0);
    int null = ::open("/dev/null", O_RDONLY);
    if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(fds[1], 1) < 0 ||
        (with_stderr && ::dup2(fds[1], 2) < 0)) {
      ::_exit(127);
    }
    ::execv("/bin/sh", const_cast<char* const*>(argv));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so the group exists before any kill below
  ::close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool timed_out = false;
  std::array<char, 4096> buf;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    ssize_t n = ::read(fds[0], buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of output
    out.text.append(buf.data(), static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(-pid, SIGKILL);
  int st = 0;
  // Output closed: the shell ends by itself soon (or was killed just now).
  if (!WaitPid(pid, &st, timed_out ? std::chrono::seconds(10) : limit)) timed_out = true;
  if (timed_out) {
    ::kill(-pid, SIGKILL);  // what the shell left behind
    out.text += "\n[test harness: killed after " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(limit).count()) +
                " s: " + command + "]\n";
  }
  out.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return out;
}

#ifdef CRUCIBLE_BIN
// Runs the crucible binary under test with `args` (shell text).
inline CommandOutput Crucible(const std::string& args,
                              std::chrono::milliseconds limit = kCommandLimit) {
  return Sh(std::string(CRUCIBLE_BIN) + " " + args, limit);
}
#endif

#ifdef CRUCIBLE_SOURCE_DIR
// Builds the sample repository (examples/sample-repo) in `dir`.
inline CommandOutput MakeSampleRepo(const std::string& dir) {
  return Sh("/usr/bin/python3 " +
            Quote(std::string(CRUCIBLE_SOURCE_DIR) + "/examples/sample-repo/make_sample_repo.py") +
            " " + Quote(dir));
}
#endif

}  // namespace crucible::testing
