// Static checks of a change (../shared/evaluation.md, stale_reference and
// broken_import): symbols the diff removes or renames that the final tree
// still references, and imports or includes the diff adds that do not
// resolve in the final tree. Python and C/C++; other languages are named as
// not checked.
#pragma once

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
};

// A tree on disk under `root`. Never follows symbolic links (the tree may
// have been written by untrusted code), skips .git and files over 1 MiB,
// lists at most 100,000 files.
Tree DirectoryTree(const std::string& root);

// Checks `diff` (the agent's change) against `final_tree` (the base commit
// with the diff applied).
v1::StaticFacts CheckStatic(const std::vector<vcs::DiffFile>& diff, const Tree& final_tree);

}  // namespace crucible::scoring
