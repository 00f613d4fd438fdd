// What the sandbox itself sees a command do (Spec::observe_exec and
// Spec::observe_writes): real sandboxes, real programs, real files.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/fs.h"
#include "sandbox/sandbox.h"

namespace crucible::sandbox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class ObserveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox and fanotify need root; CI runs as root";
    auto dir = TempDir::Create("crucible-observe-test");
    ASSERT_TRUE(dir.has_value()) << dir.error().ToString();
    ws_.emplace(std::move(*dir));
  }

  // Runs `script` with sh -c in an observing sandbox (the workspace is ws_).
  Report RunObserved(const std::string& script, std::chrono::milliseconds timeout = 60s,
                     bool observe = true) {
    Spec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.workspace = ws_->path();
    spec.capture_output = true;
    spec.timeout = timeout;
    spec.observe_exec = observe;
    spec.observe_writes = observe;
    spec.max_observations = max_observations_;
    spec.on_observation = [this](const Observation& o) { seen_.push_back(o); };
    auto r = sandbox::Run(spec);
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r.value_or(Report{});
  }

  std::vector<Observation> Execs() const {
    std::vector<Observation> out;
    for (const auto& o : seen_) {
      if (o.kind == Observation::Kind::kExec) out.push_back(o);
    }
    return out;
  }
  std::vector<std::string> Writes() const {
    std::vector<std::string> out;
    for (const auto& o : seen_) {
      if (o.kind == Observation::Kind::kFileWrite) out.push_back(o.path);
    }
    return out;
  }
  const Observation* FindExec(const std::vector<std::string>& argv) const {
    for (const auto& o : seen_) {
      if (o.kind == Observation::Kind::kExec && o.argv == argv) return &o;
    }
    return nullptr;
  }
  std::string Dump() const {
    std::string s;
    for (const auto& o : seen_) {
      s += fmt::format("{} {} [{}]{}\n", o.kind == Observation::Kind::kExec ? "exec" : "write",
                       o.path, fmt::join(o.argv, "|"), o.argv_cut ? " cut" : "");
    }
    return s;
  }

  std::optional<TempDir> ws_;
  size_t max_observations_ = 10000;
  std::vector<Observation> seen_;
};

TEST_F(ObserveTest, NestedExecSeenWithItsArgv) {
  Report r = RunObserved(
      "python3 -c 'import subprocess; subprocess.run([\"/bin/echo\", \"hello world\", \"2\"])'");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "hello world 2\n");
  EXPECT_TRUE(r.observation_warnings.empty())
      << fmt::format("{}", fmt::join(r.observation_warnings, "; "));
  // The command itself, the shell's python3, and python's child.
  const Observation* sh = FindExec(
      {"/bin/sh", "-c",
       "python3 -c 'import subprocess; subprocess.run([\"/bin/echo\", \"hello world\", \"2\"])'"});
  ASSERT_NE(sh, nullptr) << Dump();
  EXPECT_EQ(sh->path, "/bin/sh");
  const Observation* echo = FindExec({"/bin/echo", "hello world", "2"});
  ASSERT_NE(echo, nullptr) << Dump();
  EXPECT_EQ(echo->path, "/bin/echo");
  EXPECT_GT(echo->pid, 0);
  EXPECT_FALSE(echo->argv_cut);
  bool python = false;
  for (const auto& o : Execs()) {
    python |= o.argv.size() == 3 && o.argv[0] == "python3" && o.argv[1] == "-c";
  }
  EXPECT_TRUE(python) << Dump();
  EXPECT_GE(r.observed_execs, 3u);
  EXPECT_EQ(r.observed_execs, Execs().size());
  auto now = std::chrono::system_clock::now();
  EXPECT_LE(echo->time, now);
  EXPECT_GT(echo->time, now - 10min);
}

TEST_F(ObserveTest, ExecveatSeen) {
  // glibc's fexecve() is execveat(fd, "", argv, envp, AT_EMPTY_PATH).
  Report r = RunObserved(
      "python3 -c 'import os; fd = os.open(\"/bin/echo\", os.O_RDONLY); "
      "os.execve(fd, [\"echo\", \"via-execveat\"], {})'");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "via-execveat\n");
  const Observation* at = FindExec({"echo", "via-execveat"});
  ASSERT_NE(at, nullptr) << Dump();
  EXPECT_THAT(at->path, ::testing::StartsWith("<fd ")) << Dump();
}

