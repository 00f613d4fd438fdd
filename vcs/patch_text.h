// Private helpers of vcs/ that work on unified-diff text and on working-tree
// paths. Not part of the public API.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace crucible::vcs::internal {

// Reads the current content of a file named by a patch, or nullopt when it
// cannot be read (missing, unsafe path, ...).
using FileReader = std::function<std::optional<std::string>(const std::string& path)>;

// Moves the hunks of `patch` to where their preimage lines are now, the way
// `git apply` tolerates offsets: each hunk is looked for at its stated line
// (shifted by the offset of the file's previous hunk), then one line up, one
// down, two up, ... A hunk whose preimage is nowhere, and every later hunk of
// that file, is left as it was (applying it then fails, naming the file).
// Hunks already in place are not touched, so a patch that applies exactly is
// returned unchanged. libgit2's git_apply has no offset search of its own.
std::string RelocateHunks(std::string_view patch, const FileReader& read);

// Checks that writing `rel` under `root` stays inside `root`: a relative path
// without "." or ".." components, no existing symlink among its leading
// directories, and the file itself not a symlink unless `may_be_link`.
// kInvalidArgument naming `rel` otherwise.
Status CheckPathInside(const std::string& root, std::string_view rel, bool may_be_link);

}  // namespace crucible::vcs::internal
