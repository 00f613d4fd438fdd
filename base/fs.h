// Small file-system helpers shared by every library.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace crucible {

// Reads the whole file at `path`. kNotFound when it does not exist.
Result<std::string> ReadFile(const std::string& path);

// Writes `data` to `path` (created or replaced), through a new temporary file
// in the same directory and a rename, so a reader never sees half a file.
//
// Safe in a directory that untrusted code could write: a symbolic link at
// `path` is replaced, never written through; the temporary file has an
// unpredictable name and is created with O_EXCL | O_NOFOLLOW; its mode is set
// on the open file, never through a path. (Links in the directory part of
// `path` are followed: check them, or use Dir, where that matters.) The file
// gets mode 0666 minus the umask, or exactly `mode` when given.
Status WriteFile(const std::string& path, std::string_view data);
Status WriteFile(const std::string& path, std::string_view data, mode_t mode);

// A directory held open, so that files written into it later land in that
// directory even if the path that led to it has been changed meanwhile (e.g.
// by a sandbox that can write above it).
class Dir {
 public:
  static Result<Dir> Open(const std::string& path);

  Dir(Dir&& other) noexcept;
  Dir& operator=(Dir&& other) noexcept;
  Dir(const Dir&) = delete;
  Dir& operator=(const Dir&) = delete;
  ~Dir();

  const std::string& path() const { return path_; }
  // WriteFile's guarantees for the file `name` (no '/') of this directory.
  Status WriteFile(std::string_view name, std::string_view data) const;

 private:
  Dir(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

// Creates `path` and its missing parents.
Status MakeDirs(const std::string& path);

// Removes `path` recursively; a missing path is not an error.
Status RemoveAll(const std::string& path);

// A directory created under $TMPDIR (or /tmp) with a unique name, removed with
// everything in it when the object dies unless Release() was called.
class TempDir {
 public:
  // `prefix` starts the directory's name, e.g. "crucible-ws-".
  static Result<TempDir> Create(std::string_view prefix);

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // Keeps the directory on destruction and returns its path.
  std::string Release();

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// The absolute path of the running executable (/proc/self/exe).
Result<std::string> SelfExecutable();

}  // namespace crucible
