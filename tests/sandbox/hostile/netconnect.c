// Connects over TCP to argv[1] (IPv4) port argv[2], giving up after 3 s.
// Prints "connect: ok" or "connect: <errno name>".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Report("socket", -1);
    return 1;
  }
  struct timeval tv = {3, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) return 2;
  Report("connect", connect(fd, (struct sockaddr*)&addr, sizeof(addr)));
  close(fd);
  return 0;
}
