// `crucible sandbox` and the host around it: the report file is never written
// through a link the command planted, the command never gets a descriptor of
// the caller's terminal or of a host file it could reopen by path (unless
// --interactive), and any option may directly precede `--`.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"

namespace crucible {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kTimeout = std::chrono::seconds(60);

// Where the command's standard descriptors come from; -1: /dev/null.
struct Stdio {
  int in = -1;
  int out = -1;
  int err = -1;
  bool controlling_terminal = false;  // `in` becomes the child's controlling terminal
};

// Runs `crucible sandbox ARGS` and returns its exit status (-1 when it had to
// be killed after kTimeout). "{pid}" in ARGS is replaced by the pid of the
// crucible process itself. `while_waiting` runs every 10 ms until it exits.
int RunCrucible(const std::vector<std::string>& args, const Stdio& stdio,
                const std::function<void()>& while_waiting = {}) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<std::string> words = {CRUCIBLE_BIN, "sandbox"};
    for (std::string a : args) {
      for (size_t at; (at = a.find("{pid}")) != std::string::npos;) {
        a.replace(at, 5, std::to_string(::getpid()));
      }
      words.push_back(std::move(a));
    }
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    int null = ::open("/dev/null", O_RDWR);
    if (stdio.controlling_terminal) {
      ::setsid();
      ::ioctl(stdio.in, TIOCSCTTY, 0);
    }
    ::dup2(stdio.in >= 0 ? stdio.in : null, 0);
    ::dup2(stdio.out >= 0 ? stdio.out : null, 1);
    ::dup2(stdio.err >= 0 ? stdio.err : null, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (pid < 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "crucible sandbox did not finish in time";
      return -1;
    }
    if (while_waiting) while_waiting();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// What `fd` has to read now (non-blocking reads until EAGAIN, EOF or EIO).
std::string ReadAvailable(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) return out;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

class SandboxHostIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root; run this test as root";
    auto dir = TempDir::Create("crucible-sandbox-hostio-test-");
    ASSERT_TRUE(dir.has_value());
    dir_.emplace(std::move(*dir));
    ws_ = dir_->path() + "/ws";
    fs::create_directory(ws_);
    victim_ = dir_->path() + "/victim";
    ASSERT_TRUE(WriteFile(victim_, "host secret\n", 0600));
  }

  void ExpectVictimUnchanged() {
    EXPECT_EQ(ReadFile(victim_).value_or(""), "host secret\n");
    EXPECT_EQ(ModeOf(victim_), 0600u);
  }

  // A file of the test directory opened for writing, appending.
  int OpenAppend(const std::string& name, const std::string& content) {
    const std::string path = dir_->path() + "/" + name;
    EXPECT_TRUE(WriteFile(path, content, 0600));
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    EXPECT_GE(fd, 0) << path;
    return fd;
  }

  std::string Path(const std::string& name) const { return dir_->path() + "/" + name; }

  std::optional<TempDir> dir_;
  std::string ws_;
  std::string victim_;
};

// The command plants links to a host file at the report's name and at every
// temporary name a writer could pick (".tmp.<pid>" over the whole pid range,
// and the pid of this very crucible process).
TEST_F(SandboxHostIoTest, ReportIsNotWrittenThroughPlantedLinks) {
  const std::string spray = fmt::format(
      "perl -e 'my ($t, $pid) = @ARGV; "
      "symlink $t, \"/workspace/exit.json.tmp.$_\" for 1..32768, $pid; "
      "symlink $t, \"/workspace/exit.json\"' {} {{pid}}",
      victim_);
  int status = RunCrucible(
      {"--workspace", ws_, "--report", ws_ + "/exit.json", "--", "/bin/sh", "-c", spray}, {});
  EXPECT_EQ(status, 0);
  ExpectVictimUnchanged();
  EXPECT_TRUE(fs::is_symlink(ws_ + "/exit.json.tmp.1"));  // the command did run
  ASSERT_FALSE(fs::is_symlink(ws_ + "/exit.json"));
  auto report = ReadFile(ws_ + "/exit.json");
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(nlohmann::json::parse(*report)["exit_code"], 0);
}

