// Packfiles and clone-URL fetches with libgit2 (see pack.h).
#include "vcs/pack.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>

#include "vcs/git_internal.h"

namespace crucible::vcs {

using namespace internal;

namespace {

constexpr std::string_view kHeldPrefix = "refs/crucible/have/";

using RevwalkPtr = std::unique_ptr<git_revwalk, GitDeleter<git_revwalk, git_revwalk_free>>;
using PackbuilderPtr =
    std::unique_ptr<git_packbuilder, GitDeleter<git_packbuilder, git_packbuilder_free>>;
using OdbPtr = std::unique_ptr<git_odb, GitDeleter<git_odb, git_odb_free>>;
using RemotePtr = std::unique_ptr<git_remote, GitDeleter<git_remote, git_remote_free>>;
using ReferencePtr = std::unique_ptr<git_reference, GitDeleter<git_reference, git_reference_free>>;

Result<git_oid> ParseOid(const std::string& hex) {
  git_oid oid;
  if (hex.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex.c_str()) < 0) {
    return Fail(Code::kInvalidArgument, "'" + hex + "' is not a full commit id");
  }
  return oid;
}

Result<OdbPtr> Odb(git_repository* repo, const std::string& path) {
  git_odb* raw = nullptr;
  if (git_repository_odb(&raw, repo) < 0) {
    return FailGit(Code::kIoError, "cannot open the objects of " + path);
  }
  return OdbPtr(raw);
}

}  // namespace

std::string RepoId(const std::string& repo_path) {
  std::string path = repo_path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (name.ends_with(".git") && name.size() > 4) name.resize(name.size() - 4);
  std::string clean;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    clean += ok ? c : '_';
  }
  if (clean.empty() || clean.front() == '.') clean = "repo" + clean;
  // FNV-1a, 64 bits: stable across machines and builds (std::hash is not).
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : path) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{}-{:016x}", clean, h);
}

Result<Pack> BuildPack(const std::string& repo_path, const std::vector<std::string>& want,
                       const std::vector<std::string>& have, bool skip_missing) {
  if (want.empty()) return Fail(Code::kInvalidArgument, "a pack needs at least one wanted commit");
  CRUCIBLE_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(repo_path));
  git_revwalk* raw_walk = nullptr;
  if (git_revwalk_new(&raw_walk, repo.get()) < 0) {
    return FailGit(Code::kInternal, "cannot walk " + repo_path);
  }
  RevwalkPtr walk(raw_walk);
  size_t pushed = 0;
  for (const auto& w : want) {
    auto commit = LookupCommit(repo.get(), w, repo_path);
    if (!commit && skip_missing) continue;
    if (!commit) return Fail(commit.error());
    if (git_revwalk_push(walk.get(), git_commit_id(commit->get())) < 0) {
      return FailGit(Code::kInternal, "cannot walk from " + w);
    }
    ++pushed;
  }
  if (pushed == 0) {
    return Fail(Code::kNotFound, "none of the wanted commits is in " + repo_path);
  }
  for (const auto& h : have) {
    auto oid = ParseOid(h);
    if (!oid) continue;
    git_commit* c = nullptr;
    if (git_commit_lookup(&c, repo.get(), &*oid) < 0) continue;  // not ours: ignored
    git_commit_free(c);
    if (git_revwalk_hide(walk.get(), &*oid) < 0) {
      return FailGit(Code::kInternal, "cannot hide " + h);
    }
  }
  git_packbuilder* raw_pb = nullptr;
  if (git_packbuilder_new(&raw_pb, repo.get()) < 0) {
    return FailGit(Code::kInternal, "cannot build a pack of " + repo_path);
  }
  PackbuilderPtr pb(raw_pb);
  if (git_packbuilder_insert_walk(pb.get(), walk.get()) < 0) {
    return FailGit(Code::kIoError, "cannot collect the objects of " + repo_path);
  }
  GitBuf buf;
  if (git_packbuilder_write_buf(&buf.buf, pb.get()) < 0) {
    return FailGit(Code::kIoError, "cannot write a pack of " + repo_path);
  }
  Pack pack;
  pack.objects = static_cast<uint32_t>(git_packbuilder_object_count(pb.get()));
  pack.data = buf.str();
  return pack;
}

