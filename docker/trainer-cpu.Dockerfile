# syntax=docker/dockerfile:1
# The trainer on CPU (backends wasm and cpu): for clusters without GPUs, development and CI.
# Build from the repository root:  docker build -f docker/trainer-cpu.Dockerfile -t ghcr.io/gpulab/trainer-cpu:0.1.0 .
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV CI=true
COPY . .
RUN npm ci --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app /app
# uid 1000 (node): trainer pods run with runAsNonRoot
USER node
ENTRYPOINT ["node", "--import", "tsx", "apps/trainer/src/main.ts"]
