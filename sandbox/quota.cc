#include "sandbox/quota.h"

#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace crucible::sandbox {

Result<QuotaDir> QuotaDir::Mount(const std::string& dir, uint64_t bytes) {
  if (bytes == 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("workspace quota for {}: the size must be above 0", dir));
  }
  if (::geteuid() != 0) {
    return Fail(
        Code::kFailedPrecondition,
        fmt::format("workspace quota for {}: mounting a size-capped tmpfs needs root", dir));
  }
  char resolved[PATH_MAX];
  if (::realpath(dir.c_str(), resolved) == nullptr) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("workspace quota for {}: {}", dir, std::strerror(errno)));
  }
  struct stat st;
  if (::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("workspace quota for {}: not a directory", dir));
  }
  std::string options = fmt::format("size={},mode={:o},uid={},gid={}", bytes, st.st_mode & 07777,
                                    st.st_uid, st.st_gid);
  if (::mount("crucible-quota", resolved, "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("workspace quota for {}: mount tmpfs: {}", dir, std::strerror(errno)));
  }
  return QuotaDir(resolved, bytes);
}

QuotaDir::QuotaDir(QuotaDir&& other) noexcept
    : path_(std::exchange(other.path_, {})), bytes_(other.bytes_) {}

QuotaDir& QuotaDir::operator=(QuotaDir&& other) noexcept {
  if (this != &other) {
    Release();
    path_ = std::exchange(other.path_, {});
    bytes_ = other.bytes_;
  }
  return *this;
}

QuotaDir::~QuotaDir() { Release(); }

void QuotaDir::Release() {
  // The mount point's path was resolved when mounted; a link found there now
  // was put there since, and is not followed.
  if (!path_.empty()) ::umount2(path_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
  path_.clear();
}

}  // namespace crucible::sandbox
