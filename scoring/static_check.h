// Static checks of a change (docs/scoring.md, stale_reference and
// broken_import): symbols the diff removes or renames that the final tree
// still references, and imports or includes the diff adds that do not
// resolve in the final tree. Python and C/C++; other languages are named as
// not checked. docs/scoring.md ("Static checks") says exactly what is found.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "protocol/crucible.pb.h"
#include "vcs/repo.h"

namespace crucible::scoring {

// Read access to a tree of files (paths relative to its root, '/'-separated).
struct Tree {
  // The file's content, or nullopt when it is missing, not a regular file
  // or too large to read.
  std::function<std::optional<std::string>(const std::string& path)> read;
  // Every regular file of the tree, sorted.
  std::function<std::vector<std::string>()> list;
  // Why list() is not the whole tree (a cap was reached); empty or unset
  // when it is.
  std::function<std::string()> incomplete;
};

struct DirectoryTreeLimits {
  size_t max_files = 100000;
  size_t max_file_bytes = size_t{1} << 20;
  int max_depth = 64;
};

// A tree on disk under `root`. Never follows symbolic links, in any path
// component (the tree may have been written by untrusted code); skips .git
// directories and everything that is not a regular file or a directory;
// lists at most `limits.max_files` files and reads none larger than
// `limits.max_file_bytes` (they are listed, their content is nullopt).
Tree DirectoryTree(const std::string& root, const DirectoryTreeLimits& limits = {});

// Checks `diff` (the agent's change) against `final_tree` (the base commit
// with the diff applied). Sets error when the tree was incomplete or the
// checks stopped early (a budget of bytes read or time), with what was found
// until then.
v1::StaticFacts CheckStatic(const std::vector<vcs::DiffFile>& diff, const Tree& final_tree);

}  // namespace crucible::scoring
