/*
 * agentd escape probes (issue 7): one function per attack, each run in its own forked child
 * with a time limit. tests/e2e/escape.rs compiles this file with `cc` at test time, runs it once
 * outside any sandbox (every probe must succeed there, or be declared "n/a unconfined") and then
 * inside agentd, and prints one `PROBE name: escaped|blocked (evidence)` line per probe.
 *
 * Usage: escape KEY=VALUE... [classes=fs,destroy,net,sup,exec,abuse] [only=NAME,...]
 *        escape euid                  (prints "euid N": the setuid probe's payload)
 * Output: one line per probe, `R NAME ok|no EVIDENCE`, where `ok` means the attack achieved its
 * goal (the secret's marker was read, the listener's banner arrived, the call succeeded).
 *
 * Written against the raw kernel ABI where libc would hide the syscall (no fallbacks): numbers
 * are x86-64's, with generic fallbacks where glibc's headers lack them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_memfd_create
#define SYS_memfd_create 319
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
#define X32_SYSCALL_BIT 0x40000000L
#define UFFD_USER_MODE_ONLY 1
#define KEY_SPEC_PROCESS_KEYRING (-2)

/* ---- configuration (KEY=VALUE arguments) ---- */

static const char *cfg_keys[32];
static const char *cfg_vals[32];
static int cfg_n;

static const char *cfg(const char *key) {
    for (int i = 0; i < cfg_n; i++)
        if (strcmp(cfg_keys[i], key) == 0)
            return cfg_vals[i];
    return "";
}

/* ---- evidence ---- */

static char ev[512];

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev, sizeof ev, fmt, ap);
    va_end(ap);
}

/* Records errno under `what` and returns 0 (the attack did not succeed). */
static int fail(const char *what) {
    say("%s: %s (errno %d)", what, strerror(errno), errno);
    return 0;
}

/* ---- helpers ---- */

/* Reads up to 4 KiB from fd (closing it); 1 if it contains the marker. */
static int fd_has_marker(int fd, const char *what) {
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return fail(what);
    }
    buf[n] = 0;
    /* /proc/pid/environ is NUL-separated: search every string. */
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
        if (strstr(buf + i, cfg("marker"))) {
            say("%s: read the secret (%zd bytes)", what, n);
            return 1;
        }
    say("%s: opened but no secret in %zd bytes", what, n);
    return 0;
}

enum how { LIBC, RAW_OPEN, RAW_OPENAT, RAW_OPENAT2 };

static int open_how(const char *path, enum how how) {
    uint64_t oh[3] = {O_RDONLY, 0, 0};
    switch (how) {
    case LIBC: return open(path, O_RDONLY);
    case RAW_OPEN: return (int)syscall(SYS_open, path, O_RDONLY);
    case RAW_OPENAT: return (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    default: return (int)syscall(SYS_openat2, AT_FDCWD, path, oh, sizeof oh);
    }
}

static int read_secret(const char *path, enum how how) {
    static const char *names[] = {"open(3)", "SYS_open", "SYS_openat", "SYS_openat2"};
    int fd = open_how(path, how);
    if (fd < 0)
        return fail(names[how]);
    return fd_has_marker(fd, names[how]);
}

struct thread_read {
    const char *path;
    int result;
    char ev[400];
};

static void *thread_read_main(void *arg) {
    struct thread_read *t = arg;
    t->result = read_secret(t->path, LIBC);
    memcpy(t->ev, ev, sizeof t->ev - 1);
    return NULL;
}

/* The same read from a second thread (a different task than the one that started the run). */
static int read_secret_thread(const char *path) {
    struct thread_read t = {.path = path, .ev = {0}};
    pthread_t th;
    if (pthread_create(&th, NULL, thread_read_main, &t) != 0)
        return fail("pthread_create");
    pthread_join(th, NULL);
    snprintf(ev, sizeof ev, "thread %.400s", t.ev);
    return t.result;
}

static int copy_file(const char *from, int to_fd) {
    int in = open(from, O_RDONLY);
    if (in < 0)
        return -1;
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(to_fd, buf, (size_t)n) != n) {
            close(in);
            return -1;
        }
    close(in);
    return n < 0 ? -1 : 0;
}

/* Forks, execs (execve of path, or execveat of fd with AT_EMPTY_PATH when path is NULL), waits:
 * 1 if the program ran and exited 0. */
static int run_exec(const char *path, int fd, char *const argv[], const char *what) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return fail("pipe2");
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        char *envp[] = {NULL};
        if (path)
            syscall(SYS_execve, path, argv, envp);
        else
            syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
        int e = errno;
        if (write(p[1], &e, sizeof e) < 0)
            _exit(126);
        _exit(127);
    }
    close(p[1]);
    int e = 0;
    ssize_t n = read(p[0], &e, sizeof e);
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (n == (ssize_t)sizeof e) {
        errno = e;
        return fail(what);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        say("%s: the program ran (exit 0)", what);
        return 1;
    }
    say("%s: exec'd but the program failed (status 0x%x)", what, status);
    return 0;
}

/* A child that waits to be killed; for the probes that act on another process. */
static volatile uint64_t victim_word = 0x5ec2e7;

