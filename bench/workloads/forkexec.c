/* forkexec N: N times fork + execve("/bin/true") + waitpid.
 * Prints "ns_per_op <ns per fork+exec+wait>" on stdout. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static long long now_ns(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 5000;
  char *const av[] = { "/bin/true", NULL };
  char *const ev[] = { NULL };
  long long t0 = now_ns();
  for (long i = 0; i < n; i++) {
    pid_t p = fork();
    if (p < 0) { perror("fork"); return 1; }
    if (p == 0) { execve("/bin/true", av, ev); _exit(127); }
    int st;
    if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "child %ld failed (status %d)\n", i, st); return 1;
    }
  }
  long long d = now_ns() - t0;
  printf("ns_per_op %.1f\n", (double)d / n);
  return 0;
}
