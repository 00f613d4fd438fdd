// Workspace: a checkout of one commit whose git metadata lives outside the
// working tree.
//
// The gitdir is initialised bare and given its working tree only in memory
// (git_repository_set_workdir without a gitlink), so nothing git-related is
// written into the workdir. Its objects come from the source repository through
// objects/info/alternates: creating a workspace copies no objects.
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "base/fs.h"
#include "vcs/git_internal.h"
#include "vcs/patch_text.h"
#include "vcs/repo.h"

namespace crucible::vcs {

using namespace internal;

namespace {

namespace fs = std::filesystem;

// Build and cache droppings that are never part of a change, on top of the
// repository's own .gitignore files.
constexpr const char* kDefaultIgnores = "__pycache__/\n*.pyc\n.pytest_cache/\n";

class GitWorkspace final : public Workspace {
 public:
  GitWorkspace(RepoPtr repo, git_oid base_tree, std::string workdir)
      : repo_(std::move(repo)), base_tree_(base_tree), workdir_(std::move(workdir)) {}

  Status Apply(std::string_view patch) override;
  Status Restore(const std::vector<std::string>& paths) override;
  Result<std::string> Diff() override;
  Result<std::vector<std::string>> ChangedFiles() override;
  Result<Change> DiffAndFiles() override;
  const std::string& workdir() const override { return workdir_; }

 private:
  Result<DiffPtr> WorkdirDiff();

  RepoPtr repo_;
  git_oid base_tree_;
  std::string workdir_;
};

Status PrepareEmptyDir(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      return Fail(Code::kFailedPrecondition, "workdir " + dir + " exists and is not a directory");
    }
    if (!fs::is_empty(dir, ec)) {
      return Fail(Code::kFailedPrecondition, "workdir " + dir + " is not empty");
    }
    return {};
  }
  return MakeDirs(dir);
}

// Creates a bare repository in `gitdir` whose objects are those of `source`.
Status InitGitdir(const std::string& gitdir, const std::string& source_objects) {
  git_repository_init_options opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  opts.flags =
      GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
  git_repository* raw = nullptr;
  int rc = git_repository_init_ext(&raw, gitdir.c_str(), &opts);
  RepoPtr repo(raw);
  if (rc < 0) return FailGit(Code::kIoError, "cannot create gitdir " + gitdir);
  return WriteFile(gitdir + "/objects/info/alternates", source_objects + "\n");
}

Status ConfigureRepo(git_repository* repo, const std::string& gitdir) {
  git_config* raw = nullptr;
  if (git_repository_config(&raw, repo) < 0) {
    return FailGit(Code::kIoError, "cannot read config of " + gitdir);
  }
  ConfigPtr config(raw);
  // The host's global git configuration must not change what is checked out.
  if (git_config_set_bool(config.get(), "core.autocrlf", 0) < 0 ||
      git_config_set_bool(config.get(), "core.filemode", 1) < 0 ||
      git_config_set_bool(config.get(), "core.symlinks", 1) < 0) {
    return FailGit(Code::kIoError, "cannot write config of " + gitdir);
  }
  if (git_ignore_add_rule(repo, kDefaultIgnores) < 0) {
    return FailGit(Code::kInternal, "cannot add ignore rules");
  }
  return {};
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? path : abs.string();
}

struct ApplyProgress {
  std::string path;  // the file being applied when it failed
};

int OnApplyDelta(const git_diff_delta* delta, void* payload) {
  auto* progress = static_cast<ApplyProgress*>(payload);
  const char* path = delta->new_file.path ? delta->new_file.path : delta->old_file.path;
  progress->path = path ? path : "";
  return 0;
}

// The content of `rel` in `workdir` for hunk relocation; nullopt when it is
// missing, reached through a symbolic link or too large to bother.
std::optional<std::string> ReadWorkdirFile(const std::string& workdir, const std::string& rel) {
  constexpr uintmax_t kMaxBytes = 64 << 20;
  if (!CheckPathInside(workdir, rel, /*may_be_link=*/false)) return std::nullopt;
  const std::string path = workdir + "/" + rel;
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(path, ec)) || fs::file_size(path, ec) > kMaxBytes) {
    return std::nullopt;
  }
  auto content = ReadFile(path);
  if (!content) return std::nullopt;
  return std::move(*content);
}

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; });
}

}  // namespace

