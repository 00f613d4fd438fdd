// Git access through libgit2: history, diffs and task workspaces.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace crucible::vcs {

// One change on the first-parent line.
struct Change {
  std::string commit;     // full hex id of the merged (or pushed) commit
  std::string parent;     // its first parent; empty for a root commit
  std::string summary;    // first line of the message
  std::string message;    // the whole message
  int64_t time_ms = 0;    // committer time
  bool is_merge = false;  // more than one parent
};

// Walks the first-parent history of `ref` in `repo_path`, newest first, at
// most `limit` changes (0: all). Root commits are included with an empty parent.
// `repo_path` is a working tree, its .git directory or a bare repository;
// parent directories are not searched. The history of a shallow clone ends at
// its shallow boundary.
// Errors: kNotFound "PATH is not a git repository", kNotFound for an unknown
// ref or a repository without commits (naming the ref and the path).
//
// Repositories owned by another user are accepted (libgit2's safe.directory
// check is off: libgit2 runs no program named by a repository's config).
Result<std::vector<Change>> FirstParentHistory(const std::string& repo_path,
                                               std::string_view ref = "HEAD", size_t limit = 0);

// One file's part of a diff.
struct FilePatch {
  std::string path;      // new path (old path for deletions)
  std::string old_path;  // differs from path for renames
  char status = 'M';     // A, D, M, R, T
  bool binary = false;
  bool submodule = false;  // a gitlink (submodule commit) on either side
  std::string patch;       // unified diff of this file, "diff --git ..." header included
};

// Diff of `commit` against `parent` (hex ids or any revision; an empty
// `parent` diffs against the empty tree), one entry per file, with rename
// detection (50% similarity). Binary files carry a "GIT binary patch" that
// Workspace::Apply can apply. kNotFound for an unknown commit.
Result<std::vector<FilePatch>> DiffCommits(const std::string& repo_path, const std::string& parent,
                                           const std::string& commit);

// The paths a unified diff touches (old and new names), sorted and unique.
// kInvalidArgument when `patch` does not parse.
Result<std::vector<std::string>> PatchPaths(std::string_view patch);

// One line of a hunk: ' ' context, '+' added, '-' removed. Line numbers are
// 1-based; the side a line is not on has 0. `text` has no line break.
struct DiffLine {
  char origin = ' ';
  int old_line = 0;
  int new_line = 0;
  std::string text;
};

struct DiffHunk {
  int old_start = 0;
  int old_lines = 0;
  int new_start = 0;
  int new_lines = 0;
  std::vector<DiffLine> lines;
};

// One file of a parsed diff, with its hunks and line counts.
struct DiffFile {
  std::string path;      // new path (old path for deletions)
  std::string old_path;  // the same as path unless renamed
  char status = 'M';     // A, D, M, R, T
  bool binary = false;
  int added = 0;
  int removed = 0;
  std::vector<DiffHunk> hunks;
};

// Parses a unified diff in git's format (as made by DiffCommits and
// Workspace::Diff) with libgit2, file by file. An empty diff has no file.
// kInvalidArgument when it does not parse.
Result<std::vector<DiffFile>> ParseDiff(std::string_view patch);

// Concatenates the patches of `files` into one unified diff.
std::string JoinPatches(const std::vector<FilePatch>& files);

// A working tree of one commit of a repository, for an agent or a test run.
//
// The directory `workdir` holds only the files of the commit: no .git, so the
// agent cannot read the repository's later history. Git metadata lives in a
// separate `gitdir` that borrows the source repository's objects (alternates),
// which lets the workspace apply patches and diff itself against its base.
class Workspace {
 public:
  // Checks out `commit` of `repo_path` into `workdir` (created; must be empty
  // if it exists: kFailedPrecondition otherwise), keeping git metadata in
  // `gitdir` (created; must not hold a repository yet). No objects are
  // copied: the gitdir reads them from `repo_path` (objects/info/alternates),
  // which must therefore outlive the workspace. The workspace's files stay on
  // disk when the object dies; removing both directories is the caller's job.
  // kNotFound when `repo_path` is not a repository or `commit` is unknown.
  static Result<std::unique_ptr<Workspace>> Create(const std::string& repo_path,
                                                   const std::string& commit,
                                                   const std::string& workdir,
                                                   const std::string& gitdir);
  virtual ~Workspace() = default;

  // Applies a unified diff in git's format ("diff --git" headers, as made by
  // DiffCommits, Diff and `git diff --binary`) to the working tree, which may
  // have been edited since the checkout. Like `git apply`, a hunk whose
  // context moved is found above or below its stated line (no fuzz). An empty
  // patch is a no-op. kInvalidArgument when it does not parse or does not
  // apply, naming the file; the tree is left unchanged in that case. The tree
  // may hold files written by untrusted code: a patch that would read or
  // write through a symbolic link in it (or a path with ".." components) is
  // refused with kInvalidArgument.
  virtual Status Apply(std::string_view patch) = 0;

  // Puts each of `paths` (relative to the working tree) back as it is in the
  // base commit: a file the base has is rewritten with its content and mode,
  // one it lacks is removed. Used before the hidden test patch is applied, so
  // an agent's own edits to those test files cannot make it fail to apply.
  // Refuses (kInvalidArgument, naming the path) a path that leaves the tree or
  // passes through a symbolic link; a symlink at the path itself is replaced.
  virtual Status Restore(const std::vector<std::string>& paths) = 0;

  // The working tree's changes against the base commit, as one unified diff
  // that Apply accepts: new files included unless ignored by the
  // repository's .gitignore files or the built-in ignores (__pycache__/,
  // *.pyc, .pytest_cache/); binary files as "GIT binary patch"; symbolic
  // links as links, never followed; special files (fifos, sockets) skipped.
  virtual Result<std::string> Diff() = 0;

  // Paths changed against the base commit (added, modified, deleted), sorted.
  virtual Result<std::vector<std::string>> ChangedFiles() = 0;

  // Diff() and ChangedFiles() from one scan of the working tree.
  struct Change {
    std::string diff;
    std::vector<std::string> files;
  };
  virtual Result<Change> DiffAndFiles() = 0;

  virtual const std::string& workdir() const = 0;
};

using WorkspacePtr = std::unique_ptr<Workspace>;

}  // namespace crucible::vcs
