#include "sandbox/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/fs.h"
#include "tests/sandbox/host_probe.h"

namespace crucible::sandbox {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using namespace crucible::sandbox::testing;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::set<std::string> LineSet(const std::string& text) {
  auto lines = Lines(text);
  return {lines.begin(), lines.end()};
}

int CountOpenFds() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count;
}

std::string MustRead(const std::string& path) {
  auto data = ReadFile(path);
  EXPECT_TRUE(data.has_value()) << data.error().ToString();
  return data.value_or("");
}

void MustWrite(const std::string& path, const std::string& data) {
  auto s = WriteFile(path, data);
  ASSERT_TRUE(s.has_value()) << s.error().ToString();
}

TempDir MustTempDir(std::string_view prefix) {
  auto dir = TempDir::Create(prefix);
  if (!dir) {
    ADD_FAILURE() << dir.error().ToString();
    std::abort();
  }
  return std::move(*dir);
}

TEST(ExitStatusTest, MapsTimeoutSignalAndExitCode) {
  Report r;
  r.exit_code = 3;
  EXPECT_EQ(ExitStatus(r), 3);
  r.exit_code = 0;
  EXPECT_EQ(ExitStatus(r), 0);
  r.exit_code = -1;
  r.signal = 9;
  EXPECT_EQ(ExitStatus(r), 137);
  r.timed_out = true;
  EXPECT_EQ(ExitStatus(r), 124);
}

TEST(SpecValidationTest, RejectsMalformedSpecs) {
  Spec empty;
  auto r = sandbox::Run(empty);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);

  Spec relative;
  relative.argv = {"true"};
  relative.binds = {{.host_path = "/etc", .sandbox_path = "data"}};
  r = sandbox::Run(relative);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("'data'"));

  Spec dotdot;
  dotdot.argv = {"true"};
  dotdot.binds = {{.host_path = "/etc", .sandbox_path = "/tmp/../../etc/x"}};
  r = sandbox::Run(dotdot);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);

  Spec bad_env;
  bad_env.argv = {"true"};
  bad_env.env = {"NOEQUALS"};
  r = sandbox::Run(bad_env);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("NOEQUALS"));
}

TEST(IsSystemPath, MatchesTheDirectoriesEverySandboxShows) {
  EXPECT_TRUE(IsSystemPath("/usr/bin/python3"));
  EXPECT_TRUE(IsSystemPath("/lib32/ld.so"));
  EXPECT_TRUE(IsSystemPath("/etc/passwd"));
  EXPECT_FALSE(IsSystemPath("/usr"));
  EXPECT_FALSE(IsSystemPath("/usrlocal/x"));
  EXPECT_FALSE(IsSystemPath("/opt/agents/agent.py"));
  EXPECT_FALSE(IsSystemPath("/tmp/agent.py"));
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the sandbox needs root (CAP_SYS_ADMIN to create namespaces and mount); "
                      "run this test as root (CI does)";
    }
    ws_.emplace(MustTempDir("crucible-sandbox-test-ws-"));
  }

  const std::string& ws() const { return ws_->path(); }

  // `/bin/sh -c script` with the workspace, capturing output, with a safety
  // timeout.
  Spec Sh(const std::string& script) const {
    Spec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.workspace = ws();
    spec.capture_output = true;
    spec.timeout = 10s;
    return spec;
  }

  static Report RunOk(const Spec& spec, const std::function<void()>& on_tick = {}) {
    auto r = sandbox::Run(spec, on_tick);
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    if (!r) return Report{};
    EXPECT_FALSE(r->timed_out && spec.timeout == 10s) << "safety timeout fired";
    return std::move(*r);
  }

  std::optional<TempDir> ws_;
};

