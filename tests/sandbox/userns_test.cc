// `crucible sandbox` run by an unprivileged user: the sandbox gets a user
// namespace (its root is the caller's uid), and isolation must hold all the
// same. The test runs as root and drops to nobody (65534) with setpriv.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using crucible::testing::Quote;
using crucible::testing::Sh;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uid_t kNobody = 65534;

std::map<std::string, std::string> Results(const std::string& out) {
  std::map<std::string, std::string> results;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    size_t colon = line.find(": ");
    if (colon != std::string::npos) results[line.substr(0, colon)] = line.substr(colon + 2);
  }
  return results;
}

class UsernsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "drops to another user: run this test as root";
    if (Sh("command -v setpriv").status != 0) GTEST_SKIP() << "setpriv (util-linux) is missing";
    auto dir = TempDir::Create("crucible-userns-test-");
    ASSERT_TRUE(dir.has_value());
    dir_.emplace(std::move(*dir));
    ASSERT_EQ(::chmod(dir_->path().c_str(), 0711), 0);  // nobody may pass, not list
    ws_ = dir_->path() + "/ws";
    out_ = dir_->path() + "/out";
    tmp_ = dir_->path() + "/tmp";  // the sandboxes' root directories go here
    for (const auto& d : {ws_, out_, tmp_}) {
      ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
      ASSERT_EQ(::chown(d.c_str(), kNobody, kNobody), 0);
    }
  }

  std::string ReportPath() const { return out_ + "/report.json"; }

  // `crucible sandbox ARGS` as nobody; stdout and stderr together.
  crucible::testing::CommandOutput RunAsNobody(const std::vector<std::string>& args) const {
    std::string cmd = fmt::format(
        "cd / && setpriv --reuid={0} --regid={0} --clear-groups -- env -i TMPDIR={1} {2} sandbox",
        kNobody, Quote(tmp_), Quote(CRUCIBLE_BIN));
    for (const auto& a : args) cmd += " " + Quote(a);
    return Sh(cmd);
  }

  nlohmann::json Report() const {
    auto text = ReadFile(ReportPath());
    EXPECT_TRUE(text.has_value()) << ReportPath();
    return nlohmann::json::parse(text.value_or("{}"));
  }

  std::optional<TempDir> dir_;
  std::string ws_, out_, tmp_;
};

TEST_F(UsernsTest, IsolationHoldsForAnUnprivilegedCaller) {
  std::string ro = dir_->path() + "/ro";
  ASSERT_EQ(::mkdir(ro.c_str(), 0755), 0);
  ASSERT_TRUE(WriteFile(ro + "/file", "data\n").has_value());
  const char* script = R"sh(
echo "uid: $(id -u)"
echo "init: $(cat /proc/1/comm)"
echo "interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
touch /workspace/made && echo "workspace: ok"
cat /data/file >/dev/null && echo "ro read: ok"
touch /data/new 2>/dev/null && echo "ro write: ok" || echo "ro write: refused"
touch /usr/crucible-userns-test 2>/dev/null && echo "usr write: ok" || echo "usr write: refused"
ls /root >/dev/null 2>&1 && echo "root: visible" || echo "root: hidden"
mount -t tmpfs none /tmp 2>/dev/null && echo "mount: ok" || echo "mount: refused"
)sh";
  auto o = RunAsNobody({"--workspace", ws_, "--ro-bind", ro + ":/data", "--report", ReportPath(),
                        "--", "sh", "-c", script});
  ASSERT_EQ(o.status, 0) << o.text;
  auto results = Results(o.text);
  EXPECT_EQ(results["uid"], "0") << o.text;
  EXPECT_EQ(results["init"], "crucible-init");
  EXPECT_EQ(results["interfaces"], "lo ");
  EXPECT_EQ(results["workspace"], "ok");
  EXPECT_EQ(results["ro read"], "ok");
  EXPECT_EQ(results["ro write"], "refused");
  EXPECT_EQ(results["usr write"], "refused");
  EXPECT_EQ(results["root"], "hidden");
  EXPECT_EQ(results["mount"], "refused");

  // On the host, what the sandbox's root wrote belongs to the caller.
  struct stat st;
  ASSERT_EQ(::stat((ws_ + "/made").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kNobody);
  struct stat none;
  EXPECT_NE(::stat((ro + "/new").c_str(), &none), 0);
  EXPECT_NE(::stat("/usr/crucible-userns-test", &none), 0);

  nlohmann::json r = Report();
  EXPECT_EQ(r["exit_code"], 0);
  bool mount_recorded = false;
  for (const auto& v : r["seccomp_violations"]) mount_recorded |= v["syscall"] == "mount";
  EXPECT_TRUE(mount_recorded) << r.dump();
  std::string warnings = r["warnings"].dump();
  EXPECT_THAT(warnings, HasSubstr("no memory or pids limit")) << warnings;
  EXPECT_THAT(o.text, HasSubstr("warning: no memory or pids limit"));

  // The unprivileged runner removed its root directory.
  EXPECT_TRUE(std::filesystem::is_empty(tmp_));
}

