// Helpers the sandbox tests use to look at the host from outside a sandbox:
// what exists, what runs, what a broken sandbox may have left behind.
#pragma once

#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/fs.h"

namespace crucible::sandbox::testing {

// 16 random hex digits, for names no other test or process uses.
inline std::string Token() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

// True when `path` exists (a dangling symlink counts).
inline bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Entries of directory `path`, or -1 when it cannot be read.
inline int CountEntries(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* e = ::readdir(dir)) {
    if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") ++count;
  }
  ::closedir(dir);
  return count;
}

// Host processes (other than this one) whose command line contains `marker`.
inline int CountHostProcesses(const std::string& marker) {
  int count = 0;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return -1;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (std::stoi(name) == ::getpid()) continue;
    auto cmdline = ReadFile("/proc/" + name + "/cmdline");
    if (!cmdline) continue;
    for (char& c : *cmdline) {
      if (c == '\0') c = ' ';
    }
    if (cmdline->find(marker) != std::string::npos) ++count;
  }
  ::closedir(dir);
  return count;
}

// A host path a broken sandbox could create (a file, or a directory holding
// a mount point "x"): on scope exit, if it exists, fails the test and removes
// it, so that a regression cannot leave the host modified.
class HostLeftover {
 public:
  explicit HostLeftover(std::string path) : path_(std::move(path)) {}
  HostLeftover(const HostLeftover&) = delete;
  HostLeftover& operator=(const HostLeftover&) = delete;
  ~HostLeftover() {
    if (!Exists(path_)) return;
    ADD_FAILURE() << "the sandbox created " << path_ << " on the host";
    ::unlink((path_ + "/x").c_str());
    if (::rmdir(path_.c_str()) != 0) ::unlink(path_.c_str());
  }

 private:
  std::string path_;
};

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  for (size_t i = 0, j; i < text.size(); i = j + 1) {
    j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    lines.push_back(text.substr(i, j - i));
  }
  return lines;
}

// Moves this process into a mount namespace of its own whose mounts are
// shared, in peer groups of their own. Whatever other processes on the host
// mount and unmount meanwhile (other tests' workspace quotas, the multi-host
// test's /run/netns, other checkouts' test runs) no longer reaches this
// process's mount table, while a sandbox that leaked a mount into its
// caller's namespace (or let one propagate back from its own) still shows
// there, as it would on the host. sandbox::Run mounts nothing in the caller's
// namespace, so any change of that table is a leak.
inline void IsolateMountTable() {
  ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << "unshare(CLONE_NEWNS): " << std::strerror(errno);
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0)
      << std::strerror(errno);
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_SHARED, nullptr), 0) << std::strerror(errno);
}

// Mount table lines of `after` that `before` lacks: what a sandbox leaked.
// (A line may vanish: see IsolateMountTable.)
inline std::vector<std::string> NewMounts(const std::string& before, const std::string& after) {
  std::vector<std::string> old_lines = Lines(before), added;
  for (auto& line : Lines(after)) {
    if (std::find(old_lines.begin(), old_lines.end(), line) == old_lines.end()) {
      added.push_back(std::move(line));
    }
  }
  return added;
}

}  // namespace crucible::sandbox::testing
