// The cgroup code paths that do not need a particular host: detection of the
// hierarchies from mountinfo texts (pure v2, hybrid, v1 only) and the control
// files written for limits, so the v2 path is exercised on our v1 machines
// too. Creating real cgroups is covered by the hostile and leak tests (on
// whatever this host has).
#include "sandbox/cgroup.h"

#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crucible::sandbox::internal {
namespace {

// A read_file over a fixed set of files (empty for any other).
auto Files(std::map<std::string, std::string> files) {
  return [files = std::move(files)](const std::string& path) {
    auto it = files.find(path);
    return it == files.end() ? std::string() : it->second;
  };
}

constexpr const char* kPureV2Mounts =
    "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

TEST(CgroupDetectTest, PureV2WithDelegatedControllersUsesTheRunnersCgroup) {
  Hierarchies h = DetectHierarchies(
      kPureV2Mounts, "0::/system.slice/crucible-runner.service\n",
      Files({{"/sys/fs/cgroup/system.slice/crucible-runner.service/cgroup.controllers",
              "cpuset cpu io memory hugetlb pids rdma misc\n"}}));
  EXPECT_EQ(h.v2, "/sys/fs/cgroup/system.slice/crucible-runner.service");
  EXPECT_EQ(h.v1_memory, "");
  EXPECT_EQ(h.v1_pids, "");
}

TEST(CgroupDetectTest, PureV2WithoutThePidsControllerIsNotUsable) {
  Hierarchies h = DetectHierarchies(
      kPureV2Mounts, "0::/user.slice/user-1000.slice/session-2.scope\n",
      Files({{"/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/cgroup.controllers",
              "cpu memory\n"}}));
  EXPECT_EQ(h.v2, "");
  EXPECT_EQ(h.v1_memory, "");
}

TEST(CgroupDetectTest, HybridHostUsesV1WhenTheUnifiedHierarchyHasNoControllers) {
  // Like our machines: v1 controllers, and a cgroup2 mount without any.
  const char* mounts =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "38 31 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
      "40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
      // A bind of a sub-cgroup (root is not "/"): never a hierarchy's mount.
      "41 1 0:32 /other /mnt/memory rw,relatime - cgroup cgroup rw,memory\n";
  const char* groups =
      "8:pids:/\n"
      "4:memory:/process_api/42\n"
      "1:cpu,cpuacct:/process_api/42\n"
      "0::/\n";
  Hierarchies h =
      DetectHierarchies(mounts, groups, Files({{"/sys/fs/cgroup/unified/cgroup.controllers", ""}}));
  EXPECT_EQ(h.v2, "");
  EXPECT_EQ(h.v1_memory, "/sys/fs/cgroup/memory/process_api/42");
  EXPECT_EQ(h.v1_pids, "/sys/fs/cgroup/pids");
  EXPECT_EQ(h.v1_cpuacct, "/sys/fs/cgroup/cpu,cpuacct/process_api/42");
}

TEST(CgroupDetectTest, NothingMountedMeansNoHierarchy) {
  Hierarchies h = DetectHierarchies("", "0::/\n", Files({}));
  EXPECT_EQ(h.v2, "");
  EXPECT_EQ(h.v1_memory, "");
  EXPECT_EQ(h.v1_pids, "");
}

TEST(CgroupLimitWritesTest, V2WritesMemoryMaxNoSwapAndPidsMax) {
  auto writes = LimitWrites("v2", {.memory_bytes = uint64_t{512} << 20, .pids = 64});
  ASSERT_EQ(writes.size(), 3u);
  EXPECT_EQ(writes[0].file, "memory.max");
  EXPECT_EQ(writes[0].value, "536870912");
  EXPECT_FALSE(writes[0].optional);
  EXPECT_EQ(writes[1].file, "memory.swap.max");
  EXPECT_EQ(writes[1].value, "0");
  EXPECT_TRUE(writes[1].optional);  // absent without swap accounting
  EXPECT_EQ(writes[2].file, "pids.max");
  EXPECT_EQ(writes[2].value, "64");
  EXPECT_TRUE(writes[2].in_pids_cgroup);
  EXPECT_FALSE(writes[2].optional);
}

TEST(CgroupLimitWritesTest, V1WritesLimitInBytesAndMemsw) {
  auto writes = LimitWrites("v1", {.memory_bytes = 1 << 20, .pids = 0});
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].file, "memory.limit_in_bytes");
  EXPECT_EQ(writes[0].value, "1048576");
  EXPECT_EQ(writes[1].file, "memory.memsw.limit_in_bytes");
  EXPECT_EQ(writes[1].value, "1048576");
  EXPECT_TRUE(writes[1].optional);
}

TEST(CgroupLimitWritesTest, ZeroMeansNoLimitAndNothingWritten) {
  EXPECT_TRUE(LimitWrites("v2", {.memory_bytes = 0, .pids = 0}).empty());
  auto writes = LimitWrites("v2", {.memory_bytes = 0, .pids = 5});
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].file, "pids.max");
}

}  // namespace
}  // namespace crucible::sandbox::internal
