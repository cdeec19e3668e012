# syntax=docker/dockerfile:1
#
# One image for both processes of the privacy back office:
#   api    — default CMD (`npm run api`, port 3000)
#   worker — `docker run … npm run worker` (or `command:` in docker-compose.yml)
# TypeScript runs directly through tsx, which is a runtime dependency.

# ---- dependencies: production packages only --------------------------------
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No --ignore-scripts: the native packages (@swc/core, @temporalio/core-bridge,
# @node-rs/argon2) ship their binaries as optional dependencies and need them.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev

# ---- runtime ----------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/data \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false
WORKDIR /app

COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json package-lock.json tsconfig.json ./
COPY --chown=node:node api ./api
COPY --chown=node:node worker ./worker
COPY --chown=node:node workflows ./workflows
COPY --chown=node:node activities ./activities
COPY --chown=node:node db ./db
COPY --chown=node:node lib ./lib
COPY --chown=node:node scripts ./scripts

# Recording audio and export packages. A named volume mounted here starts out
# owned by `node`, and api and worker must share it.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]

USER node
EXPOSE 3000
CMD ["npm", "run", "api"]
