/*
 * kexec-nsexec: the cri-shim's native half, the part runc plays under containerd. Small, root-only
 * steps that Node cannot take itself (setns(2) needs a single-threaded process, seccomp and
 * capabilities must be set in the process that execs the container's command):
 *
 *   init     [FINAL] -- ARGV        run as the container's PID 1 by bubblewrap: drop to the
 *                                   container's privileges (FINAL below) and exec ARGV
 *                                   (runc init, libcontainer/standard_init_linux.go)
 *   exec     --target PID [--cgroup DIR]... [--tty] [FINAL] -- ARGV
 *                                   join every namespace of PID (ipc, uts, net, pid, mnt) and its
 *                                   cgroups, fork into the pid namespace, drop privileges, exec
 *                                   ARGV; relay a terminal made inside the container with --tty
 *                                   (runc exec, libcontainer/setns_init_linux.go + nsenter/nsexec.c)
 *   join     [--target PID --ns net,ipc,uts] [--cgroup DIR]... [--pid-file F] [--console]
 *            [--seccomp-pass FILE] -- ARGV
 *                                   join the pod's namespaces and the container's cgroups, then
 *                                   run ARGV (bubblewrap, which makes the container's own pid and
 *                                   mount namespaces) and wait for it; --pid-file: write the
 *                                   container init's pid there (from bubblewrap's --info-fd 4),
 *                                   as `runc run --pid-file`; --console: relay the terminal the
 *                                   container's init makes (runc's console socket). The fds the
 *                                   init finds: 3 console socket, 4 bubblewrap's info, 5 the
 *                                   seccomp filter, 6 "set up" (`init --ready-fd 6`)
 *   portforward --target PID --port N
 *                                   connect to 127.0.0.1:N inside PID's network namespace and
 *                                   relay it over stdin/stdout (containerd's PortForward)
 *   profile  [--caps LIST] [--export FILE]
 *                                   print the seccomp profile's size as JSON, or write the
 *                                   compiled filter to FILE (the runtime compiles each
 *                                   capability set's filter once: libseccomp takes tens of ms)
 *
 * FINAL: --uid N --gid N [--groups a,b] --caps LIST|ALL [--cwd DIR] [--console-fd N] and
 *        --seccomp runtime-default|unconfined (build the filter here, or none), or a filter
 *        compiled by `profile --export`: --seccomp-file FILE, --seccomp-fd N (join: --seccomp-pass
 *        FILE hands it to the container's init as fd 5)
 * Every helper that enters a container is made non-dumpable first (CVE-2019-5736: a container
 * process must not open /proc/PID/exe of a runtime process that joined it) and dies with its
 * parent (PR_SET_PDEATHSIG), as bubblewrap's --die-with-parent.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "console.h"
#include "seccomp_profile.h"

/* Exit codes of a failed start, as a shell's: 126 cannot run, 127 not found. */
#define EXIT_CANNOT 126
#define EXIT_NOT_FOUND 127

static const char *mode = "nsexec";

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "kexec-nsexec %s: ", mode);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(EXIT_CANNOT);
}

/* ---- capabilities ---- */

static const char *const cap_names[] = {
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
};
#define N_CAPS (int)(sizeof cap_names / sizeof cap_names[0])

static int last_cap(void) {
  int last = N_CAPS - 1;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
  if (f) {
    if (fscanf(f, "%d", &last) != 1) last = N_CAPS - 1;
    fclose(f);
  }
  return last < 63 ? last : 63;
}

/* "CHOWN,CAP_KILL" or "ALL" (or "" for none) → bit set. */
static uint64_t parse_caps(const char *list) {
  if (strcasecmp(list, "ALL") == 0) {
    int last = last_cap();
    return last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1;
  }
  uint64_t set = 0;
  char *copy = strdup(list), *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    const char *name = strncasecmp(tok, "CAP_", 4) == 0 ? tok + 4 : tok;
    int found = -1;
    for (int i = 0; i < N_CAPS; i++)
      if (strcasecmp(name, cap_names[i]) == 0) found = i;
    if (found < 0) die("unknown capability %s", tok);
    set |= 1ULL << found;
  }
  free(copy);
  return set;
}