TEST_F(UsernsTest, ExplicitCgroupLimitsAreASetupErrorWhenUnprivileged) {
  auto o = RunAsNobody({"--pids", "64", "--report", ReportPath(), "--", "true"});
  EXPECT_EQ(o.status, 125) << o.text;
  EXPECT_THAT(o.text, HasSubstr("sandbox setup: cgroup"));
  EXPECT_THAT(Report()["setup_error"].get<std::string>(), HasSubstr("cgroup"));
}

TEST_F(UsernsTest, WorkspaceQuotaNeedsRoot) {
  auto o = RunAsNobody({"--workspace", out_ + "/quota", "--workspace-quota", "1M", "--", "true"});
  EXPECT_EQ(o.status, 125) << o.text;
  EXPECT_THAT(o.text, HasSubstr("needs root"));
}

TEST_F(UsernsTest, RootMayAskForAUserNamespace) {
  std::string ws = dir_->path() + "/root-ws";  // owned by root, the one uid mapped
  ASSERT_EQ(::mkdir(ws.c_str(), 0755), 0);
  auto o =
      Sh(fmt::format("{} sandbox --userns --workspace {} -- sh -c 'cat /proc/self/uid_map; "
                     "touch /workspace/f; echo done'",
                     Quote(CRUCIBLE_BIN), Quote(ws)));
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_THAT(o.text, HasSubstr("done"));
  // Root of the sandbox is root of the host, but only inside the namespace:
  // the map has the one line "0 0 1" (the host's is "0 0 4294967295").
  EXPECT_THAT(o.text, Not(HasSubstr("4294967295"))) << o.text;
  struct stat st;
  ASSERT_EQ(::stat((ws + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
}

TEST_F(UsernsTest, RootGetsAUserNamespaceByDefaultAndMayOptOut) {
  std::string ws = dir_->path() + "/default-ws";
  ASSERT_EQ(::mkdir(ws.c_str(), 0755), 0);
  auto o =
      Sh(fmt::format("{} sandbox --workspace {} -- sh -c 'cat /proc/self/uid_map; "
                     "touch /workspace/f; echo done'",
                     Quote(CRUCIBLE_BIN), Quote(ws)));
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_THAT(o.text, HasSubstr("done"));
  EXPECT_THAT(o.text, Not(HasSubstr("4294967295"))) << "no user namespace by default";
  struct stat st;
  ASSERT_EQ(::stat((ws + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);  // map 0 0 1: ownership as without one

  o = Sh(fmt::format("{} sandbox --no-userns -- cat /proc/self/uid_map", Quote(CRUCIBLE_BIN)));
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_THAT(o.text, HasSubstr("4294967295")) << "--no-userns kept a user namespace";
}

}  // namespace
}  // namespace crucible
