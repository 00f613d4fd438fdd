// Ignores SIGTERM, SIGINT and SIGHUP and sleeps forever. argv[1] is a marker
// the test looks for in the host's process list.
#include <signal.h>
#include <unistd.h>

#include "common.h"

int main(void) {
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