static pid_t spawn_sleeper(void) {
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    return pid;
}

static void reap(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int parse_inet(const char *s, struct sockaddr_storage *ss, socklen_t *len) {
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    int port = atoi(colon + 1);
    memset(ss, 0, sizeof *ss);
    char *h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = 0;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof *in;
        return 0;
    }
    if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
        return 0;
    }
    return -1;
}

static void set_timeout(int fd, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Reads from a connected socket; 1 if the host listener's banner arrived. */
static int got_banner(int fd, const char *what) {
    char buf[256];
    set_timeout(fd, 2000);
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return fail(what);
    }
    buf[n] = 0;
    if (strstr(buf, "AGENTD-E2E-BANNER")) {
        say("%s: the host listener answered", what);
        return 1;
    }
    say("%s: connected, but %zd bytes without the host banner", what, n);
    return 0;
}

/* connect() to ADDR (from cfg key) with a socket of family/type/proto, then wait for the banner. */
static int tcp_to(const char *key, int family, int proto, const char *what) {
    struct sockaddr_storage ss;
    socklen_t len;
    const char *addr = cfg(key);
    if (parse_inet(addr, &ss, &len) < 0) {
        say("no address for %s", key);
        return 0;
    }
    if (family == AF_INET6 && ss.ss_family == AF_INET) {
        /* v4-mapped: ::ffff:a.b.c.d on an AF_INET6 socket. */
        struct sockaddr_in in = *(struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        memset(&ss, 0, sizeof ss);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = in.sin_port;
        in6->sin6_addr.s6_addr[10] = 0xff;
        in6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&in6->sin6_addr.s6_addr[12], &in.sin_addr, 4);
        len = sizeof *in6;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, proto);
    if (fd < 0)
        return fail("socket");
    set_timeout(fd, 3000);
    if (syscall(SYS_connect, fd, &ss, len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return fail(what);
    }
    return got_banner(fd, what);
}

/* ---- fs: reading secrets ---- */

static int p_key_libc(void) { return read_secret(cfg("key"), LIBC); }
static int p_key_open(void) { return read_secret(cfg("key"), RAW_OPEN); }
static int p_key_openat(void) { return read_secret(cfg("key"), RAW_OPENAT); }
static int p_key_openat2(void) { return read_secret(cfg("key"), RAW_OPENAT2); }
static int p_key_thread(void) { return read_secret_thread(cfg("key")); }
static int p_outside_libc(void) { return read_secret(cfg("outside"), LIBC); }
static int p_outside_openat2(void) { return read_secret(cfg("outside"), RAW_OPENAT2); }
static int p_dotenv_libc(void) { return read_secret(".env", LIBC); }
static int p_dotenv_openat2(void) { return read_secret(".env", RAW_OPENAT2); }
static int p_dotenv_thread(void) { return read_secret_thread(".env"); }
static int p_dotenv_dotdot(void) { return read_secret("sub/../.env", LIBC); }
static int p_dotenv_slashes(void) { return read_secret(".////.env", RAW_OPEN); }

static int p_dotenv_abs(void) {
    char path[4096];
    if (!getcwd(path, sizeof path - 8))
        return fail("getcwd");
    strcat(path, "/.env");
    return read_secret(path, RAW_OPENAT);
}

static int p_dotenv_procfd(void) {
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    if (dir < 0)
        return fail("open .");
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d/.env", dir);
    int r = read_secret(path, LIBC);
    close(dir);
    return r;
}

static int p_dotenv_dirfd(void) {
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    if (dir < 0)
        return fail("open .");
    int fd = (int)syscall(SYS_openat, dir, ".env", O_RDONLY);
    close(dir);
    if (fd < 0)
        return fail("openat(dirfd, .env)");
    return fd_has_marker(fd, "openat(dirfd, .env)");
}

static int via_symlink(const char *target) {
    unlink("escape-link");
    if (symlink(target, "escape-link") < 0)
        return fail("symlink");
    int r = read_secret("escape-link", LIBC);
    unlink("escape-link");
    return r;
}

static int via_hardlink(const char *target) {
    unlink("escape-hardlink");
    if (link(target, "escape-hardlink") < 0)
        return fail("link");
    int r = read_secret("escape-hardlink", LIBC);
    unlink("escape-hardlink");
    return r;
}

static int p_dotenv_symlink(void) { return via_symlink(".env"); }
static int p_key_symlink(void) { return via_symlink(cfg("key")); }
static int p_dotenv_hardlink(void) { return via_hardlink(".env"); }
static int p_key_hardlink(void) { return via_hardlink(cfg("key")); }

static int p_proc_environ(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/environ", cfg("envpid"));
    return read_secret(path, LIBC);
}

static int p_proc_root(void) {
    char path[4200];
    snprintf(path, sizeof path, "/proc/%s/root%s", cfg("envpid"), cfg("key"));
    return read_secret(path, LIBC);
}

static int p_open_by_handle(void) {
    struct {
        struct file_handle fh;
        unsigned char bytes[128];
    } h;
    h.fh.handle_bytes = sizeof h.bytes;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, "README.md", &h.fh, &mount_id, 0) < 0)
        return fail("name_to_handle_at");
    int mfd = open(".", O_RDONLY | O_DIRECTORY);
    int fd = open_by_handle_at(mfd, &h.fh, O_RDONLY);
    close(mfd);
    if (fd < 0)
        return fail("open_by_handle_at");
    close(fd);
    say("open_by_handle_at: opened a file by handle");
    return 1;
}

