// Mining throughput: walks, diffs, classifies and splits the first-parent
// history of a generated repository (5,000 first-parent commits over 2,000
// files) without validation (golden::Scan), beside `git log --first-parent
// -p` over the same history. Prints commits per second for both, in wall
// time and in CPU time.
//
// Usage: mine_history [COMMITS] [FILES]
#include <sys/resource.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/fs.h"
#include "golden/miner.h"

namespace {

using crucible::TempDir;

std::string Blob(std::mt19937& rng, int lines, int seed) {
  std::string s;
  for (int i = 0; i < lines; ++i) {
    s += fmt::format("def f_{}_{}(x):\n    return x * {} + {}\n", seed, i, rng() % 97, rng() % 13);
  }
  return s;
}

// A fast-import stream: `commits` first-parent commits; every third is a
// merge of a one-commit branch, the others are pushed directly. Each change
// edits 1-3 source files (and, one time in two, a test file), with small
// diffs. File i is "src/m<i/100>/f<i>.py" or "tests/test_f<i>.py".
std::string Stream(int commits, int files) {
  std::mt19937 rng(42);
  std::string out;
  int mark = 0;
  int64_t when = 1700000000;
  auto path = [&](int i) {
    return i % 5 == 0 ? fmt::format("tests/test_f{}.py", i)
                      : fmt::format("src/m{}/f{}.py", i / 100, i);
  };
  auto data = [&](const std::string& text) {
    return fmt::format("data {}\n{}\n", text.size(), text);
  };
  auto commit = [&](const std::string& ref, int from, const std::string& merge,
                    const std::string& msg, const std::vector<int>& touched, bool create) {
    ++mark;
    std::string c = fmt::format("commit {}\nmark :{}\ncommitter Bench <b@example.com> {} +0000\n",
                                ref, mark, when += 60);
    c += data(msg);
    if (from > 0) c += fmt::format("from :{}\n", from);
    if (!merge.empty()) c += "merge " + merge + "\n";
    for (int f : touched) {
      c += fmt::format("M 100644 inline {}\n", path(f));
      c += data(Blob(rng, create ? 20 : 20 + static_cast<int>(rng() % 3), f * 7 + mark));
    }
    out += c;
    return mark;
  };
  std::vector<int> all;
  for (int i = 0; i < files; ++i) all.push_back(i);
  int head = commit("refs/heads/main", 0, "", "Initial import\n", all, true);
  for (int n = 1; n < commits; ++n) {
    std::vector<int> touched;
    int k = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < k; ++i) touched.push_back(static_cast<int>(rng() % files));
    if (rng() % 2 == 0) touched.push_back(static_cast<int>(rng() % (files / 5)) * 5);
    std::string title = rng() % 3 == 0 ? fmt::format("Fix crash in f{}", touched[0])
                                       : fmt::format("Add option to f{}", touched[0]);
    if (n % 3 == 0) {
      int branch = commit("refs/heads/topic", head, "", title + "\n", touched, false);
      head = commit("refs/heads/main", head, fmt::format(":{}", branch),
                    fmt::format("Merge pull request #{} from team/topic\n\n{}\n", n, title), {},
                    false);
    } else {
      head = commit("refs/heads/main", head, "", title + "\n", touched, false);
    }
  }
  return out;
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// CPU seconds (user + system) of this process (RUSAGE_SELF) or of its
// waited-for children (RUSAGE_CHILDREN): steadier than wall time on a
// shared machine.
double CpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

}  // namespace

int main(int argc, char** argv) {
  const int commits = argc > 1 ? std::atoi(argv[1]) : 5000;
  const int files = argc > 2 ? std::atoi(argv[2]) : 2000;
  auto dir = TempDir::Create("crucible-mine-bench-");
  if (!dir) return std::fprintf(stderr, "%s\n", dir.error().message().c_str()), 1;
  const std::string repo = dir->path() + "/repo";
  const std::string stream = dir->path() + "/stream";
  if (auto st = crucible::WriteFile(stream, Stream(commits, files)); !st) return 1;
  auto t0 = std::chrono::steady_clock::now();
  std::string init = fmt::format(
      "git init -q -b main '{0}' && cd '{0}' && git fast-import --quiet < '{1}' && "
      "git checkout -q main",
      repo, stream);
  if (std::system(init.c_str()) != 0) return std::fprintf(stderr, "fast-import failed\n"), 1;
  std::printf("generated %d first-parent commits over %d files in %.1fs\n", commits, files,
              Seconds(t0));

  crucible::golden::MineOptions o;
  o.repo_path = repo;
  o.suite = "bench";
  t0 = std::chrono::steady_clock::now();
  double cpu0 = CpuSeconds(RUSAGE_SELF);
  auto scanned = crucible::golden::Scan(o);
  double mine_s = Seconds(t0);
  double mine_cpu = CpuSeconds(RUSAGE_SELF) - cpu0;
  if (!scanned) return std::fprintf(stderr, "%s\n", scanned.error().message().c_str()), 1;
  const size_t walked = scanned->tasks.size() + scanned->skipped.size();

  t0 = std::chrono::steady_clock::now();
  cpu0 = CpuSeconds(RUSAGE_CHILDREN);
  std::string log = fmt::format("git -C '{}' log --first-parent -p main > /dev/null", repo);
  if (std::system(log.c_str()) != 0) return 1;
  double log_s = Seconds(t0);
  double log_cpu = CpuSeconds(RUSAGE_CHILDREN) - cpu0;
  auto rate = [&](double s) { return static_cast<double>(walked) / s; };
  std::printf(
      "crucible mine (no validation): %zu commits in %.2fs = %.0f commits/s (CPU %.2fs = %.0f "
      "commits/s; %zu tasks, %zu skipped)\n",
      walked, mine_s, rate(mine_s), mine_cpu, rate(mine_cpu), scanned->tasks.size(),
      scanned->skipped.size());
  std::printf(
      "git log --first-parent -p:     %zu commits in %.2fs = %.0f commits/s (CPU %.2fs = %.0f "
      "commits/s)\n",
      walked, log_s, rate(log_s), log_cpu, rate(log_cpu));
  return 0;
}
