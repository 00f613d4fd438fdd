// The embedded default of `crucible run`: a coordinator in this process and
// runner processes beside it, talking over ipc:// exactly as a cluster talks
// over tcp://.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/fs.h"
#include "cli/common.h"
#include "coordinator/coordinator.h"

namespace crucible::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct RunnerProcess {
  std::string name;
  pid_t pid = -1;
  int status = 0;
  bool exited = false;
};

// Starts a runner whose temporary files (sandbox roots among them) go below
// `tmpdir`, inside the run's own directory: whatever a runner stopped in the
// middle of an attempt leaves there goes when the run's directory does.
Result<pid_t> SpawnRunner(const std::string& self, const std::string& endpoint,
                          const std::string& workdir, const std::string& name,
                          const std::string& tmpdir) {
  std::vector<std::string> argv = {self,        "runner", "--coordinator", endpoint,
                                   "--workdir", workdir,  "--name",        name};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(tmpdir));
  std::vector<std::string> env_strings = {"TMPDIR=" + tmpdir};
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with("TMPDIR=")) continue;
    env_strings.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return FailErrno("fork runner");
  if (pid == 0) {
    // A runner never outlives the process that started it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

// Set by SIGTERM/SIGINT: the run stops serving, its runners are shut down and
// its temporary directory removed; the run can be resumed.
volatile std::sig_atomic_t g_stop_signal = 0;

std::string DescribeStatus(int status) {
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("exit status {}", WEXITSTATUS(status));
}

}  // namespace

Result<std::string> RunEmbedded(storage::Store& store, const EmbeddedRunOptions& options) {
  if (options.runners < 1) return Fail(Code::kInvalidArgument, "--runners must be at least 1");
  CRUCIBLE_ASSIGN_OR_RETURN(std::string self, SelfExecutable());
  CRUCIBLE_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("crucible-run-"));
  std::string endpoint = "ipc://" + dir.path() + "/coordinator.sock";

  coordinator::CoordinatorOptions copts;
  copts.listen = endpoint;
  CRUCIBLE_ASSIGN_OR_RETURN(auto coord, coordinator::Coordinator::Create(store, copts));
  v1::Run run;
  if (options.resume.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(
        run, coord->SubmitRun(options.suite, options.agents, options.samples, options.held_out,
                              options.include_untestable, options.judges, options.reviewers,
                              options.only_tasks, options.include_mismatched));
    PrintPredictionWarnings(run, options.agents);
  } else {
    CRUCIBLE_ASSIGN_OR_RETURN(run, coord->ResumeRun(options.resume));
    if (run.state() != v1::Run::RUNNING) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("run {} is {}; nothing to resume", run.id(),
                              run.state() == v1::Run::FINISHED ? "finished" : "cancelled"));
    }
  }
  std::printf("run %s: %d attempts (suite %s, %d agents, %d samples), %d local runners\n",
              run.id().c_str(), run.attempt_count(), run.suite().c_str(), run.agents_size(),
              run.samples(), options.runners);
  std::fflush(stdout);

  std::vector<RunnerProcess> runners;
  for (int i = 0; i < options.runners; ++i) {
    RunnerProcess r{.name = fmt::format("local-{}", i + 1)};
    auto pid = SpawnRunner(self, endpoint, fmt::format("{}/{}", dir.path(), r.name), r.name,
                           fmt::format("{}/tmp-{}", dir.path(), r.name));
    if (!pid) {
      for (auto& started : runners) ::kill(started.pid, SIGKILL);
      return Fail(pid.error());
    }
    r.pid = *pid;
    runners.push_back(std::move(r));
  }

  struct sigaction sa {};
  sa.sa_handler = [](int sig) { g_stop_signal = sig; };
  ::sigemptyset(&sa.sa_mask);
  struct sigaction old_term {
  }, old_int{};
  ::sigaction(SIGTERM, &sa, &old_term);
  ::sigaction(SIGINT, &sa, &old_int);

  auto start = Clock::now();
  auto check = [&]() -> Status {
    if (g_stop_signal != 0) {
      return Fail(Code::kUnavailable,
                  fmt::format("stopped by signal {}; resume with `crucible run --resume {}`",
                              static_cast<int>(g_stop_signal), run.id()));
    }
    size_t alive = 0;
    for (auto& r : runners) {
      if (!r.exited && ::waitpid(r.pid, &r.status, WNOHANG) == r.pid) {
        r.exited = true;
        spdlog::warn("runner {} exited ({})", r.name, DescribeStatus(r.status));
        coord->RunnerLost(r.name);
      }
      if (!r.exited) ++alive;
    }
    if (alive == 0) {
      return Fail(Code::kUnavailable,
                  fmt::format("all {} runners exited; the last with {} (rerun with -v for their "
                              "logs)",
                              runners.size(), DescribeStatus(runners.back().status)));
    }
    return {};
  };
  auto progress = [&](const coordinator::RunProgress& p) {
    if (options.quiet) return;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count();
    size_t finished = p.done + p.failed;
    PrintProgress(ProgressLine(p.total, p.done, p.failed, p.leased, p.runners, secs),
                  finished == p.total);
  };
  Status served = coord->ServeUntilFinished(run.id(), progress, check);

  coord->ShutdownRunners(served ? "run finished" : "run aborted");
  auto deadline = Clock::now() + std::chrono::seconds(10);
  for (auto& r : runners) {
    while (!r.exited && Clock::now() < deadline) {
      if (::waitpid(r.pid, &r.status, WNOHANG) == r.pid) {
        r.exited = true;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    if (!r.exited) {
      ::kill(r.pid, SIGKILL);
      ::waitpid(r.pid, &r.status, 0);
    }
  }
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGINT, &old_int, nullptr);
  if (!served) return Fail(served.error().Wrap("run " + run.id()));
  return run.id();
}

}  // namespace crucible::cli