Status InitBareRepository(const std::string& path) {
  EnsureLibgit2();
  std::error_code ec;
  if (std::filesystem::exists(path + "/HEAD", ec)) return {};
  git_repository_init_options opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
  git_repository* raw = nullptr;
  int rc = git_repository_init_ext(&raw, path.c_str(), &opts);
  RepoPtr repo(raw);
  if (rc < 0) return FailGit(Code::kIoError, "cannot create repository " + path);
  return {};
}

Status IndexPack(const std::string& repo_path, std::string_view pack) {
  if (pack.size() < 12 || pack.substr(0, 4) != "PACK") {
    return Fail(Code::kInvalidArgument,
                fmt::format("not a git packfile ({} bytes) for {}", pack.size(), repo_path));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(repo_path));
  CRUCIBLE_ASSIGN_OR_RETURN(OdbPtr odb, Odb(repo.get(), repo_path));
  git_odb_writepack* wp = nullptr;
  if (git_odb_write_pack(&wp, odb.get(), nullptr, nullptr) < 0) {
    return FailGit(Code::kIoError, "cannot write a pack into " + repo_path);
  }
  git_indexer_progress stats{};
  int rc = wp->append(wp, pack.data(), pack.size(), &stats);
  if (rc >= 0) rc = wp->commit(wp, &stats);
  std::string message = rc < 0 ? GitMessage("invalid packfile for " + repo_path) : "";
  wp->free(wp);
  if (rc < 0) return Fail(Code::kInvalidArgument, message);
  return {};
}

Result<bool> HasCommit(const std::string& repo_path, const std::string& commit) {
  CRUCIBLE_ASSIGN_OR_RETURN(git_oid oid, ParseOid(commit));
  CRUCIBLE_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(repo_path));
  CRUCIBLE_ASSIGN_OR_RETURN(OdbPtr odb, Odb(repo.get(), repo_path));
  return git_odb_exists(odb.get(), &oid) == 1;
}

Status MarkHeld(const std::string& repo_path, const std::vector<std::string>& commits) {
  CRUCIBLE_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(repo_path));
  for (const auto& c : commits) {
    CRUCIBLE_ASSIGN_OR_RETURN(git_oid oid, ParseOid(c));
    git_reference* ref = nullptr;
    std::string name = std::string(kHeldPrefix) + c;
    if (git_reference_create(&ref, repo.get(), name.c_str(), &oid, /*force=*/1, "held") < 0) {
      return FailGit(Code::kIoError, "cannot mark " + c + " held in " + repo_path);
    }
    git_reference_free(ref);
  }
  return {};
}

Result<std::vector<std::string>> HeldCommits(const std::string& repo_path) {
  CRUCIBLE_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(repo_path));
  std::vector<std::string> out;
  int rc = git_reference_foreach_name(
      repo.get(),
      [](const char* name, void* payload) {
        std::string_view n(name);
        if (n.starts_with(kHeldPrefix)) {
          static_cast<std::vector<std::string>*>(payload)->emplace_back(
              n.substr(kHeldPrefix.size()));
        }
        return 0;
      },
      &out);
  if (rc < 0) return FailGit(Code::kIoError, "cannot list the refs of " + repo_path);
  std::sort(out.begin(), out.end());
  return out;
}

Status FetchFromUrl(const std::string& repo_path, const std::string& url) {
  CRUCIBLE_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(repo_path));
  git_remote* raw = nullptr;
  if (git_remote_create_anonymous(&raw, repo.get(), url.c_str()) < 0) {
    return FailGit(Code::kInvalidArgument, "bad repository URL " + url);
  }
  RemotePtr remote(raw);
  char heads[] = "+refs/heads/*:refs/crucible/fetch/heads/*";
  char tags[] = "+refs/tags/*:refs/crucible/fetch/tags/*";
  char* specs[] = {heads, tags};
  git_strarray refspecs{specs, 2};
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  if (git_remote_fetch(remote.get(), &refspecs, &opts, nullptr) < 0) {
    return FailGit(Code::kUnavailable, "cannot fetch " + url);
  }
  return {};
}

}  // namespace crucible::vcs
