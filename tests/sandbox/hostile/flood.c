// Writes to stdout forever (until a write fails).
#include <string.h>
#include <unistd.h>

int main(void) {
  static char buf[64 * 1024];
  memset(buf, 'y', sizeof(buf));
  while (write(1, buf, sizeof(buf)) > 0) {
  }
  return 0;
}
