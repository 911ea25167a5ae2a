#!/usr/bin/env bash
# A local stand-in for the Dockerfile's base image, for machines that reach Debian's mirror and
# the npm registry but no image registry (CI, the lab machines):
#
#   scripts/docker-base-image.sh [TAG]     (TAG: default, the Dockerfile's first FROM)
#
# Builds `node:20-bookworm-slim` (or TAG) the way its upstream Dockerfile lays it out, from parts
# this machine already trusts: `debootstrap --variant=minbase bookworm` from the mirror apt uses,
# plus this machine's own `node` and `npm` (its major version must match the tag), a `node` user
# (uid/gid 1000) and the upstream image's PATH and CMD; then `docker import`s it under TAG.
# Differences from upstream: no yarn, no docker-entrypoint.sh (the compose services give argv
# commands); like upstream there is no ca-certificates (Node.js carries its own roots).
#
# Talks to the engine in DOCKER_HOST. Idempotent: does nothing when TAG is already there; keeps
# the root file system tarball in KEXEC_DOCKER_CACHE (default ~/.cache/kexec-lab/docker), so a
# second engine imports it in seconds instead of bootstrapping for a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-$(awk 'toupper($1) == "FROM" { print $2; exit }' Dockerfile)}
docker=${DOCKER:-docker}
say() { echo "docker-base-image: $*" >&2; }

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
  say "$tag is already there"
  exit 0
fi

# node:20-bookworm-slim → Node.js major 20, Debian suite bookworm.
if [[ ! "$tag" =~ ^node:([0-9]+)-([a-z]+)-slim$ ]]; then
  say "cannot make a stand-in for $tag (expected node:MAJOR-SUITE-slim)"
  exit 1
fi
major=${BASH_REMATCH[1]}
suite=${BASH_REMATCH[2]}
node_version=$(node --version)
if [ "${node_version#v}" = "${node_version#v"$major".}" ]; then
  say "this machine's node is $node_version; $tag needs Node.js $major"
  exit 1
fi

# The mirror apt uses: deb822 sources (URIs:) or one-line sources (deb URL SUITE ...).
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = uri }
      /^$/ { uri = "" }
      END { if (found) print found }' "$f"
  done
  awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2 }' /etc/apt/sources.list 2>/dev/null || true
}
url=$(mirror | head -n1)
url=${url:-http://deb.debian.org/debian}

cache=${KEXEC_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kexec-lab/docker}
tarball="$cache/rootfs-$suite-minbase-node-$node_version-1.tar"
mkdir -p "$cache"

if [ ! -s "$tarball" ]; then
  work=$(mktemp -d)
  # debootstrap mounts /proc and /sys inside the target while it installs; never leave them.
  cleanup() {
    local m
    for m in $(awk -v r="$work/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
      umount -l "$m" || true
    done
    rm -rf "$work"
  }
  trap cleanup EXIT
  rootfs="$work/rootfs"
  say "debootstrap --variant=minbase $suite from $url (about a minute)"
  debootstrap --variant=minbase "$suite" "$rootfs" "$url" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    exit 1
  }
  # This machine's node and npm, where the upstream image keeps them.
  install -D -m 0755 "$(command -v node)" "$rootfs/usr/local/bin/node"
  node_headers=$(dirname "$(dirname "$(command -v node)")")/include/node
  [ -f "$node_headers/node.h" ] || { say "no Node.js headers in $node_headers"; exit 1; }
  mkdir -p "$rootfs/usr/local/include"
  cp -a "$node_headers" "$rootfs/usr/local/include/node"
  npm_root=$(npm root -g)/npm
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_root" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # As Debian's container images: apt keeps no package cache or downloaded .debs in layers.
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
  chroot "$rootfs" /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
  chroot "$rootfs" /usr/local/bin/node --version >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar --numeric-owner -C "$rootfs" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi

say "docker import $tarball as $tag"
"$docker" import \
  --change "ENV NODE_VERSION=${node_version#v}" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' \
  --message "stand-in for $tag: debootstrap $suite minbase + this machine's node $node_version" \
  "$tarball" "$tag" >/dev/null
