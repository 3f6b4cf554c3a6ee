# syntax=docker/dockerfile:1
# The scheduler: admission, the Kubernetes launcher, metering, leader election on a Lease.
# Build from the repository root:  docker build -f docker/scheduler.Dockerfile -t ghcr.io/gpulab/scheduler:0.1.0 .
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV CI=true
COPY . .
RUN npm ci --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY --from=build --chown=node:node /app /app
USER node
CMD ["node", "--import", "tsx", "apps/scheduler/src/main.ts"]