static int p_name_to_handle(void) {
    struct {
        struct file_handle fh;
        unsigned char bytes[128];
    } h;
    h.fh.handle_bytes = sizeof h.bytes;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, "README.md", &h.fh, &mount_id, 0) < 0)
        return fail("name_to_handle_at");
    say("name_to_handle_at: got a %u-byte handle", h.fh.handle_bytes);
    return 1;
}

/* `.enw` (an ordinary file) and `.env` (the secret) flipped, one byte, under racing
 * open(2)/openat(2)/openat2(2) calls (2 s). */
static char race_path[16];
static volatile int race_stop;

static void *race_flipper(void *arg) {
    (void)arg;
    volatile char *last = &race_path[3];
    while (!race_stop) {
        *last = 'v';
        *last = 'w';
    }
    return NULL;
}

static int p_race_open(void) {
    memcpy(race_path, ".enw", 5);
    pthread_t th;
    if (pthread_create(&th, NULL, race_flipper, NULL) != 0)
        return fail("pthread_create");
    long leaked = 0, opened = 0, refused = 0, n = 0;
    time_t end = time(NULL) + 2;
    while (n < 20000 && (n % 64 || time(NULL) < end)) {
        int fd = open_how(race_path, (enum how)(1 + n % 3));
        n++;
        if (fd < 0) {
            refused++;
            continue;
        }
        char buf[256];
        ssize_t k = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[k > 0 ? k : 0] = 0;
        if (strstr(buf, cfg("marker")))
            leaked++;
        else
            opened++;
    }
    race_stop = 1;
    pthread_join(th, NULL);
    say("%ld racing opens: %ld leaked the secret, %ld opened .enw, %ld refused", n, leaked,
        opened, refused);
    return leaked > 0;
}

/* ---- destroy: what is out of scope ---- */

static char dpath[4200];

static const char *victim(const char *name) {
    snprintf(dpath, sizeof dpath, "%s/%s", cfg("destroy"), name);
    return dpath;
}

static int p_unlink(void) {
    if (unlink(victim("unlink-me")) < 0)
        return fail("unlink");
    say("unlink: removed a file outside the workspace");
    return 1;
}

static int p_unlinkat_raw(void) {
    if (syscall(SYS_unlinkat, AT_FDCWD, victim("unlinkat-me"), 0) < 0)
        return fail("SYS_unlinkat");
    say("SYS_unlinkat: removed a file outside the workspace");
    return 1;
}

static int p_rename(void) {
    char to[4300];
    snprintf(to, sizeof to, "%s/renamed", cfg("destroy"));
    if (rename(victim("rename-me"), to) < 0)
        return fail("rename");
    say("rename: moved a file outside the workspace");
    return 1;
}

static int p_rename_in(void) {
    /* Move a file from outside into the workspace (and so out of its owner's reach). */
    if (rename(victim("steal-me"), "stolen") < 0)
        return fail("rename into the workspace");
    say("rename: pulled a file from outside into the workspace");
    return 1;
}

static int p_truncate(void) {
    if (truncate(victim("truncate-me"), 0) < 0)
        return fail("truncate");
    say("truncate: emptied a file outside the workspace");
    return 1;
}

static int p_open_trunc(void) {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, victim("otrunc-me"), O_WRONLY | O_TRUNC);
    if (fd < 0)
        return fail("openat O_TRUNC");
    close(fd);
    say("openat(O_TRUNC): emptied a file outside the workspace");
    return 1;
}

static int p_chmod(void) {
    if (chmod(victim("chmod-me"), 0666) < 0)
        return fail("chmod");
    say("chmod: changed the mode of a file outside the workspace");
    return 1;
}

static int p_chown(void) {
    if (chown(victim("chown-me"), getuid(), getgid()) < 0)
        return fail("chown");
    say("chown: changed the owner of a file outside the workspace (to the same uid)");
    return 1;
}

static int p_mount_over(void) {
    if (mount("none", cfg("destroy"), "tmpfs", 0, NULL) < 0)
        return fail("mount tmpfs over a directory outside");
    say("mount: covered a directory");
    return 1;
}

static int p_bind_over_workspace(void) {
    if (mount("/", ".", NULL, MS_BIND, NULL) < 0)
        return fail("bind mount over the workspace");
    say("mount: bound / over the workspace");
    return 1;
}

/* ---- net ---- */

static int p_tcp4(void) { return tcp_to("tcp", AF_INET, 0, "connect 127.0.0.1"); }
static int p_tcp6(void) { return tcp_to("tcp6", AF_INET6, 0, "connect [::1]"); }
static int p_tcp_mapped(void) { return tcp_to("tcp", AF_INET6, 0, "connect [::ffff:127.0.0.1]"); }
static int p_mptcp(void) { return tcp_to("tcp", AF_INET, IPPROTO_MPTCP, "MPTCP connect"); }

