/* connect N: a listener thread on 127.0.0.1 (ephemeral port) accepts and closes; the main
 * thread does N times socket + blocking connect + close. The listener is in-process because a
 * run under agentd's default policy has its own network namespace (loopback only).
 * Prints "ns_per_op <ns per socket+connect+close>" on stdout. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static long long now_ns(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
static int lfd;
static void *acceptor(void *arg) {
  (void)arg;
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c >= 0) close(c);
  }
  return NULL;
}
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 5000;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &al) < 0) { perror("listener"); return 1; }
  pthread_t th;
  pthread_create(&th, NULL, acceptor, NULL);
  long long t0 = now_ns();
  for (long i = 0; i < n; i++) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("socket"); return 1; }
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
    close(s);
  }
  long long d = now_ns() - t0;
  printf("ns_per_op %.1f\n", (double)d / n);
  return 0;
}
