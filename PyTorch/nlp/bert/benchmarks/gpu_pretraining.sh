#!/usr/bin/env bash
# The GPU figures of the README's Speed section: pre-training step throughput in bf16
# against HuggingFace (BERT-base and -large, 128 and 512), our fp32 beside our bf16, and
# the op-list overhead. Run from PyTorch/nlp/bert on a machine with one CUDA GPU:
#   bash benchmarks/gpu_pretraining.sh [output folder]
set -uo pipefail
out=${1:-gpu_results}
mkdir -p "$out"
python=${PYTHON:-python3}
bench() {
  local name=$1
  shift
  echo "== $name: $*"
  "$python" benchmarks/pretraining_throughput.py --device cuda "$@" 2>"$out/$name.err" |
    tee "$out/$name.txt"
}
bench base128_bf16 --precision bf16 --config base --seq_length 128 --batch_size 64 --steps 5 --rounds 3 --warmup 2
bench large128_bf16 --precision bf16 --config large --seq_length 128 --batch_size 64 --steps 5 --rounds 3 --warmup 2
bench base512_bf16 --precision bf16 --config base --seq_length 512 --batch_size 16 --steps 5 --rounds 3 --warmup 2 --no_graph
bench large512_bf16 --precision bf16 --config large --seq_length 512 --batch_size 8 --steps 5 --rounds 3 --warmup 2 --no_graph
bench base128_fp32 --precision fp32 --config base --seq_length 128 --batch_size 64 --steps 5 --rounds 3 --warmup 2 --no_graph
