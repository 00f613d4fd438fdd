// Small file-system helpers shared by every library.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace crucible {

// Reads the whole file at `path`. kNotFound when it does not exist.
Result<std::string> ReadFile(const std::string& path);

// Writes `data` to `path` (created or truncated), through a temporary file and
// rename, so a reader never sees half a file.
Status WriteFile(const std::string& path, std::string_view data);

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
