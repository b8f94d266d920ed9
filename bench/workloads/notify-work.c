// notify-work: the seccomp user-notification floor of an *emulated* open when the monitor
// does some work of its own before it answers.
//
//   notify-work WORK [N]
//
// A child opens and closes /etc/hostname N times (default 100000); its openat notifies. The
// parent, the monitor, answers each notification like agentd's monitor does, minus the
// policy: first WORK open+close pairs of its own (a stand-in for the syscalls any emulation
// must make: read the path from the agent, resolve it, open it), then it opens the file and
// injects it (ADDFD, then SEND). Sync wake-up and WAIT_KILLABLE_RECV are on, as in agentd.
// Prints `work=WORK: X us/open` (the child's loop time per open+close).
//
// Why (docs/performance.md): shared/bench/notify-floor.c's emulated open (WORK=0) is the
// cheapest case there is; on a 2-vCPU VM whose idle vCPU is slow to wake, a few µs of work in
// the monitor change where the kernel wakes the agent, and the cost per open jumps.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1ULL
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void open_close(void) {
  int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: notify-work WORK [N]\n");
    return 2;
  }
  int work = atoi(argv[1]);
  int n = argc > 2 ? atoi(argv[2]) : 100000;
  int to_parent[2], go[2];
  if (pipe(to_parent) || pipe(go)) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = {sizeof prog / sizeof prog[0], prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("no_new_privs");
    int listener = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
                           SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
                           &fprog);
    if (listener < 0) die("seccomp");
    if (write(to_parent[1], &listener, sizeof listener) != sizeof listener) die("write");
    char b;
    if (read(go[0], &b, 1) != 1) die("read");
    double t = now();
    for (int i = 0; i < n; i++) open_close();
    printf("work=%d: %.2f us/open\n", work, (now() - t) / n * 1e6);
    fflush(stdout);
    _exit(0);
  }
  int child_listener;
  if (read(to_parent[0], &child_listener, sizeof child_listener) != sizeof child_listener)
    die("read");
  int pidfd = syscall(SYS_pidfd_open, child, 0);
  int fd = syscall(SYS_pidfd_getfd, pidfd, child_listener, 0);
  if (fd < 0) die("pidfd_getfd");
  unsigned long long sync = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, sync) < 0) die("set_flags");
  if (write(go[1], "g", 1) != 1) die("write");
  for (;;) {
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    memset(&req, 0, sizeof req);
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < work; i++) open_close();
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    int file = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    struct seccomp_notif_addfd add = {.id = req.id, .srcfd = (unsigned)file};
    int r = ioctl(fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
    close(file);
    if (r >= 0)
      resp.val = r;
    else
      resp.error = -EPERM;
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT) break;
  }
  int status;
  waitpid(child, &status, 0);
  return 0;
}