TEST_F(SandboxTest, ExitCodePassesThrough) {
  Report r = RunOk(Sh("exit 42"));
  EXPECT_EQ(r.exit_code, 42);
  EXPECT_EQ(r.signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(ExitStatus(r), 42);

  r = RunOk(Sh("true"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(ExitStatus(r), 0);
}

TEST_F(SandboxTest, SignalDeathIsReported) {
  Report r = RunOk(Sh("kill -KILL $$"));
  EXPECT_EQ(r.signal, 9);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(ExitStatus(r), 137);

  r = RunOk(Sh("kill -TERM $$"));
  EXPECT_EQ(r.signal, 15);
  EXPECT_EQ(ExitStatus(r), 143);
}

TEST_F(SandboxTest, WorkspaceIsReadWriteAndTheWorkingDirectory) {
  MustWrite(ws() + "/input.txt", "from-host\n");
  Report r =
      RunOk(Sh("pwd; cat input.txt; echo from-sandbox > output.txt; "
               "mkdir -p sub/dir && echo nested > sub/dir/f"));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "/workspace\nfrom-host\n");
  EXPECT_EQ(MustRead(ws() + "/output.txt"), "from-sandbox\n");
  EXPECT_EQ(MustRead(ws() + "/sub/dir/f"), "nested\n");
}

TEST_F(SandboxTest, WithoutWorkspaceTheWorkingDirectoryIsRoot) {
  Spec spec = Sh("pwd; test -e /workspace && echo has-workspace; true");
  spec.workspace.clear();
  Report r = RunOk(spec);
  EXPECT_EQ(r.stdout_data, "/\n");
}

TEST_F(SandboxTest, RootHoldsOnlyTheSandboxDirectories) {
  std::set<std::string> expected = {"dev", "etc", "proc", "tmp", "usr", "workspace"};
  for (const char* dir : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
    if (Exists(std::string("/") + dir)) expected.insert(dir);
  }
  Report r = RunOk(Sh("ls -A /"));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(LineSet(r.stdout_data), expected);
}

TEST_F(SandboxTest, HostFilesOutsideTheBindsAreInvisible) {
  TempDir unbound = MustTempDir("crucible-sandbox-test-secret-");
  std::string secret = unbound.path() + "/secret.txt";
  MustWrite(secret, "secret");
  std::vector<std::string> paths = {secret, unbound.path(), "/work", "/root", "/home",
                                    "/var", "/sys",         "/mnt",  "/opt",  "/.crucible-oldroot"};
  std::string root_secret;
  if (Exists("/root")) {
    root_secret = "/root/crucible-sandbox-test-" + Token();
    MustWrite(root_secret, "secret");
    paths.push_back(root_secret);
  }
  std::string script;
  for (const auto& p : paths) script += fmt::format("test -e '{}' && echo 'visible {}'; ", p, p);
  script += "echo done";
  Report r = RunOk(Sh(script));
  if (!root_secret.empty()) ::unlink(root_secret.c_str());
  EXPECT_EQ(r.stdout_data, "done\n");
}

TEST_F(SandboxTest, SystemDirectoriesAndRootAreReadOnly) {
  // Non-destructive probes only: if the sandbox regressed, these must not harm
  // the host (new uniquely named files, removed below; access(W_OK), which a
  // read-only mount refuses even to root).
  std::string name = "crucible-sandbox-test-" + Token();
  std::vector<std::unique_ptr<HostLeftover>> probes;
  std::string script;
  for (const char* dir : {"/usr", "/usr/bin", "/etc", "", "/dev", "/proc"}) {
    std::string probe = fmt::format("{}/{}", dir, name);
    probes.push_back(std::make_unique<HostLeftover>(probe));
    script += fmt::format("touch {0} 2>/dev/null && echo 'wrote {0}'; ", probe);
  }
  for (const char* path : {"/etc/passwd", "/etc", "/usr/bin", "/usr/bin/env", "/"}) {
    script += fmt::format("test -w {0} && echo '{0} writable'; ", path);
  }
  script += "test -w /workspace && test -w /tmp && echo done";
  Report r = RunOk(Sh(script));
  EXPECT_EQ(r.stdout_data, "done\n");
}

TEST_F(SandboxTest, ExtraBindsAreReadOnlyOrWritable) {
  TempDir ro_dir = MustTempDir("crucible-sandbox-test-ro-");
  TempDir rw_dir = MustTempDir("crucible-sandbox-test-rw-");
  TempDir files = MustTempDir("crucible-sandbox-test-files-");
  MustWrite(ro_dir.path() + "/data.txt", "ro-data\n");
  MustWrite(files.path() + "/config.json", "config\n");
  MustWrite(files.path() + "/out.txt", "old\n");

  Spec spec =
      Sh("cat /opt/crucible/ro/data.txt; "
         "touch /opt/crucible/ro/new 2>/dev/null && echo 'wrote ro dir'; "
         "echo rw > /mnt/rw/new.txt || echo 'cannot write rw dir'; "
         "cat /data/config.json; "
         "echo x >> /data/config.json 2>/dev/null && echo 'wrote ro file'; "
         "echo new > /srv/out.txt || echo 'cannot write rw file'");
  spec.binds = {
      {.host_path = ro_dir.path(), .sandbox_path = "/opt/crucible/ro"},
      {.host_path = rw_dir.path(), .sandbox_path = "/mnt/rw", .writable = true},
      {.host_path = files.path() + "/config.json", .sandbox_path = "/data/config.json"},
      {.host_path = files.path() + "/out.txt", .sandbox_path = "//srv/./out.txt", .writable = true},
  };
  Report r = RunOk(spec);
  EXPECT_EQ(r.stdout_data, "ro-data\nconfig\n") << r.stderr_data;
  EXPECT_FALSE(Exists(ro_dir.path() + "/new"));
  EXPECT_EQ(MustRead(rw_dir.path() + "/new.txt"), "rw\n");
  EXPECT_EQ(MustRead(files.path() + "/config.json"), "config\n");
  EXPECT_EQ(MustRead(files.path() + "/out.txt"), "new\n");
}

TEST_F(SandboxTest, BindTargetThroughASymlinkIsRefused) {
  // An agent could leave such a symlink in the workspace; following it while
  // the host root is still reachable would create directories on the host.
  std::string name = "crucible-sandbox-test-" + Token();
  HostLeftover in_etc("/etc/" + name), in_tmp("/tmp/" + name);
  ASSERT_EQ(::symlink("/etc", (ws() + "/link").c_str()), 0);
  ASSERT_EQ(::symlink("/.crucible-oldroot/tmp", (ws() + "/old").c_str()), 0);
  for (const char* link : {"link", "old"}) {
    Spec spec = Sh("true");
    spec.binds = {{.host_path = "/etc/hostname",
                   .sandbox_path = fmt::format("/workspace/{}/{}/x", link, name)}};
    auto r = sandbox::Run(spec);
    ASSERT_FALSE(r.has_value()) << link;
    EXPECT_EQ(r.error().code(), Code::kFailedPrecondition);
    EXPECT_THAT(r.error().message(), HasSubstr("Too many levels of symbolic links"));
  }
}

TEST_F(SandboxTest, TmpIsPrivate) {
  std::string name = "crucible-sandbox-test-" + Token();
  HostLeftover leftover("/tmp/" + name);
  Report r = RunOk(Sh(fmt::format("ls -A /tmp; echo x > /tmp/{0}; cat /tmp/{0}", name)));
  EXPECT_EQ(r.stdout_data, "x\n") << r.stderr_data;
}

TEST_F(SandboxTest, OnlyLoopbackNetwork) {
  Report r = RunOk(Sh("cat /proc/net/dev"));
  std::set<std::string> interfaces;
  for (const auto& line : Lines(r.stdout_data)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    interfaces.insert(name);
  }
  EXPECT_EQ(interfaces, std::set<std::string>{"lo"}) << r.stdout_data;
}

TEST_F(SandboxTest, CannotReachHostLoopbackButOwnLoopbackIsUp) {
  if (!Exists("/bin/bash")) GTEST_SKIP() << "needs bash (/dev/tcp)";
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);

  // "Connection refused" (not "Network is unreachable"): lo is up in the
  // sandbox's own network namespace, and nothing listens there.
  Report r =
      RunOk(Sh(fmt::format("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{}' 2>&1; echo \"rc=$?\"", port)));
  EXPECT_THAT(r.stdout_data, HasSubstr("Connection refused"));
  EXPECT_THAT(r.stdout_data, HasSubstr("rc=1"));
  EXPECT_THAT(r.stdout_data, Not(HasSubstr("unreachable")));

  int conn = ::accept(listener, nullptr, nullptr);
  EXPECT_EQ(conn, -1) << "the sandbox connected to the host's 127.0.0.1";
  if (conn >= 0) ::close(conn);
  ::close(listener);
}

TEST_F(SandboxTest, HostnameIsSet) {
  char before[256] = {};
  ::gethostname(before, sizeof(before));
  Report r = RunOk(Sh("cat /proc/sys/kernel/hostname"));
  EXPECT_EQ(r.stdout_data, "crucible\n");

  Spec spec = Sh("cat /proc/sys/kernel/hostname");
  spec.hostname = "box-1";
  r = RunOk(spec);
  EXPECT_EQ(r.stdout_data, "box-1\n");

  char after[256] = {};
  ::gethostname(after, sizeof(after));
  EXPECT_STREQ(before, after);
}

TEST_F(SandboxTest, OwnPidNamespace) {
  Report r = RunOk(Sh(fmt::format(
      "echo $$; ls /proc | grep -c '^[0-9][0-9]*$'; test -e /proc/{} && echo 'host pid visible'; "
      "true",
      ::getpid())));
  auto lines = Lines(r.stdout_data);
  ASSERT_EQ(lines.size(), 2u) << r.stdout_data;
  EXPECT_EQ(lines[0], "2");  // init is 1, the command 2
  // init, sh, ls and grep.
  EXPECT_LE(std::stoi(lines[1]), 5) << "processes visible in the sandbox";
}

TEST_F(SandboxTest, InitDoesNotExposeTheCaller) {
  // init is a copy of this process: neither its memory, environment,
  // executable nor command line may be reachable from the sandbox.
  ::setenv("CRUCIBLE_SANDBOX_TEST_SECRET", "s3cr3t", 1);
  Report r =
      RunOk(Sh("tr '\\0' ' ' < /proc/1/cmdline; echo; cat /proc/1/comm; "
               "cat /proc/1/environ >/dev/null 2>&1 && echo 'read environ'; "
               "head -c 1 /proc/1/mem >/dev/null 2>&1 && echo 'read mem'; "
               "readlink /proc/1/exe && echo 'read exe'; true"));
  ::unsetenv("CRUCIBLE_SANDBOX_TEST_SECRET");
  auto lines = Lines(r.stdout_data);
  ASSERT_EQ(lines.size(), 2u) << r.stdout_data;
  EXPECT_THAT(lines[0], Not(HasSubstr(program_invocation_short_name)));
  EXPECT_THAT(lines[0], HasSubstr("crucible-init"));
  EXPECT_EQ(lines[1], "crucible-init");
}

TEST_F(SandboxTest, TimeoutKillsTheCommand) {
  Spec spec = Sh("sleep 1000");
  spec.timeout = 300ms;
  auto start = std::chrono::steady_clock::now();
  Report r = RunOk(spec);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(ExitStatus(r), 124);
  EXPECT_GE(r.wall_ms, 300);
  EXPECT_LT(elapsed, 5s);
}

// A double-forked, setsid() daemon whose command line (once running) is
// "sleep <marker>"; the script only holds the marker split in two.
std::string DaemonScript(const std::string& marker) {
  std::string a = marker.substr(0, 5), b = marker.substr(5);
  return fmt::format(
      "( setsid sh -c 'touch /tmp/started; exec sleep {}\"\"{}' </dev/null >/dev/null 2>&1 & ); "
      "while [ ! -e /tmp/started ]; do sleep 0.01; done; echo started; ",
      a, b);
}

std::string SleepMarker() {
  std::random_device rd;
  return fmt::format("98765{}", 10000 + rd() % 80000);
}

TEST_F(SandboxTest, TimeoutKillsDaemons) {
  if (!Exists("/usr/bin/setsid") && !Exists("/bin/setsid")) GTEST_SKIP() << "needs setsid";
  std::string marker = SleepMarker();
  Spec spec = Sh(DaemonScript(marker) + "sleep 1000");
  spec.timeout = 1500ms;
  bool seen = false;
  Report r = RunOk(spec, [&] { seen = seen || CountHostProcesses(marker) > 0; });
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.stdout_data, "started\n");
  EXPECT_TRUE(seen) << "the daemon never ran";
  EXPECT_EQ(CountHostProcesses(marker), 0) << "the daemon outlived the sandbox";
}

