// What observing a sandbox costs (Spec::observe_exec and observe_writes):
// the sample repository's pytest suite run in the sandbox with observation
// off and on, alternately, the same number of rounds each. Prints the median
// and best wall time of each, the overhead of the medians, and what one
// observed run saw.
//
// Then the same for a worst case: a shell doing nothing but 300 execs and
// 300 file writes in the workspace.
//
// Usage: observe_overhead SAMPLE_REPO [ROUNDS]   (default 10; needs root)
//   SAMPLE_REPO: a checkout made by examples/sample-repo/make_sample_repo.py
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"

namespace {

using crucible::sandbox::Observation;
using crucible::sandbox::Spec;

struct Sample {
  double wall_ms = 0;
  double cpu_ms = 0;         // the sandbox's processes (its cgroup)
  double runner_cpu_ms = 0;  // this thread: the parent's side of the sandbox
  uint64_t execs = 0;
  uint64_t writes = 0;
  size_t observations = 0;
};

bool RunOnce(const std::string& repo, bool observe, Sample& out,
             const std::vector<std::string>& argv) {
  Spec spec;
  spec.argv = argv;
  spec.workspace = repo;
  spec.env = {"PYTHONDONTWRITEBYTECODE=1"};
  spec.capture_output = true;
  spec.timeout = std::chrono::seconds(300);
  spec.observe_exec = observe;
  spec.observe_writes = observe;
  size_t seen = 0;
  spec.on_observation = [&](const Observation&) { ++seen; };
  struct rusage before, after;
  ::getrusage(RUSAGE_THREAD, &before);
  auto r = crucible::sandbox::Run(spec);
  ::getrusage(RUSAGE_THREAD, &after);
  auto ms = [](const timeval& tv) { return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0; };
  if (!r) {
    std::fprintf(stderr, "observe_overhead: %s\n", r.error().ToString().c_str());
    return false;
  }
  if (r->exit_code != 0) {
    std::fprintf(stderr, "observe_overhead: pytest exited %d:\n%s%s\n", r->exit_code,
                 r->stdout_data.c_str(), r->stderr_data.c_str());
    return false;
  }
  for (const auto& w : r->observation_warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  out.wall_ms = static_cast<double>(r->wall_ms);
  out.cpu_ms = static_cast<double>(r->cpu_ms);
  out.runner_cpu_ms =
      ms(after.ru_utime) + ms(after.ru_stime) - ms(before.ru_utime) - ms(before.ru_stime);
  out.execs = r->observed_execs;
  out.writes = r->observed_writes;
  out.observations = seen;
  return true;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void PrintResult(const char* what, int rounds, const std::vector<double>& off,
                 const std::vector<double>& on, const Sample& last_on);

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: observe_overhead SAMPLE_REPO [ROUNDS]\n");
    return 2;
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "observe_overhead: needs root (fanotify and the sandbox)\n");
    return 1;
  }
  std::string repo = argv[1];
  int rounds = argc > 2 ? std::atoi(argv[2]) : 10;
  const std::vector<std::string> pytest = {
      "python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=/tmp/report.xml"};
  // The worst case for observation: nothing but execs and file writes.
  const std::vector<std::string> churn = {
      "/bin/sh", "-c",
      "mkdir -p /workspace/.churn; for i in $(seq 1 300); do /bin/true; "
      "echo $i > /workspace/.churn/f$i; done; rm -r /workspace/.churn"};
  for (const auto* argv : {&pytest, &churn}) {
    Sample warm;
    if (!RunOnce(repo, false, warm, *argv)) return 1;  // page cache, pycache-free
    std::vector<double> off, on, cpu_off, cpu_on, runner_off, runner_on;
    Sample last_on;
    for (int i = 0; i < rounds; ++i) {
      Sample s;
      // Alternate which goes first, so drift hits both alike.
      for (bool observe : {i % 2 == 0, i % 2 != 0}) {
        if (!RunOnce(repo, observe, s, *argv)) return 1;
        (observe ? on : off).push_back(s.wall_ms);
        (observe ? cpu_on : cpu_off).push_back(s.cpu_ms);
        (observe ? runner_on : runner_off).push_back(s.runner_cpu_ms);
        if (observe) last_on = s;
      }
    }
    PrintResult(argv == &pytest ? "pytest of the sample repository"
                                : "300 x (/bin/true; write a file) in sh",
                rounds, off, on, last_on);
    std::printf("CPU of the sandbox, median: off %.0f ms, on %.0f ms (%+.1f%%)\n", Median(cpu_off),
                Median(cpu_on), (Median(cpu_on) - Median(cpu_off)) * 100.0 / Median(cpu_off));
    std::printf("CPU of the runner's thread, median: off %.1f ms, on %.1f ms\n", Median(runner_off),
                Median(runner_on));
  }
  return 0;
}

namespace {

void PrintResult(const char* what, int rounds, const std::vector<double>& off,
                 const std::vector<double>& on, const Sample& last_on) {
  double m_off = Median(off), m_on = Median(on);
  std::printf("%s, %d rounds each\n", what, rounds);
  std::printf("observation off: median %.0f ms, best %.0f ms\n", m_off,
              *std::min_element(off.begin(), off.end()));
  std::printf("observation on:  median %.0f ms, best %.0f ms\n", m_on,
              *std::min_element(on.begin(), on.end()));
  std::printf("overhead of the medians: %+.1f%%\n", (m_on - m_off) * 100.0 / m_off);
  std::printf("one observed run saw %llu execs and %llu file writes (%zu passed on)\n",
              static_cast<unsigned long long>(last_on.execs),
              static_cast<unsigned long long>(last_on.writes), last_on.observations);
}

}  // namespace