/* ---- the container's privileges ---- */

struct final {
  uid_t uid;
  gid_t gid;
  gid_t groups[64];
  int ngroups;
  uint64_t caps;
  int seccomp; /* 0: unconfined, 1: build the runtime default here, 2: load `prog` */
  struct sock_fprog prog;
  const char *cwd;
  int console_fd; /* init: send the terminal made here to the runtime over this socket */
  int ready_fd;   /* init: tell `join` the container is set up (its mount namespace complete) */
};

/* Reads a compiled filter (libseccomp's seccomp_export_bpf output) from `fd`. */
static void read_program(struct final *f, int fd) {
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  ssize_t n;
  while (buf && len < cap && (n = read(fd, buf + len, cap - len)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      die("read the seccomp program: %m");
    }
    len += (size_t)n;
  }
  if (!buf || len == 0 || len % sizeof(struct sock_filter)) die("bad seccomp program (%zu bytes)", len);
  f->prog.len = (unsigned short)(len / sizeof(struct sock_filter));
  f->prog.filter = (struct sock_filter *)buf;
  f->seccomp = 2;
}

static void parse_groups(struct final *f, const char *list) {
  char *copy = strdup(list), *save = NULL;
  f->ngroups = 0;
  for (char *tok = strtok_r(copy, ",", &save); tok && f->ngroups < 64; tok = strtok_r(NULL, ",", &save))
    f->groups[f->ngroups++] = (gid_t)strtoul(tok, NULL, 10);
  free(copy);
}

/*
 * Becomes the container's user with its capabilities, no_new_privs and seccomp filter, in runc's
 * order (finalizeNamespace): the bounding set, then the user (keeping capabilities across the uid
 * change), then the process's own sets, then the filter, last, so the steps before it are not
 * filtered.
 */
static void drop_privileges(const struct final *f) {
  /* The bounding set first, while we still hold CAP_SETPCAP (a uid change clears the effective
   * set). */
  int last = last_cap();
  for (int c = 0; c <= last; c++)
    if (!((f->caps >> c) & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) && errno != EINVAL)
      die("drop capability %d from the bounding set: %m", c);
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)) die("keepcaps: %m");
  if (setgroups(f->ngroups, f->groups)) die("setgroups: %m");
  if (setresgid(f->gid, f->gid, f->gid)) die("setgid %u: %m", f->gid);
  if (setresuid(f->uid, f->uid, f->uid)) die("setuid %u: %m", f->uid);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)) die("keepcaps: %m");
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  /* What we hold bounds what we can give ("ALL" on a host that withholds one from the runtime). */
  if (syscall(SYS_capget, &hdr, data)) die("capget: %m");
  for (int i = 0; i < 2; i++) {
    data[i].effective = data[i].permitted = data[i].permitted & (uint32_t)(f->caps >> (32 * i));
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &hdr, data)) die("capset: %m");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("no_new_privs: %m");
  if (f->seccomp == 2) {
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &f->prog)) die("seccomp load: %m");
  } else if (f->seccomp == 1) {
    scmp_filter_ctx ctx = runtime_default_profile(f->caps);
    if (!ctx) die("seccomp profile: %m");
    int rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc) die("seccomp load: %s", strerror(-rc));
  }
}

static void exec_command(char **argv) {
  /* Nothing of the runtime's leaks into the container: every descriptor past stdio closes on exec. */
  syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  execvp(argv[0], argv);
  int err = errno;
  fprintf(stderr, "exec: \"%s\": %s\n", argv[0],
          err == ENOENT ? "executable file not found in $PATH" : strerror(err));
  _exit(err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT);
}

/* ---- namespaces and cgroups ---- */