TEST_F(SandboxTest, DaemonsDieWhenTheCommandExits) {
  if (!Exists("/usr/bin/setsid") && !Exists("/bin/setsid")) GTEST_SKIP() << "needs setsid";
  std::string marker = SleepMarker();
  bool seen = false;
  Report r = RunOk(Sh(DaemonScript(marker) + "sleep 0.3; exit 3"),
                   [&] { seen = seen || CountHostProcesses(marker) > 0; });
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(seen) << "the daemon never ran";
  EXPECT_EQ(CountHostProcesses(marker), 0) << "the daemon outlived the sandbox";
}

TEST_F(SandboxTest, MissingCommandExits127) {
  Spec spec = Sh("");
  spec.argv = {"crucible-no-such-command", "arg"};
  Report r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_THAT(r.stderr_data, HasSubstr("crucible-no-such-command"));
  EXPECT_THAT(r.stderr_data, HasSubstr("No such file or directory"));

  spec.argv = {"/workspace/missing"};
  r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 127);

  spec.argv = {"/etc/passwd"};  // not executable
  r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_THAT(r.stderr_data, HasSubstr("Permission denied"));
}

TEST_F(SandboxTest, CommandIsLookedUpInThePathAndScriptsRunWithSh) {
  MustWrite(ws() + "/script", "echo \"from script: $1\"\n");  // no #!
  ASSERT_EQ(::chmod((ws() + "/script").c_str(), 0755), 0);
  Spec spec = Sh("");
  spec.argv = {"script", "arg1"};
  spec.env = {"PATH=/nonexistent:/workspace:/usr/bin"};
  Report r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "from script: arg1\n");

  spec.argv = {"echo", "via", "path"};
  spec.env.clear();
  r = RunOk(spec);
  EXPECT_EQ(r.stdout_data, "via path\n");
}

