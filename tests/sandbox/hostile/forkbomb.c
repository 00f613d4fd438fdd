// Forks until fork fails, each child sleeping, but never more than argv[1]
// processes (a safety cap, so that even without a pids limit it cannot take
// the machine down). Prints "forks: N" and "fork: <errno name>".
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char** argv) {
  long cap = argc > 1 ? atol(argv[1]) : 100;
  long forks = 0;
  int err = 0;
  while (forks < cap) {
    pid_t pid = fork();
    if (pid == 0) {
      for (;;) pause();
    }
    if (pid < 0) {
      err = errno;
      break;
    }
    ++forks;
  }
  printf("forks: %ld\n", forks);
  printf("fork: %s\n", err != 0 ? ErrName(err) : "ok");
  fflush(stdout);
  return err != 0 ? 0 : 1;
}
