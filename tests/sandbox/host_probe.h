// Helpers the sandbox tests use to look at the host from outside a sandbox:
// what exists, what runs, what a broken sandbox may have left behind.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <string>
#include <string_view>

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

}  // namespace crucible::sandbox::testing