TEST_F(SandboxTest, MissingWorkspaceIsASetupError) {
  Spec spec = Sh("true");
  spec.workspace = "/nonexistent-crucible-ws-" + Token();
  auto r = sandbox::Run(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(r.error().message(), fmt::format("sandbox setup: bind {} at /workspace: No such file "
                                             "or directory",
                                             spec.workspace));
}

TEST_F(SandboxTest, MissingBindSourceIsASetupError) {
  Spec spec = Sh("true");
  spec.binds = {{.host_path = "/nonexistent-crucible-bind", .sandbox_path = "/data"}};
  auto r = sandbox::Run(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(r.error().message(),
            "sandbox setup: bind /nonexistent-crucible-bind at /data: No such file or directory");
}

TEST_F(SandboxTest, SetupErrorsInsideTheSandboxNameTheStep) {
  Spec spec = Sh("true");
  spec.cwd = "/no/such/dir";
  auto r = sandbox::Run(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(r.error().message(), "sandbox setup: chdir /no/such/dir: No such file or directory");

  std::string name = "crucible-sandbox-test-" + Token();
  HostLeftover leftover("/usr/" + name);
  spec = Sh("true");
  spec.binds = {{.host_path = "/etc/hostname", .sandbox_path = "/usr/" + name + "/x"}};
  r = sandbox::Run(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), fmt::format("sandbox setup: bind /etc/hostname at /usr/{}/x: "
                                             "Read-only file system",
                                             name));
}

TEST_F(SandboxTest, CapturesStdoutAndStderrSeparately) {
  Report r = RunOk(Sh("echo out; echo err >&2; echo out2"));
  EXPECT_EQ(r.stdout_data, "out\nout2\n");
  EXPECT_EQ(r.stderr_data, "err\n");
  EXPECT_FALSE(r.output_truncated);
}

TEST_F(SandboxTest, CapturedOutputIsCapped) {
  Spec spec = Sh("head -c 100000 /dev/zero; echo tail >&2");
  spec.output_cap = 1000;
  Report r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data, std::string(1000, '\0'));
  EXPECT_EQ(r.stdout_dropped, 99000);
  EXPECT_EQ(r.stderr_data, "tail\n");
  EXPECT_EQ(r.stderr_dropped, 0);
  EXPECT_TRUE(r.output_truncated);

  // More than a pipe holds, with the default cap.
  r = RunOk(Sh("head -c 3000000 /dev/zero"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data.size(), size_t{1} << 20);
  EXPECT_EQ(r.stdout_dropped, 3000000 - (1 << 20));
  EXPECT_TRUE(r.output_truncated);
}

TEST_F(SandboxTest, WithoutCaptureOutputGoesToTheCallersStdout) {
  TempDir dir = MustTempDir("crucible-sandbox-test-out-");
  std::string file = dir.path() + "/stdout";
  std::fflush(stdout);
  int saved = ::dup(1);
  ASSERT_GE(saved, 0);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ::dup2(fd, 1);
  ::close(fd);
  Spec spec = Sh("echo inherited");
  spec.capture_output = false;
  auto r = sandbox::Run(spec);
  ::dup2(saved, 1);
  ::close(saved);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data, "");
  EXPECT_EQ(MustRead(file), "inherited\n");
}

TEST_F(SandboxTest, StdinIsDevNull) {
  // Give this process a stdin with data that never reaches EOF: a command
  // reading the caller's stdin would print it and then hang.
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], "host-stdin\n", 11), 11);
  int saved = ::dup(0);
  ::dup2(p[0], 0);
  ::close(p[0]);
  Spec spec = Sh("cat; echo done");
  spec.timeout = 5s;
  auto r = sandbox::Run(spec);
  ::dup2(saved, 0);
  ::close(saved);
  ::close(p[1]);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->stdout_data, "done\n");
}