TEST_F(ObserveTest, ScriptWithInterpreterLineSeen) {
  ASSERT_TRUE(WriteFile(ws_->path() + "/run.sh", "#!/bin/sh\necho script \"$1\"\n").has_value());
  ASSERT_EQ(::chmod((ws_->path() + "/run.sh").c_str(), 0755), 0);
  Report r = RunObserved("./run.sh first");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "script first\n");
  const Observation* script = FindExec({"./run.sh", "first"});
  ASSERT_NE(script, nullptr) << Dump();
  EXPECT_EQ(script->path, "./run.sh");
}

TEST_F(ObserveTest, LongArgvIsCutAndMarked) {
  Report r = RunObserved(
      "/bin/true $(seq 1 100); /bin/echo $(head -c 5000 /dev/zero | tr '\\0' x) >/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  const Observation* many = nullptr;
  const Observation* big = nullptr;
  for (const auto& o : seen_) {
    if (o.kind != Observation::Kind::kExec) continue;
    if (o.path == "/bin/true") many = &o;
    if (o.path == "/bin/echo") big = &o;
  }
  ASSERT_NE(many, nullptr) << Dump();
  EXPECT_EQ(many->argv.size(), kMaxObservedArgs);
  EXPECT_TRUE(many->argv_cut);
  EXPECT_EQ(many->argv[1], "1");
  ASSERT_NE(big, nullptr) << Dump();
  EXPECT_TRUE(big->argv_cut);
  size_t bytes = 0;
  for (const auto& a : big->argv) bytes += a.size();
  EXPECT_LE(bytes, kMaxObservedArgBytes);
  EXPECT_EQ(big->argv[0], "/bin/echo");
}

TEST_F(ObserveTest, WorkspaceWriteSeenTmpWriteNot) {
  ASSERT_TRUE(MakeDirs(ws_->path() + "/pkg").has_value());
  ASSERT_TRUE(WriteFile(ws_->path() + "/pkg/old.py", "x = 1\n").has_value());
  Report r = RunObserved(
      "echo 'x = 2' > pkg/mod.py; echo scratch > /tmp/scratch.txt; cat pkg/old.py >/dev/null; "
      "python3 -c 'open(\"/workspace/pkg/old.py\", \"a\").write(\"y = 3\\n\")'");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_TRUE(r.observation_warnings.empty())
      << fmt::format("{}", fmt::join(r.observation_warnings, "; "));
  std::vector<std::string> writes = Writes();
  EXPECT_THAT(writes, ElementsAre("pkg/mod.py", "pkg/old.py")) << Dump();
  EXPECT_EQ(r.observed_writes, 2u);
  for (const auto& o : seen_) {
    if (o.kind == Observation::Kind::kFileWrite) {
      EXPECT_GT(o.time.time_since_epoch().count(), 0);
    }
  }
}

// An edit then a test run must be observed in that order, or the tool-call
// dimension sees an edit after the last test run that never happened. Each
// file is closed before the next exec starts, so its write comes first.
TEST_F(ObserveTest, AWriteThenAnExecAreObservedInThatOrder) {
  Report r = RunObserved("for i in $(seq 1 40); do echo x > f$i; /bin/true $i; done");
  ASSERT_EQ(r.exit_code, 0);
  for (int i = 1; i <= 40; ++i) {
    const std::string file = "f" + std::to_string(i);
    int write_at = -1, exec_at = -1;
    for (size_t k = 0; k < seen_.size(); ++k) {
      const auto& o = seen_[k];
      if (o.kind == Observation::Kind::kFileWrite && o.path == file) write_at = static_cast<int>(k);
      if (o.kind == Observation::Kind::kExec &&
          o.argv == std::vector<std::string>{"/bin/true", std::to_string(i)})
        exec_at = static_cast<int>(k);
    }
    ASSERT_GE(write_at, 0) << file << "\n" << Dump();
    ASSERT_GE(exec_at, 0) << file << "\n" << Dump();
    EXPECT_LT(write_at, exec_at) << file << " was observed after the exec that followed it\n"
                                 << Dump();
    EXPECT_LE(seen_[write_at].time, seen_[exec_at].time) << file;
  }
}

TEST_F(ObserveTest, WriteReadAfterTheSandboxEndedKeepsItsWorkspacePath) {
  // The runner is slow on the first write; meanwhile the command writes
  // another file and ends, and its mount namespace goes with it: the second
  // event is read from a detached mount.
  Spec spec;
  spec.argv = {"/bin/sh", "-c", "echo a > first.txt; mkdir -p sub; echo b > sub/late.txt"};
  spec.workspace = ws_->path();
  spec.capture_output = true;
  spec.timeout = 60s;
  spec.observe_writes = true;
  spec.on_observation = [this](const Observation& o) {
    if (o.path == "first.txt") std::this_thread::sleep_for(1s);
    seen_.push_back(o);
  };
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  EXPECT_THAT(Writes(), ElementsAre("first.txt", "sub/late.txt")) << Dump();
}

TEST_F(ObserveTest, ExecFloodIsBoundedAndTheRunStillEnds) {
  max_observations_ = 50;
  struct rusage before, after;
  ::getrusage(RUSAGE_THREAD, &before);  // the runner's side runs on this thread
  // A shell looping on execs, and a program looping on execve calls that fail
  // at once (the cheapest exec there is): both end at the timeout.
  Report r = RunObserved(
      "while :; do /bin/true; done & "
      "python3 -c 'import os\nwhile True:\n  try: os.execv(\"/nonexistent\", [\"x\"])\n  except "
      "OSError: pass'",
      3s);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(Execs().size(), 50u);
  EXPECT_GT(r.observed_execs, 50u);
  // The rate limit: a burst, then kObservedExecsPerSecond (generous margin).
  const double seconds = static_cast<double>(r.wall_ms) / 1000.0 + 1.0;
  EXPECT_LE(static_cast<double>(r.observed_execs), kObservedExecsPerSecond * (seconds + 1.0))
      << r.observed_execs << " execs in " << r.wall_ms << " ms";
  ::getrusage(RUSAGE_THREAD, &after);
  auto ms = [](const timeval& tv) { return tv.tv_sec * 1000 + tv.tv_usec / 1000; };
  int64_t runner_cpu_ms =
      ms(after.ru_utime) + ms(after.ru_stime) - ms(before.ru_utime) - ms(before.ru_stime);
  EXPECT_LT(runner_cpu_ms, r.wall_ms / 4) << r.observed_execs << " execs";
  bool cut_warning = false;
  for (const auto& w : r.observation_warnings)
    cut_warning |= w.find("not recorded") != std::string::npos;
  EXPECT_TRUE(cut_warning) << fmt::format("{}", fmt::join(r.observation_warnings, "; "));
}

TEST_F(ObserveTest, WriteFloodIsBounded) {
  max_observations_ = 20;
  Report r = RunObserved("for i in $(seq 1 200); do echo $i > f$i; done");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(Writes().size(), 20u);
  EXPECT_EQ(r.observed_writes, 200u);
}

TEST_F(ObserveTest, OffRecordsNothing) {
  Report r = RunObserved("/bin/echo hi > out.txt; python3 -c 'print(1)' >/dev/null", 60s, false);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_TRUE(seen_.empty()) << Dump();
  EXPECT_EQ(r.observed_execs, 0u);
  EXPECT_EQ(r.observed_writes, 0u);
  EXPECT_TRUE(r.observation_warnings.empty());
}

TEST_F(ObserveTest, WritesWithoutWorkspaceAreAWarning) {
  Spec spec;
  spec.argv = {"/bin/true"};
  spec.observe_writes = true;
  spec.on_observation = [this](const Observation& o) { seen_.push_back(o); };
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0);
  ASSERT_EQ(r->observation_warnings.size(), 1u);
  EXPECT_THAT(r->observation_warnings[0], HasSubstr("no workspace"));
}

}  // namespace
}  // namespace crucible::sandbox
