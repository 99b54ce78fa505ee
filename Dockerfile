# syntax=docker/dockerfile:1.7
#
# The GPU image of the speech-to-speech worker for RunPod Serverless (NVIDIA L4 class, CUDA 12).
#
# Base image: nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04. The runtime flavour (not devel) because
# nothing is compiled here: node-llama-cpp, sherpa-onnx and torch all come prebuilt. It is about
# 3 GB against 6+ GB for devel, which is what the worker pays at every cold start on a new host
# (RunPod caches images per host, so image size is cold-start time). cuDNN 9 is what sherpa-onnx's
# CUDA 12 libraries need; torch's cu124 wheels bring their own CUDA libraries and run on the same driver.
# Ubuntu 22.04 ships Python 3.10, which VibeVoice supports (>= 3.10) and torch has wheels for.
#
# Models are not in the image: `npm run models` puts them on the network volume once
# (see README, "Deployment"), and the worker loads them from there at cold start.

ARG NODE_VERSION=20.20.2
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

# ---- Node.js, taken from the official image (no third-party apt repository) ----
FROM node:${NODE_VERSION}-bookworm-slim AS node

# ---- build: npm dependencies (with node-llama-cpp's CUDA binary) and the esbuild bundle ----
FROM node AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The VAD runs onnxruntime-node on CPU: never download its CUDA provider (README, "Installing").
ENV ONNXRUNTIME_NODE_INSTALL=skip
# npm ci installs node-llama-cpp's prebuilt binaries from the npm registry, @node-llama-cpp/linux-x64-cuda among them.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY builder ./builder
COPY handler ./handler
COPY src ./src
COPY cli ./cli
RUN npm run build && npm prune --omit=dev

# ---- runtime ----
FROM ${CUDA_IMAGE} AS runtime
ARG SHERPA_ONNX_VERSION=1.13.8
# microsoft/VibeVoice at a pinned commit: its demo app is the TTS server, its voices the presets.
ARG VIBEVOICE_COMMIT=e73d1e17c3754f046352014856a922f8208fb5d3
ARG TORCH_VERSION=2.5.1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu124

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    NODE_ENV=production \
    VIBEVOICE_REPO=/opt/VibeVoice \
    HF_HUB_OFFLINE=1 \
    S2S_DEVICE=cuda \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip git ca-certificates curl bzip2 ffmpeg libsndfile1 \
 && rm -rf /var/lib/apt/lists/*

COPY --from=node /usr/local/bin/node /usr/local/bin/node

# VibeVoice: the pinned checkout (app + voice presets) and its Python environment.
RUN git clone https://github.com/microsoft/VibeVoice.git ${VIBEVOICE_REPO} \
 && git -C ${VIBEVOICE_REPO} checkout ${VIBEVOICE_COMMIT} \
 && rm -rf ${VIBEVOICE_REPO}/.git \
 && python3 -m venv /opt/venv \
 && pip install torch==${TORCH_VERSION} --index-url ${TORCH_INDEX} \
 && pip install -e "${VIBEVOICE_REPO}[streamingtts]"

WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json test_input.json ./

# sherpa-onnx's npm build is CPU-only: swap in the CUDA 12 / cuDNN 9 libraries of the same release.
RUN curl -fsSL -o /tmp/sherpa-gpu.tar.bz2 \
      https://github.com/k2-fsa/sherpa-onnx/releases/download/v${SHERPA_ONNX_VERSION}/sherpa-onnx-v${SHERPA_ONNX_VERSION}-cuda-12.x-cudnn-9.x-linux-x64-gpu.tar.bz2 \
 && mkdir /tmp/sherpa-gpu && tar -xjf /tmp/sherpa-gpu.tar.bz2 -C /tmp/sherpa-gpu --strip-components=1 \
 && cp /tmp/sherpa-gpu/lib/*.so* node_modules/sherpa-onnx-linux-x64/ \
 && test -f node_modules/sherpa-onnx-linux-x64/libonnxruntime_providers_cuda.so \
 && rm -rf /tmp/sherpa-gpu /tmp/sherpa-gpu.tar.bz2

# Non-root at run time. The network volume is mounted by RunPod and readable by any user.
RUN useradd --create-home --uid 1000 worker && chown -R worker /app
USER worker

# 8005: live sessions (exposed TCP port). Port 8000 (the TTS server) stays on loopback and is never exposed.
EXPOSE 8005
CMD ["node", "dist/handler.mjs"]