Result<std::unique_ptr<Workspace>> Workspace::Create(const std::string& repo_path,
                                                     const std::string& commit,
                                                     const std::string& workdir,
                                                     const std::string& gitdir) {
  CRUCIBLE_ASSIGN_OR_RETURN(RepoPtr source, OpenRepository(repo_path));
  CRUCIBLE_ASSIGN_OR_RETURN(CommitPtr source_commit, LookupCommit(source.get(), commit, repo_path));
  const git_oid commit_id = *git_commit_id(source_commit.get());
  const std::string source_objects =
      AbsolutePath(std::string(git_repository_commondir(source.get())) + "objects");
  source_commit.reset();
  source.reset();

  CRUCIBLE_RETURN_IF_ERROR(PrepareEmptyDir(workdir));
  const std::string abs_workdir = AbsolutePath(workdir);
  CRUCIBLE_RETURN_IF_ERROR(InitGitdir(gitdir, source_objects));

  git_repository* raw = nullptr;
  if (git_repository_open_bare(&raw, gitdir.c_str()) < 0) {
    return FailGit(Code::kIoError, "cannot open gitdir " + gitdir);
  }
  RepoPtr repo(raw);
  if (git_repository_set_workdir(repo.get(), abs_workdir.c_str(), /*update_gitlink=*/0) < 0) {
    return FailGit(Code::kIoError, "cannot use " + abs_workdir + " as working tree");
  }
  CRUCIBLE_RETURN_IF_ERROR(ConfigureRepo(repo.get(), gitdir));

  const std::string hex = OidHex(&commit_id);
  git_commit* raw_commit = nullptr;
  if (git_commit_lookup(&raw_commit, repo.get(), &commit_id) < 0) {
    return FailGit(Code::kNotFound,
                   fmt::format("commit {} not readable through {}", hex, source_objects));
  }
  CommitPtr head(raw_commit);
  const git_oid tree_id = *git_commit_tree_id(head.get());
  if (git_repository_set_head_detached(repo.get(), &commit_id) < 0) {
    return FailGit(Code::kIoError, "cannot set HEAD of " + gitdir + " to " + hex);
  }
  git_checkout_options checkout = GIT_CHECKOUT_OPTIONS_INIT;
  checkout.checkout_strategy = GIT_CHECKOUT_FORCE;
  if (git_checkout_head(repo.get(), &checkout) < 0) {
    return FailGit(Code::kIoError, fmt::format("cannot check out {} into {}", hex, abs_workdir));
  }
  return std::unique_ptr<Workspace>(new GitWorkspace(std::move(repo), tree_id, abs_workdir));
}

Status GitWorkspace::Apply(std::string_view patch) {
  if (IsBlank(patch)) return {};
  const std::string relocated = RelocateHunks(
      patch, [this](const std::string& path) { return ReadWorkdirFile(workdir_, path); });
  git_diff* raw = nullptr;
  if (git_diff_from_buffer(&raw, relocated.data(), relocated.size()) < 0) {
    return FailGit(Code::kInvalidArgument, "patch does not parse");
  }
  DiffPtr diff(raw);
  // The working tree may have been written by untrusted code: never read or
  // write through a symbolic link it planted.
  const size_t n = git_diff_num_deltas(diff.get());
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(diff.get(), i);
    for (const git_diff_file* f : {&delta->old_file, &delta->new_file}) {
      if (f->path == nullptr) continue;
      CRUCIBLE_RETURN_IF_ERROR(CheckPathInside(workdir_, f->path, f->mode == GIT_FILEMODE_LINK));
    }
  }
  ApplyProgress progress;
  git_apply_options opts = GIT_APPLY_OPTIONS_INIT;
  opts.delta_cb = OnApplyDelta;
  opts.payload = &progress;
  // git_apply computes every file's result in memory before it writes any, so
  // a patch that does not apply leaves the working tree as it was.
  if (git_apply(repo_.get(), diff.get(), GIT_APPLY_LOCATION_WORKDIR, &opts) < 0) {
    std::string what = progress.path.empty() ? std::string("patch does not apply")
                                             : "patch does not apply to " + progress.path;
    return FailGit(Code::kInvalidArgument, what);
  }
  return {};
}

