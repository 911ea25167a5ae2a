/*
 * The runtime-default seccomp profile (see seccomp_profile.c).
 */
#ifndef KEXEC_SECCOMP_PROFILE_H
#define KEXEC_SECCOMP_PROFILE_H

#include <seccomp.h>
#include <stdint.h>

/* Builds the profile for a process whose capability set is `caps` (bit n = capability n).
 * Returns NULL (errno set) on failure. */
scmp_filter_ctx runtime_default_profile(uint64_t caps);

/* How many native syscalls the profile lets through, some only with argument checks. */
int runtime_default_allowed(uint64_t caps);

#endif
