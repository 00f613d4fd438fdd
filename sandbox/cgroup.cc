#include "sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>

namespace crucible::sandbox::internal {
namespace {

std::unexpected<Error> CgroupError(std::string_view what, int err) {
  return Fail(Code::kFailedPrecondition,
              fmt::format("sandbox setup: cgroup: {}: {}", what, std::strerror(err)));
}

// Reads a small kernel file; empty on error.
std::string ReadSmall(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Writes `value` to a cgroup control file in one write(); returns errno or 0.
int WriteControl(const std::string& path, std::string_view value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  ::close(fd);
  return err;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The value of `key` in a "key value" file such as memory.events, or 0.
uint64_t KeyedValue(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  std::string k;
  uint64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

uint64_t Number(const std::string& text) {
  try {
    return std::stoull(text);
  } catch (...) {
    return 0;
  }
}

bool HasWord(const std::string& text, std::string_view word, char sep) {
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(sep, i);
    if (j == std::string::npos) j = text.size();
    std::string_view w(text.data() + i, j - i);
    while (!w.empty() && (w.back() == '\n' || w.back() == ' ')) w.remove_suffix(1);
    if (w == word) return true;
    i = j + 1;
  }
  return false;
}

}  // namespace

Hierarchies DetectHierarchies(std::string_view mountinfo, std::string_view self_cgroup,
                              const std::function<std::string(const std::string&)>& read_file) {
  std::string v2_mount, memory_mount, pids_mount, cpuacct_mount;
  std::istringstream mounts{std::string(mountinfo)};
  for (std::string line; std::getline(mounts, line);) {
    // "id parent major:minor root mount-point options ... - fstype source super-options"
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos || root != "/") continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string fstype, source, options;
    rest >> fstype >> source >> options;
    if (fstype == "cgroup2" && v2_mount.empty()) v2_mount = point;
    if (fstype == "cgroup") {
      if (HasWord(options, "memory", ',') && memory_mount.empty()) memory_mount = point;
      if (HasWord(options, "pids", ',') && pids_mount.empty()) pids_mount = point;
      if (HasWord(options, "cpuacct", ',') && cpuacct_mount.empty()) cpuacct_mount = point;
    }
  }
  Hierarchies h;
  std::istringstream groups{std::string(self_cgroup)};
  for (std::string line; std::getline(groups, line);) {
    // "hierarchy-id:controllers:path"
    size_t a = line.find(':');
    size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (path == "/") path.clear();
    if (controllers.empty() && line.starts_with("0:") && !v2_mount.empty()) {
      h.v2 = v2_mount + path;
    }
    if (HasWord(controllers, "memory", ',') && !memory_mount.empty()) {
      h.v1_memory = memory_mount + path;
    }
    if (HasWord(controllers, "pids", ',') && !pids_mount.empty()) h.v1_pids = pids_mount + path;
    if (HasWord(controllers, "cpuacct", ',') && !cpuacct_mount.empty()) {
      h.v1_cpuacct = cpuacct_mount + path;
    }
  }
  if (!h.v2.empty()) {
    std::string available = read_file(h.v2 + "/cgroup.controllers");
    if (!HasWord(available, "memory", ' ') || !HasWord(available, "pids", ' ')) h.v2.clear();
  }
  return h;
}

std::vector<ControlWrite> LimitWrites(std::string_view version, const CgroupLimits& limits) {
  std::vector<ControlWrite> writes;
  if (limits.memory_bytes > 0) {
    std::string bytes = std::to_string(limits.memory_bytes);
    if (version == "v2") {
      writes.push_back({"memory.max", bytes, false, false});
      writes.push_back({"memory.swap.max", "0", true, false});  // no swap
    } else {
      writes.push_back({"memory.limit_in_bytes", bytes, false, false});
      // No swap beyond the limit (the file exists when swap accounting is on).
      writes.push_back({"memory.memsw.limit_in_bytes", bytes, true, false});
    }
  }
  if (limits.pids > 0) writes.push_back({"pids.max", std::to_string(limits.pids), false, true});
  return writes;
}

namespace {

const Hierarchies& CachedHierarchies() {
  static const Hierarchies h = DetectHierarchies(ReadSmall("/proc/self/mountinfo"),
                                                 ReadSmall("/proc/self/cgroup"), ReadSmall);
  return h;
}

constexpr std::string_view kPrefix = "crucible-sandbox-";

uint32_t Salt() {
  static const uint32_t salt = std::random_device{}();
  return salt;
}

// "crucible-sandbox-<pid>-<salt>-<n>": the pid and salt of the process that
// made it, so that leftovers of a dead process can be recognised.
std::string UniqueName() {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}{}-{:08x}-{}", kPrefix, ::getpid(), Salt(), counter++);
}

// Removes the cgroups that a process which died without cleaning up (killed
// while a sandbox ran) left in `parent`. Its sandboxes died with it (their
// init had a parent-death signal), so the cgroups are empty; rmdir refuses
// any that is not.
void RemoveLeftovers(const std::string& parent) {
  DIR* dir = ::opendir(parent.c_str());
  if (dir == nullptr) return;
  std::string mine = fmt::format("{}{}-{:08x}-", kPrefix, ::getpid(), Salt());
  while (dirent* e = ::readdir(dir)) {
    std::string_view name = e->d_name;
    if (!name.starts_with(kPrefix) || name.starts_with(mine)) continue;
    std::string rest(name.substr(kPrefix.size()));
    pid_t owner = static_cast<pid_t>(std::atol(rest.c_str()));
    if (owner <= 0) continue;
    // The owner is dead, or its pid now belongs to this process.
    bool dead = owner == ::getpid() || (::kill(owner, 0) != 0 && errno == ESRCH);
    if (dead) ::rmdir((parent + "/" + std::string(name)).c_str());
  }
  ::closedir(dir);
}

}  // namespace

Result<Cgroup> Cgroup::Create(const CgroupLimits& limits) {
  const Hierarchies& h = CachedHierarchies();
  static std::once_flag cleaned;
  std::call_once(cleaned, [&] {
    for (const std::string* parent : {&h.v2, &h.v1_memory, &h.v1_pids, &h.v1_cpuacct}) {
      if (!parent->empty()) RemoveLeftovers(*parent);
    }
  });
  Cgroup cg;
  std::string name = UniqueName();
  auto make = [&](const std::string& parent) -> Result<std::string> {
    std::string dir = parent + "/" + name;
    if (::mkdir(dir.c_str(), 0755) != 0) return CgroupError(fmt::format("create {}", dir), errno);
    cg.dirs_.push_back(dir);
    return dir;
  };
  if (!h.v2.empty()) {
    cg.version_ = "v2";
    // The controllers must be enabled for our cgroup's children.
    std::string subtree = ReadSmall(h.v2 + "/cgroup.subtree_control");
    for (const char* c : {"memory", "pids"}) {
      if (HasWord(subtree, c, ' ')) continue;
      int err = WriteControl(h.v2 + "/cgroup.subtree_control", fmt::format("+{}", c));
      if (err != 0) {
        return CgroupError(fmt::format("enable {} in {}/cgroup.subtree_control", c, h.v2), err);
      }
    }
    CRUCIBLE_ASSIGN_OR_RETURN(cg.memory_dir_, make(h.v2));
    cg.pids_dir_ = cg.memory_dir_;
  } else {
    if (h.v1_memory.empty() || h.v1_pids.empty()) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("sandbox setup: cgroup: no {} controller mounted (neither cgroup v2 "
                              "nor v1)",
                              h.v1_memory.empty() ? "memory" : "pids"));
    }
    cg.version_ = "v1";
    CRUCIBLE_ASSIGN_OR_RETURN(cg.memory_dir_, make(h.v1_memory));
    CRUCIBLE_ASSIGN_OR_RETURN(cg.pids_dir_, make(h.v1_pids));
    if (!h.v1_cpuacct.empty()) {
      // Only for measuring: without it the CPU time comes from rusage.
      auto dir = make(h.v1_cpuacct);
      if (dir) cg.cpuacct_dir_ = *dir;
    }
  }
  for (const ControlWrite& w : LimitWrites(cg.version_, limits)) {
    std::string file = (w.in_pids_cgroup ? cg.pids_dir_ : cg.memory_dir_) + "/" + w.file;
    if (w.optional) {
      if (Exists(file)) (void)WriteControl(file, w.value);
      continue;
    }
    int err = WriteControl(file, w.value);
    if (err != 0) return CgroupError(fmt::format("write {}", file), err);
  }
  return cg;
}

