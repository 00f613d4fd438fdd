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
// Errors: kNotFound "PATH is not a git repository", kNotFound for an unknown ref.
Result<std::vector<Change>> FirstParentHistory(const std::string& repo_path,
                                               std::string_view ref = "HEAD", size_t limit = 0);

// One file's part of a diff.
struct FilePatch {
  std::string path;      // new path (old path for deletions)
  std::string old_path;  // differs from path for renames
  char status = 'M';     // A, D, M, R, T
  bool binary = false;
  std::string patch;     // unified diff of this file, "diff --git ..." header included
};

// Diff of `commit` against `parent` (full hex ids), one entry per file, with
// rename detection.
Result<std::vector<FilePatch>> DiffCommits(const std::string& repo_path, const std::string& parent,
                                           const std::string& commit);

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
  // if it exists), keeping git metadata in `gitdir` (created).
  static Result<std::unique_ptr<Workspace>> Create(const std::string& repo_path,
                                                   const std::string& commit,
                                                   const std::string& workdir,
                                                   const std::string& gitdir);
  virtual ~Workspace() = default;

  // Applies a unified diff to the working tree. kInvalidArgument when it does
  // not apply, naming the file; the tree is left unchanged in that case.
  virtual Status Apply(std::string_view patch) = 0;

  // The working tree's changes against the base commit (new files included,
  // binary files marked), as one unified diff.
  virtual Result<std::string> Diff() = 0;

  // Paths changed against the base commit (added, modified, deleted), sorted.
  virtual Result<std::vector<std::string>> ChangedFiles() = 0;

  virtual const std::string& workdir() const = 0;
};

using WorkspacePtr = std::unique_ptr<Workspace>;

}  // namespace crucible::vcs