/* Opens each cgroup's cgroup.procs (before setns: the container's mount namespace has no
 * cgroupfs), for join_cgroups_at() to move the calling process later. */
static void open_cgroups(char **dirs, int n, int *fds) {
  char path[4096];
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/cgroup.procs", dirs[i]);
    fds[i] = open(path, O_WRONLY | O_CLOEXEC);
    if (fds[i] < 0) die("join cgroup %s: %m", dirs[i]);
  }
}

/* Moves the calling process into the cgroups opened by open_cgroups ("0" is the writer itself, in
 * cgroup v1 and v2 alike, whatever pid namespace it is in). */
static void join_cgroups_at(const int *fds, int n) {
  for (int i = 0; i < n; i++) {
    if (write(fds[i], "0\n", 2) < 0) die("join cgroup: %m");
    close(fds[i]);
  }
}

static void join_cgroups(char **dirs, int n) {
  char path[4096], pid[32];
  snprintf(pid, sizeof pid, "%d\n", getpid());
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/cgroup.procs", dirs[i]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, pid, strlen(pid)) < 0) die("join cgroup %s: %m", dirs[i]);
    close(fd);
  }
}

/* In runc's order: mnt last, as it changes what every later path means. */
static const struct {
  const char *name;
  int flag;
} namespaces[] = {{"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET},
                  {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS}};

/* Joins the namespaces of `target` named in `which` ("all" or "net,ipc,uts"). */
static void join_namespaces(pid_t target, const char *which) {
  int fds[5];
  char path[64];
  for (int i = 0; i < 5; i++) {
    fds[i] = -1;
    if (strcmp(which, "all") != 0 && !strstr(which, namespaces[i].name)) continue;
    snprintf(path, sizeof path, "/proc/%d/ns/%s", target, namespaces[i].name);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) die("open %s: %m (is the pod still running?)", path);
  }
  for (int i = 0; i < 5; i++) {
    if (fds[i] < 0) continue;
    if (setns(fds[i], namespaces[i].flag)) die("setns %s of %d: %m", namespaces[i].name, target);
    close(fds[i]);
  }
}

static void enter_common(void) {
  /* CVE-2019-5736 (runc): a non-dumpable process's /proc/PID/exe, fds and memory are closed to
   * the container's processes. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) die("dumpable: %m");
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)) die("pdeathsig: %m");
  if (getppid() == 1) exit(EXIT_CANNOT); /* the runtime is gone already */
}

/* Waits for `child`, forwarding termination signals to it; exits as it did. */
static void wait_and_exit(pid_t child, int console_master) {
  sigset_t set;
  sigemptyset(&set);
  int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&set, forwarded[i]);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGWINCH);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) die("signalfd: %m");
  int status = 0;
  if (console_master >= 0) {
    status = console_relay(console_master, sfd, child);
  } else {
    for (;;) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) != sizeof si) continue;
      if (si.ssi_signo == SIGCHLD) {
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child) break;
        continue;
      }
      if (si.ssi_signo != SIGWINCH) kill(child, (int)si.ssi_signo);
    }
  }
  if (WIFEXITED(status)) exit(WEXITSTATUS(status));
  exit(128 + WTERMSIG(status));
}

/* ---- modes ---- */

enum {
  OPT_SECCOMP_FILE = 900, OPT_SECCOMP_FD, OPT_SECCOMP_PASS, OPT_EXPORT, OPT_READY_FD,
  OPT_UID = 1000, OPT_GID, OPT_GROUPS, OPT_CAPS, OPT_SECCOMP, OPT_CWD, OPT_CONSOLE_FD, OPT_TARGET,
  OPT_NS, OPT_CGROUP, OPT_TTY, OPT_CONSOLE, OPT_PORT, OPT_PID_FILE,
};