TEST_F(SandboxTest, EnvironmentIsClean) {
  std::string marker = "crucible-marker-" + Token();
  ::setenv("CRUCIBLE_SANDBOX_TEST_MARKER", marker.c_str(), 1);
  Spec spec = Sh("env");
  spec.env = {"FOO=bar=baz", "LANG=C"};
  Report r = RunOk(spec);
  ::unsetenv("CRUCIBLE_SANDBOX_TEST_MARKER");
  auto env = LineSet(r.stdout_data);
  EXPECT_THAT(r.stdout_data, Not(HasSubstr(marker)));
  EXPECT_THAT(r.stdout_data, Not(HasSubstr("CRUCIBLE_SANDBOX_TEST_MARKER")));
  EXPECT_TRUE(env.contains("PATH=/usr/local/bin:/usr/bin:/bin")) << r.stdout_data;
  EXPECT_TRUE(env.contains("HOME=/tmp")) << r.stdout_data;
  EXPECT_TRUE(env.contains("LANG=C")) << r.stdout_data;
  EXPECT_FALSE(env.contains("LANG=C.UTF-8")) << r.stdout_data;
  EXPECT_TRUE(env.contains("FOO=bar=baz")) << r.stdout_data;
}

TEST_F(SandboxTest, PrivilegesAreDropped) {
  Report r =
      RunOk(Sh("grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status; "
               "mount -t tmpfs none /tmp 2>/dev/null && echo mounted; "
               "mknod /tmp/disk b 8 0 2>/dev/null && echo mknod; "
               "echo evil > /proc/sys/kernel/hostname 2>/dev/null && echo 'wrote sysctl'; "
               "cat /proc/sys/kernel/hostname"));
  EXPECT_EQ(r.stdout_data,
            "CapEff:\t00000000000005fb\n"
            "CapBnd:\t00000000000005fb\n"
            "NoNewPrivs:\t1\n"
            "crucible\n");
}

