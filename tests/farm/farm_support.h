// Pieces of the farm tests: daemons of the crucible binary started by a test
// (optionally inside a named network namespace), and the small fixture
// repository whose suite they replay.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "base/fs.h"
#include "tests/support/run_command.h"

namespace crucible::testing {

// A crucible daemon started by the test; killed when the test ends. With a
// `netns` name it runs in /run/netns/NETNS: only the network namespace is
// switched (setns), not the mounts, so the runner's sandbox sees the host's
// cgroup hierarchy (`ip netns exec` would remount /sys and hide it).
class Daemon {
 public:
  using Clock = std::chrono::steady_clock;
  using Ms = std::chrono::milliseconds;

  Daemon() = default;
  Daemon(const std::vector<std::string>& args, const std::string& log,
         const std::string& netns = "") {
    Start(args, log, netns);
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      WaitPid(pid_, nullptr);
    }
  }
  void Start(const std::vector<std::string>& args, const std::string& log,
             const std::string& netns = "") {
    std::vector<std::string> argv = {CRUCIBLE_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c;
    for (auto& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    std::string ns_path = netns.empty() ? "" : "/run/netns/" + netns;
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      if (!ns_path.empty()) {
        int ns = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
          static const char kMsg[] = "test: cannot enter the network namespace\n";
          (void)!::write(2, kMsg, sizeof kMsg - 1);
          ::_exit(126);
        }
        ::close(ns);
      }
      ::execv(c[0], c.data());
      ::_exit(127);
    }
  }
  bool running() const { return pid_ > 0; }
  void Signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);  // never kill(-1, ...)
  }
  // Waits for the exit; returns its exit code (128+N for signal N), or -1
  // (after SIGKILL) when it did not exit within `timeout`.
  int Wait(Ms timeout) {
    if (pid_ <= 0) return -1;
    auto deadline = Clock::now() + timeout;
    int status = 0;
    while (Clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(Ms(20));
    }
    ::kill(pid_, SIGKILL);
    WaitPid(pid_, nullptr);
    pid_ = -1;
    return -1;
  }
  void Kill() {
    Signal(SIGKILL);
    Wait(Ms(5000));
  }

 private:
  pid_t pid_ = -1;
};

// The fixture's test command: one JUnit case per tests/cases/NAME.want,
// passing when src/NAME.txt has the same text.
inline constexpr char kFixtureRunSh[] = R"SH(#!/bin/sh
out="$1"
fail=0
{
printf '<testsuite name="fixture">\n'
for w in tests/cases/*.want; do
  n=$(basename "$w" .want)
  if [ "$(cat "src/$n.txt" 2>/dev/null)" = "$(cat "$w")" ]; then
    printf '<testcase classname="fixture" name="%s"/>\n' "$n"
  else
    printf '<testcase classname="fixture" name="%s"><failure message="mismatch"/></testcase>\n' "$n"
    fail=1
  fi
done
printf '</testsuite>\n'
} > "$out"
exit $fail
)SH";

// Makes the fixture repository at `repo` (a base commit and two changes, so
// two golden tasks) and mines it as suite `suite` into the database `db`.
inline CommandOutput MineFixtureSuite(const std::string& repo, const std::string& db,
                                      const std::string& suite) {
  if (!MakeDirs(repo + "/tests/cases") || !MakeDirs(repo + "/src") ||
      !WriteFile(repo + "/tests/run.sh", kFixtureRunSh)) {
    return {1, "cannot write the fixture repository at " + repo};
  }
  std::string git = "git -C " + Quote(repo) + " ";
  std::string commit = git + "add -A && " + git + "-c user.name=t -c user.email=t@t commit -q -m ";
  auto made = Sh("git init -q " + Quote(repo) + " && cd " + Quote(repo) +
                 " && echo base > src/base.txt && echo base > tests/cases/base.want && " + commit +
                 "base && echo alpha > src/alpha.txt && echo alpha > " +
                 "tests/cases/alpha.want && " + commit + "'add alpha' && echo beta > " +
                 "src/beta.txt && echo beta > tests/cases/beta.want && " + commit + "'add beta'");
  if (made.status != 0) return made;
  return Crucible("mine --repo " + Quote(repo) + " --suite " + suite + " --test-cmd " +
                  Quote("sh tests/run.sh {junit}") + " --db " + Quote(db));
}

}  // namespace crucible::testing
