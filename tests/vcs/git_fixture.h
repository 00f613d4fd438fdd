// Builds small git repositories for tests with the git command line, with a
// fixed identity, fixed dates and no host configuration.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "base/fs.h"
#include "tests/support/run_command.h"

namespace crucible::testing {

// Single-quotes `s` for /bin/sh.
inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs `command` through /bin/sh and returns its stdout; fails the test on a
// non-zero exit.
inline std::string Shell(const std::string& command) {
  auto run = Sh(command, kCommandLimit, /*with_stderr=*/false);
  EXPECT_EQ(run.status, 0) << "command failed: " << command << "\n" << run.text;
  return run.text;
}

inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

inline std::string ReadOrEmpty(const std::string& path) {
  auto r = ReadFile(path);
  return r ? *r : std::string();
}

// A git repository in a temporary directory.
class GitRepo {
 public:
  GitRepo() : dir_(*TempDir::Create("crucible-test-repo-")) { Git("init -q -b main"); }

  const std::string& path() const { return dir_.path(); }

  // Runs `git ARGS` in the repository (ARGS is shell text) and returns stdout.
  std::string Git(const std::string& args) {
    std::ostringstream cmd;
    cmd << "cd " << ShellQuote(path()) << " && GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1"
        << " GIT_AUTHOR_DATE='" << Date() << "' GIT_COMMITTER_DATE='" << Date() << "'"
        << " git -c user.name=Tester -c user.email=tester@example.com -c commit.gpgsign=false"
        << " -c init.defaultBranch=main " << args << " 2>&1";
    return Shell(cmd.str());
  }

  void Write(const std::string& rel, const std::string& content) {
    std::filesystem::path p = std::filesystem::path(path()) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  }

  void Remove(const std::string& rel) {
    std::filesystem::remove(std::filesystem::path(path()) / rel);
  }

  // Stages everything and commits; returns the new commit's full id. Each
  // commit is one minute after the previous one.
  std::string Commit(const std::string& message) {
    Git("add -A");
    ++tick_;
    Git("commit -q --allow-empty -m " + ShellQuote(message));
    return Head();
  }

  std::string Head() { return Trim(Git("rev-parse HEAD")); }

  // Merges `branch` into the current branch with a merge commit.
  std::string Merge(const std::string& branch, const std::string& message) {
    ++tick_;
    Git("merge -q --no-ff " + branch + " -m " + ShellQuote(message));
    return Head();
  }

  // Committer time of the last commit, in seconds since the epoch.
  int64_t last_time() const { return kEpoch + tick_ * 60; }

 private:
  static constexpr int64_t kEpoch = 1700000000;  // 2023-11-14T22:13:20Z
  std::string Date() const { return "@" + std::to_string(last_time()) + " +0000"; }

  TempDir dir_;
  int tick_ = 0;
};

}  // namespace crucible::testing
