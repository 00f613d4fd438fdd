// For each path: "path: ok" if it can be opened for reading, else the errno.
#include <fcntl.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
    Report(argv[i], fd);
    if (fd >= 0) close(fd);
  }
  return 0;
}
