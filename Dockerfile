# The kubewise image: the CLI and the in-cluster controllers (jobs watcher and webhook, agent,
# swarm controller). Multi-stage: the build stage compiles TypeScript and better-sqlite3's native
# addon with a toolchain; the runtime stage holds only the compiled JavaScript, the production
# node_modules and package.json, and runs as an unprivileged user.
#
#   docker build -t kubewise .
#   docker run --rm kubewise --help
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS build
# better-sqlite3 compiles from source when no prebuilt addon matches. On this Node 24 image the
# SQLite stores use the built-in node:sqlite (src/sqlite.ts); the addon serves Node 20-23.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json ./
# --ignore-scripts: the root package's `prepare` would build before the sources are here; the one
# dependency that needs its install script is rebuilt on its own.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /build/package.json ./package.json
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist/src ./dist/src
COPY src/cluster/stages ./src/cluster/stages
COPY manifests ./manifests
RUN chmod 0755 dist/src/cli/main.js \
 && ln -s /app/dist/src/cli/main.js /usr/local/bin/kubewise \
 && groupadd --system --gid 10001 kubewise \
 && useradd --system --uid 10001 --gid kubewise --home-dir /var/lib/kubewise --create-home kubewise
# The uid is numeric so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/kubewise
ENTRYPOINT ["kubewise"]
CMD ["--help"]
