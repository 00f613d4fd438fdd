// Bounded waits for tests: no wait on a child process or a serving loop may
// block a test forever (a hang costs the whole ctest timeout and says
// nothing about where it hung).
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "base/error.h"

namespace crucible::testing {

// How long a test waits for anything that should take seconds at most.
inline constexpr std::chrono::seconds kTestWaitLimit{120};

// Waits for child `pid` for up to `limit`. When it has not ended by then it is
// killed (SIGKILL) and reaped, and false is returned; true when it ended by
// itself, with its wait status in `*status` (if given).
inline bool WaitPid(pid_t pid, int* status, std::chrono::milliseconds limit = kTestWaitLimit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int st = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (status != nullptr) *status = st;
      return true;
    }
    if (r < 0 && errno != EINTR) return false;  // not our child (any more)
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (status != nullptr) *status = st;
  return false;
}

// A `check` for Coordinator::ServeUntilFinished that stops serving with an
// error once `limit` has passed, so that a test whose fake runner gave up
// still gets its serving thread back.
inline std::function<Status()> GiveUpAfter(std::chrono::milliseconds limit = kTestWaitLimit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  return [deadline]() -> Status {
    if (std::chrono::steady_clock::now() < deadline) return {};
    return Fail(Code::kTimeout, "the test's serving deadline passed");
  };
}

}  // namespace crucible::testing
