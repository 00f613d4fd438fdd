// Clearing set-uid and set-gid bits from a tree the sandbox could write (the
// workspace, writable binds) once it has ended: a second layer behind the
// seccomp rules that refuse making such files (see docs/sandbox.md).
#pragma once

#include <time.h>

#include <cstdint>
#include <string>

#include "base/error.h"

namespace crucible::sandbox::internal {

// Clears S_ISUID and S_ISGID on every file and directory under `path` (itself
// included) whose status changed at or after `since` (CLOCK_REALTIME): the
// sandbox cannot make or chmod a file without setting its ctime to the
// present, nor set it back, so entries the host left set-id on purpose (a
// shared group directory) stay as they were. Never follows symlinks and stays
// on its file system. Returns how many entries had a bit cleared; the error
// names the first entry that could not be read or changed (the walk goes on
// past it).
Result<uint64_t> ClearSetidBits(const std::string& path, const timespec& since);

}  // namespace crucible::sandbox::internal
