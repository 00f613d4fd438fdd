// Sandbox start-to-exit of /bin/true with the full policy (namespaces, pivot_root,
// seccomp with its listener, cgroup memory and pids limits, rlimits), called
// in-process as the runner does, side by side in the same run with bubblewrap
// (`bwrap --unshare-all --die-with-parent` over the same system binds),
// sequentially and with 2 and 8 sandboxes started concurrently. "crucible" is
// the default Spec (a user namespace of its own, map 0 0 1 as root);
// "crucible-no-userns" the same opted out of it (Spec::user_namespace false,
// `--no-userns`). The first start of the process, which also scans the system
// directories for files to mask, is reported on its own.
//
// Usage: sandbox_start [RUNS]   (default 500 per configuration; needs root)
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/sandbox.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

bool RunCrucibleWith(bool user_namespace) {
  crucible::sandbox::Spec spec;
  spec.argv = {"/bin/true"};
  spec.memory_limit_bytes = 512ull << 20;
  spec.pids_limit = 64;
  spec.user_namespace = user_namespace;
  auto r = crucible::sandbox::Run(spec);
  return r && r->exit_code == 0;
}
bool RunCrucible() { return RunCrucibleWith(true); }
bool RunCrucibleNoUserns() { return RunCrucibleWith(false); }

bool RunBwrap() {
  static std::vector<std::string> argv = {"bwrap",     "--unshare-all", "--die-with-parent",
                                          "--ro-bind", "/usr",          "/usr",
                                          "--symlink", "usr/bin",       "/bin",
                                          "--symlink", "usr/lib",       "/lib",
                                          "--symlink", "usr/lib64",     "/lib64",
                                          "--symlink", "usr/sbin",      "/sbin",
                                          "--ro-bind", "/etc",          "/etc",
                                          "--proc",    "/proc",         "--dev",
                                          "/dev",      "--tmpfs",       "/tmp",
                                          "/bin/true"};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, "bwrap", nullptr, nullptr, args.data(), environ) != 0) return false;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct Stats {
  double median_ms = 0, p99_ms = 0, per_second = 0;
  int failures = 0;
};

// Runs `runs` starts spread over `concurrency` threads; latency per start.
Stats Measure(const std::function<bool()>& start, int runs, int concurrency) {
  std::vector<double> lat(static_cast<size_t>(runs));
  std::atomic<int> next{0}, failures{0};
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (int i; (i = next++) < runs;) {
        auto s = Clock::now();
        if (!start()) ++failures;
        lat[static_cast<size_t>(i)] =
            std::chrono::duration<double, std::milli>(Clock::now() - s).count();
      }
    });
  }
  for (auto& th : threads) th.join();
  double total_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::sort(lat.begin(), lat.end());
  Stats st;
  st.median_ms = lat[lat.size() / 2];
  st.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
  st.per_second = runs / total_s;
  st.failures = failures;
  return st;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 500;
  if (geteuid() != 0) {
    std::fprintf(stderr, "sandbox_start: needs root (the sandbox does)\n");
    return 1;
  }
  auto first = Clock::now();
  bool first_ok = RunCrucible();
  std::printf("first crucible start of the process (includes the mask scan): %.2fms%s\n",
              std::chrono::duration<double, std::milli>(Clock::now() - first).count(),
              first_ok ? "" : " (failed)");
  for (int i = 0; i < 20; ++i) (void)RunCrucible(), (void)RunCrucibleNoUserns(), (void)RunBwrap();
  std::printf("%-18s %11s %9s %9s %10s %8s\n", "sandbox", "concurrency", "median", "p99",
              "starts/s", "failed");
  for (int c : {1, 2, 8}) {
    for (auto [name, fn] : {std::pair<const char*, std::function<bool()>>{"crucible", RunCrucible},
                            {"crucible-no-userns", RunCrucibleNoUserns},
                            {"bwrap", RunBwrap}}) {
      Stats s = Measure(fn, runs, c);
      std::printf("%-18s %11d %7.2fms %7.2fms %10.0f %8d\n", name, c, s.median_ms, s.p99_ms,
                  s.per_second, s.failures);
      std::fflush(stdout);
    }
  }
  return 0;
}
