// Per-sandbox control groups: memory and pids limits, and what they measured
// (peak memory, OOM kills, pids limit hits, CPU time).
//
// The hierarchy is detected, not assumed: cgroup v2 when the unified
// hierarchy (wherever it is mounted, per /proc/self/mountinfo) offers the
// controller to this process's cgroup, else the v1 hierarchy that has the
// controller mounted. The sandbox's cgroup is created below this process's
// own cgroup in that hierarchy (so limits set on the runner still apply),
// the sandbox's init is moved into it before it starts setting up, and it is
// emptied and removed when the sandbox is done.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace crucible::sandbox::internal {

struct CgroupLimits {
  uint64_t memory_bytes = 0;  // 0: no limit (usage is still measured)
  uint64_t pids = 0;          // 0: no limit
};

struct CgroupStats {
  bool oom_killed = false;         // the kernel's OOM killer killed a process of the sandbox
  uint64_t memory_peak_bytes = 0;  // 0 when the kernel does not say
  bool pids_limit_hit = false;     // a fork/clone failed because of the pids limit
  // CPU time of every process that ran in the cgroup (cpu.stat on v2,
  // cpuacct.usage on v1); nullopt when there is no such accounting.
  std::optional<uint64_t> cpu_usec;
};

class Cgroup {
 public:
  // Creates the cgroups (memory and pids controllers) and sets the limits.
  // Fails (kFailedPrecondition, naming the file) when a controller is missing
  // or its hierarchy is not writable.
  static Result<Cgroup> Create(const CgroupLimits& limits);

  Cgroup(Cgroup&& other) noexcept;
  Cgroup& operator=(Cgroup&&) = delete;
  Cgroup(const Cgroup&) = delete;
  ~Cgroup();  // kills whatever is left in it, then removes it

  // Moves process `pid` (and its future children) into the cgroups.
  Status AddProcess(pid_t pid);

  CgroupStats Stats() const;

  // "v1" or "v2".
  const std::string& version() const { return version_; }
  // The created directories.
  const std::vector<std::string>& paths() const { return dirs_; }

 private:
  Cgroup() = default;
  void Destroy();

  std::string version_;
  std::string memory_dir_;   // the cgroup with the memory controller
  std::string pids_dir_;     // the cgroup with the pids controller (may equal memory_dir_)
  std::string cpuacct_dir_;  // v1 only, when the cpuacct controller is mounted
  std::vector<std::string> dirs_;
};

}  // namespace crucible::sandbox::internal
