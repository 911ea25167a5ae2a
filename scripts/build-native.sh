#!/usr/bin/env bash
# Builds the cri-shim's native helper (cri-shim/native/*.c) into dist/native/kexec-nsexec: the
# part of the runtime that joins namespaces, drops privileges and loads the seccomp profile, as
# runc does for containerd. Needs gcc and libseccomp-dev (Debian); libseccomp is linked in
# statically, so the binary needs only libc at run time.
#
# Without a C compiler or libseccomp it warns and builds nothing: the cri-shim then refuses
# `--isolation bwrap` (and `auto` falls back to the loud, unisolated `none`). With CI=true or
# KEXEC_REQUIRE_NATIVE=1 a missing toolchain is an error instead.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/native/kexec-nsexec
src=cri-shim/native
cc=${CC:-gcc}
missing=""
command -v "$cc" >/dev/null 2>&1 || missing="$cc"
[ -n "$missing" ] || echo '#include <seccomp.h>' | "$cc" -E -x c - >/dev/null 2>&1 || missing="libseccomp-dev"
if [ -n "$missing" ]; then
  msg="build-native: $missing is missing (apt-get install gcc libc6-dev libseccomp-dev): no native helper, pods cannot be isolated"
  if [ "${CI:-}" = "true" ] || [ "${KEXEC_REQUIRE_NATIVE:-}" = "1" ]; then
    echo "$msg" >&2
    exit 1
  fi
  echo "WARNING: $msg" >&2
  exit 0
fi
mkdir -p "$(dirname "$out")"
"$cc" -O2 -Wall -Wextra -Werror -o "$out.tmp" "$src"/*.c -l:libseccomp.a
mv "$out.tmp" "$out"
