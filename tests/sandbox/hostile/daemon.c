// Double-forks a setsid() daemon that ignores SIGTERM and SIGHUP and sleeps
// forever, then either exits ("exit") or sleeps forever too ("stay"). argv[2]
// is a marker the test looks for in the host's process list (both processes
// keep it in their command line).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  int ready[2];
  if (pipe(ready) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    setsid();
    if (fork() != 0) _exit(0);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (write(ready[1], "r", 1) != 1) _exit(1);
    close(ready[1]);
    for (;;) pause();
  }
  close(ready[1]);
  waitpid(child, NULL, 0);
  char c;
  if (read(ready[0], &c, 1) == 1) printf("daemon: started\n");
  fflush(stdout);
  if (strcmp(argv[1], "exit") == 0) return 0;
  for (;;) pause();
}
