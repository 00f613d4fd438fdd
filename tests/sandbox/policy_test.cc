// Sandbox policy files: what they set, and how bad input is reported.
#include "sandbox/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/fs.h"

namespace crucible::sandbox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(PolicyTest, ParsesEveryKey) {
  auto p = ParsePolicy(R"(
network: host
memory: 512M
pids: 64
cpu_time: 30s
timeout: 2m
file_size: 1G
open_files: 256
tmp_size: 64k
output_cap: 1M
env: [CC=gcc, "GREETING=a b"]
ro_binds: [/opt/tools, "/srv/data:/data"]
rw_binds:
  - /srv/cache:/cache
rootfs: /srv/images/debian
hostname: box
user_namespace: true
workspace_quota: 2G
)",
                       "p.yaml");
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ(p->network, Network::kHost);
  EXPECT_EQ(p->memory_limit_bytes, uint64_t{512} << 20);
  EXPECT_EQ(p->pids_limit, 64u);
  EXPECT_EQ(p->cpu_time_s, 30u);
  EXPECT_EQ(p->timeout, std::chrono::milliseconds(120s));
  EXPECT_EQ(p->file_size_bytes, uint64_t{1} << 30);
  EXPECT_EQ(p->open_files, 256u);
  EXPECT_EQ(p->tmp_size_bytes, 64u << 10);
  EXPECT_EQ(p->output_cap, 1u << 20);
  EXPECT_THAT(p->env, ElementsAre("CC=gcc", "GREETING=a b"));
  ASSERT_EQ(p->binds.size(), 3u);
  EXPECT_EQ(p->binds[0].host_path, "/opt/tools");
  EXPECT_EQ(p->binds[0].sandbox_path, "/opt/tools");
  EXPECT_FALSE(p->binds[0].writable);
  EXPECT_EQ(p->binds[1].host_path, "/srv/data");
  EXPECT_EQ(p->binds[1].sandbox_path, "/data");
  EXPECT_EQ(p->binds[2].sandbox_path, "/cache");
  EXPECT_TRUE(p->binds[2].writable);
  EXPECT_EQ(p->rootfs, "/srv/images/debian");
  EXPECT_EQ(p->hostname, "box");
  EXPECT_EQ(p->user_namespace, true);
  EXPECT_EQ(p->workspace_quota_bytes, uint64_t{2} << 30);
}

