#!/usr/bin/env bash
# OpenMP scaling: the conv layers, pools and L1 shapes at several thread counts, pyconv
# beside PyTorch (and the L1 peers) on the same count. Not a test; run from the repository
# root after building in place:
#   bash bench/scaling.sh [THREADS...]      (default: 1 2 4 8 16)
# The ratios to compare are those within one thread count; the GFLOP/s and G pairs/s
# across counts give the scaling.
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
threads=("${@:-1 2 4 8 16}")
read -r -a threads <<< "${threads[*]}"
for t in "${threads[@]}"; do
    echo "## $t threads"
    python3 bench/conv_layers.py --threads "$t" --repeat 5 --dtype float32 --methods auto \
        --layers alexnet1 vgg resnet_late pointwise depthwise --no-oracle
    python3 bench/bench_pool.py --pool max --threads "$t" --repeats 10
done
for t in "${threads[0]}" "${threads[-1]}"; do  # the peers are slow on one thread
    echo "## $t threads"
    python3 bench/bench_l1.py --threads "$t" --dtype float32 --repeats 3
done