// A directory the command could swap for a link does not lead the report
// elsewhere: it goes to the directory that was there when crucible started.
TEST_F(SandboxHostIoTest, ReportDirectoryIsTheOneThatWasThereAtTheStart) {
  fs::create_directory(ws_ + "/out");
  const std::string other = dir_->path() + "/other";
  fs::create_directory(other);
  int status =
      RunCrucible({"--workspace", ws_, "--report", ws_ + "/out/exit.json", "--", "/bin/sh", "-c",
                   fmt::format("mv /workspace/out /workspace/moved && "
                               "ln -s {} /workspace/out",
                               other)},
                  {});
  EXPECT_EQ(status, 0);
  EXPECT_FALSE(fs::exists(other + "/exit.json"));
  EXPECT_TRUE(fs::exists(ws_ + "/moved/exit.json"));
}

// The caller's stdout appends to a host file: the command cannot reopen it
// through /proc/self/fd to truncate it or change its mode.
TEST_F(SandboxHostIoTest, StdoutFileCannotBeReopenedByTheCommand) {
  int out = OpenAppend("out.log", "written before\n");
  int err = OpenAppend("err.log", "");
  int status = RunCrucible({"--", "/bin/sh", "-c",
                            "echo one; : > /proc/self/fd/1; chmod 666 /proc/self/fd/1; "
                            "echo two; echo oops >&2; : > /proc/self/fd/2; echo three >&2"},
                           {.out = out, .err = err});
  ::close(out);
  ::close(err);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(ReadFile(Path("out.log")).value_or(""), "written before\none\ntwo\n");
  EXPECT_EQ(ModeOf(Path("out.log")), 0600u);
  EXPECT_EQ(ReadFile(Path("err.log")).value_or(""), "oops\nthree\n");
}

// Output still reaches the caller, complete and in order on each stream.
TEST_F(SandboxHostIoTest, OutputIsRelayedInOrderPerStream) {
  int out = OpenAppend("out.log", "");
  int err = OpenAppend("err.log", "");
  int status =
      RunCrucible({"--", "/bin/sh", "-c",
                   "i=0; while [ $i -lt 3000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; "
                   "exit 7"},
                  {.out = out, .err = err});
  ::close(out);
  ::close(err);
  EXPECT_EQ(status, 7);
  std::string want_out, want_err;
  for (int i = 0; i < 3000; ++i) {
    want_out += fmt::format("out{}\n", i);
    want_err += fmt::format("err{}\n", i);
  }
  EXPECT_EQ(ReadFile(Path("out.log")).value_or(""), want_out);
  EXPECT_EQ(ReadFile(Path("err.log")).value_or(""), want_err);
}

// A caller that reads its pipe late (a pager waiting for the user) still gets
// everything, even well after the command has exited.
TEST_F(SandboxHostIoTest, RelayWaitsForASlowReader) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::fcntl(p[0], F_SETFL, O_NONBLOCK);
  const auto start = std::chrono::steady_clock::now();
  std::string got;
  int status = RunCrucible({"--", "/bin/sh", "-c", "head -c 400000 /dev/zero | tr '\\0' x"},
                           {.out = p[1]}, [&] {
                             if (std::chrono::steady_clock::now() - start > std::chrono::seconds(4))
                               got += ReadAvailable(p[0]);
                           });
  ::close(p[1]);
  got += ReadAvailable(p[0]);
  ::close(p[0]);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(got, std::string(400000, 'x'));
}

struct Pty {
  int master = -1;
  int slave = -1;
  Pty() {
    if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) ADD_FAILURE() << "openpty";
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  }
  ~Pty() {
    ::close(master);
    ::close(slave);
  }
  bool Echo() const {
    termios t;
    return ::tcgetattr(slave, &t) == 0 && (t.c_lflag & ECHO);
  }
};

