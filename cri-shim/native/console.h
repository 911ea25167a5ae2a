/*
 * Terminals made inside a container, and byte relays (see console.c).
 */
#ifndef KEXEC_CONSOLE_H
#define KEXEC_CONSOLE_H

#include <sys/types.h>

int console_open(void);
void console_take(int master);
void console_attach(int socket_fd);
int console_receive(int socket_fd);
int console_relay(int master, int signal_fd, pid_t child);
int stream_relay(int in, int out, int sock);

#endif
