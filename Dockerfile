# syntax=docker/dockerfile:1.7
#
# The GPU image of the speech-to-speech worker for RunPod Serverless (NVIDIA L4 class, CUDA 12).
#
# Base image: nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04. The runtime flavour (not devel) because
# nothing is compiled here: node-llama-cpp, sherpa-onnx and torch all come prebuilt. CUDA 12.4 runs on
# every RunPod host with a 12.4+ driver (.runpod/hub.json); ONNX Runtime's CUDA 12 builds run on any
# CUDA 12.x and need cuDNN 9.x (8 and 9 are not interchangeable), which this image brings (checked
# below). torch's CUDA 12 wheels bring their own CUDA and cuDNN libraries and run on the same driver.
#
# Layers, largest first (image size is cold-start time on RunPod: a new host pulls the whole image).
# Figures marked "measured" were measured on a build machine with `du -sh`; the others were not
# measured (no Docker engine there) and the last RUN step prints them all in the build log:
#   - the CUDA base image (CUDA 12.4 runtime libraries and cuDNN 9): several GB, not measured
#   - /opt/venv, our TTS engine (tts-server) with torch for CUDA 12 and its CUDA wheels, transformers 5:
#     several GB, not measured
#   - /app/node_modules: measured 1.1 GB after `npm ci --omit=dev` (node-llama-cpp's CUDA packages
#     538 MB, its Vulkan and CPU ones 110 MB, onnxruntime-node 288 MB); the build stage removes the
#     binaries of other platforms (measured 277 MB), and adds sherpa-onnx's CUDA libraries (from an
#     archive of about 239 MB compressed, as published for v1.13.7; unpacked size not measured)
#   - apt packages (python3.11), node: small
# Nothing is copied twice: node_modules is finished in the build stage and copied once, root-owned
# and read-only for the worker (a `chown -R` would copy it into another layer).
#
# Models are not in the image: `node dist/models.mjs` puts them on the network volume once (README,
# "Deployment"), and the worker loads them from there at cold start.

ARG NODE_VERSION=24.22.3
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

# ---- Node.js 24 LTS, taken from the official image (no third-party apt repository) ----
FROM node:${NODE_VERSION}-bookworm-slim AS node

# ---- build: npm dependencies, sherpa-onnx's CUDA libraries, the esbuild bundle ----
FROM node AS build
# sherpa-onnx's npm build is CPU-only; its CUDA 12 / cuDNN 9 build of the same release replaces its
# libraries. The release asset's name comes from sherpa-onnx's .github/scripts/libs/linux_x64_cuda.py
# (since v1.13.5): sherpa-onnx-v<version>-cuda-12.x-cudnn-9.x-onnxruntime<its onnxruntime>-linux-x64-gpu.
# SHERPA_ONNX_VERSION must be the version of sherpa-onnx-linux-x64 in package-lock.json (checked
# below and by test/deploy/dockerfile.test.ts); SHERPA_ONNX_ORT_VERSION is the onnxruntime that
# release was built with (1.28.2 for v1.13.8, the same as its npm build).
ARG SHERPA_ONNX_VERSION=1.13.8
ARG SHERPA_ONNX_ORT_VERSION=1.28.2
# sha256 of that archive, as pinned by a public Nix build of the same release asset (fetchurl checks
# it on every build). It was not re-checked here: this project's machines cannot download from
# GitHub. The build stops when it is empty or does not match; give the right one with
# `--build-arg SHERPA_ONNX_GPU_SHA256=...` after checking the release's published digest.
ARG SHERPA_ONNX_GPU_SHA256=2132af1ae8c84c84f86ac091e4311839287851d2bf5e660332ebce3898a1e0b2
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl bzip2 \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# The VAD runs onnxruntime-node on CPU: never download its CUDA provider (README, "Installing").
ENV ONNXRUNTIME_NODE_INSTALL=skip
# npm ci installs node-llama-cpp's prebuilt binaries from the npm registry, the CUDA ones among them.
RUN npm ci --no-audit --no-fund
# sherpa-onnx-node asks for its platform package with `^`: the lock file decides, and the GPU
# libraries must be of exactly that release.
RUN installed=$(node -p "require('./node_modules/sherpa-onnx-linux-x64/package.json').version") \
 && if [ "$installed" != "${SHERPA_ONNX_VERSION}" ]; then \
      echo "ERROR: node_modules has sherpa-onnx-linux-x64 ${installed} but SHERPA_ONNX_VERSION is ${SHERPA_ONNX_VERSION}: set the ARG to the locked version (and its SHERPA_ONNX_ORT_VERSION and SHERPA_ONNX_GPU_SHA256)" >&2; \
      exit 1; \
    fi
