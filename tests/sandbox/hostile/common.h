// Shared helpers of the hostile programs: each tries one escape or exhaustion
// and prints what happened, one "what: result" line at a time, for
// tests/sandbox/hostile_test.cc to check. Results are errno names ("EPERM")
// or "ok" (built with _GNU_SOURCE). None of them deletes or modifies an existing file: they only
// create files at the unique paths the test gives them.
#pragma once

#include <errno.h>
#include <stdio.h>
#include <string.h>

static inline const char* ErrName(int err) {
  const char* name = strerrorname_np(err);
  return name != NULL ? name : "E?";
}

// Prints "what: ok" when rc >= 0, else "what: <errno name>".
static inline void Report(const char* what, long rc) {
  if (rc >= 0) {
    printf("%s: ok\n", what);
  } else {
    printf("%s: %s\n", what, ErrName(errno));
  }
  fflush(stdout);
}
