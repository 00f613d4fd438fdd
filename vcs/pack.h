// Moving git objects between machines without a shared filesystem: packfiles
// built from a repository and indexed into a bare cache, or a fetch from a
// clone URL. Used by the coordinator (which owns the mined repositories) and
// the runners (which keep one bare cache per repository).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace crucible::vcs {

// A stable id for the repository at `repo_path` on the machine that mined it:
// "<last path component>-<16 hex digits of a hash of the path>", made of
// [A-Za-z0-9._-] only so that it can name a cache directory.
std::string RepoId(const std::string& repo_path);

struct Pack {
  std::string data;  // a git packfile ("PACK" ...), self-contained (not thin)
  uint32_t objects = 0;
};

// Builds a packfile of every object reachable from the commits `want` (their
// history, trees and blobs) that is not reachable from the commits `have`.
// `have` entries the repository does not know are ignored (the caller may
// hold commits of another history). Errors: kNotFound naming a `want`
// commit the repository lacks (with `skip_missing`: such wants are left out,
// and kNotFound only when none is left), or the repository itself.
Result<Pack> BuildPack(const std::string& repo_path, const std::vector<std::string>& want,
                       const std::vector<std::string>& have, bool skip_missing = false);

// Creates a bare repository at `path` unless one is there already.
Status InitBareRepository(const std::string& path);

// Writes the objects of `pack` into the bare repository at `repo_path`
// (git_odb_write_pack: the pack and its index land in objects/pack).
// kInvalidArgument when the bytes are not a valid packfile.
Status IndexPack(const std::string& repo_path, std::string_view pack);

// True when the repository at `repo_path` holds commit `commit` (a full hex id).
Result<bool> HasCommit(const std::string& repo_path, const std::string& commit);

// Marks `commits` as held: a ref refs/crucible/have/<id> each, so that they
// are listed by HeldCommits and never pruned.
Status MarkHeld(const std::string& repo_path, const std::vector<std::string>& commits);

// The commits marked held (see MarkHeld), sorted.
Result<std::vector<std::string>> HeldCommits(const std::string& repo_path);

// Fetches every branch and tag of `url` (any URL libgit2 supports: file://,
// a local path, https://, ...) into the bare repository at `repo_path`.
// kUnavailable naming the URL when the fetch fails.
Status FetchFromUrl(const std::string& repo_path, const std::string& url);

}  // namespace crucible::vcs
