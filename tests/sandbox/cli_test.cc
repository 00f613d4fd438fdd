// `crucible sandbox`: exit statuses and the JSON exit report.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
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

using ::testing::HasSubstr;
using ::testing::Not;

struct Outcome {
  int status = -1;
  std::string err;
};

class SandboxCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root; run this test as root";
    auto dir = TempDir::Create("crucible-sandbox-cli-test-");
    ASSERT_TRUE(dir.has_value());
    dir_.emplace(std::move(*dir));
  }

  std::string ReportPath() const { return dir_->path() + "/report.json"; }

  // Runs `crucible sandbox ARGS` with stderr to a file.
  Outcome Run(const std::vector<std::string>& args) const {
    std::string err_file = dir_->path() + "/stderr";
    std::string cmd = fmt::format("'{}' sandbox", CRUCIBLE_BIN);
    for (const auto& a : args) cmd += fmt::format(" '{}'", a);
    cmd += fmt::format(" >/dev/null 2>'{}'", err_file);
    Outcome o;
    o.status = crucible::testing::Sh(cmd).status;
    o.err = ReadFile(err_file).value_or("");
    return o;
  }

  nlohmann::json Report() const {
    auto text = ReadFile(ReportPath());
    EXPECT_TRUE(text.has_value());
    return nlohmann::json::parse(text.value_or("{}"));
  }

  std::optional<TempDir> dir_;
};

TEST_F(SandboxCliTest, ReportHasTheIssuesFieldsAndRecordsViolations) {
  Outcome o = Run({"--report", ReportPath(), "--memory", "256M", "--pids", "64", "--", "sh", "-c",
                   "echo hi; unshare -U true 2>/dev/null; exit 3"});
  EXPECT_EQ(o.status, 3) << o.err;
  EXPECT_THAT(o.err, HasSubstr("blocked syscall unshare"));
  nlohmann::json r = Report();
  std::set<std::string> keys;
  for (const auto& [key, value] : r.items()) keys.insert(key);
  for (const char* field :
       {"exit_code", "signal", "timed_out", "oom_killed", "memory_peak_bytes", "cpu_ms", "wall_ms",
        "seccomp_violations", "stdout_bytes", "stderr_bytes", "output_truncated", "setup_error"}) {
    EXPECT_TRUE(keys.contains(field)) << field;
  }
  EXPECT_EQ(r["exit_code"], 3);
  EXPECT_EQ(r["stdout_bytes"], 3);
  EXPECT_TRUE(r["setup_error"].is_null());
  EXPECT_EQ(r["seccomp_violations"],
            nlohmann::json::parse(R"([{"syscall": "unshare", "count": 1}])"));
}

TEST_F(SandboxCliTest, ExitStatuses) {
  EXPECT_EQ(Run({"--", "true"}).status, 0);
  EXPECT_EQ(Run({"--", "sh", "-c", "kill -TERM $$"}).status, 128 + 15);

  Outcome o = Run({"--timeout", "0.2", "--report", ReportPath(), "--", "sleep", "10"});
  EXPECT_EQ(o.status, 124);
  EXPECT_EQ(Report()["timed_out"], true);

  o = Run({"--report", ReportPath(), "--ro-bind", "/nonexistent-crucible-cli-test", "--", "true"});
  EXPECT_EQ(o.status, 125);
  EXPECT_THAT(o.err, HasSubstr("bind /nonexistent-crucible-cli-test"));
  EXPECT_THAT(Report()["setup_error"].get<std::string>(),
              HasSubstr("sandbox setup: bind /nonexistent-crucible-cli-test"));
  EXPECT_TRUE(Report()["exit_code"].is_null());

  EXPECT_EQ(Run({"--memory", "12Q", "--", "true"}).status, 125);
}

