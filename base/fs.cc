#include "base/fs.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace crucible {

namespace fs = std::filesystem;

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return Fail(Code::kNotFound, "no such file: " + path);
    return FailErrno("cannot open " + path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return FailErrno("cannot read " + path);
  return ss.str();
}

namespace {

// Writes `data` to `name` in the directory `dirfd` (`dir` names it in
// errors) through a fresh temporary file and renameat.
Status WriteFileAt(int dirfd, const std::string& dir, std::string_view name, std::string_view data,
                   std::optional<mode_t> mode) {
  const std::string shown = dir + "/" + std::string(name);
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) {
    return Fail(Code::kInvalidArgument, "cannot write " + shown + ": not a file name");
  }
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    uint64_t salt = 0;
    if (::getrandom(&salt, sizeof(salt), 0) != static_cast<ssize_t>(sizeof(salt))) {
      return FailErrno("cannot write " + shown + ": getrandom");
    }
    tmp = fmt::format("{}.tmp.{:016x}", name, salt);
    fd = ::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt >= 100)) {
      return FailErrno("cannot create " + dir + "/" + tmp);
    }
  }
  auto discard = [&](const std::string& what) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    ::unlinkat(dirfd, tmp.c_str(), 0);
    errno = err;
    return FailErrno(what);
  };
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return discard("cannot write " + dir + "/" + tmp);
    done += static_cast<size_t>(n);
  }
  if (mode && ::fchmod(fd, *mode) != 0) return discard("cannot set the mode of " + shown);
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0) return discard("cannot write " + dir + "/" + tmp);
  // rename replaces a link at `name`; it never follows it.
  if (::renameat(dirfd, tmp.c_str(), dirfd, std::string(name).c_str()) != 0) {
    return discard("cannot rename " + dir + "/" + tmp + " to " + shown);
  }
  return {};
}

Status WriteFileAtPath(const std::string& path, std::string_view data, std::optional<mode_t> mode) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  int dirfd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return FailErrno("cannot open directory " + dir + " to write " + path);
  Status st = WriteFileAt(dirfd, dir, name, data, mode);
  ::close(dirfd);
  return st;
}

}  // namespace

Status WriteFile(const std::string& path, std::string_view data) {
  return WriteFileAtPath(path, data, std::nullopt);
}

Status WriteFile(const std::string& path, std::string_view data, mode_t mode) {
  return WriteFileAtPath(path, data, mode);
}

Result<Dir> Dir::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FailErrno("cannot open directory " + path);
  return Dir(fd, path);
}

Dir::Dir(Dir&& other) noexcept : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

Dir& Dir::operator=(Dir&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

Dir::~Dir() {
  if (fd_ >= 0) ::close(fd_);
}

Status Dir::WriteFile(std::string_view name, std::string_view data) const {
  return WriteFileAt(fd_, path_, name, data, std::nullopt);
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Fail(Code::kIoError, "cannot create directory " + path + ": " + ec.message());
  return {};
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return Fail(Code::kIoError, "cannot remove " + path + ": " + ec.message());
  return {};
}

Result<TempDir> TempDir::Create(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base && *base ? base : "/tmp") + "/" + std::string(prefix) + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    return FailErrno("cannot create temporary directory " + tmpl);
  return TempDir(std::string(buf.data()));
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) (void)RemoveAll(path_);
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (!path_.empty()) (void)RemoveAll(path_);
}

std::string TempDir::Release() {
  std::string p = std::move(path_);
  path_.clear();
  return p;
}

Result<std::string> SelfExecutable() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Fail(Code::kIoError, "cannot read /proc/self/exe: " + ec.message());
  return p.string();
}

}  // namespace crucible
