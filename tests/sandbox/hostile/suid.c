// "check": prints "euid: N" and the CapEff and NoNewPrivs lines of
// /proc/self/status. "drop PATH": becomes uid/gid 65534, then executes PATH
// (a setuid-root copy of this program) with "check".
#include <grp.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "drop") == 0) {
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
      Report("drop", -1);
      return 1;
    }
    char* args[] = {argv[2], "check", NULL};
    execv(argv[2], args);
    Report("exec", -1);
    return 1;
  }
  printf("euid: %d\n", (int)geteuid());
  FILE* f = fopen("/proc/self/status", "r");
  if (f == NULL) return 1;
  char line[256];
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "CapPrm:", 7) == 0 ||
        strncmp(line, "NoNewPrivs:", 11) == 0) {
      fputs(line, stdout);
    }
  }
  fclose(f);
  return 0;
}
