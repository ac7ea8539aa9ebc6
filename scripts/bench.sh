#!/usr/bin/env bash
# Set up and run the performance benchmarks: micro (against the machine's write/hash/read floors), remotes
# (push/pull against local S3 servers, as ratios to raw transfers) and
# notebooks (per-cell checkpoints in real kernels against Kishu, dill and cloudpickle, installed from PyPI).
# Usage: scripts/bench.sh [--quick] [notebooks.py options]   (the full run takes about 40 minutes)
source "$(dirname "$0")/env.sh"
pip_install -e ".[test]"
if [ "${1:-}" = "--quick" ]; then
  python benchmarks/micro.py --gib 0.25 --reps 1
  python benchmarks/remotes.py --mib 256
  python benchmarks/llm.py --quick --reps 1
else
  python benchmarks/micro.py --gib 1 --reps 3
  python benchmarks/remotes.py --mib 1024                    # remotes: push/pull against moto
  python benchmarks/remotes.py --mib 1024 --server seaweedfs # and a real object store
  python benchmarks/llm.py                                   # a ~50M transformers model, LoRA versions
fi
python benchmarks/notebooks.py "$@"
