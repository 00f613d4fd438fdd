// Allocates and touches memory 1 MiB at a time, up to argv[1] MiB (a safety
// cap). Prints "survived: N" if it got there (it should be OOM-killed first).
#include <stdlib.h>
#include <string.h>

#include "common.h"

int main(int argc, char** argv) {
  long cap = argc > 1 ? atol(argv[1]) : 256;
  for (long i = 0; i < cap; ++i) {
    char* p = malloc(1 << 20);
    if (p == NULL) {
      printf("malloc: ENOMEM after %ld MiB\n", i);
      return 1;
    }
    memset(p, 0x5a, 1 << 20);
  }
  printf("survived: %ld\n", cap);
  return 1;
}