TEST(PolicyTest, EmptyDocumentSetsNothingAndEnvMayBeAMapping) {
  auto empty = ParsePolicy("", "empty.yaml");
  ASSERT_TRUE(empty.has_value()) << empty.error().ToString();
  EXPECT_FALSE(empty->memory_limit_bytes.has_value());
  EXPECT_FALSE(empty->network.has_value());

  auto p = ParsePolicy("env:\n  CC: clang\n  N: 3\ntimeout: 1500ms\ncpu_time: 0\n", "p.yaml");
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_THAT(p->env, ElementsAre("CC=clang", "N=3"));
  EXPECT_EQ(p->timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(p->cpu_time_s, 0u);
}

// Each bad document, and what its error must say (source:line:col and key).
TEST(PolicyTest, BadInputNamesTheFileLineColumnAndKey) {
  struct Case {
    const char* yaml;
    const char* message;
  };
  const Case cases[] = {
      {"pids: 64\nmemroy: 1G\n", "bad.yaml:2:1: unknown key 'memroy'"},
      {"memory: 5X\n", "bad.yaml:1:9: key 'memory': expected a size"},
      {"memory: -1\n", "bad.yaml:1:9: key 'memory'"},
      {"timeout: 10 minutes\n", "bad.yaml:1:10: key 'timeout': expected a duration"},
      {"cpu_time: 1500ms\n", "bad.yaml:1:11: key 'cpu_time' must be a whole number of seconds"},
      {"network: bridge\n", "bad.yaml:1:10: key 'network' must be none or host, not 'bridge'"},
      {"env: [NOVALUE]\n", "bad.yaml:1:7: key 'env': entry 'NOVALUE' is not KEY=VALUE"},
      {"ro_binds: [relative/dir]\n", "bad.yaml:1:12: key 'ro_binds': 'relative/dir' is not"},
      {"rw_binds: /one\n", "bad.yaml:1:11: key 'rw_binds' must be a list"},
      {"rootfs: images/debian\n", "bad.yaml:1:9: key 'rootfs' must be an absolute path"},
      {"user_namespace: maybe\n", "bad.yaml:1:17: key 'user_namespace' must be true or false"},
      {"pids: [1, 2]\n", "bad.yaml:1:7: key 'pids' must be a single value"},
      {"- memory: 1G\n", "bad.yaml:1:1: a sandbox policy must be a mapping"},
      {"memory: [1G\n", "bad.yaml:2:1: not valid YAML"},
  };
  for (const Case& c : cases) {
    auto p = ParsePolicy(c.yaml, "bad.yaml");
    ASSERT_FALSE(p.has_value()) << c.yaml;
    EXPECT_EQ(p.error().code(), Code::kInvalidArgument) << c.yaml;
    EXPECT_THAT(p.error().message(), HasSubstr(c.message)) << c.yaml;
  }
}

TEST(PolicyTest, LoadPolicyFileReadsTheFileAndNamesItInErrors) {
  auto dir = TempDir::Create("crucible-policy-test-");
  ASSERT_TRUE(dir.has_value());
  std::string path = dir->path() + "/policy.yaml";
  ASSERT_TRUE(WriteFile(path, "pids: 32\nbogus: 1\n").has_value());
  auto p = LoadPolicyFile(path);
  ASSERT_FALSE(p.has_value());
  EXPECT_THAT(p.error().message(), HasSubstr(path + ":2:1: unknown key 'bogus'"));

  ASSERT_TRUE(WriteFile(path, "pids: 32\n").has_value());
  p = LoadPolicyFile(path);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ(p->pids_limit, 32u);

  auto missing = LoadPolicyFile(dir->path() + "/missing.yaml");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_THAT(missing.error().message(), HasSubstr("missing.yaml"));
}

TEST(PolicyTest, ApplyOverridesOnlyWhatThePolicySets) {
  Spec spec;
  spec.argv = {"true"};
  spec.env = {"A=1"};
  spec.binds = {{.host_path = "/a", .sandbox_path = "/a"}};
  spec.hostname = "mine";
  spec.open_files = 77;
  auto p =
      ParsePolicy("memory: 0\ntimeout: 3s\nenv: [B=2]\nro_binds: [/b]\nnetwork: none\n", "p.yaml");
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  ASSERT_TRUE(ApplyPolicy(*p, spec).has_value());
  EXPECT_EQ(spec.memory_limit_bytes, 0u);  // explicitly "no limit", not the default
  EXPECT_FALSE(spec.pids_limit.has_value());
  EXPECT_EQ(spec.timeout, std::chrono::milliseconds(3000));
  EXPECT_THAT(spec.env, ElementsAre("A=1", "B=2"));
  ASSERT_EQ(spec.binds.size(), 2u);
  EXPECT_EQ(spec.binds[1].host_path, "/b");
  EXPECT_EQ(spec.hostname, "mine");
  EXPECT_EQ(spec.open_files, 77u);
  EXPECT_EQ(spec.network, Network::kNone);
}

TEST(PolicyTest, SizesAndDurations) {
  EXPECT_EQ(ParseSize("x", "0").value(), 0u);
  EXPECT_EQ(ParseSize("x", "64k").value(), 64u << 10);
  EXPECT_EQ(ParseSize("x", "4G").value(), uint64_t{4} << 30);
  EXPECT_FALSE(ParseSize("x", "").has_value());
  EXPECT_FALSE(ParseSize("x", "4GB").has_value());
  EXPECT_FALSE(ParseSize("x", "99999999999999999999").has_value());
  EXPECT_FALSE(ParseSize("x", "17179869184G").has_value());  // overflows
  EXPECT_EQ(ParseDuration("x", "2").value(), std::chrono::milliseconds(2000));
  EXPECT_EQ(ParseDuration("x", "0.5s").value(), std::chrono::milliseconds(500));
  EXPECT_EQ(ParseDuration("x", "1h").value(), std::chrono::milliseconds(3'600'000));
  EXPECT_FALSE(ParseDuration("x", "-1s").has_value());
  EXPECT_FALSE(ParseDuration("x", "1d").has_value());
  EXPECT_FALSE(ParseDuration("x", "s").has_value());
}

TEST(PolicyTest, TheShippedExamplePolicyLoads) {
  auto p = LoadPolicyFile(std::string(CRUCIBLE_SOURCE_DIR) + "/examples/policies/tests.yaml");
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(p->network, Network::kNone);
  EXPECT_EQ(p->memory_limit_bytes, uint64_t{2} << 30);
  EXPECT_EQ(p->env, std::vector<std::string>{"CI=1"});
}

}  // namespace
}  // namespace crucible::sandbox
