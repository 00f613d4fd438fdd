// A size cap on a host directory: a tmpfs of at most N bytes mounted on it.
//
// Used for the sandbox's workspace, so a command cannot fill the host's disk
// through it: writes beyond the cap fail with ENOSPC. The files live in
// memory (tmpfs pages written from inside a sandbox are charged to the
// sandbox's memory cgroup) and are gone once the QuotaDir is destroyed;
// whatever was in the directory before is hidden meanwhile, so use a new or
// empty directory. Requires root (CAP_SYS_ADMIN in the host's mount namespace).
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace crucible::sandbox {

class QuotaDir {
 public:
  // Mounts a tmpfs of at most `bytes` (> 0) at `dir`, an existing directory,
  // with the directory's owner and mode. kFailedPrecondition when not root or
  // the mount fails, kInvalidArgument for a zero size.
  static Result<QuotaDir> Mount(const std::string& dir, uint64_t bytes);

  QuotaDir(QuotaDir&& other) noexcept;
  QuotaDir& operator=(QuotaDir&& other) noexcept;
  QuotaDir(const QuotaDir&) = delete;
  QuotaDir& operator=(const QuotaDir&) = delete;
  // Unmounts the tmpfs (MNT_DETACH: also while something still uses it); its
  // files are freed.
  ~QuotaDir();

  const std::string& path() const { return path_; }
  uint64_t bytes() const { return bytes_; }

 private:
  QuotaDir(std::string path, uint64_t bytes) : path_(std::move(path)), bytes_(bytes) {}
  void Release();

  std::string path_;  // empty once moved from
  uint64_t bytes_ = 0;
};

}  // namespace crucible::sandbox
