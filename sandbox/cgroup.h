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
#include <functional>
#include <optional>
#include <string>
#include <string_view>
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

// Where each hierarchy is mounted and where this process sits in it.
struct Hierarchies {
  std::string v2;         // this process's cgroup in the unified hierarchy, or empty
  std::string v1_memory;  // this process's memory cgroup (v1), or empty
  std::string v1_pids;
  std::string v1_cpuacct;  // optional: CPU accounting on v1
};

// Detection from the texts of /proc/self/mountinfo and /proc/self/cgroup.
// The unified hierarchy counts only when `read_file` of its
// cgroup.controllers (under this process's cgroup) lists memory and pids.
Hierarchies DetectHierarchies(std::string_view mountinfo, std::string_view self_cgroup,
                              const std::function<std::string(const std::string&)>& read_file);

// One control file written to set a limit.
struct ControlWrite {
  std::string file;  // relative to the sandbox's cgroup directory
  std::string value;
  bool optional = false;        // written only when the file exists; errors ignored
  bool in_pids_cgroup = false;  // in the pids controller's cgroup (else the memory one's)
};

// What Create writes for `limits` in a "v1" or "v2" cgroup, in order.
std::vector<ControlWrite> LimitWrites(std::string_view version, const CgroupLimits& limits);

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
