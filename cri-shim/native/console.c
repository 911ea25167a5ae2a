/*
 * Terminals for containers, made where runc makes them: inside the container, from the
 * container's own devpts (`/dev/ptmx`), so `tty` there names `/dev/pts/N` of the container and no
 * host terminal is ever visible in it. The runtime's side of the terminal (node-pty's, on the
 * host) is relayed to the container's master byte for byte, in raw mode, with its window size,
 * as containerd's shim relays runc's console (runc: libcontainer/console_linux.go and the
 * `--console-socket` protocol, one SCM_RIGHTS message carrying the master).
 *
 * Also the plain relay port-forward uses: stdin → socket, socket → stdout, half-closes kept.
 */
#define _GNU_SOURCE
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void fail(const char *what) {
  fprintf(stderr, "kexec-nsexec console: %s: %s\n", what, strerror(errno));
  _exit(126);
}

/* A new terminal from the devpts of the mount namespace we are in; returns its master. */
int console_open(void) {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) fail("open /dev/ptmx");
  if (grantpt(master) || unlockpt(master)) fail("unlockpt");
  return master;
}

/* In the process that will exec the command: a session of its own with the terminal's slave as
 * controlling terminal and stdio. */
void console_take(int master) {
  char name[128];
  if (ptsname_r(master, name, sizeof name)) fail("ptsname");
  if (setsid() < 0) fail("setsid");
  int slave = open(name, O_RDWR);
  if (slave < 0) fail("open the terminal");
  if (ioctl(slave, TIOCSCTTY, 0)) fail("TIOCSCTTY");
  for (int fd = 0; fd < 3; fd++)
    if (dup2(slave, fd) < 0) fail("dup2");
  if (slave > 2) close(slave);
  close(master);
}

/* The container's init: make the terminal here, hand its master to the runtime, take the slave. */
void console_attach(int socket_fd) {
  int master = console_open();
  char byte = 0;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &master, sizeof(int));
  if (sendmsg(socket_fd, &msg, 0) < 0) fail("send the terminal");
  close(socket_fd);
  console_take(master);
}

/* The runtime's side: the master the container's init sent, or -1 if it ended first. */
int console_receive(int socket_fd) {
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  ssize_t n;
  do n = recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

static void copy_size(int from, int to) {
  struct winsize ws;
  if (ioctl(from, TIOCGWINSZ, &ws) == 0) ioctl(to, TIOCSWINSZ, &ws);
}

/* Writes all of buf (blocking); 0 on success. */
static int write_all(int fd, const char *buf, ssize_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, (size_t)len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += n;
    len -= n;
  }
  return 0;
}

/*
 * Relays our stdin/stdout (the runtime's terminal) and `master` until `child` has exited and the
 * master has nothing more to read; forwards termination signals and window-size changes.
 * Returns the child's wait status.
 */
int console_relay(int master, int signal_fd, pid_t child) {
  struct termios t;
  int outer_tty = tcgetattr(0, &t) == 0;
  if (outer_tty) {
    cfmakeraw(&t);
    tcsetattr(0, TCSANOW, &t);
    copy_size(0, master);
  }
  char buf[16384];
  int status = 0, exited = 0, stdin_open = 1;
  while (!exited) {
    struct pollfd p[3] = {{master, POLLIN, 0}, {signal_fd, POLLIN, 0}, {0, POLLIN, 0}};
    if (poll(p, stdin_open ? 3 : 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n > 0) write_all(1, buf, n);
      /* EIO: no slave is open any more; wait for the exit only. */
      else if (n < 0 && errno == EIO) p[0].fd = -1;
    }
    if (stdin_open && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n > 0) write_all(master, buf, n);
      else stdin_open = 0;
    }
    if (p[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(signal_fd, &si, sizeof si) != sizeof si) continue;
      if (si.ssi_signo == SIGWINCH) {
        if (outer_tty) copy_size(0, master);
      } else if (si.ssi_signo == SIGCHLD) {
        if (waitpid(child, &status, WNOHANG) == child) exited = 1;
      } else {
        kill(child, (int)si.ssi_signo);
      }
    }
  }
  /* What the command wrote just before it ended is still in the master. */
  fcntl(master, F_SETFL, O_NONBLOCK);
  for (;;) {
    ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) break;
    write_all(1, buf, n);
  }
  return status;
}

/* in → sock and sock → out until both directions are done; 0 when they ended cleanly. */
int stream_relay(int in, int out, int sock) {
  char buf[65536];
  int up = 1, down = 1;
  while (down) {
    struct pollfd p[2] = {{sock, POLLIN, 0}, {in, POLLIN, 0}};
    if (poll(p, up ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      return 3;
    }
    if (p[0].revents) {
      ssize_t n = read(sock, buf, sizeof buf);
      if (n < 0) {
        fprintf(stderr, "read: %s\n", strerror(errno));
        return 3;
      }
      if (n == 0) {
        down = 0;
        close(out);
      } else if (write_all(out, buf, n)) {
        return 3;
      }
    }
    if (up && p[1].revents) {
      ssize_t n = read(in, buf, sizeof buf);
      if (n <= 0) {
        up = 0;
        shutdown(sock, SHUT_WR);
      } else if (write_all(sock, buf, n)) {
        fprintf(stderr, "write: %s\n", strerror(errno));
        return 3;
      }
    }
  }
  return 0;
}
