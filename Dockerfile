# syntax=docker/dockerfile:1
#
# One image for both processes of the privacy back office:
#   api    — default CMD (`node dist/api/main.js`, port 3000)
#   worker — `docker run … node dist/worker/main.js` (or `command:` in docker-compose.yml)
# Both run the output of `npm run build` with plain node: compiled JavaScript and the
# prebuilt workflow bundle (no TypeScript loader, no webpack at worker start).

# ---- build: every package, then `npm run build` → dist/ --------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The postinstall step applies patches/ (patch-package): postgres.js survives a Postgres restart.
COPY patches ./patches
RUN --mount=type=cache,target=/root/.npm \
    npm ci
COPY tsconfig.json ./
COPY api ./api
COPY worker ./worker
COPY workflows ./workflows
COPY activities ./activities
COPY db ./db
COPY lib ./lib
COPY scripts ./scripts
RUN npm run build

# ---- dependencies: production packages only --------------------------------
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# No --ignore-scripts: package.json's allowScripts says which install scripts run (npm 11
# reads it). The native packages (@temporalio/core-bridge, @node-rs/argon2, @swc/core) ship
# their binaries in packages of their own and need no script.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev

# ---- runtime ----------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app

COPY --from=deps --chown=node:node /app/node_modules ./node_modules
# package.json: "type": "module" makes dist/ ES modules.
COPY --chown=node:node package.json ./
# Compiled code, the migrations and seed beside it (dist/db/), the workflow bundle.
COPY --from=build --chown=node:node /app/dist ./dist

# Recording audio and export packages. A named volume mounted here starts out
# owned by `node`, and api and worker must share it.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]

USER node
EXPOSE 3000
CMD ["node", "dist/api/main.js"]
