// Private helpers of vcs/: libgit2 initialisation, owning pointers for libgit2
// objects and error conversion. Not part of the public API.
#pragma once

#include <git2.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "vcs/repo.h"

namespace crucible::vcs::internal {

// Initialises libgit2 once per process (thread-safe); call before any git_*.
void EnsureLibgit2();

// "<what>: <libgit2's last error message>".
std::string GitMessage(std::string_view what);

// An Error with `code` and GitMessage(what).
std::unexpected<Error> FailGit(Code code, std::string_view what);

template <typename T, void (*Free)(T*)>
struct GitDeleter {
  void operator()(T* p) const { Free(p); }
};

using RepoPtr = std::unique_ptr<git_repository, GitDeleter<git_repository, git_repository_free>>;
using CommitPtr = std::unique_ptr<git_commit, GitDeleter<git_commit, git_commit_free>>;
using TreePtr = std::unique_ptr<git_tree, GitDeleter<git_tree, git_tree_free>>;
using DiffPtr = std::unique_ptr<git_diff, GitDeleter<git_diff, git_diff_free>>;
using PatchPtr = std::unique_ptr<git_patch, GitDeleter<git_patch, git_patch_free>>;
using ObjectPtr = std::unique_ptr<git_object, GitDeleter<git_object, git_object_free>>;
using ConfigPtr = std::unique_ptr<git_config, GitDeleter<git_config, git_config_free>>;

// A git_buf that frees itself.
struct GitBuf {
  git_buf buf = GIT_BUF_INIT;
  GitBuf() = default;
  GitBuf(const GitBuf&) = delete;
  GitBuf& operator=(const GitBuf&) = delete;
  ~GitBuf() { git_buf_dispose(&buf); }
  std::string str() const { return buf.ptr ? std::string(buf.ptr, buf.size) : std::string(); }
};

// Opens the repository at exactly `path` (a working tree, its .git directory
// or a bare repository; parent directories are not searched).
// kNotFound "PATH is not a git repository".
Result<RepoPtr> OpenRepository(const std::string& path);

// Looks up the commit named by `rev` (a full or abbreviated hex id, a ref name,
// or any revision expression). kNotFound naming `rev` and `repo_path`.
Result<CommitPtr> LookupCommit(git_repository* repo, std::string_view rev,
                               const std::string& repo_path);

// The full hex id of `oid`.
std::string OidHex(const git_oid* oid);

// Renders `diff` as one unified diff (binary files as "GIT binary patch").
Result<std::string> DiffToString(git_diff* diff);

// The old and new paths of every delta of `diff`, sorted and unique.
std::vector<std::string> DeltaPaths(git_diff* diff);

// A delta's status as one letter, as in `git diff --name-status`: A (added,
// copied), D, R, T (type change) or M.
char StatusLetter(git_delta_t status);

// What a diff delta names: its status letter, new path (the old one for a
// deletion), old path (the new one when it has none) and whether it is binary.
struct DeltaFile {
  char status = 'M';
  std::string path;
  std::string old_path;
  bool binary = false;
};
DeltaFile DeltaFileOf(const git_diff_delta* delta);

// Detects renames in `diff` (a tree-to-tree diff of `commit`, named in
// errors) and returns its files with their patches.
Result<std::vector<FilePatch>> FilePatchesWithRenames(git_diff* diff, std::string_view commit);

}  // namespace crucible::vcs::internal
