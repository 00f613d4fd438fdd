// History and commit diffs. The Workspace lives in vcs/workspace.cc.
#include "vcs/repo.h"

#include <fmt/core.h>

#include <algorithm>

#include "vcs/git_internal.h"

namespace crucible::vcs {

using namespace internal;

namespace {

std::string FirstLine(std::string_view message) {
  std::string_view line = message.substr(0, message.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  return std::string(line);
}

Change MakeChange(const git_commit* commit) {
  Change change;
  change.commit = OidHex(git_commit_id(commit));
  if (git_commit_parentcount(commit) > 0) change.parent = OidHex(git_commit_parent_id(commit, 0));
  const char* message = git_commit_message(commit);
  change.message = message ? message : "";
  change.summary = FirstLine(change.message);
  change.time_ms = static_cast<int64_t>(git_commit_time(commit)) * 1000;
  change.is_merge = git_commit_parentcount(commit) > 1;
  return change;
}

Result<TreePtr> CommitTree(git_repository* repo, const std::string& rev,
                           const std::string& repo_path) {
  CRUCIBLE_ASSIGN_OR_RETURN(CommitPtr commit, LookupCommit(repo, rev, repo_path));
  git_tree* tree = nullptr;
  if (git_commit_tree(&tree, commit.get()) < 0) {
    return FailGit(Code::kCorruption,
                   fmt::format("cannot read the tree of {} in {}", rev, repo_path));
  }
  return TreePtr(tree);
}

}  // namespace

Result<std::vector<Change>> FirstParentHistory(const std::string& repo_path, std::string_view ref,
                                               size_t limit) {
  CRUCIBLE_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(repo_path));
  CRUCIBLE_ASSIGN_OR_RETURN(CommitPtr commit, LookupCommit(repo.get(), ref, repo_path));
  std::vector<Change> changes;
  while (commit != nullptr && (limit == 0 || changes.size() < limit)) {
    changes.push_back(MakeChange(commit.get()));
    if (git_commit_parentcount(commit.get()) == 0) break;
    git_commit* parent = nullptr;
    int rc = git_commit_parent(&parent, commit.get(), 0);
    if (rc == GIT_ENOTFOUND) break;  // a shallow clone: history ends here
    if (rc < 0) {
      return FailGit(Code::kCorruption, fmt::format("cannot read the parent of {} in {}",
                                                    changes.back().commit, repo_path));
    }
    commit.reset(parent);
  }
  return changes;
}

Result<std::vector<FilePatch>> DiffCommits(const std::string& repo_path, const std::string& parent,
                                           const std::string& commit) {
  CRUCIBLE_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(repo_path));
  TreePtr old_tree;
  if (!parent.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(old_tree, CommitTree(repo.get(), parent, repo_path));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(TreePtr new_tree, CommitTree(repo.get(), commit, repo_path));

  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  opts.flags = GIT_DIFF_SHOW_BINARY | GIT_DIFF_INCLUDE_TYPECHANGE;
  git_diff* raw = nullptr;
  if (git_diff_tree_to_tree(&raw, repo.get(), old_tree.get(), new_tree.get(), &opts) < 0) {
    return FailGit(Code::kInternal, fmt::format("cannot diff {} against {}", commit, parent));
  }
  DiffPtr diff(raw);
  return FilePatchesWithRenames(diff.get(), commit);
}

std::string JoinPatches(const std::vector<FilePatch>& files) {
  std::string out;
  for (const FilePatch& f : files) {
    out += f.patch;
    if (!out.empty() && out.back() != '\n') out += '\n';
  }
  return out;
}

Result<std::vector<std::string>> PatchPaths(std::string_view patch) {
  if (patch.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return std::vector<std::string>{};
  }
  internal::EnsureLibgit2();
  git_diff* raw = nullptr;
  if (git_diff_from_buffer(&raw, patch.data(), patch.size()) < 0) {
    return internal::FailGit(Code::kInvalidArgument, "patch does not parse");
  }
  internal::DiffPtr diff(raw);
  return internal::DeltaPaths(diff.get());
}

}  // namespace crucible::vcs