TEST_F(SandboxTest, MinimalDev) {
  Report r =
      RunOk(Sh("ls -A /dev; echo x > /dev/null && echo null-ok; head -c 4 /dev/urandom | wc -c; "
               "echo shm > /dev/shm/f && cat /dev/shm/f; ls /dev/fd/ > /dev/null && echo fd-ok"));
  std::set<std::string> allowed = {"null", "zero", "full", "random", "urandom", "tty",   "shm",
                                   "pts",  "ptmx", "fd",   "stdin",  "stdout",  "stderr"};
  auto lines = Lines(r.stdout_data);
  ASSERT_GE(lines.size(), 4u) << r.stdout_data;
  std::vector<std::string> tail(lines.end() - 4, lines.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"null-ok", "4", "shm", "fd-ok"})) << r.stderr_data;
  for (auto it = lines.begin(); it != lines.end() - 4; ++it) {
    EXPECT_TRUE(allowed.contains(*it)) << "unexpected /dev/" << *it;
  }
}

TEST_F(SandboxTest, NoFileDescriptorsLeakIn) {
  int fd = ::open("/etc/hostname", O_RDONLY);  // not CLOEXEC
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::dup2(fd, 77), 77);
  ::close(fd);
  Report r = RunOk(Sh("ls /proc/self/fd"));
  ::close(77);
  // 3 is ls's own directory descriptor.
  EXPECT_EQ(LineSet(r.stdout_data), (std::set<std::string>{"0", "1", "2", "3"}));
}