static void *tcp_thread_main(void *arg) {
    int *r = arg;
    *r = p_tcp4();
    return NULL;
}

static int p_tcp4_thread(void) {
    int r = 0;
    pthread_t th;
    if (pthread_create(&th, NULL, tcp_thread_main, &r) != 0)
        return fail("pthread_create");
    pthread_join(th, NULL);
    return r;
}

static int p_tcp_fastopen(void) {
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_inet(cfg("tcp"), &ss, &len) < 0) {
        say("no tcp address");
        return 0;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail("socket");
    set_timeout(fd, 3000);
    if (sendto(fd, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&ss, len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return fail("sendto MSG_FASTOPEN");
    }
    return got_banner(fd, "TCP Fast Open");
}

/* UDP to the host's echo listener: sendto, sendmsg or connect+send, then wait for the reply. */
static int udp_to(int how, const char *payload, size_t plen, const char *what) {
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_inet(cfg("udp"), &ss, &len) < 0) {
        say("no udp address");
        return 0;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail("socket(AF_INET, SOCK_DGRAM)");
    set_timeout(fd, 1500);
    long r;
    if (how == 0) {
        r = syscall(SYS_sendto, fd, payload, plen, 0, &ss, len);
    } else if (how == 1) {
        struct iovec iov = {(void *)payload, plen};
        struct msghdr msg = {.msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
        r = syscall(SYS_sendmsg, fd, &msg, 0);
    } else {
        r = syscall(SYS_connect, fd, &ss, len);
        if (r == 0)
            r = send(fd, payload, plen, 0);
    }
    if (r < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return fail(what);
    }
    return got_banner(fd, what);
}

static int p_udp_sendto(void) { return udp_to(0, "agentd-e2e", 10, "UDP sendto"); }
static int p_udp_sendmsg(void) { return udp_to(1, "agentd-e2e", 10, "UDP sendmsg"); }
static int p_udp_connect(void) { return udp_to(2, "agentd-e2e", 10, "UDP connect+send"); }

static int p_dns(void) {
    /* A DNS query for example.com A to a resolver the policy does not allow. */
    static const unsigned char q[] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7,  'e', 'x',
                                      'a',  'm',  'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0,   1,
                                      0,    1};
    return udp_to(0, (const char *)q, sizeof q, "DNS query to a non-allowed resolver");
}

static int p_raw_socket(void) {
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (fd < 0)
        return fail("socket(AF_INET, SOCK_RAW)");
    close(fd);
    say("raw socket created");
    return 1;
}

static int p_packet_socket(void) {
    int fd = socket(AF_PACKET, SOCK_RAW, htons(3 /* ETH_P_ALL */));
    if (fd < 0)
        return fail("socket(AF_PACKET)");
    close(fd);
    say("packet socket created");
    return 1;
}

static int unix_to(const char *name, int abstract, const char *what) {
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    if (n + 2 > sizeof un.sun_path) {
        say("name too long");
        return 0;
    }
    memcpy(un.sun_path + (abstract ? 1 : 0), name, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (abstract ? 1 : 0));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail("socket(AF_UNIX)");
    long r = syscall(SYS_connect, fd, &un, len);
    int e = errno;
    close(fd);
    if (r < 0) {
        errno = e;
        return fail(what);
    }
    say("%s: connected", what);
    return 1;
}

static int p_unix_path(void) { return unix_to(cfg("unix"), 0, "connect host Unix socket"); }
static int p_unix_abstract(void) { return unix_to(cfg("abstract"), 1, "connect host abstract socket"); }
static int p_daemon_socket(void) { return unix_to(cfg("daemon"), 0, "connect agentd's socket"); }

/* The allowed port A and the denied port B flipped under racing connects (2 s). */
static struct sockaddr_in race_sa;
static uint16_t race_a, race_b;

static void *connect_flipper(void *arg) {
    (void)arg;
    while (!race_stop) {
        __atomic_store_n(&race_sa.sin_port, race_b, __ATOMIC_RELAXED);
        __atomic_store_n(&race_sa.sin_port, race_a, __ATOMIC_RELAXED);
    }
    return NULL;
}

static int p_race_connect(void) {
    struct sockaddr_storage a, b;
    socklen_t len;
    if (parse_inet(cfg("allowed"), &a, &len) < 0 || parse_inet(cfg("tcp"), &b, &len) < 0) {
        say("no allowed/tcp addresses");
        return 0;
    }
    race_sa = *(struct sockaddr_in *)&a;
    race_a = race_sa.sin_port;
    race_b = ((struct sockaddr_in *)&b)->sin_port;
    pthread_t th;
    if (pthread_create(&th, NULL, connect_flipper, NULL) != 0)
        return fail("pthread_create");
    long to_b = 0, to_a = 0, refused = 0, n = 0;
    time_t end = time(NULL) + 2;
    while (n < 3000 && (n % 64 || time(NULL) < end)) {
        n++;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            break;
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        if (syscall(SYS_connect, fd, &race_sa, sizeof race_sa) < 0) {
            refused++;
        } else {
            struct sockaddr_in peer;
            socklen_t plen = sizeof peer;
            if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0 && peer.sin_port == race_b)
                to_b++;
            else
                to_a++;
        }
        close(fd);
    }
    race_stop = 1;
    pthread_join(th, NULL);
    say("%ld racing connects: %ld reached the denied port, %ld the allowed one, %ld refused", n,
        to_b, to_a, refused);
    return to_b > 0;
}

