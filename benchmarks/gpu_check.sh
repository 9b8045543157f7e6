#!/usr/bin/env bash
# The prepared check of a CUDA machine (≤ 8 minutes on one GPU): device tests, throughput of every activation,
# a 768 → 65,536 TopK memory run and one paper-preset bench method; writes gpu-check.json and gpu-check.md.
# Usage: benchmarks/gpu_check.sh [--out runs/gpu-check] [--device cuda] [--dry-run]   (see benchmarks/gpu_check.py)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python benchmarks/gpu_check.py "$@"