TEST_F(SandboxTest, NoLeaksInTheCaller) {
  // Other tests' mounts (quota tmpfs, network namespaces) must not show here.
  testing::IsolateMountTable();
  if (HasFatalFailure()) return;
  // The sandbox makes its root directories under $TMPDIR: give it its own.
  TempDir tmpdir = MustTempDir("crucible-sandbox-test-tmpdir-");
  const char* old_tmpdir = std::getenv("TMPDIR");
  std::optional<std::string> saved_tmpdir;
  if (old_tmpdir != nullptr) saved_tmpdir = old_tmpdir;
  ::setenv("TMPDIR", tmpdir.path().c_str(), 1);
  auto mountinfo = MustRead("/proc/self/mountinfo");
  int fds = CountOpenFds();
  bool mounts_stayed_private = true;
  for (int i = 0; i < 3; ++i) {
    Spec spec = Sh("echo hi");
    spec.binds = {{.host_path = "/etc", .sandbox_path = "/opt/etc"}};
    Report r = RunOk(spec, [&] {
      if (!testing::NewMounts(mountinfo, MustRead("/proc/self/mountinfo")).empty()) {
        mounts_stayed_private = false;
      }
    });
    EXPECT_EQ(r.stdout_data, "hi\n");
    Spec slow = Sh("sleep 1000");
    slow.timeout = 100ms;
    r = RunOk(slow);
    EXPECT_TRUE(r.timed_out);
  }
  EXPECT_TRUE(mounts_stayed_private);
  EXPECT_THAT(testing::NewMounts(mountinfo, MustRead("/proc/self/mountinfo")),
              ::testing::IsEmpty());
  EXPECT_EQ(CountOpenFds(), fds);
  if (saved_tmpdir) {
    ::setenv("TMPDIR", saved_tmpdir->c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  EXPECT_EQ(CountEntries(tmpdir.path()), 0) << "a sandbox root directory was left behind";
  // No zombie (nor any child) left.
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(SandboxTest, ReportsResourcesAndNoViolationsForAnOrdinaryCommand) {
  Report r = RunOk(Sh("ls / > /dev/null; cat /proc/self/status > /dev/null; echo ok"));
  EXPECT_EQ(r.stdout_data, "ok\n");
  EXPECT_TRUE(r.seccomp_violations.empty());
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  EXPECT_FALSE(r.cgroup_version.empty());
  EXPECT_GT(r.memory_peak_bytes, 0u);
  EXPECT_FALSE(r.oom_killed);
  EXPECT_FALSE(r.pids_limit_hit);
  EXPECT_EQ(r.stdout_bytes, 3);
  EXPECT_EQ(r.stderr_bytes, 0);
}

TEST_F(SandboxTest, RlimitsAreApplied) {
  Spec spec =
      Sh("grep -E '^Max (cpu time|file size|open files|core file size) ' /proc/self/limits");
  spec.cpu_time_s = 30;
  spec.file_size_bytes = 1 << 20;
  spec.open_files = 64;
  Report r = RunOk(spec);
  auto lines = Lines(r.stdout_data);
  ASSERT_EQ(lines.size(), 4u) << r.stdout_data;
  EXPECT_THAT(lines[0], ::testing::MatchesRegex("Max cpu time +30 +31 +seconds *"));
  EXPECT_THAT(lines[1], ::testing::MatchesRegex("Max file size +1048576 +1048576 +bytes *"));
  EXPECT_THAT(lines[2], ::testing::MatchesRegex("Max core file size +0 +0 +bytes *"));
  EXPECT_THAT(lines[3], ::testing::MatchesRegex("Max open files +64 +64 +files *"));
}

TEST_F(SandboxTest, CpuTimeLimitKillsAndCpuTimeIsMeasured) {
  Spec spec = Sh("while :; do :; done");
  spec.cpu_time_s = 1;
  Report r = RunOk(spec);
  EXPECT_EQ(r.signal, SIGXCPU);
  EXPECT_GE(r.cpu_ms, 500);  // tick-based accounting on a loaded machine
  EXPECT_LT(r.cpu_ms, 3000);
}

TEST_F(SandboxTest, CpuTimeIncludesProcessesKilledOnTimeout) {
  // A background burner prints the CPU time it has used so far until the
  // timeout kills it: whatever the machine's load, the sandbox's CPU time is
  // at least the last figure it printed (it was ~0 before the cgroup
  // accounting, when killed processes were not counted).
  Spec spec =
      Sh("python3 -c 'import time\n"
         "while True:\n"
         "  t = time.process_time()\n"
         "  while time.process_time() - t < 0.01: pass\n"
         "  print(int(time.process_time() * 1000), flush=True)' & while :; do :; done");
  spec.timeout = 1s;
  Report r = RunOk(spec);
  EXPECT_TRUE(r.timed_out);
  auto lines = Lines(r.stdout_data);
  ASSERT_FALSE(lines.empty()) << "the burner printed nothing: " << r.stderr_data;
  const int64_t burner_ms = std::stoll(lines.back());
  EXPECT_GT(burner_ms, 0);
  EXPECT_GE(r.cpu_ms + 20, burner_ms);  // 20 ms: the accounting's tick
}

TEST_F(SandboxTest, TmpHasTheConfiguredSize) {
  Spec spec = Sh("grep ' /tmp ' /proc/self/mounts");
  spec.tmp_size_bytes = 8 << 20;
  Report r = RunOk(spec);
  EXPECT_THAT(r.stdout_data, HasSubstr("size=8192k"));
}

TEST_F(SandboxTest, HostNetworkIsAnExplicitOptIn) {
  auto host = MustRead("/proc/net/dev");
  Spec spec = Sh("cat /proc/net/dev");
  spec.network = Network::kHost;
  Report r = RunOk(spec);
  auto names = [](const std::string& text) {
    std::set<std::string> out;
    for (const auto& line : Lines(text)) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      auto name = line.substr(0, colon);
      name.erase(0, name.find_first_not_of(' '));
      out.insert(name);
    }
    return out;
  };
  EXPECT_EQ(names(r.stdout_data), names(host));
}

TEST_F(SandboxTest, OnTickIsCalledWhileTheCommandRuns) {
  int ticks = 0;
  Report r = RunOk(Sh("sleep 0.5"), [&] { ++ticks; });
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_GE(ticks, 3);
  EXPECT_LE(ticks, 8);
}

TEST_F(SandboxTest, WorksFromAMultiThreadedCaller) {
  std::atomic<bool> stop = false;
  std::thread churn([&] {
    while (!stop) {
      std::vector<std::string> v;
      for (int i = 0; i < 100; ++i) v.emplace_back(1000 + i, 'x');
    }
  });
  std::atomic<int> ok = 0;
  auto worker = [&] {
    for (int i = 0; i < 5; ++i) {
      auto r = sandbox::Run(Sh("echo hi; exit 7"));
      if (r && r->exit_code == 7 && r->stdout_data == "hi\n") ++ok;
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  stop = true;
  churn.join();
  EXPECT_EQ(ok, 10);
}

}  // namespace
}  // namespace crucible::sandbox