/* The positive control of filtered mode: the allowed listener is reachable. */
static int p_allowed(void) { return tcp_to("allowed", AF_INET, 0, "connect the allowed address"); }

/* ---- sup: out-voting or escaping supervision ---- */

static int p_seccomp_listener(void) {
    struct sock_filter {
        uint16_t code;
        uint8_t jt, jf;
        uint32_t k;
    } insn = {0x06, 0, 0, 0x7fff0000}; /* BPF_RET|BPF_K, SECCOMP_RET_ALLOW */
    struct {
        unsigned short len;
        struct sock_filter *filter;
    } prog = {1, &insn};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return fail("PR_SET_NO_NEW_PRIVS");
    long fd = syscall(SYS_seccomp, 1 /* SET_MODE_FILTER */, 1 << 3 /* NEW_LISTENER */, &prog);
    if (fd < 0)
        return fail("seccomp(NEW_LISTENER)");
    say("seccomp: got a notification listener (fd %ld)", fd);
    return 1;
}

static int p_ptrace_child(void) {
    pid_t pid = spawn_sleeper();
    long r = ptrace(PTRACE_SEIZE, pid, 0, 0);
    int e = errno;
    reap(pid);
    if (r < 0) {
        errno = e;
        return fail("ptrace(PTRACE_SEIZE, own child)");
    }
    say("ptrace: seized its own child");
    return 1;
}

static int p_ptrace_outside(void) {
    pid_t pid = atoi(cfg("envpid"));
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0)
        return fail("ptrace(PTRACE_SEIZE, a process outside)");
    say("ptrace: seized a process outside (pid %d)", pid);
    return 1;
}

static int p_vm_readv(void) {
    pid_t pid = spawn_sleeper();
    uint64_t got = 0;
    struct iovec local = {&got, sizeof got}, remote = {(void *)&victim_word, sizeof got};
    ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    int e = errno;
    reap(pid);
    if (r < 0) {
        errno = e;
        return fail("process_vm_readv");
    }
    say("process_vm_readv: read 0x%llx from a child", (unsigned long long)got);
    return 1;
}

static int p_vm_writev(void) {
    pid_t pid = spawn_sleeper();
    uint64_t put = 1;
    struct iovec local = {&put, sizeof put}, remote = {(void *)&victim_word, sizeof put};
    ssize_t r = process_vm_writev(pid, &local, 1, &remote, 1, 0);
    int e = errno;
    reap(pid);
    if (r < 0) {
        errno = e;
        return fail("process_vm_writev");
    }
    say("process_vm_writev: wrote a child's memory");
    return 1;
}

static int p_pidfd_getfd(void) {
    pid_t pid = spawn_sleeper();
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    long fd = pfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pfd, 0, 0);
    int e = errno;
    reap(pid);
    if (pfd < 0) {
        errno = e;
        return fail("pidfd_open");
    }
    if (fd < 0) {
        errno = e;
        return fail("pidfd_getfd");
    }
    say("pidfd_getfd: took a child's descriptor");
    return 1;
}

static int p_io_uring(void) {
    unsigned char params[120] = {0};
    long fd = syscall(SYS_io_uring_setup, 4, params);
    if (fd < 0)
        return fail("io_uring_setup");
    say("io_uring_setup: got a ring");
    return 1;
}

static int p_unshare_user(void) {
    if (unshare(CLONE_NEWUSER) < 0)
        return fail("unshare(CLONE_NEWUSER)");
    say("unshare: entered a new user namespace");
    return 1;
}

static int in_child_status(long pid, const char *what) {
    if (pid < 0)
        return fail(what);
    int status = 0;
    waitpid((pid_t)pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        say("%s: a child in a new namespace ran", what);
        return 1;
    }
    say("%s: child status 0x%x", what, status);
    return 0;
}

static int p_clone_user(void) {
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    return in_child_status(pid, "clone(CLONE_NEWUSER)");
}

static int p_clone3_user(void) {
    uint64_t args[11] = {0};
    args[0] = CLONE_NEWUSER;
    args[4] = SIGCHLD;
    long pid = syscall(SYS_clone3, args, sizeof args);
    if (pid == 0)
        _exit(0);
    return in_child_status(pid, "clone3(CLONE_NEWUSER)");
}

static int write_str(const char *path, const char *s) {
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, s, strlen(s));
    close(fd);
    return n < 0 ? -1 : 0;
}

static int p_userns_mount(void) {
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return fail("unshare(CLONE_NEWUSER|CLONE_NEWNS)");
    char map[64];
    snprintf(map, sizeof map, "0 %u 1", uid);
    write_str("/proc/self/setgroups", "deny");
    if (write_str("/proc/self/uid_map", map) < 0)
        return fail("uid_map");
    snprintf(map, sizeof map, "0 %u 1", gid);
    if (write_str("/proc/self/gid_map", map) < 0)
        return fail("gid_map");
    if (mount("none", ".", "tmpfs", 0, NULL) < 0)
        return fail("mount in the new namespace");
    say("a new user+mount namespace with mount rights (tmpfs mounted)");
    return 1;
}

