// Clearing set-uid and set-gid bits from a tree the sandbox could write (the
// workspace, writable binds) once it has ended: a second layer behind the
// seccomp rules that refuse making such files (see docs/sandbox.md).
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace crucible::sandbox::internal {

// Clears S_ISUID and S_ISGID on every file and directory under `path` (itself
// included). Never follows symlinks and stays on its file system. Returns
// how many entries had a bit cleared; the error names the first entry that
// could not be read or changed (the walk goes on past it).
Result<uint64_t> ClearSetidBits(const std::string& path);

}  // namespace crucible::sandbox::internal