static const struct option options[] = {
    {"uid", required_argument, 0, OPT_UID},
    {"gid", required_argument, 0, OPT_GID},
    {"groups", required_argument, 0, OPT_GROUPS},
    {"caps", required_argument, 0, OPT_CAPS},
    {"seccomp", required_argument, 0, OPT_SECCOMP},
    {"seccomp-file", required_argument, 0, OPT_SECCOMP_FILE},
    {"seccomp-fd", required_argument, 0, OPT_SECCOMP_FD},
    {"seccomp-pass", required_argument, 0, OPT_SECCOMP_PASS},
    {"export", required_argument, 0, OPT_EXPORT},
    {"ready-fd", required_argument, 0, OPT_READY_FD},
    {"cwd", required_argument, 0, OPT_CWD},
    {"console-fd", required_argument, 0, OPT_CONSOLE_FD},
    {"target", required_argument, 0, OPT_TARGET},
    {"ns", required_argument, 0, OPT_NS},
    {"cgroup", required_argument, 0, OPT_CGROUP},
    {"tty", no_argument, 0, OPT_TTY},
    {"console", no_argument, 0, OPT_CONSOLE},
    {"port", required_argument, 0, OPT_PORT},
    {"pid-file", required_argument, 0, OPT_PID_FILE},
    {0, 0, 0, 0},
};

struct args {
  struct final final;
  pid_t target;
  const char *ns;
  char *cgroups[8];
  int ncgroups;
  int tty, console, port;
  const char *pid_file;
  const char *export_file;
  int pass_fd; /* join: a compiled filter handed on to the container's init as fd 5 */
  char **argv;
};

static void parse(int argc, char **argv, struct args *a) {
  memset(a, 0, sizeof *a);
  a->final.seccomp = 1;
  a->final.console_fd = -1;
  a->final.ready_fd = -1;
  a->pass_fd = -1;
  a->ns = "all";
  int c;
  while ((c = getopt_long(argc, argv, "+", options, NULL)) != -1) {
    switch (c) {
      case OPT_UID: a->final.uid = (uid_t)strtoul(optarg, NULL, 10); break;
      case OPT_GID: a->final.gid = (gid_t)strtoul(optarg, NULL, 10); break;
      case OPT_GROUPS: parse_groups(&a->final, optarg); break;
      case OPT_CAPS: a->final.caps = parse_caps(optarg); break;
      case OPT_SECCOMP:
        if (strcmp(optarg, "runtime-default") == 0) a->final.seccomp = 1;
        else if (strcmp(optarg, "unconfined") == 0) a->final.seccomp = 0;
        else die("unknown seccomp profile %s", optarg);
        break;
      case OPT_CWD: a->final.cwd = optarg; break;
      case OPT_CONSOLE_FD: a->final.console_fd = atoi(optarg); break;
      case OPT_TARGET: a->target = (pid_t)atoi(optarg); break;
      case OPT_NS: a->ns = optarg; break;
      case OPT_CGROUP:
        if (a->ncgroups == 8) die("too many --cgroup");
        a->cgroups[a->ncgroups++] = optarg;
        break;
      case OPT_TTY: a->tty = 1; break;
      case OPT_CONSOLE: a->console = 1; break;
      case OPT_PORT: a->port = atoi(optarg); break;
      case OPT_PID_FILE: a->pid_file = optarg; break;
      case OPT_EXPORT: a->export_file = optarg; break;
      case OPT_READY_FD: a->final.ready_fd = atoi(optarg); break;
      case OPT_SECCOMP_FILE: {
        /* Read now, on the host: the container's mount namespace will not have it. */
        int fd = open(optarg, O_RDONLY | O_CLOEXEC);
        if (fd < 0) die("open %s: %m", optarg);
        read_program(&a->final, fd);
        close(fd);
        break;
      }
      case OPT_SECCOMP_FD: {
        int fd = atoi(optarg);
        read_program(&a->final, fd);
        close(fd);
        break;
      }
      case OPT_SECCOMP_PASS:
        a->pass_fd = open(optarg, O_RDONLY | O_CLOEXEC);
        if (a->pass_fd < 0) die("open %s: %m", optarg);
        break;
      default: die("bad arguments");
    }
  }
  a->argv = argv + optind;
}

