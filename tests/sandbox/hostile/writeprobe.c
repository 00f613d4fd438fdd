// "create PATH...": creates each path as a new file (O_EXCL: never touches an
// existing one). "open PATH...": opens each existing path for writing without
// writing anything (not even truncating). Prints "path: ok" or the errno.
#include <fcntl.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  int create = strcmp(argv[1], "create") == 0;
  for (int i = 2; i < argc; ++i) {
    int fd = create ? open(argv[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)
                    : open(argv[i], O_WRONLY | O_CLOEXEC);
    Report(argv[i], fd);
    if (fd >= 0) close(fd);
  }
  return 0;
}
