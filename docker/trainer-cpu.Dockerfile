# syntax=docker/dockerfile:1
# The trainer on CPU (backends wasm and cpu): for clusters without GPUs, development and CI.
# Build from the repository root:  docker build -f docker/trainer-cpu.Dockerfile -t ghcr.io/gpulab/trainer-cpu:0.1.0 .
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV CI=true
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev libopenblas-dev libdnnl-dev && rm -rf /var/lib/apt/lists/*
COPY . .
RUN npm ci --no-audit --no-fund && bash apps/trainer/native/build.sh

FROM node:20-bookworm-slim
# OpenBLAS and oneDNN for the native CPU kernels (apps/trainer/native); set OPENBLAS_NUM_THREADS and OMP_NUM_THREADS
# to the pod's CPU limit.
RUN apt-get update && apt-get install -y --no-install-recommends libopenblas0-pthread libdnnl2 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production GPULAB_NATIVE_KERNELS=required
WORKDIR /app
COPY --from=build --chown=node:node /app /app
# uid 1000 (node): trainer pods run with runAsNonRoot
USER node
ENTRYPOINT ["node", "--import", "tsx", "apps/trainer/src/main.ts"]