static int p_fsopen(void) {
    long fd = syscall(SYS_fsopen, "tmpfs", 0);
    if (fd < 0)
        return fail("fsopen");
    say("fsopen: got a filesystem context");
    return 1;
}

static int p_setuid_binary(void) {
    int p[2];
    if (pipe(p) < 0)
        return fail("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        char *argv[] = {(char *)cfg("suid"), "euid", NULL};
        char *envp[] = {NULL};
        execve(argv[0], argv, envp);
        printf("exec errno %d\n", errno);
        _exit(127);
    }
    close(p[1]);
    char buf[64] = {0};
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    close(p[0]);
    waitpid(pid, NULL, 0);
    if (n <= 0)
        return fail("read from the setuid program");
    buf[strcspn(buf, "\n")] = 0;
    if (strcmp(buf, "euid 0") == 0) {
        say("a setuid-root program ran with euid 0");
        return 1;
    }
    say("setuid-root program: %s (no privilege gained)", buf);
    return 0;
}

static int p_i386(void) {
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L /* i386 getpid */) : "memory");
    if (ret < 0) {
        errno = (int)-ret;
        return fail("int 0x80 getpid");
    }
    say("int 0x80 (i386 ABI): getpid returned %ld", ret);
    return 1;
#else
    say("not x86-64");
    return 0;
#endif
}

static int p_x32(void) {
    long r = syscall(X32_SYSCALL_BIT | 39 /* getpid */);
    if (r < 0)
        return fail("x32 getpid");
    say("x32 ABI: getpid returned %ld", r);
    return 1;
}

static int p_personality(void) {
    if (personality(ADDR_NO_RANDOMIZE) < 0)
        return fail("personality(ADDR_NO_RANDOMIZE)");
    say("personality: ASLR switched off");
    return 1;
}

static int p_personality_rie(void) {
    if (personality(READ_IMPLIES_EXEC) < 0)
        return fail("personality(READ_IMPLIES_EXEC)");
    say("personality: READ_IMPLIES_EXEC set");
    return 1;
}

static int p_tiocsti(void) {
    setsid();
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
        char first[160];
        snprintf(first, sizeof first, "no pty (%s)", strerror(errno));
        char c = 'x';
        if (ioctl(0, TIOCSTI, &c) < 0) {
            say("%s; ioctl(0, TIOCSTI): %s (errno %d)", first, strerror(errno), errno);
            return 0;
        }
        say("TIOCSTI on fd 0 accepted");
        return 1;
    }
    int slave = open(ptsname(master), O_RDWR); /* becomes the controlling terminal */
    if (slave < 0)
        return fail("open pty slave");
    char c = 'x';
    if (ioctl(slave, TIOCSTI, &c) < 0)
        return fail("ioctl(TIOCSTI) on its controlling terminal");
    say("TIOCSTI: injected input into its terminal");
    return 1;
}

static int p_tioclinux(void) {
    char sub = 2; /* TIOCL_SETSEL */
    if (ioctl(0, TIOCLINUX, &sub) < 0)
        return fail("ioctl(0, TIOCLINUX)");
    say("TIOCLINUX accepted");
    return 1;
}

static int p_signal_outside(void) {
    pid_t pid = atoi(cfg("victim"));
    if (kill(pid, SIGKILL) < 0)
        return fail("kill(outside pid, SIGKILL)");
    say("kill: signalled pid %d", pid);
    return 1;
}

static int p_cgroup_write(void) {
    char line[512] = {0}, path[1200];
    FILE *f = fopen("/proc/self/cgroup", "r");
    const char *cg = "/";
    const char *dir = cfg("cgroup"); /* a cgroup the test made (the root run), else its own */
    while (f && !*dir && fgets(line, sizeof line, f))
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = 0;
            cg = line + 3;
            break;
        }
    if (f)
        fclose(f);
    const char *files[] = {"pids.max", "memory.max", "cgroup.procs", "cgroup.subtree_control"};
    int first_errno = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        if (*dir)
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        else
            snprintf(path, sizeof path, "/sys/fs/cgroup%s%s%s", cg, strcmp(cg, "/") ? "/" : "",
                     files[i]);
        int fd = open(path, O_WRONLY);
        if (fd >= 0) {
            close(fd);
            say("opened %s for writing", path);
            return 1;
        }
        if (!first_errno)
            first_errno = errno;
    }
    errno = first_errno;
    return fail("open its cgroup's pids.max/memory.max/cgroup.procs for writing");
}

static int p_bpf(void) {
    uint32_t attr[30] = {0};
    attr[0] = 2; /* BPF_MAP_TYPE_ARRAY */
    attr[1] = 4;
    attr[2] = 4;
    attr[3] = 1;
    long fd = syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr);
    if (fd < 0)
        return fail("bpf(BPF_MAP_CREATE)");
    say("bpf: created a map");
    return 1;
}

static int p_perf(void) {
    struct perf_event_attr a = {0};
    a.type = PERF_TYPE_SOFTWARE;
    a.size = sizeof a;
    a.config = PERF_COUNT_SW_TASK_CLOCK;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd < 0)
        return fail("perf_event_open");
    say("perf_event_open: got a counter");
    return 1;
}

