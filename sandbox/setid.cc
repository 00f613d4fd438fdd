#include "sandbox/setid.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include <fmt/format.h>

namespace crucible::sandbox::internal {
namespace {

constexpr mode_t kSetid = S_ISUID | S_ISGID;
// Deeper directories are not walked (an error): each level holds a
// descriptor and a stack frame of the runner.
constexpr int kMaxDepth = 512;

bool ChangedSince(const struct stat& st, const timespec& since) {
  return st.st_ctim.tv_sec > since.tv_sec ||
         (st.st_ctim.tv_sec == since.tv_sec && st.st_ctim.tv_nsec >= since.tv_nsec);
}

struct Walk {
  dev_t dev = 0;
  timespec since{};
  uint64_t cleared = 0;
  std::optional<Error> first_error;

  void Failed(const std::string& path, int err) {
    if (!first_error) {
      first_error = Error(Code::kInternal, fmt::format("sandbox: clear set-uid bits: {}: {}", path,
                                                       std::strerror(err)));
    }
  }

  // `fd`: an open directory (consumed), `path` its name for messages.
  void Dir(int fd, const std::string& path, int depth) {
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      Failed(path, errno);
      ::close(fd);
      return;
    }
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st;
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) Failed(fmt::format("{}/{}", path, name), errno);
        continue;
      }
      if (S_ISLNK(st.st_mode) || st.st_dev != dev) continue;
      if ((st.st_mode & kSetid) != 0 && ChangedSince(st, since)) {
        // Not a symlink (checked above, and the sandbox is gone: nothing can
        // swap it meanwhile), so fchmodat acts on this entry itself.
        if (::fchmodat(::dirfd(d), e->d_name, st.st_mode & 07777 & ~kSetid, 0) == 0) {
          ++cleared;
        } else {
          Failed(fmt::format("{}/{}", path, name), errno);
        }
      }
      if (S_ISDIR(st.st_mode)) {
        if (depth >= kMaxDepth) {
          Failed(fmt::format("{}/{}", path, name), ELOOP);
          continue;
        }
        int sub = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
          Failed(fmt::format("{}/{}", path, name), errno);
          continue;
        }
        Dir(sub, fmt::format("{}/{}", path, name), depth + 1);
      }
    }
    ::closedir(d);
  }
};

}  // namespace

Result<uint64_t> ClearSetidBits(const std::string& path, const timespec& since) {
  // A host path the caller gave (resolved like the bind it was).
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return FailErrno(fmt::format("sandbox: clear set-uid bits: {}", path));
  }
  const std::string dir = resolved;
  struct stat lst;
  if (::lstat(dir.c_str(), &lst) == 0 && !S_ISDIR(lst.st_mode)) {  // a file bound writable
    if (S_ISLNK(lst.st_mode) || (lst.st_mode & kSetid) == 0 || !ChangedSince(lst, since)) return 0;
    if (::chmod(dir.c_str(), lst.st_mode & 07777 & ~kSetid) != 0) {
      return FailErrno(fmt::format("sandbox: clear set-uid bits: {}", dir));
    }
    return 1;
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return FailErrno(fmt::format("sandbox: clear set-uid bits: {}", dir));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Fail(Code::kInternal,
                fmt::format("sandbox: clear set-uid bits: {}: {}", dir, std::strerror(err)));
  }
  Walk walk;
  walk.dev = st.st_dev;
  walk.since = since;
  if ((st.st_mode & kSetid) != 0 && ChangedSince(st, since)) {
    if (::fchmod(fd, st.st_mode & 07777 & ~kSetid) == 0) {
      ++walk.cleared;
    } else {
      walk.Failed(dir, errno);
    }
  }
  walk.Dir(fd, dir, 0);
  if (walk.first_error) return std::unexpected(*walk.first_error);
  return walk.cleared;
}

}  // namespace crucible::sandbox::internal
