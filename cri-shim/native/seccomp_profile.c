/*
 * The container runtime's default seccomp profile, built with libseccomp.
 *
 * The facts (which syscalls, which argument checks, which ones a capability unlocks) are those of
 * moby `profiles/seccomp/default.json`, the profile Docker and containerd
 * (`contrib/seccomp/seccomp_default.go`) apply to every container that does not ask for
 * `Unconfined`: deny with EPERM by default, allow an explicit list, and allow the dangerous
 * families (mount, namespaces, BPF, kernel modules, tracing, clocks …) only when the container
 * holds the capability that would make them useful anyway.
 *
 * Differences, on purpose:
 * - `ptrace`, `process_vm_readv`/`process_vm_writev` need CAP_SYS_PTRACE here. moby allows them
 *   without it on kernels >= 4.8; the lab's pods are attack targets for its students, and a
 *   pod's processes all run as the same root user, so tracing one another is not needed.
 * - `name_to_handle_at` needs CAP_SYS_ADMIN (containerd's profile up to 1.7; newer moby allows it):
 *   with `open_by_handle_at` (CAP_DAC_READ_SEARCH) it is half of the "shocker" escape.
 * Architectures: the native one plus the ones a 64-bit x86 kernel also runs (x86, x32), as moby's
 * archMap, so a 32-bit binary cannot reach a syscall through another table.
 */
#define _GNU_SOURCE
#include "seccomp_profile.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stddef.h>
#include <sys/socket.h>

/* Allowed for every container. */
static const char *const allowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir",
    "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
    "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
    "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link",
    "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr",
    "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
    "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
    "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64",
    "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
    "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat",
    "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
    "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64",
    "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
    "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
    "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
    /* x86 only (moby: arches amd64, x32, x86) */
    "arch_prctl", "modify_ldt",
    NULL,
};

/* Allowed only to a container that holds the capability. */
struct cap_group {
  int cap;
  const char *const names[32]; /* NULL-terminated */
};

static const struct cap_group cap_groups[] = {
    {CAP_DAC_READ_SEARCH, {"open_by_handle_at", NULL}},
    {CAP_SYS_ADMIN,
     {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
      "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree",
      "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
      "syslog", "umount", "umount2", "unshare"}},
    {CAP_SYS_BOOT, {"reboot", NULL}},
    {CAP_SYS_CHROOT, {"chroot", NULL}},
    {CAP_SYS_MODULE, {"delete_module", "init_module", "finit_module", NULL}},
    {CAP_SYS_PACCT, {"acct", NULL}},
    {CAP_SYS_PTRACE,
     {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
      NULL}},
    {CAP_SYS_RAWIO, {"iopl", "ioperm", NULL}},
    {CAP_SYS_TIME, {"settimeofday", "stime", "clock_settime", "clock_settime64", NULL}},
    {CAP_SYS_TTY_CONFIG, {"vhangup", NULL}},
    {CAP_SYS_NICE, {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node", NULL}},
    {CAP_SYSLOG, {"syslog", NULL}},
    {CAP_BPF, {"bpf", NULL}},
    {CAP_PERFMON, {"perf_event_open", NULL}},
};

/* clone(2) flags that create namespaces: refused without CAP_SYS_ADMIN. */
#define CLONE_NAMESPACES                                                                         \
  (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |     \
   CLONE_NEWCGROUP)

/* personality(2) values moby allows: PER_LINUX, UNAME26, PER_LINUX32, UNAME26|PER_LINUX32, query. */
static const uint64_t personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int allow(scmp_filter_ctx ctx, const char *name, unsigned n, const struct scmp_arg_cmp *cmp) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return 0; /* unknown to this libseccomp: nothing to allow */
  int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, cmp);
  /* -EEXIST: the same rule twice (a name in two capability groups) */
  return rc == -EEXIST ? 0 : rc;
}

static int has(uint64_t caps, int cap) { return (caps >> cap) & 1; }

scmp_filter_ctx runtime_default_profile(uint64_t caps) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx) return NULL;
  int rc = 0;
#if defined(__x86_64__)
  rc = seccomp_arch_add(ctx, SCMP_ARCH_X86);
  if (!rc || rc == -EEXIST) rc = seccomp_arch_add(ctx, SCMP_ARCH_X32);
  if (rc == -EEXIST) rc = 0;
#endif
  for (const char *const *n = allowed; !rc && *n; n++) rc = allow(ctx, *n, 0, NULL);
  for (size_t g = 0; !rc && g < sizeof cap_groups / sizeof cap_groups[0]; g++) {
    if (!has(caps, cap_groups[g].cap)) continue;
    for (const char *const *n = cap_groups[g].names; !rc && *n; n++) rc = allow(ctx, *n, 0, NULL);
  }
  if (!rc) {
    struct scmp_arg_cmp not_vsock = SCMP_A0(SCMP_CMP_NE, AF_VSOCK);
    rc = allow(ctx, "socket", 1, &not_vsock);
  }
  for (size_t i = 0; !rc && i < sizeof personalities / sizeof personalities[0]; i++) {
    struct scmp_arg_cmp eq = SCMP_A0(SCMP_CMP_EQ, personalities[i]);
    rc = allow(ctx, "personality", 1, &eq);
  }
  if (!rc && !has(caps, CAP_SYS_ADMIN)) {
    /* Plain clone (threads, fork) stays; clone3 answers ENOSYS so libc falls back to clone,
     * whose flags a filter can see (clone3 passes them in memory). */
    struct scmp_arg_cmp no_ns = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NAMESPACES, 0);
    rc = allow(ctx, "clone", 1, &no_ns);
    if (!rc) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), seccomp_syscall_resolve_name("clone3"), 0);
  }
  if (rc) {
    seccomp_release(ctx);
    errno = -rc;
    return NULL;
  }
  return ctx;
}

static void mark(unsigned char *seen, const char *name) {
  int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, name);
  if (nr >= 0 && nr < 4096) seen[nr] = 1;
}

int runtime_default_allowed(uint64_t caps) {
  unsigned char seen[4096] = {0};
  for (const char *const *n = allowed; *n; n++) mark(seen, *n);
  for (size_t g = 0; g < sizeof cap_groups / sizeof cap_groups[0]; g++)
    if (has(caps, cap_groups[g].cap))
      for (const char *const *n = cap_groups[g].names; *n; n++) mark(seen, *n);
  mark(seen, "socket");
  mark(seen, "personality");
  mark(seen, "clone");
  int count = 0;
  for (int i = 0; i < 4096; i++) count += seen[i];
  return count;
}
