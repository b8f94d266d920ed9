/* openclose N FILE: N times open(FILE)+close and open(/etc/hostname)+close, alternating
 * (N opens in all: N/2 of each). Prints "ns_per_op <ns per open+close>" on stdout. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static long long now_ns(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: openclose N FILE\n"); return 2; }
  long n = atol(argv[1]);
  const char *files[2] = { argv[2], "/etc/hostname" };
  long long t0 = now_ns();
  for (long i = 0; i < n; i++) {
    int fd = open(files[i & 1], O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror(files[i & 1]); return 1; }
    close(fd);
  }
  long long d = now_ns() - t0;
  printf("ns_per_op %.1f\n", (double)d / n);
  return 0;
}