static int need_argv(struct args *a) {
  if (!a->argv[0]) die("no command");
  return 0;
}

static int mode_init(struct args *a) {
  need_argv(a);
  /* bubblewrap runs us once the container's root is complete: execs may join it from now on. */
  if (a->final.ready_fd >= 0) {
    if (write(a->final.ready_fd, "r", 1) != 1) die("ready: %m");
    close(a->final.ready_fd);
  }
  if (a->final.console_fd >= 0) console_attach(a->final.console_fd);
  if (a->final.cwd && chdir(a->final.cwd)) die("chdir %s: %m", a->final.cwd);
  drop_privileges(&a->final);
  exec_command(a->argv);
  return EXIT_CANNOT;
}

static int mode_exec(struct args *a) {
  need_argv(a);
  if (a->target <= 0) die("--target is required");
  enter_common();
  /* Only the command joins the container's cgroups (as runc's exec: its parent stays outside):
   * this helper, which waits in our pid namespace, must not count against the pod's pids.max
   * (an exec would cost two of the pod's pids, and 1,000 execs of a pod with pids.max 1024 would
   * fail at about 510). */
  int cgroup_fds[8];
  open_cgroups(a->cgroups, a->ncgroups, cgroup_fds);
  join_namespaces(a->target, "all");
  if (a->final.cwd && chdir(a->final.cwd)) die("chdir %s: %m", a->final.cwd);
  int master = a->tty ? console_open() : -1;
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t child = fork();
  if (child < 0) die("fork into the container: %m");
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    /* Our parent is outside this pid namespace: its pid reads 0 here, until it dies and the
     * container's init adopts us. */
    if (getppid() != 0) _exit(EXIT_CANNOT);
    join_cgroups_at(cgroup_fds, a->ncgroups);
    if (master >= 0) console_take(master);
    drop_privileges(&a->final);
    exec_command(a->argv);
  }
  for (int i = 0; i < a->ncgroups; i++) close(cgroup_fds[i]);
  wait_and_exit(child, master);
  return EXIT_CANNOT;
}

/* Makes `to` a copy of `from` that stays open across exec. */
static void move_fd(int from, int to) {
  if (from == to) {
    if (fcntl(to, F_SETFD, 0)) die("fcntl: %m");
  } else if (dup2(from, to) < 0) {
    die("dup2: %m");
  }
}

/* Reads bubblewrap's --info-fd JSON ({"child-pid": N, …}) and writes N to `path` (atomically). */
static void write_pid_file(int info_fd, const char *path) {
  char buf[1024];
  size_t len = 0;
  ssize_t n;
  while (len < sizeof buf - 1 && (n = read(info_fd, buf + len, sizeof buf - 1 - len)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    len += (size_t)n;
  }
  buf[len] = 0;
  char *at = strstr(buf, "\"child-pid\"");
  if (!at) return; /* bubblewrap failed before starting the container: its exit says why */
  at = strchr(at, ':');
  long pid = at ? strtol(at + 1, NULL, 10) : 0;
  if (pid <= 0) return;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) die("write %s: %m", tmp);
  fprintf(f, "%ld\n", pid);
  fclose(f);
  if (rename(tmp, path)) die("rename %s: %m", tmp);
}