Cgroup::Cgroup(Cgroup&& other) noexcept
    : version_(std::move(other.version_)),
      memory_dir_(std::move(other.memory_dir_)),
      pids_dir_(std::move(other.pids_dir_)),
      cpuacct_dir_(std::move(other.cpuacct_dir_)),
      dirs_(std::exchange(other.dirs_, {})) {}

Cgroup::~Cgroup() { Destroy(); }

Status Cgroup::AddProcess(pid_t pid) {
  std::string value = std::to_string(pid);
  for (const auto& dir : dirs_) {
    std::string file = dir + "/cgroup.procs";
    int err = WriteControl(file, value);
    if (err != 0) return CgroupError(fmt::format("write {}", file), err);
  }
  return {};
}

CgroupStats Cgroup::Stats() const {
  CgroupStats s;
  if (dirs_.empty()) return s;
  if (version_ == "v2") {
    s.oom_killed = KeyedValue(ReadSmall(memory_dir_ + "/memory.events"), "oom_kill") > 0;
    s.memory_peak_bytes = Number(ReadSmall(memory_dir_ + "/memory.peak"));
    std::string cpu = ReadSmall(memory_dir_ + "/cpu.stat");
    if (!cpu.empty()) s.cpu_usec = KeyedValue(cpu, "usage_usec");
  } else {
    s.oom_killed = KeyedValue(ReadSmall(memory_dir_ + "/memory.oom_control"), "oom_kill") > 0;
    s.memory_peak_bytes = Number(ReadSmall(memory_dir_ + "/memory.max_usage_in_bytes"));
    if (!cpuacct_dir_.empty()) {
      std::string ns = ReadSmall(cpuacct_dir_ + "/cpuacct.usage");
      if (!ns.empty()) s.cpu_usec = Number(ns) / 1000;
    }
  }
  s.pids_limit_hit = KeyedValue(ReadSmall(pids_dir_ + "/pids.events"), "max") > 0;
  return s;
}

void Cgroup::Destroy() {
  // Normally empty already: the kernel kills and reaps the whole pid
  // namespace before its init can be reaped. Anything left (a process that
  // escaped the namespace, which should be impossible) is killed.
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    const std::string& dir = *it;
    for (int attempt = 0; attempt < 200; ++attempt) {
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY) break;
      if (Exists(dir + "/cgroup.kill")) {
        (void)WriteControl(dir + "/cgroup.kill", "1");
      } else {
        std::istringstream procs(ReadSmall(dir + "/cgroup.procs"));
        for (pid_t pid; procs >> pid;) ::kill(pid, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(attempt < 10 ? 1 : 10));
    }
  }
  dirs_.clear();
}

}  // namespace crucible::sandbox::internal
