// What the sandbox's defences against set-uid files cost:
//  - clearing set-id bits after a run: the walk over a workspace of N files
//    (created under $TMPDIR, in directories of 100), warm cache;
//  - the seccomp filter: ns per openat+close of /dev/null and per getppid,
//    in a sandbox (under the filter) and outside it (no filter), the same
//    loop of this binary run with --loop.
//
// Usage: sandbox_costs [FILES] [CALLS]   (defaults 10000, 1000000; needs root)
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"
#include "sandbox/setid.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// The measured loop: prints ns per call.
int Loop(long calls) {
  auto t0 = Clock::now();
  for (long i = 0; i < calls; ++i) {
    int fd = ::openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
    ::close(fd);
  }
  double open_ns = Ms(t0) * 1e6 / static_cast<double>(calls);
  t0 = Clock::now();
  for (long i = 0; i < calls; ++i) ::syscall(SYS_getppid);
  double getppid_ns = Ms(t0) * 1e6 / static_cast<double>(calls);
  std::printf("%.0f %.0f\n", open_ns, getppid_ns);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--loop") == 0) return Loop(std::atol(argv[2]));
  int files = argc > 1 ? std::atoi(argv[1]) : 10000;
  long calls = argc > 2 ? std::atol(argv[2]) : 1000000;
  if (geteuid() != 0) {
    std::fprintf(stderr, "sandbox_costs: needs root (the sandbox does)\n");
    return 1;
  }
  if (auto prog = crucible::sandbox::internal::BuildSeccompProgram(true)) {
    std::printf("seccomp program: %zu instructions\n", prog->size());
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/crucible-costs-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return 1;
  for (int i = 0; i < files; ++i) {
    std::string sub = dir + "/d" + std::to_string(i / 100);
    if (i % 100 == 0) ::mkdir(sub.c_str(), 0755);
    int fd = ::open((sub + "/f" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
  }
  const timespec epoch{};  // every entry counts as changed: the walk's full cost
  (void)crucible::sandbox::internal::ClearSetidBits(dir, epoch);  // warm the cache
  double best = 1e9;
  for (int round = 0; round < 10; ++round) {
    auto t0 = Clock::now();
    (void)crucible::sandbox::internal::ClearSetidBits(dir, epoch);
    best = std::min(best, Ms(t0));
  }
  std::printf("walk of %d files: %.2f ms (best of 10, warm cache)\n", files, best);
  std::filesystem::remove_all(dir);

  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 1;
  self[n] = '\0';
  std::string exe = self;
  std::string exe_dir = exe.substr(0, exe.rfind('/'));
  std::printf("outside (no filter), ns per openat+close, per getppid: ");
  std::fflush(stdout);
  std::string cmd = exe + " --loop " + std::to_string(calls);
  if (std::system(cmd.c_str()) != 0) return 1;
  crucible::sandbox::Spec spec;
  spec.argv = {"/opt/bench/" + exe.substr(exe.rfind('/') + 1), "--loop", std::to_string(calls)};
  spec.binds = {{.host_path = exe_dir, .sandbox_path = "/opt/bench"}};
  spec.capture_output = true;
  auto r = crucible::sandbox::Run(spec);
  if (!r || r->exit_code != 0) return 1;
  std::printf("in the sandbox (filter), ns per openat+close, per getppid: %s",
              r->stdout_data.c_str());
  return 0;
}
