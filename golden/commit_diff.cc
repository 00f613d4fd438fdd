#include "golden/commit_diff.h"

#include <fmt/core.h>
#include <git2.h>

#include <algorithm>

#include "vcs/git_internal.h"

namespace crucible::golden::internal {

namespace {

using vcs::internal::CommitPtr;
using vcs::internal::DiffPtr;
using vcs::internal::FailGit;
using vcs::internal::RepoPtr;
using vcs::internal::TreePtr;

// Git's order of tree entries: by name, a subtree's name compared as if it
// ended in "/".
int EntryOrder(const git_tree_entry* a, const git_tree_entry* b) {
  const char* na = git_tree_entry_name(a);
  const char* nb = git_tree_entry_name(b);
  const char end_a = git_tree_entry_type(a) == GIT_OBJECT_TREE ? '/' : '\0';
  const char end_b = git_tree_entry_type(b) == GIT_OBJECT_TREE ? '/' : '\0';
  for (;; ++na, ++nb) {
    auto ca = static_cast<unsigned char>(*na != '\0' ? *na : end_a);
    auto cb = static_cast<unsigned char>(*nb != '\0' ? *nb : end_b);
    if (ca != cb) return ca < cb ? -1 : 1;
    if (*na == '\0' || *nb == '\0') return 0;  // same name, same kind
  }
}

// Appends to `out` the paths whose entries differ between `a` and `b` (both
// trees of one repository), walking both in git's order and descending only
// into subtrees whose ids differ; a path that is a tree on one side and a
// file on the other is listed once for each side (the directory stands for
// everything under it). False when a subtree cannot be read.
bool ChangedPaths(git_repository* repo, const git_tree* a, const git_tree* b,
                  const std::string& prefix, std::vector<std::string>& out) {
  auto subtree = [&](const git_tree_entry* e, TreePtr& tree) {
    git_tree* raw = nullptr;
    if (git_tree_lookup(&raw, repo, git_tree_entry_id(e)) < 0) return false;
    tree.reset(raw);
    return true;
  };
  const size_t na = git_tree_entrycount(a), nb = git_tree_entrycount(b);
  size_t i = 0, j = 0;
  while (i < na || j < nb) {
    const git_tree_entry* ea = i < na ? git_tree_entry_byindex(a, i) : nullptr;
    const git_tree_entry* eb = j < nb ? git_tree_entry_byindex(b, j) : nullptr;
    int order = ea == nullptr ? 1 : eb == nullptr ? -1 : EntryOrder(ea, eb);
    if (order < 0) {  // only in a
      out.push_back(prefix + git_tree_entry_name(ea));
      ++i;
      continue;
    }
    if (order > 0) {  // only in b
      out.push_back(prefix + git_tree_entry_name(eb));
      ++j;
      continue;
    }
    ++i, ++j;
    if (git_tree_entry_filemode(ea) == git_tree_entry_filemode(eb) &&
        git_oid_equal(git_tree_entry_id(ea), git_tree_entry_id(eb))) {
      continue;
    }
    std::string path = prefix + git_tree_entry_name(ea);
    if (git_tree_entry_type(ea) == GIT_OBJECT_TREE && git_tree_entry_type(eb) == GIT_OBJECT_TREE) {
      TreePtr ta, tb;
      if (!subtree(ea, ta) || !subtree(eb, tb)) return false;
      if (!ChangedPaths(repo, ta.get(), tb.get(), path + "/", out)) return false;
    } else {
      out.push_back(std::move(path));
    }
  }
  return true;
}

}  // namespace

struct CommitDiffer::Impl {
  RepoPtr repo;
  std::string path;

  // A full hex id is looked up directly (the object cache answers repeated
  // lookups); anything else goes through revparse.
  Result<TreePtr> Tree(const std::string& rev) {
    CommitPtr commit;
    git_oid oid;
    git_commit* raw = nullptr;
    if (rev.size() == GIT_OID_HEXSZ && git_oid_fromstrn(&oid, rev.data(), rev.size()) == 0 &&
        git_commit_lookup(&raw, repo.get(), &oid) == 0) {
      commit.reset(raw);
    } else {
      CRUCIBLE_ASSIGN_OR_RETURN(commit, vcs::internal::LookupCommit(repo.get(), rev, path));
    }
    git_tree* tree = nullptr;
    if (git_commit_tree(&tree, commit.get()) < 0) {
      return FailGit(Code::kCorruption, fmt::format("cannot read the tree of {} in {}", rev, path));
    }
    return TreePtr(tree);
  }
};

CommitDiffer::CommitDiffer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CommitDiffer::CommitDiffer(CommitDiffer&&) noexcept = default;
CommitDiffer& CommitDiffer::operator=(CommitDiffer&&) noexcept = default;
CommitDiffer::~CommitDiffer() = default;

Result<CommitDiffer> CommitDiffer::Open(const std::string& repo_path) {
  auto impl = std::make_unique<Impl>();
  CRUCIBLE_ASSIGN_OR_RETURN(impl->repo, vcs::internal::OpenRepository(repo_path));
  static const bool kTuned = [] {
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
    git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, size_t{1} << 20);
    return true;
  }();
  (void)kTuned;
  impl->path = repo_path;
  return CommitDiffer(std::move(impl));
}

Result<std::vector<vcs::FilePatch>> CommitDiffer::Diff(const std::string& parent,
                                                       const std::string& commit) {
  git_repository* repo = impl_->repo.get();
  TreePtr old_tree;
  if (!parent.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(old_tree, impl_->Tree(parent));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(TreePtr new_tree, impl_->Tree(commit));

  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  opts.flags = GIT_DIFF_SHOW_BINARY | GIT_DIFF_INCLUDE_TYPECHANGE;
  // The cheap file list first: libgit2's tree diff walks every entry of both
  // trees, while a change touches a few files of a few directories. Naming
  // the changed paths (literally) limits the diff to them; the result is the
  // same, renames included, since a rename's two sides are both listed.
  std::vector<std::string> changed;
  std::vector<char*> pathspec;
  if (old_tree) {
    if (ChangedPaths(repo, old_tree.get(), new_tree.get(), "", changed)) {
      if (changed.empty()) return std::vector<vcs::FilePatch>{};
      std::sort(changed.begin(), changed.end());
      changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
      for (auto& p : changed) pathspec.push_back(p.data());
      opts.pathspec.strings = pathspec.data();
      opts.pathspec.count = pathspec.size();
      opts.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH;
    }
  }
  git_diff* raw = nullptr;
  if (git_diff_tree_to_tree(&raw, repo, old_tree.get(), new_tree.get(), &opts) < 0) {
    return FailGit(Code::kInternal, fmt::format("cannot diff {} against {}", commit, parent));
  }
  DiffPtr diff(raw);
  return vcs::internal::FilePatchesWithRenames(diff.get(), commit);
}

}  // namespace crucible::golden::internal
