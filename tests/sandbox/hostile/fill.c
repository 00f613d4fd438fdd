// Creates the new file argv[1] and writes 1 MiB blocks to it until a write
// fails or argv[2] MiB are written (a safety cap). SIGXFSZ is ignored, so a
// file size limit shows as EFBIG. Prints "bytes: N" and "write: <errno name>".
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  signal(SIGXFSZ, SIG_IGN);
  long cap = atol(argv[2]);
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    Report("open", -1);
    return 1;
  }
  static char block[1 << 20];
  memset(block, 'x', sizeof(block));
  long long total = 0;
  int err = 0;
  for (long i = 0; i < cap && err == 0; ++i) {
    size_t off = 0;
    while (off < sizeof(block)) {
      ssize_t n = write(fd, block + off, sizeof(block) - off);
      if (n < 0) {
        err = errno;
        break;
      }
      off += (size_t)n;
      total += n;
    }
  }
  printf("bytes: %lld\n", total);
  printf("write: %s\n", err != 0 ? ErrName(err) : "ok");
  return 0;
}
