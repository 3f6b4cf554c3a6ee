# syntax=docker/dockerfile:1
# The trainer on NVIDIA GPUs: CUDA 11.8 + cuDNN 8 (what @tensorflow/tfjs-node-gpu 4.x's libtensorflow 2.11 needs),
# Node.js 20, and @tensorflow/tfjs-node-gpu, which the trainer's `tensorflow` backend loads when present.
# Build from the repository root:  docker build -f docker/trainer-gpu.Dockerfile -t ghcr.io/gpulab/trainer-gpu:0.1.0 .
ARG CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04

FROM ${CUDA_IMAGE} AS node
ARG NODE_VERSION=20.19.5
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl xz-utils python3 make g++ \
 && curl -fsSL "https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-x64.tar.xz" \
    | tar -xJ -C /usr/local --strip-components=1 \
 && rm -rf /var/lib/apt/lists/*

FROM node AS build
WORKDIR /app
ENV CI=true
COPY . .
RUN npm ci --no-audit --no-fund \
 && npm install --no-save --no-audit --no-fund -w @gpulab/trainer @tensorflow/tfjs-node-gpu@4.22.0

FROM ${CUDA_IMAGE}
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home node
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app /app
USER node
ENTRYPOINT ["node", "--import", "tsx", "apps/trainer/src/main.ts"]