RUN archive="sherpa-onnx-v${SHERPA_ONNX_VERSION}-cuda-12.x-cudnn-9.x-onnxruntime${SHERPA_ONNX_ORT_VERSION}-linux-x64-gpu" \
 && if [ -z "${SHERPA_ONNX_GPU_SHA256}" ]; then echo "ERROR: SHERPA_ONNX_GPU_SHA256 is empty: pin the sha256 of ${archive}.tar.bz2" >&2; exit 1; fi \
 && curl -fsSL -o /tmp/sherpa-gpu.tar.bz2 "https://github.com/k2-fsa/sherpa-onnx/releases/download/v${SHERPA_ONNX_VERSION}/${archive}.tar.bz2" \
 && if ! echo "${SHERPA_ONNX_GPU_SHA256}  /tmp/sherpa-gpu.tar.bz2" | sha256sum -c -; then \
      echo "ERROR: ${archive}.tar.bz2 has sha256 $(sha256sum /tmp/sherpa-gpu.tar.bz2 | cut -d' ' -f1), expected ${SHERPA_ONNX_GPU_SHA256}" >&2; exit 1; \
    fi \
 && mkdir /tmp/sherpa-gpu && tar -xjf /tmp/sherpa-gpu.tar.bz2 -C /tmp/sherpa-gpu --strip-components=1 \
 && test -f /tmp/sherpa-gpu/lib/libonnxruntime_providers_cuda.so \
 && find /tmp/sherpa-gpu/lib -maxdepth 1 -name '*.so*' ! -name '*tensorrt*' -exec cp -a {} node_modules/sherpa-onnx-linux-x64/ \; \
 && rm -rf /tmp/sherpa-gpu /tmp/sherpa-gpu.tar.bz2
COPY tsconfig.json ./
COPY builder ./builder
COPY handler ./handler
COPY src ./src
COPY cli ./cli
RUN npm run build && npm prune --omit=dev
# Binaries for other platforms are never loaded in this image (277 MB measured): leave them out.
RUN rm -rf node_modules/onnxruntime-node/bin/napi-v6/darwin node_modules/onnxruntime-node/bin/napi-v6/win32 \
      node_modules/onnxruntime-node/bin/napi-v6/linux/arm64 node_modules/@node-llama-cpp/linux-arm64 node_modules/@node-llama-cpp/linux-armv7l \
 && test -d node_modules/onnxruntime-node/bin/napi-v6/linux/x64 && test -d node_modules/@node-llama-cpp/linux-x64-cuda-ext

# ---- runtime ----
FROM ${CUDA_IMAGE} AS runtime
# The TTS engine is our own (tts-server/, package s2s_tts), installed with its pinned dependencies into
# /opt/venv; the worker starts it as `python -m s2s_tts --engine vibevoice ...` on loopback. Nothing of
# upstream's VibeVoice code is in the image: no checkout, no demo app, no `vibevoice` package, no
# transformers 4.51.3; the model, its tokenizer and the converted voices are on the network volume.
# torch: PyPI's torch wheels of this version are built with CUDA 13 (driver 580+), while the hosts run
# CUDA 12.4-12.8 drivers (.runpod/hub.json), so torch comes from PyTorch's CUDA 12 index first (it brings
# its own CUDA and cuDNN wheels; CUDA 12 minor-version compatibility runs it on any 12.x driver) and
# `pip install` of tts-server then finds its `torch==` pin satisfied. Not checked from here: that
# TORCH_INDEX serves TORCH_VERSION (the build stops at `pip install` if it does not).
# Python: s2s_tts needs 3.11+; Ubuntu 22.04's own archive has python3.11 beside its default 3.10.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu126

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    NODE_ENV=production \
    HF_HUB_OFFLINE=1 \
    S2S_DEVICE=cuda \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY --from=node /usr/local/bin/node /usr/local/bin/node

