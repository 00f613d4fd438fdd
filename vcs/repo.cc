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

Result<std::vector<DiffFile>> ParseDiff(std::string_view patch) {
  std::vector<DiffFile> files;
  if (patch.find_first_not_of(" \t\r\n") == std::string_view::npos) return files;
  internal::EnsureLibgit2();
  git_diff* raw = nullptr;
  if (git_diff_from_buffer(&raw, patch.data(), patch.size()) < 0) {
    return internal::FailGit(Code::kInvalidArgument, "diff does not parse");
  }
  internal::DiffPtr diff(raw);
  const size_t n = git_diff_num_deltas(diff.get());
  files.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    git_patch* raw_patch = nullptr;
    if (git_patch_from_diff(&raw_patch, diff.get(), i) < 0) {
      return internal::FailGit(Code::kInvalidArgument, fmt::format("file {} of the diff", i + 1));
    }
    internal::PatchPtr p(raw_patch);
    const git_diff_delta* delta = git_patch_get_delta(p.get());
    DiffFile file;
    internal::DeltaFile names = internal::DeltaFileOf(delta);
    file.status = names.status;
    file.path = std::move(names.path);
    file.old_path = std::move(names.old_path);
    file.binary = names.binary;
    const size_t hunks = git_patch_num_hunks(p.get());
    file.hunks.reserve(hunks);
    for (size_t h = 0; h < hunks; ++h) {
      const git_diff_hunk* gh = nullptr;
      size_t lines = 0;
      if (git_patch_get_hunk(&gh, &lines, p.get(), h) < 0) {
        return internal::FailGit(Code::kInvalidArgument,
                                 fmt::format("hunk {} of {}", h + 1, file.path));
      }
      DiffHunk hunk{.old_start = gh->old_start,
                    .old_lines = gh->old_lines,
                    .new_start = gh->new_start,
                    .new_lines = gh->new_lines,
                    .lines = {}};
      hunk.lines.reserve(lines);
      for (size_t l = 0; l < lines; ++l) {
        const git_diff_line* gl = nullptr;
        if (git_patch_get_line_in_hunk(&gl, p.get(), h, l) < 0) continue;
        if (gl->origin != ' ' && gl->origin != '+' && gl->origin != '-') continue;
        std::string_view text(gl->content, gl->content_len);
        if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
        if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
        if (gl->origin == '+') ++file.added;
        if (gl->origin == '-') ++file.removed;
        hunk.lines.push_back(DiffLine{.origin = gl->origin,
                                      .old_line = gl->old_lineno > 0 ? gl->old_lineno : 0,
                                      .new_line = gl->new_lineno > 0 ? gl->new_lineno : 0,
                                      .text = std::string(text)});
      }
      file.hunks.push_back(std::move(hunk));
    }
    files.push_back(std::move(file));
  }
  return files;
}

}  // namespace crucible::vcs
