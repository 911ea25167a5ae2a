# kexec-lab: one image for every compose service (apiserver, node, the one-shots).
FROM node:20-bookworm-slim

# bubblewrap: cri-shim's container isolation (`--isolation auto` falls back to none without it).
# openssl: the lab CA and certificates (shared/tls).
RUN apt-get update \
  && apt-get install -y --no-install-recommends bubblewrap openssl \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, for the layer cache. `prepare` would build before the sources are copied.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY . .
RUN npm run build && chmod +x bin/kexec.js

# Overridden by each compose service's command.
CMD ["node", "dist/lab/main.js", "--dir", "/lab", "--port", "6443"]