# The TTS engine: torch for CUDA 12, then tts-server with its pinned dependencies (not editable: the
# package is copied into the venv and its sources removed). The import check fails the build if torch is
# not the CUDA 12 build of the pinned version or the server cannot be imported.
COPY tts-server/pyproject.toml /opt/tts-server/pyproject.toml
COPY tts-server/src /opt/tts-server/src
RUN python3.11 -m venv /opt/venv \
 && pip install --disable-pip-version-check torch==${TORCH_VERSION} --index-url ${TORCH_INDEX} \
 && pip install --disable-pip-version-check /opt/tts-server \
 && rm -rf /opt/tts-server \
 && python -c "import torch, s2s_tts.server, s2s_tts.__main__; v = torch.__version__; assert v.startswith('${TORCH_VERSION}+cu12'), f'torch {v}: expected ${TORCH_VERSION}+cu12x'; print('torch', v, 'CUDA', torch.version.cuda)" \
 && if pip show vibevoice >/dev/null 2>&1; then echo "ERROR: the vibevoice package must not be in the image" >&2; exit 1; fi

WORKDIR /app
# Root-owned and read-only for the worker: it reads its code and libraries and writes only to the volume.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json test_input.json ./
COPY docker/entrypoint.sh /usr/local/bin/s2s-entrypoint

# Prove the CUDA libraries load here, without a GPU: `ldd` of each library the worker dlopens must
# find every dependency but the driver's libcuda.so.1 (mounted by the NVIDIA runtime at start).
#  - sherpa-onnx: its addon, C API and onnxruntime with the CUDA provider (the TensorRT one is never
#    loaded and is not copied). onnxruntime loads the providers from its own folder, hence the path.
#  - node-llama-cpp 3.21.1: @node-llama-cpp/linux-x64-cuda is built with CUDA 13 (libcudart.so.13,
#    driver 580+), which this CUDA 12 image does not have; node-llama-cpp then loads the CUDA 12.4
#    build in @node-llama-cpp/linux-x64-cuda-ext (bins/linux-x64-cuda/fallback/) after the main
#    folder's libggml-base.so, hence the path.
#  - cuDNN: onnxruntime's CUDA provider dlopens it (so ldd cannot see it): major version 9, found.
RUN set -eu; \
    ldd_ok() { out=$(LD_LIBRARY_PATH="$1" ldd "$2"); missing=$(echo "$out" | grep 'not found' | grep -v 'libcuda\.so\.1' || true); \
      if [ -n "$missing" ]; then echo "$out" >&2; echo "ERROR: $2 cannot load here: $missing" >&2; exit 1; fi; echo "ldd ok: $2"; }; \
    sherpa=/app/node_modules/sherpa-onnx-linux-x64; \
    for lib in sherpa-onnx.node libsherpa-onnx-c-api.so libonnxruntime.so libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do \
      test -f "$sherpa/$lib" || { echo "ERROR: $sherpa/$lib is missing" >&2; exit 1; }; ldd_ok "$sherpa" "$sherpa/$lib"; done; \
    llama=/app/node_modules/@node-llama-cpp; \
    fallback=$llama/linux-x64-cuda-ext/bins/linux-x64-cuda/fallback/libggml-cuda.so; \
    test -f "$fallback" || { echo "ERROR: node-llama-cpp's CUDA 12 fallback $fallback is missing" >&2; exit 1; }; \
    ldd_ok "$llama/linux-x64-cuda/bins/linux-x64-cuda" "$fallback"; \
    cudnn=$(dpkg-query -W -f='${Version}' 'libcudnn9-cuda-12' 2>/dev/null || true); \
    case "$cudnn" in 9.*) echo "cuDNN $cudnn";; *) echo "ERROR: onnxruntime's CUDA 12 build needs cuDNN 9 (package libcudnn9-cuda-12), found '${cudnn}'" >&2; exit 1;; esac; \
    for lib in libcudnn.so.9 libcudnn_graph.so.9 libcudnn_ops.so.9 libcudnn_cnn.so.9 libcufft.so.11 libcublasLt.so.12; do \
      ldconfig -p | grep -q "$lib" || { echo "ERROR: $lib is not in the image" >&2; exit 1; }; done; \
    echo "layer sizes:"; du -sh /app/node_modules /opt/venv /usr/local/cuda/ 2>/dev/null || true

# The worker runs as `worker`. The entrypoint starts as root only to create and own the models folder
# on the root-owned network volume, then runs the command as `worker` (docker/entrypoint.sh).
RUN useradd --create-home --uid 1000 worker
ENTRYPOINT ["/usr/local/bin/s2s-entrypoint"]

# 8005: live sessions (exposed TCP port). Port 8000 (the TTS server) stays on loopback and is never exposed.
EXPOSE 8005
CMD ["node", "dist/handler.mjs"]