static int p_keyctl(void) {
    long id = syscall(SYS_add_key, "user", "agentd-e2e", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    if (id < 0)
        return fail("add_key");
    say("add_key: created key %ld", id);
    return 1;
}

static int p_userfaultfd(void) {
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        return fail("userfaultfd(UFFD_USER_MODE_ONLY)");
    say("userfaultfd: got one");
    return 1;
}

/* ---- exec: running code where exec is not granted ---- */

static int write_true(const char *path) {
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0)
        return -1;
    int r = copy_file("/usr/bin/true", fd);
    close(fd);
    return r;
}

static int p_exec_workspace(void) {
    if (write_true("escape-true") < 0)
        return fail("write a program into the workspace");
    char *argv[] = {"escape-true", NULL};
    return run_exec("./escape-true", -1, argv, "execve of a program written into the workspace");
}

static int p_exec_tmp(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/agentd-e2e-escape-true-%d", (int)getpid());
    if (write_true(path) < 0)
        return fail("write a program into /tmp");
    char *argv[] = {"escape-true", NULL};
    int r = run_exec(path, -1, argv, "execve of a program written into /tmp");
    unlink(path);
    return r;
}

static int p_exec_ldso(void) {
    if (write_true("escape-true") < 0)
        return fail("write a program into the workspace");
    char *argv[] = {"ld.so", "./escape-true", NULL};
    return run_exec("/lib64/ld-linux-x86-64.so.2", -1, argv,
                    "ld.so ./program (mmap PROT_EXEC of a workspace file)");
}

static int p_exec_memfd(void) {
    int fd = (int)syscall(SYS_memfd_create, "escape", 0);
    if (fd < 0)
        return fail("memfd_create");
    if (copy_file("/usr/bin/true", fd) < 0)
        return fail("copy into the memfd");
    char *argv[] = {"escape-true", NULL};
    int r = run_exec(NULL, fd, argv, "memfd_create + execveat(AT_EMPTY_PATH)");
    close(fd);
    return r;
}

/* ---- abuse ---- */

static int p_fork_bomb(void) {
    enum { WANT = 256 };
    pid_t kids[WANT];
    int n = 0, e = 0;
    while (n < WANT) {
        pid_t pid = fork();
        if (pid == 0) {
            for (;;)
                pause();
        }
        if (pid < 0) {
            e = errno;
            break;
        }
        kids[n++] = pid;
    }
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        waitpid(kids[i], NULL, 0);
    if (n == WANT) {
        say("forked all %d processes", WANT);
        return 1;
    }
    say("fork failed after %d processes: %s (errno %d)", n, strerror(e), e);
    return 0;
}

static int p_memory_balloon(void) {
    size_t size = 512UL << 20;
    unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return fail("mmap 512 MiB");
    for (size_t i = 0; i < size; i += 4096)
        p[i] = 1;
    say("touched 512 MiB");
    return 1;
}

/* ---- the table ---- */

struct probe {
    const char *name;
    const char *class;
    int (*fn)(void);
};