// The caller's terminal: the command can neither read what is typed into it
// nor turn its echo off, through any descriptor it has or /dev/tty.
TEST_F(SandboxHostIoTest, CallersTerminalIsNotHandedToTheCommand) {
  Pty pty;
  ASSERT_TRUE(pty.Echo());
  const std::string typed = "typed-secret\n";
  ASSERT_EQ(::write(pty.master, typed.data(), typed.size()), static_cast<ssize_t>(typed.size()));
  std::string seen;
  const std::string hostile =
      "for fd in 0 1 2; do stty -echo <&$fd 2>/dev/null; done; "
      "stty -echo </dev/tty 2>/dev/null; "
      "for fd in 0 1 2; do timeout 2 head -n 1 <&$fd >> /workspace/got 2>/dev/null; done; "
      "timeout 2 head -n 1 </dev/tty >> /workspace/got 2>/dev/null; "
      "echo visible-out; echo visible-err >&2";
  int status = RunCrucible(
      {"--workspace", ws_, "--timeout", "30", "--", "/bin/sh", "-c", hostile},
      {.in = pty.slave, .out = pty.slave, .err = pty.slave, .controlling_terminal = true},
      [&] { seen += ReadAvailable(pty.master); });
  seen += ReadAvailable(pty.master);
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(pty.Echo()) << "the command turned the terminal's echo off";
  EXPECT_THAT(ReadFile(ws_ + "/got").value_or(""), Not(HasSubstr("typed-secret")));
  EXPECT_THAT(seen, HasSubstr("visible-out"));
  EXPECT_THAT(seen, HasSubstr("visible-err"));
}

// --interactive is the opt-in: the command gets the caller's terminal.
TEST_F(SandboxHostIoTest, InteractiveHandsTheTerminalOver) {
  Pty pty;
  const std::string typed = "hello\n";
  ASSERT_EQ(::write(pty.master, typed.data(), typed.size()), static_cast<ssize_t>(typed.size()));
  std::string seen;
  int status = RunCrucible(
      {"--interactive", "--timeout", "30", "--", "/bin/sh", "-c",
       "read -r l; echo \"got:$l\"; [ -t 0 ] && [ -t 1 ]"},
      {.in = pty.slave, .out = pty.slave, .err = pty.slave, .controlling_terminal = true},
      [&] { seen += ReadAvailable(pty.master); });
  seen += ReadAvailable(pty.master);
  EXPECT_EQ(status, 0) << seen;
  EXPECT_THAT(seen, HasSubstr("got:hello"));
}

// Options that take several values stop at `--`.
TEST_F(SandboxHostIoTest, AnyOptionMayDirectlyPrecedeTheCommand) {
  ASSERT_TRUE(WriteFile(Path("data.txt"), "bound\n"));
  int out = OpenAppend("env.log", "");
  EXPECT_EQ(RunCrucible({"--env", "X=1", "--", "/bin/sh", "-c", "echo \"X=$X\""}, {.out = out}), 0);
  ::close(out);
  EXPECT_EQ(ReadFile(Path("env.log")).value_or(""), "X=1\n");

  out = OpenAppend("ro.log", "");
  EXPECT_EQ(RunCrucible({"--ro-bind", Path("data.txt") + ":/data.txt", "--", "/bin/sh", "-c",
                         "cat /data.txt"},
                        {.out = out}),
            0);
  ::close(out);
  EXPECT_EQ(ReadFile(Path("ro.log")).value_or(""), "bound\n");

  out = OpenAppend("rw.log", "");
  EXPECT_EQ(RunCrucible({"--rw-bind", ws_ + ":/data", "--", "/bin/sh", "-c",
                         "echo written > /data/new; echo ok"},
                        {.out = out}),
            0);
  ::close(out);
  EXPECT_EQ(ReadFile(Path("rw.log")).value_or(""), "ok\n");
  EXPECT_EQ(ReadFile(ws_ + "/new").value_or(""), "written\n");
}

}  // namespace
}  // namespace crucible
