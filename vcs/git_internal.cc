#include "vcs/git_internal.h"

#include <fmt/core.h>

#include <algorithm>

namespace crucible::vcs::internal {

namespace {

int InitLibgit2() {
  int rc = git_libgit2_init();
  // Crucible runs as root (the sandbox needs it) over repositories that their
  // users own, which libgit2's ownership check (git's safe.directory) refuses,
  // and libgit2 1.5 reports that refusal as "not found". The check guards
  // against git running programs named in a planted repository's config;
  // libgit2 runs none (no hooks, no fsmonitor, no external filters), and the
  // operator names the repository explicitly.
  git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
  return rc;
}

}  // namespace

void EnsureLibgit2() {
  // git_libgit2_shutdown is never called: libgit2 stays up for the process.
  [[maybe_unused]] static const int kInit = InitLibgit2();
}

std::string GitMessage(std::string_view what) {
  const git_error* e = git_error_last();
  if (e == nullptr || e->message == nullptr || *e->message == '\0') {
    return fmt::format("{}: unknown libgit2 error", what);
  }
  return fmt::format("{}: {}", what, e->message);
}

std::unexpected<Error> FailGit(Code code, std::string_view what) {
  return Fail(code, GitMessage(what));
}

Result<RepoPtr> OpenRepository(const std::string& path) {
  EnsureLibgit2();
  git_repository* raw = nullptr;
  int rc = git_repository_open_ext(&raw, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
  RepoPtr repo(raw);
  if (rc == GIT_ENOTFOUND) return Fail(Code::kNotFound, path + " is not a git repository");
  if (rc < 0) return FailGit(Code::kFailedPrecondition, "cannot open repository " + path);
  return repo;
}

Result<CommitPtr> LookupCommit(git_repository* repo, std::string_view rev,
                               const std::string& repo_path) {
  std::string spec(rev);
  git_object* raw = nullptr;
  int rc = git_revparse_single(&raw, repo, spec.c_str());
  ObjectPtr obj(raw);
  if (rc == GIT_ENOTFOUND || rc == GIT_EUNBORNBRANCH || rc == GIT_EINVALIDSPEC ||
      rc == GIT_EAMBIGUOUS) {
    return Fail(Code::kNotFound,
                GitMessage(fmt::format("unknown revision '{}' in {}", spec, repo_path)));
  }
  if (rc < 0) {
    return FailGit(Code::kFailedPrecondition,
                   fmt::format("cannot resolve '{}' in {}", spec, repo_path));
  }
  git_object* peeled = nullptr;
  if (git_object_peel(&peeled, obj.get(), GIT_OBJECT_COMMIT) < 0) {
    return FailGit(Code::kNotFound, fmt::format("'{}' in {} is not a commit", spec, repo_path));
  }
  return CommitPtr(reinterpret_cast<git_commit*>(peeled));
}

std::string OidHex(const git_oid* oid) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, oid);
  return hex;
}

Result<std::string> DiffToString(git_diff* diff) {
  GitBuf buf;
  if (git_diff_to_buf(&buf.buf, diff, GIT_DIFF_FORMAT_PATCH) < 0) {
    return FailGit(Code::kInternal, "cannot format diff");
  }
  return buf.str();
}

char StatusLetter(git_delta_t status) {
  switch (status) {
    case GIT_DELTA_ADDED:
    case GIT_DELTA_UNTRACKED:
    case GIT_DELTA_COPIED:
      return 'A';
    case GIT_DELTA_DELETED:
      return 'D';
    case GIT_DELTA_RENAMED:
      return 'R';
    case GIT_DELTA_TYPECHANGE:
      return 'T';
    default:
      return 'M';
  }
}

std::vector<std::string> DeltaPaths(git_diff* diff) {
  std::vector<std::string> paths;
  const size_t n = git_diff_num_deltas(diff);
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(diff, i);
    if (delta->old_file.path) paths.emplace_back(delta->old_file.path);
    if (delta->new_file.path) paths.emplace_back(delta->new_file.path);
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

DeltaFile DeltaFileOf(const git_diff_delta* delta) {
  DeltaFile file;
  file.status = StatusLetter(delta->status);
  file.old_path = delta->old_file.path ? delta->old_file.path : "";
  file.path = delta->status == GIT_DELTA_DELETED
                  ? file.old_path
                  : (delta->new_file.path ? delta->new_file.path : "");
  if (file.old_path.empty()) file.old_path = file.path;
  file.binary = (delta->flags & GIT_DIFF_FLAG_BINARY) != 0;
  return file;
}

Result<std::vector<FilePatch>> FilePatchesWithRenames(git_diff* diff, std::string_view commit) {
  git_diff_find_options find = GIT_DIFF_FIND_OPTIONS_INIT;
  find.flags = GIT_DIFF_FIND_RENAMES;
  if (git_diff_find_similar(diff, &find) < 0) {
    return FailGit(Code::kInternal, fmt::format("cannot detect renames in {}", commit));
  }
  std::vector<FilePatch> files;
  const size_t n = git_diff_num_deltas(diff);
  files.reserve(n);
  GitBuf buf;
  for (size_t i = 0; i < n; ++i) {
    git_patch* raw_patch = nullptr;
    if (git_patch_from_diff(&raw_patch, diff, i) < 0) {
      return FailGit(Code::kInternal, fmt::format("cannot build patch {} of {}", i, commit));
    }
    PatchPtr patch(raw_patch);
    const git_diff_delta* delta =
        patch ? git_patch_get_delta(patch.get()) : git_diff_get_delta(diff, i);
    FilePatch file;
    DeltaFile names = DeltaFileOf(delta);
    file.status = names.status;
    file.path = std::move(names.path);
    file.old_path = std::move(names.old_path);
    file.binary = names.binary;
    file.submodule =
        delta->old_file.mode == GIT_FILEMODE_COMMIT || delta->new_file.mode == GIT_FILEMODE_COMMIT;
    if (patch) {
      git_buf_dispose(&buf.buf);
      if (git_patch_to_buf(&buf.buf, patch.get()) < 0) {
        return FailGit(Code::kInternal, fmt::format("cannot format the patch of {}", file.path));
      }
      file.patch.assign(buf.buf.ptr ? buf.buf.ptr : "", buf.buf.size);
    }
    files.push_back(std::move(file));
  }
  return files;
}

}  // namespace crucible::vcs::internal
