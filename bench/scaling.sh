#!/usr/bin/env bash
# OpenMP scaling: the conv layers, pools and L1 shapes of `pyconv bench` at several thread
# counts, pyconv beside PyTorch (and the L1 peers) on the same count. Not a test; run from
# the repository root after building in place:
#   bash bench/scaling.sh [THREADS...]      (default: 1 2 4 8 16)
# The ratios to compare are those within one thread count; the GFLOP/s, GB/s and G pairs/s
# across counts give the scaling, and % GEMM and % copy what share of the machine's matmul
# and copy speed on that count the kernels reach.
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
threads=("${@:-1 2 4 8 16}")
read -r -a threads <<< "${threads[*]}"
for t in "${threads[@]}"; do
    echo "## $t threads"
    python3 -m pyconv bench --threads "$t" --only conv \
        --case alexnet_conv1 vgg_3x3 resnet_late conv1x1 depthwise --contenders auto torch torch-cl
    python3 -m pyconv bench --threads "$t" --only pool --case alexnet_pool1 vgg_pool \
        --contenders pyconv torch torch-cl
done
for t in "${threads[0]}" "${threads[-1]}"; do  # the peers are slow on one thread
    echo "## $t threads"
    python3 -m pyconv bench --threads "$t" --only l1 --case cifar10_knn square_d128 large_d32 \
        --contenders pyconv torch scipy sklearn faiss
done