static const struct probe PROBES[] = {
    {"secret.home-key.libc", "fs", p_key_libc},
    {"secret.home-key.raw-open", "fs", p_key_open},
    {"secret.home-key.raw-openat", "fs", p_key_openat},
    {"secret.home-key.raw-openat2", "fs", p_key_openat2},
    {"secret.home-key.thread", "fs", p_key_thread},
    {"secret.home-key.symlink", "fs", p_key_symlink},
    {"secret.home-key.hardlink", "fs", p_key_hardlink},
    {"secret.outside-file.libc", "fs", p_outside_libc},
    {"secret.outside-file.raw-openat2", "fs", p_outside_openat2},
    {"secret.dotenv.libc", "fs", p_dotenv_libc},
    {"secret.dotenv.raw-openat2", "fs", p_dotenv_openat2},
    {"secret.dotenv.thread", "fs", p_dotenv_thread},
    {"secret.dotenv.dotdot", "fs", p_dotenv_dotdot},
    {"secret.dotenv.slashes", "fs", p_dotenv_slashes},
    {"secret.dotenv.absolute", "fs", p_dotenv_abs},
    {"secret.dotenv.proc-self-fd", "fs", p_dotenv_procfd},
    {"secret.dotenv.openat-dirfd", "fs", p_dotenv_dirfd},
    {"secret.dotenv.symlink", "fs", p_dotenv_symlink},
    {"secret.dotenv.hardlink", "fs", p_dotenv_hardlink},
    {"secret.dotenv.race-open", "fs", p_race_open},
    {"secret.proc-environ", "fs", p_proc_environ},
    {"secret.proc-root", "fs", p_proc_root},
    {"secret.name-to-handle", "fs", p_name_to_handle},
    {"secret.open-by-handle", "fs", p_open_by_handle},
    {"destroy.unlink", "destroy", p_unlink},
    {"destroy.unlinkat-raw", "destroy", p_unlinkat_raw},
    {"destroy.rename", "destroy", p_rename},
    {"destroy.rename-into-workspace", "destroy", p_rename_in},
    {"destroy.truncate", "destroy", p_truncate},
    {"destroy.open-trunc", "destroy", p_open_trunc},
    {"destroy.chmod", "destroy", p_chmod},
    {"destroy.chown", "destroy", p_chown},
    {"destroy.mount-over", "destroy", p_mount_over},
    {"destroy.bind-over-workspace", "destroy", p_bind_over_workspace},
    {"net.tcp4", "net", p_tcp4},
    {"net.tcp4.thread", "net", p_tcp4_thread},
    {"net.tcp6", "net", p_tcp6},
    {"net.tcp-v4-mapped", "net", p_tcp_mapped},
    {"net.mptcp", "net", p_mptcp},
    {"net.tcp-fastopen", "net", p_tcp_fastopen},
    {"net.udp.sendto", "net", p_udp_sendto},
    {"net.udp.sendmsg", "net", p_udp_sendmsg},
    {"net.udp.connect", "net", p_udp_connect},
    {"net.dns", "net", p_dns},
    {"net.raw-socket", "net", p_raw_socket},
    {"net.packet-socket", "net", p_packet_socket},
    {"net.unix-path", "net", p_unix_path},
    {"net.unix-abstract", "net", p_unix_abstract},
    {"net.daemon-socket", "net", p_daemon_socket},
    {"net.race-connect", "net", p_race_connect},
    {"control.allowed", "control", p_allowed},
    {"sup.seccomp-listener", "sup", p_seccomp_listener},
    {"sup.ptrace-child", "sup", p_ptrace_child},
    {"sup.ptrace-outside", "sup", p_ptrace_outside},
    {"sup.process-vm-readv", "sup", p_vm_readv},
    {"sup.process-vm-writev", "sup", p_vm_writev},
    {"sup.pidfd-getfd", "sup", p_pidfd_getfd},
    {"sup.io-uring", "sup", p_io_uring},
    {"sup.unshare-user", "sup", p_unshare_user},
    {"sup.clone-user", "sup", p_clone_user},
    {"sup.clone3-user", "sup", p_clone3_user},
    {"sup.userns-mount", "sup", p_userns_mount},
    {"sup.fsopen", "sup", p_fsopen},
    {"sup.setuid-binary", "sup", p_setuid_binary},
    {"sup.i386-int80", "sup", p_i386},
    {"sup.x32", "sup", p_x32},
    {"sup.personality-aslr", "sup", p_personality},
    {"sup.personality-rie", "sup", p_personality_rie},
    {"sup.tiocsti", "sup", p_tiocsti},
    {"sup.tioclinux", "sup", p_tioclinux},
    {"sup.signal-outside", "sup", p_signal_outside},
    {"sup.cgroup-write", "sup", p_cgroup_write},
    {"sup.bpf", "sup", p_bpf},
    {"sup.perf-event-open", "sup", p_perf},
    {"sup.keyctl", "sup", p_keyctl},
    {"sup.userfaultfd", "sup", p_userfaultfd},
    {"exec.workspace-binary", "exec", p_exec_workspace},
    {"exec.tmp-binary", "exec", p_exec_tmp},
    {"exec.ld-so", "exec", p_exec_ldso},
    {"exec.memfd", "exec", p_exec_memfd},
    {"abuse.fork-bomb", "abuse", p_fork_bomb},
    {"abuse.memory-balloon", "abuse", p_memory_balloon},
};

static int class_selected(const char *class) {
    const char *list = cfg("classes");
    if (!*list)
        return 1;
    size_t n = strlen(class);
    for (const char *p = list; (p = strstr(p, class)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

/* `only=a,b`: just the probes named (the root run of the probes a caller cannot show live). */
static int name_selected(const char *name) {
    const char *list = cfg("only");
    if (!*list)
        return 1;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

/* Runs one probe in a child with a 15 s alarm; prints its R line. */
static void run_probe(const struct probe *p) {
    int out[2];
    if (pipe(out) < 0) {
        printf("R %s no pipe failed\n", p->name);
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(out[0]);
        alarm(15);
        ev[0] = 0;
        int ok = p->fn();
        dprintf(out[1], "%s %s", ok ? "ok" : "no", ev);
        _exit(0);
    }
    close(out[1]);
    char buf[600] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(out[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got > 0) {
        printf("R %s %s\n", p->name, buf);
    } else if (WIFSIGNALED(status)) {
        printf("R %s no killed by signal %d (%s)\n", p->name, WTERMSIG(status),
               strsignal(WTERMSIG(status)));
    } else {
        printf("R %s no exited with status %d and no report\n", p->name, WEXITSTATUS(status));
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "euid") == 0) {
        printf("euid %u\n", (unsigned)geteuid());
        return 0;
    }
    for (int i = 1; i < argc && cfg_n < 32; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "usage: escape KEY=VALUE...\n");
            return 2;
        }
        *eq = 0;
        cfg_keys[cfg_n] = argv[i];
        cfg_vals[cfg_n++] = eq + 1;
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof PROBES / sizeof *PROBES; i++)
        if (class_selected(PROBES[i].class) && name_selected(PROBES[i].name))
            run_probe(&PROBES[i]);
    printf("R-END\n");
    return 0;
}
