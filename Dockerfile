# kexec-lab: one image for every compose service (apiserver, node and the one-shots).
#
# Two stages. `build` has a C++ toolchain and every dependency (dev included): it compiles
# node-pty's addon (node-pty ships no Linux prebuild) and the TypeScript, then prunes back to the
# production dependencies. The final stage takes only what runs: package.json, bin/, dist/, the
# pod images, the .proto files and the pruned node_modules (with the compiled pty.node). No
# TypeScript sources, no dev dependencies and no compiler reach it; its user is `node`, and only
# the compose `node` service runs as root (what bubblewrap needs: see docker-compose.yml).
#
# Corporate proxies: behind TLS inspection, npm in the build stage must trust the proxy's CA. Pass
# it (PEM text) in the build arg EXTRA_CA_CERTS, which docker-compose.yml forwards from the
# environment, e.g.
#   EXTRA_CA_CERTS="$(cat corporate-ca.pem)" docker compose build
# The arg is declared in the build stage only: neither it nor the CA is in the final image.
FROM node:20-bookworm-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends g++ make python3 libseccomp-dev \
  && rm -rf /var/lib/apt/lists/*
# node-gyp builds against this Node's own headers (the image has them) instead of downloading them.
ENV npm_config_nodedir=/usr/local
WORKDIR /app
# Dependencies first, for the layer cache; .npmrc (legacy-peer-deps) is part of how the lock resolves.
COPY package.json package-lock.json .npmrc ./
ARG EXTRA_CA_CERTS=
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
      printf '%s\n' "$EXTRA_CA_CERTS" >/tmp/extra-ca.pem && export NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem; \
    fi \
  && npm ci --ignore-scripts --no-audit --no-fund \
  && rm -f /tmp/extra-ca.pem \
  && npm rebuild node-pty \
  && rm -rf node_modules/node-pty/build/Release/obj.target node_modules/node-pty/build/Release/.deps
COPY . .
# The cri-shim's native helper (namespaces, capabilities, seccomp) must build: no silent fallback.
RUN KEXEC_REQUIRE_NATIVE=1 npm run build \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && mkdir /out \
  && cp -a package.json bin dist node_modules /out/ \
  && find . -path ./node_modules -prune -o -path ./dist -prune -o \( -name '*.proto' -o -path ./cri-shim/images \) -print \
     | xargs -r cp -a --parents -t /out

FROM node:20-bookworm-slim
# bubblewrap: cri-shim's container isolation. openssl: the lab CA and certificates (shared/tls).
RUN apt-get update \
  && apt-get install -y --no-install-recommends bubblewrap openssl \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /out/ ./
# The compose volume is mounted on /lab; a new volume takes this directory's owner.
RUN mkdir /lab && chown node:node /lab
USER node
# Overridden by each compose service's command.
CMD ["node", "dist/lab/main.js", "--dir", "/lab", "--port", "6443"]
