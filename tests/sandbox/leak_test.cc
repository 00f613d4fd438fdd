// 1,000 sandboxes in a row leave no mount, cgroup, process, descriptor or
// temporary directory behind.
#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/fs.h"
#include "sandbox/sandbox.h"
#include "tests/sandbox/host_probe.h"
#include "tests/support/timed_wait.h"

namespace crucible::sandbox {
namespace {

using testing::CountEntries;

// True when `path` exists, following symlinks.
bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Directories named "crucible-sandbox-<our pid>-..." anywhere in the cgroup
// file systems (a few levels deep), i.e. cgroups this process created.
int CountOurCgroups(const std::string& dir, int depth) {
  if (depth > 5) return 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  std::string ours = fmt::format("crucible-sandbox-{}-", ::getpid());
  int count = 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (e->d_type != DT_DIR || name == "." || name == "..") continue;
    if (name.starts_with(ours)) ++count;
    count += CountOurCgroups(dir + "/" + name, depth + 1);
  }
  ::closedir(d);
  return count;
}

// Processes whose parent is this one.
int CountChildren() {
  int count = 0;
  DIR* dir = ::opendir("/proc");
  std::string me = std::to_string(::getpid());
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto stat = ReadFile("/proc/" + name + "/stat");
    if (!stat) continue;
    // "pid (comm) state ppid ..."
    size_t paren = stat->rfind(')');
    if (paren == std::string::npos) continue;
    std::string rest = stat->substr(paren + 2);
    size_t sp = rest.find(' ');
    size_t sp2 = rest.find(' ', sp + 1);
    if (rest.substr(sp + 1, sp2 - sp - 1) == me) ++count;
  }
  ::closedir(dir);
  return count;
}

TEST(SandboxLeakTest, AThousandSandboxesLeaveNothingBehind) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root; run this test as root";
  testing::IsolateMountTable();
  if (HasFatalFailure()) return;
  auto tmpdir = TempDir::Create("crucible-sandbox-leak-tmpdir-");
  ASSERT_TRUE(tmpdir.has_value());
  ASSERT_EQ(::setenv("TMPDIR", tmpdir->path().c_str(), 1), 0);
  auto mounts_before = ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(mounts_before.has_value());
  int fds_before = CountEntries("/proc/self/fd");

  // A leftover of a runner that was killed while a sandbox ran (the pid of a
  // child that is gone): removed by the first sandbox of this process.
  std::string leftover;
  for (const auto& line : testing::Lines(ReadFile("/proc/self/cgroup").value_or(""))) {
    // v1 "N:pids:/path": the hierarchy the sandbox uses for pids on v1 hosts.
    size_t a = line.find(":pids:");
    if (a == std::string::npos || !Exists("/sys/fs/cgroup/pids")) continue;
    std::string path = line.substr(a + 6);
    pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    crucible::testing::WaitPid(dead, nullptr);
    leftover = fmt::format("/sys/fs/cgroup/pids{}/crucible-sandbox-{}-00000000-0",
                           path == "/" ? "" : path, dead);
    ASSERT_EQ(::mkdir(leftover.c_str(), 0755), 0) << leftover;
  }

  // And the root directory such a runner left (the pid of a child that is
  // gone), and one that is not empty, which must stay.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  crucible::testing::WaitPid(dead, nullptr);
  std::string dead_root = fmt::format("{}/crucible-sandbox-{}-AbC123", tmpdir->path(), dead);
  std::string kept_root = fmt::format("{}/crucible-sandbox-{}-DeF456", tmpdir->path(), dead);
  ASSERT_EQ(::mkdir(dead_root.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(kept_root.c_str(), 0700), 0);
  ASSERT_TRUE(WriteFile(kept_root + "/file", "x"));

  Spec spec;
  spec.argv = {"/bin/true"};
  spec.timeout = std::chrono::seconds(10);
  auto start = std::chrono::steady_clock::now();
  int ok = 0;
  std::string cgroup_version;
  for (int i = 0; i < 1000; ++i) {
    auto r = sandbox::Run(spec);
    if (!r) {
      ADD_FAILURE() << "run " << i << ": " << r.error().ToString();
      break;
    }
    if (r->exit_code == 0) ++ok;
    cgroup_version = r->cgroup_version;
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  ::unsetenv("TMPDIR");
  EXPECT_EQ(ok, 1000);
  EXPECT_FALSE(cgroup_version.empty()) << "no cgroup was used: nothing to check there";
  std::printf("1000 sandboxes in %lld ms (cgroup %s)\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()),
              cgroup_version.c_str());

  if (!leftover.empty()) {
    EXPECT_FALSE(Exists(leftover)) << "a dead runner's cgroup was not removed";
    ::rmdir(leftover.c_str());
  }
  EXPECT_FALSE(Exists(dead_root)) << "a dead runner's root directory was not removed";
  EXPECT_TRUE(Exists(kept_root + "/file")) << "a directory that was not empty was removed";
  ASSERT_TRUE(RemoveAll(kept_root));
  // No mount may be new. One may vanish: a file or directory that is a mount
  // point, removed by another process on the host (`ip netns delete` in the
  // multi-host test), takes its mounts out of every namespace, this one's too.
  EXPECT_THAT(testing::Lines(ReadFile("/proc/self/mountinfo").value_or("")),
              ::testing::IsSubsetOf(testing::Lines(*mounts_before)));
  EXPECT_EQ(CountEntries(tmpdir->path()), 0) << "a sandbox root directory was left behind";
  EXPECT_EQ(CountOurCgroups("/sys/fs/cgroup", 0), 0) << "a cgroup was left behind";
  EXPECT_EQ(CountChildren(), 0) << "a process was left behind";
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(CountEntries("/proc/self/fd"), fds_before);
}

}  // namespace
}  // namespace crucible::sandbox
