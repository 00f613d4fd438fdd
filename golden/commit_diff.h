// Diffs of many commits of one repository, with the repository opened once.
// Internal to golden/ (the miner); vcs::DiffCommits is the one-off version.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "vcs/repo.h"

namespace crucible::golden::internal {

// Keeps the repository, its object cache and its attribute cache open across
// diffs: mining diffs every change of a history, and opening the repository
// (and re-reading the index and the trees the previous diff just read) for
// each one cost more than the diffs themselves. Not thread-safe: one differ
// per thread.
class CommitDiffer {
 public:
  // kNotFound when `repo_path` is not a git repository (as vcs::DiffCommits).
  static Result<CommitDiffer> Open(const std::string& repo_path);

  CommitDiffer(CommitDiffer&&) noexcept;
  CommitDiffer& operator=(CommitDiffer&&) noexcept;
  ~CommitDiffer();

  // Exactly what vcs::DiffCommits(repo_path, parent, commit) returns: one
  // entry per file, renames detected at 50% similarity, binary files as "GIT
  // binary patch". kNotFound for an unknown commit.
  Result<std::vector<vcs::FilePatch>> Diff(const std::string& parent, const std::string& commit);

 private:
  struct Impl;
  explicit CommitDiffer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace crucible::golden::internal
