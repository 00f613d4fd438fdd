#include "agent-runner/repo_cache.h"

#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/fs.h"
#include "vcs/pack.h"

namespace crucible::runner {

namespace {

bool ValidRepoId(const std::string& id) {
  if (id.empty() || id.size() > 200 || id.front() == '.') return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::vector<std::string>> Missing(const std::string& path,
                                         const std::vector<std::string>& commits) {
  std::vector<std::string> missing;
  for (const auto& c : commits) {
    CRUCIBLE_ASSIGN_OR_RETURN(bool has, vcs::HasCommit(path, c));
    if (!has) missing.push_back(c);
  }
  return missing;
}

}  // namespace

RepoCache::RepoCache(std::string root, std::map<std::string, std::string> urls)
    : root_(std::move(root)), urls_(std::move(urls)) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root_, ec)) {
    std::string name = entry.path().filename().string();
    if (!name.ends_with(".git") || !entry.is_directory(ec)) continue;
    std::string id = name.substr(0, name.size() - 4);
    if (ValidRepoId(id) && std::filesystem::exists(entry.path() / "HEAD", ec)) repos_.insert(id);
  }
}

std::mutex& RepoCache::LockFor(const std::string& repo_id) {
  std::lock_guard lock(mu_);
  auto& m = locks_[repo_id];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

std::vector<std::string> RepoCache::Repos() const {
  std::lock_guard lock(mu_);
  return {repos_.begin(), repos_.end()};
}

Result<std::string> RepoCache::Ensure(const std::string& repo_id, const std::string& suite,
                                      const std::vector<std::string>& commits, const AskPack& ask,
                                      const std::vector<std::string>& wanted) {
  if (!ValidRepoId(repo_id)) {
    return Fail(Code::kInvalidArgument,
                fmt::format("lease names no usable repository id ('{}')", repo_id));
  }
  std::lock_guard repo_lock(LockFor(repo_id));
  const std::string path = root_ + "/" + repo_id + ".git";
  CRUCIBLE_RETURN_IF_ERROR(vcs::InitBareRepository(path));
  {
    std::lock_guard lock(mu_);
    repos_.insert(repo_id);
  }
  CRUCIBLE_ASSIGN_OR_RETURN(auto missing, Missing(path, commits));
  if (missing.empty()) return path;

  auto url = urls_.find(repo_id);
  if (url == urls_.end()) url = urls_.find(suite);
  if (url != urls_.end()) {
    spdlog::info("repository {}: fetching {} missing commits from {}", repo_id, missing.size(),
                 url->second);
    CRUCIBLE_RETURN_IF_ERROR(vcs::FetchFromUrl(path, url->second));
    CRUCIBLE_ASSIGN_OR_RETURN(missing, Missing(path, commits));
    if (!missing.empty()) {
      return Fail(Code::kNotFound, fmt::format("repository {}: commit {} is not in {}", repo_id,
                                               missing.front(), url->second));
    }
    return path;
  }

  // A stale answer (a duplicate after a reconnect) may not carry what is
  // needed: one more request before giving up.
  for (int round = 0; round < 2 && !missing.empty(); ++round) {
    v1::ObjectsRequest req;
    req.set_repo_id(repo_id);
    for (const auto& c : missing) req.add_want(c);
    CRUCIBLE_ASSIGN_OR_RETURN(auto optional, Missing(path, wanted));
    for (const auto& c : optional) req.add_want(c);
    CRUCIBLE_ASSIGN_OR_RETURN(auto held, vcs::HeldCommits(path));
    for (const auto& h : held) req.add_have(h);
    ++pack_requests_;
    CRUCIBLE_ASSIGN_OR_RETURN(v1::ObjectsPack pack, ask(req));
    if (!pack.error().empty()) {
      return Fail(
          Code::kUnavailable,
          fmt::format("repository {}: the coordinator sent no objects: {}", repo_id, pack.error()));
    }
    if (!pack.pack().empty()) {
      CRUCIBLE_RETURN_IF_ERROR(vcs::IndexPack(path, pack.pack()));
    }
    spdlog::info("repository {}: {} objects ({} bytes) from the coordinator", repo_id,
                 pack.objects(), pack.pack().size());
    CRUCIBLE_ASSIGN_OR_RETURN(missing, Missing(path, commits));
  }
  if (!missing.empty()) {
    return Fail(Code::kNotFound,
                fmt::format("repository {}: the coordinator's pack lacks commit {}", repo_id,
                            missing.front()));
  }
  // Held commits keep the next request small (the coordinator sends what
  // they do not reach).
  CRUCIBLE_RETURN_IF_ERROR(vcs::MarkHeld(path, commits));
  return path;
}

std::optional<v1::ObjectsPack> PackAssembler::Add(v1::ObjectsPack part) {
  const std::string id = part.repo_id();
  if (!part.error().empty() || part.total_size() == 0 ||
      (part.offset() == 0 && part.pack().size() >= part.total_size())) {
    partial_.erase(id);
    return part;
  }
  if (part.offset() == 0) {
    v1::ObjectsPack& p = partial_[id];
    p = std::move(part);
    p.mutable_pack()->reserve(p.total_size());
    return std::nullopt;
  }
  auto it = partial_.find(id);
  if (it == partial_.end() || it->second.pack().size() != part.offset() ||
      it->second.total_size() != part.total_size()) {
    if (it != partial_.end()) partial_.erase(it);
    return std::nullopt;  // out of order: wait for the pack to be sent again
  }
  it->second.mutable_pack()->append(part.pack());
  if (it->second.pack().size() < it->second.total_size()) return std::nullopt;
  v1::ObjectsPack whole = std::move(it->second);
  partial_.erase(it);
  if (whole.pack().size() > whole.total_size()) {
    whole.clear_pack();
    whole.set_error("the coordinator sent more pack bytes than it announced");
  }
  return whole;
}

size_t PackAssembler::held(const std::string& repo_id) const {
  auto it = partial_.find(repo_id);
  return it == partial_.end() ? 0 : it->second.pack().size();
}

Result<std::map<std::string, std::string>> ParseRepoUrls(const std::vector<std::string>& entries) {
  std::map<std::string, std::string> out;
  for (const auto& e : entries) {
    auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == e.size()) {
      return Fail(Code::kInvalidArgument, "--repo-url '" + e + "': expected REPO_ID_OR_SUITE=URL");
    }
    out[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return out;
}

}  // namespace crucible::runner