static int mode_join(struct args *a) {
  need_argv(a);
  enter_common();
  join_cgroups(a->cgroups, a->ncgroups);
  if (a->target > 0) join_namespaces(a->target, a->ns);
  int sv[2] = {-1, -1}, info[2] = {-1, -1}, ready[2] = {-1, -1};
  if (a->console && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) die("socketpair: %m");
  if (a->pid_file && (pipe2(info, O_CLOEXEC) || pipe2(ready, O_CLOEXEC))) die("pipe: %m");
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0) die("fork: %m");
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != parent) _exit(EXIT_CANNOT);
    /* bubblewrap writes the container init's pid to fd 4 (--info-fd 4); the init finds its end
     * of the console socket on fd 3 (--console-fd 3). */
    /* Out of the way first: either source may sit on the other's target number. */
    int info_w = info[1] >= 0 ? fcntl(info[1], F_DUPFD_CLOEXEC, 10) : -1;
    int console_w = sv[1] >= 0 ? fcntl(sv[1], F_DUPFD_CLOEXEC, 10) : -1;
    int pass = a->pass_fd >= 0 ? fcntl(a->pass_fd, F_DUPFD_CLOEXEC, 10) : -1;
    int ready_w = ready[1] >= 0 ? fcntl(ready[1], F_DUPFD_CLOEXEC, 10) : -1;
    if (info_w >= 0) move_fd(info_w, 4);
    if (console_w >= 0) move_fd(console_w, 3);
    if (pass >= 0) move_fd(pass, 5);
    if (ready_w >= 0) move_fd(ready_w, 6);
    execvp(a->argv[0], a->argv);
    die("exec %s: %m", a->argv[0]);
  }
  int master = -1;
  if (info[0] >= 0) {
    close(info[1]);
    close(ready[1]);
    /* The pid file appears only once the container's init is set up (`init --ready-fd 6`): an
     * exec joining earlier would find bubblewrap's half-built root. */
    char byte;
    ssize_t n;
    do n = read(ready[0], &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1) write_pid_file(info[0], a->pid_file);
    close(info[0]);
    close(ready[0]);
  }
  if (sv[0] >= 0) {
    close(sv[1]);
    master = console_receive(sv[0]);
    close(sv[0]);
  }
  wait_and_exit(child, master);
  return EXIT_CANNOT;
}

static int mode_portforward(struct args *a) {
  if (a->target <= 0 || a->port <= 0 || a->port > 65535) die("--target and --port are required");
  enter_common();
  join_namespaces(a->target, "net");
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket: %m");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, (struct sockaddr *)&addr, sizeof addr)) {
    /* The runtime turns this line into Go's dial error text. */
    fprintf(stderr, "dial: %s\n", strerror(errno));
    return 2;
  }
  fprintf(stderr, "connected\n");
  return stream_relay(0, 1, s);
}

static int mode_profile(struct args *a) {
  uint64_t caps = a->final.caps;
  scmp_filter_ctx ctx = runtime_default_profile(caps);
  if (!ctx) die("seccomp profile: %m");
  if (a->export_file) {
    int fd = open(a->export_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) die("open %s: %m", a->export_file);
    if (seccomp_export_bpf(ctx, fd)) die("export: %m");
    close(fd);
    seccomp_release(ctx);
    return 0;
  }
  int p[2];
  if (pipe(p)) die("pipe: %m");
  fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  if (seccomp_export_bpf(ctx, p[1])) die("export: %m");
  close(p[1]);
  char buf[65536];
  long bytes = 0;
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) bytes += n;
  int total = 0;
  for (int nr = 0; nr < 1024; nr++) {
    char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (!name) continue;
    total++;
    free(name);
  }
  seccomp_release(ctx);
  printf("{\"bpfInstructions\":%ld,\"syscallsAllowed\":%d,\"nativeSyscalls\":%d}\n", bytes / 8,
         runtime_default_allowed(caps), total);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: kexec-nsexec init|exec|join|portforward|profile …");
  mode = argv[1];
  struct args a;
  parse(argc - 1, argv + 1, &a);
  if (strcmp(mode, "init") == 0) return mode_init(&a);
  if (strcmp(mode, "exec") == 0) return mode_exec(&a);
  if (strcmp(mode, "join") == 0) return mode_join(&a);
  if (strcmp(mode, "portforward") == 0) return mode_portforward(&a);
  if (strcmp(mode, "profile") == 0) return mode_profile(&a);
  die("unknown mode");
  return EXIT_CANNOT;
}
