// kill(-1, SIGKILL): every process this one may signal. Refuses to run unless
// it is in another pid namespace than argv[1] (the test's /proc/self/ns/pid
// link), so that a broken sandbox cannot make it kill the host's processes.
// Prints "kill: ok" and exits 0 if it survived.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  char ns[256];
  ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
  if (n <= 0) {
    printf("refusing: cannot read my pid namespace\n");
    return 99;
  }
  ns[n] = '\0';
  if (strcmp(ns, argv[1]) == 0 || getpid() > 1000) {
    printf("refusing: in the host's pid namespace\n");
    return 99;
  }
  for (int i = 0; i < 3; ++i) {
    if (fork() == 0) {
      for (;;) pause();
    }
  }
  Report("kill", kill(-1, SIGKILL));
  return 0;
}
