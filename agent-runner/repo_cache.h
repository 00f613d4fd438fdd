// The runner's repository cache: one bare repository per repository id under
// <workdir>/repos/<id>.git, filled from the coordinator with packfiles
// (ObjectsRequest -> ObjectsPack) or fetched from a clone URL the runner was
// given (`crucible runner --repo-url ID_OR_NAME=URL`). Workspaces are checked
// out from the cache; the runner never reads the coordinator's repo_path.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::runner {

class RepoCache {
 public:
  // Asks the coordinator for a pack and waits for its answer.
  using AskPack = std::function<Result<v1::ObjectsPack>(const v1::ObjectsRequest&)>;

  // `root` is the directory of the caches (created when needed); existing
  // caches under it are announced from the start. `urls` maps a repository
  // id, or a suite name, to a clone URL.
  RepoCache(std::string root, std::map<std::string, std::string> urls);

  // Makes sure `commits` of repository `repo_id` are in its cache and returns
  // the cache's path. When some are missing: fetches from the URL configured
  // for `repo_id` or for `suite`, else asks the coordinator with `ask` (want:
  // the missing commits and `wanted`; have: the commits the cache already
  // holds). `wanted` (the merged commit, say) is asked for but not required.
  // Thread-safe; one fetch per repository at a time. Errors name the
  // repository and what failed (kInvalidArgument for an unusable id).
  Result<std::string> Ensure(const std::string& repo_id, const std::string& suite,
                             const std::vector<std::string>& commits, const AskPack& ask,
                             const std::vector<std::string>& wanted = {});

  // Ids of the repositories in the cache, sorted.
  std::vector<std::string> Repos() const;

  // ObjectsRequests sent (packs asked for) since the start.
  uint64_t pack_requests() const { return pack_requests_.load(); }

 private:
  std::mutex& LockFor(const std::string& repo_id);

  std::string root_;
  std::map<std::string, std::string> urls_;
  mutable std::mutex mu_;
  std::set<std::string> repos_;
  std::map<std::string, std::unique_ptr<std::mutex>> locks_;
  std::atomic<uint64_t> pack_requests_{0};
};

// Puts a pack sent in chunks (ObjectsPack with total_size) back together, per
// repository. Chunks of one answer arrive in order; a chunk at offset 0
// starts the repository's pack over (a new answer, after a reconnect), and a
// chunk that does not continue the bytes held is dropped with them (the
// runner's request is sent again after a reconnect, and the worker waiting for
// the pack times out otherwise).
class PackAssembler {
 public:
  // The whole pack once `part` completes it (or when `part` is whole: an
  // error, or a pack in one message); nullopt while chunks are missing.
  std::optional<v1::ObjectsPack> Add(v1::ObjectsPack part);
  // Bytes held of the repository's unfinished pack.
  size_t held(const std::string& repo_id) const;

 private:
  std::map<std::string, v1::ObjectsPack> partial_;
};

// Splits "ID_OR_NAME=URL" entries (`--repo-url`) into a map; kInvalidArgument
// naming the entry without a '=' or with an empty side.
Result<std::map<std::string, std::string>> ParseRepoUrls(const std::vector<std::string>& entries);

}  // namespace crucible::runner