// --env, --ro-bind and --rw-bind say "repeatable": the second one must not be
// refused ("At Most 1 required but received 2" before), and each takes one
// value, so the `--` ending the options is not swallowed.
TEST_F(SandboxCliTest, RepeatableOptionsTakeEveryOccurrence) {
  const std::string one = dir_->path() + "/one", two = dir_->path() + "/two";
  ASSERT_TRUE(MakeDirs(one));
  ASSERT_TRUE(MakeDirs(two));
  ASSERT_TRUE(WriteFile(one + "/f", "x"));
  ASSERT_TRUE(WriteFile(two + "/g", "y"));
  const std::string out = dir_->path() + "/out";
  ASSERT_TRUE(MakeDirs(out));
  Outcome o = Run({"--env", "A=1", "--env", "B=2", "--ro-bind", one + ":/data/one", "--ro-bind",
                   two + ":/data/two", "--rw-bind", out + ":/out", "--", "sh", "-c",
                   "printf '%s%s%s%s' \"$A\" \"$B\" \"$(cat /data/one/f)\" \"$(cat /data/two/g)\" "
                   "> /out/got"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(ReadFile(out + "/got").value_or(""), "12xy");
}

TEST_F(SandboxCliTest, EgressIsPrintedAndReportedAndBadEntriesAreSetupErrors) {
  // The proxy refuses the unlisted destination; no server is needed for that.
  Outcome o = Run({"--egress", "gateway.invalid:443", "--report", ReportPath(), "--", "curl", "-sS",
                   "--max-time", "20", "-o", "/dev/null", "http://127.0.0.3:9/"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_THAT(o.err, HasSubstr("crucible: sandbox: egress GET 127.0.0.3:9 refused: 127.0.0.3:9 "
                               "is not an allowed destination (allowed: gateway.invalid:443)"));
  nlohmann::json egress = Report()["egress"];
  ASSERT_EQ(egress.size(), 1u) << egress.dump();
  EXPECT_EQ(egress[0]["host"], "127.0.0.3");
  EXPECT_EQ(egress[0]["port"], 9);
  EXPECT_EQ(egress[0]["allowed"], false);

  o = Run({"--egress", "gateway.invalid", "--", "true"});
  EXPECT_EQ(o.status, 125);
  EXPECT_THAT(o.err, HasSubstr("egress entry 'gateway.invalid' is not HOST:PORT"));
  o = Run({"--network", "host", "--egress", "gateway.invalid:443", "--", "true"});
  EXPECT_EQ(o.status, 125);
  EXPECT_THAT(o.err, HasSubstr("egress needs the sandbox's own network"));
}

TEST_F(SandboxCliTest, OutputCapTruncatesAndSaysSo) {
  Outcome o = Run(
      {"--output-cap", "1k", "--report", ReportPath(), "--", "head", "-c", "5000", "/dev/zero"});
  EXPECT_EQ(o.status, 0);
  EXPECT_THAT(o.err, HasSubstr("output truncated"));
  nlohmann::json r = Report();
  EXPECT_EQ(r["output_truncated"], true);
  EXPECT_EQ(r["stdout_bytes"], 5000);
}

TEST_F(SandboxCliTest, PolicyFileSetsLimitsAndOptionsOverrideIt) {
  std::string policy = dir_->path() + "/policy.yaml";
  ASSERT_TRUE(WriteFile(policy, "timeout: 300ms\nhostname: from-policy\npids: 32\n").has_value());
  Outcome o = Run({"--policy", policy, "--report", ReportPath(), "--", "sleep", "10"});
  EXPECT_EQ(o.status, 124) << o.err;
  EXPECT_EQ(Report()["timed_out"], true);

  // The policy's hostname, with time to start on a loaded machine (the
  // policy's 300 ms are for the command above).
  o = Run({"--policy", policy, "--timeout", "0", "--", "sh", "-c",
           "test \"$(hostname)\" = from-policy"});
  EXPECT_EQ(o.status, 0) << o.err;
  // Explicit options win: no timeout, another hostname.
  o = Run({"--policy", policy, "--timeout", "0", "--hostname", "cli", "--", "sh", "-c",
           "sleep 0.5; test \"$(hostname)\" = cli"});
  EXPECT_EQ(o.status, 0) << o.err;

  ASSERT_TRUE(WriteFile(policy, "timeout: 1s\nmemroy: 1G\n").has_value());
  o = Run({"--policy", policy, "--report", ReportPath(), "--", "true"});
  EXPECT_EQ(o.status, 125);
  EXPECT_THAT(o.err, HasSubstr(policy + ":2:1: unknown key 'memroy'"));
  EXPECT_THAT(Report()["setup_error"].get<std::string>(), HasSubstr("unknown key 'memroy'"));
}

TEST_F(SandboxCliTest, WorkspaceQuotaCapsWritesAndNeedsAnEmptyWorkspace) {
  std::string ws = dir_->path() + "/ws";  // new: created
  Outcome o = Run({"--workspace", ws, "--workspace-quota", "1M", "--", "sh", "-c",
                   "head -c 3000000 /dev/zero > /workspace/big"});
  EXPECT_NE(o.status, 0);
  EXPECT_THAT(o.err, HasSubstr("No space left on device"));
  EXPECT_EQ(std::filesystem::exists(ws + "/big"), false) << "written to the host's disk";
  EXPECT_THAT(ReadFile("/proc/self/mountinfo").value_or(""), Not(HasSubstr(ws)))
      << "the quota's tmpfs is still mounted";

  ASSERT_TRUE(WriteFile(ws + "/kept", "x").has_value());
  o = Run({"--workspace", ws, "--workspace-quota", "1M", "--", "true"});
  EXPECT_EQ(o.status, 125);
  EXPECT_THAT(o.err, HasSubstr("must be a new or empty directory"));
  EXPECT_EQ(Run({"--workspace-quota", "1M", "--", "true"}).status, 125);
}

}  // namespace
}  // namespace crucible
