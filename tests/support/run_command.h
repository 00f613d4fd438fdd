// Running shell commands and the crucible binary from tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace crucible::testing {

struct CommandOutput {
  int status = -1;   // exit status; 128+N when killed by signal N
  std::string text;  // stdout and stderr together
};

// Quotes `s` for /bin/sh.
inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `command` with /bin/sh, stdin from /dev/null, and collects its output.
inline CommandOutput Sh(const std::string& command) {
  CommandOutput out;
  FILE* p = ::popen((command + " 2>&1 </dev/null").c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.text.append(buf.data(), n);
  int st = ::pclose(p);
  out.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return out;
}

#ifdef CRUCIBLE_BIN
// Runs the crucible binary under test with `args` (shell text).
inline CommandOutput Crucible(const std::string& args) {
  return Sh(std::string(CRUCIBLE_BIN) + " " + args);
}
#endif

}  // namespace crucible::testing
