#!/usr/bin/env bash
# Installs what onepixel's tests and quick start need on a fresh Debian machine with Node 20:
# Debian's Fashion-MNIST (real grayscale test data), numpy (tests check numpy reads our .npy),
# PyTorch CPU, PIL and OpenCV (the independent references the model, optimiser, schedule,
# augmentation and countermeasure tests compare against), torchvision (a test loads the protected
# copies with it; onepixel itself never uses Python), Mesa's EGL with its software rasteriser (so the webgpu backend's
# tests run Dawn's OpenGL path on a machine without a GPU), oneDNN and a C++ toolchain for the
# native backend (node-gyp needs make and python3), Chromium (a test opens the audit report in
# it headless), Slurm and munge (a one-node cluster for the sharding test), then the npm packages
# (which build the TypeScript and the native addon). OpenBLAS (pthread) becomes libblas.so.3, which
# Debian's PyTorch calls for fp32 matrix products: with the reference BLAS the bench peer's Linear
# layers run at a few GFLOP/s, so every speed ratio against it would flatter onepixel.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
/usr/bin/python3 -c 'import numpy' 2>/dev/null || need+=(python3-numpy)
/usr/bin/python3 -c 'import torch' 2>/dev/null || need+=(python3-torch)
/usr/bin/python3 -c 'import PIL' 2>/dev/null || need+=(python3-pil)
/usr/bin/python3 -c 'import cv2' 2>/dev/null || need+=(python3-opencv)
/usr/bin/python3 -c 'import torchvision' 2>/dev/null || need+=(python3-torchvision)
lib=/usr/lib/x86_64-linux-gnu
[ -e $lib/libEGL.so ] || need+=(libegl-dev)
[ -e $lib/libEGL_mesa.so.0 ] || need+=(libegl-mesa0)
[ -e $lib/dri/swrast_dri.so ] || need+=(libgl1-mesa-dri)
[ -f /usr/include/oneapi/dnnl/dnnl.hpp ] || need+=(libdnnl-dev)
ls $lib/openblas-pthread/libblas.so.3 >/dev/null 2>&1 || need+=(libopenblas0-pthread)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
command -v chromium >/dev/null || need+=(chromium)
# A one-node Slurm (scripts/slurm-local.sh) for the cluster integration test.
command -v slurmctld >/dev/null || need+=(slurmctld)
command -v slurmd >/dev/null || need+=(slurmd)
command -v munged >/dev/null || need+=(munge)
command -v sbatch >/dev/null || need+=(slurm-client)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
npm ci --no-audit --no-fund