Status GitWorkspace::Restore(const std::vector<std::string>& paths) {
  git_tree* raw_tree = nullptr;
  if (git_tree_lookup(&raw_tree, repo_.get(), &base_tree_) < 0) {
    return FailGit(Code::kCorruption, "cannot read the base tree of " + workdir_);
  }
  TreePtr tree(raw_tree);
  for (const auto& rel : paths) {
    CRUCIBLE_RETURN_IF_ERROR(CheckPathInside(workdir_, rel, /*may_be_link=*/true));
    const std::string path = workdir_ + "/" + rel;
    std::error_code ec;
    fs::remove_all(path, ec);  // a symlink is removed, never followed
    if (ec) return Fail(Code::kIoError, "cannot remove " + path + ": " + ec.message());

    git_tree_entry* raw_entry = nullptr;
    if (git_tree_entry_bypath(&raw_entry, tree.get(), rel.c_str()) < 0) continue;  // not in base
    std::unique_ptr<git_tree_entry, void (*)(git_tree_entry*)> entry(raw_entry,
                                                                     git_tree_entry_free);
    const git_filemode_t mode = git_tree_entry_filemode(entry.get());
    if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE &&
        mode != GIT_FILEMODE_LINK) {
      continue;  // directories and submodules are not files to restore
    }
    git_blob* raw_blob = nullptr;
    if (git_blob_lookup(&raw_blob, repo_.get(), git_tree_entry_id(entry.get())) < 0) {
      return FailGit(Code::kCorruption, "cannot read " + rel + " of the base commit");
    }
    std::unique_ptr<git_blob, void (*)(git_blob*)> blob(raw_blob, git_blob_free);
    std::string content(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                        static_cast<size_t>(git_blob_rawsize(blob.get())));
    CRUCIBLE_RETURN_IF_ERROR(MakeDirs(fs::path(path).parent_path().string()));
    // MakeDirs may have created directories; check again that none of the
    // leading components is a link before writing.
    CRUCIBLE_RETURN_IF_ERROR(CheckPathInside(workdir_, rel, /*may_be_link=*/false));
    if (mode == GIT_FILEMODE_LINK) {
      fs::create_symlink(content, path, ec);
      if (ec) return Fail(Code::kIoError, "cannot restore link " + path + ": " + ec.message());
      continue;
    }
    // Through a fresh temporary file whose mode is set on the descriptor: a
    // link planted at the path or next to it is replaced, never followed.
    CRUCIBLE_RETURN_IF_ERROR(
        WriteFile(path, content, mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644));
  }
  return {};
}

Result<DiffPtr> GitWorkspace::WorkdirDiff() {
  git_tree* raw_tree = nullptr;
  if (git_tree_lookup(&raw_tree, repo_.get(), &base_tree_) < 0) {
    return FailGit(Code::kCorruption, "cannot read the base tree of " + workdir_);
  }
  TreePtr tree(raw_tree);
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  opts.flags = GIT_DIFF_INCLUDE_UNTRACKED | GIT_DIFF_RECURSE_UNTRACKED_DIRS |
               GIT_DIFF_SHOW_UNTRACKED_CONTENT | GIT_DIFF_SHOW_BINARY | GIT_DIFF_INCLUDE_TYPECHANGE;
  git_diff* raw = nullptr;
  if (git_diff_tree_to_workdir(&raw, repo_.get(), tree.get(), &opts) < 0) {
    return FailGit(Code::kIoError, "cannot diff working tree " + workdir_);
  }
  return DiffPtr(raw);
}

Result<std::string> GitWorkspace::Diff() {
  CRUCIBLE_ASSIGN_OR_RETURN(DiffPtr diff, WorkdirDiff());
  return DiffToString(diff.get());
}

Result<Workspace::Change> GitWorkspace::DiffAndFiles() {
  CRUCIBLE_ASSIGN_OR_RETURN(DiffPtr diff, WorkdirDiff());
  CRUCIBLE_ASSIGN_OR_RETURN(std::string text, DiffToString(diff.get()));
  return Change{.diff = std::move(text), .files = DeltaPaths(diff.get())};
}

Result<std::vector<std::string>> GitWorkspace::ChangedFiles() {
  CRUCIBLE_ASSIGN_OR_RETURN(DiffPtr diff, WorkdirDiff());
  return DeltaPaths(diff.get());
}

}  // namespace crucible::vcs
