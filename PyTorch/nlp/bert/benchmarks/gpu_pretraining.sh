#!/usr/bin/env bash
# The GPU figures of the README's Speed section, in one run: that the bf16 op lists carried
# by autocast compute every call of a BERT forward in the listed dtype on CUDA too (and
# what they cost against fp32 and plain autocast), then pre-training step throughput in
# bf16 against HuggingFace (BERT-base and -large, 128 and 512; eager, then compiled), and
# our fp32 beside our bf16. Run from PyTorch/nlp/bert on a machine with one CUDA GPU:
#   PYTHONPATH=../../../common/src bash benchmarks/gpu_pretraining.sh [output folder]
# Each benchmark gets at most STEP_LIMIT seconds (default 240); figures go to the output
# folder as they come, one .txt (and .err) each.
set -uo pipefail
out=${1:-gpu_results}
python=${PYTHON:-python3}
limit=${STEP_LIMIT:-240}
source "$(dirname "$0")/gpu_common.sh"
timing="--steps 5 --rounds 3 --warmup 2"
overhead=benchmarks/hmp_overhead.py
run lists_base_pt "$limit" $overhead --device cuda --config base --lists pt --seq_length 128 \
  --batch_size 64 $timing
run lists_minilm_bert "$limit" $overhead --device cuda --config minilm --lists bert --seq_length 128 \
  --batch_size 32 $timing
pretrain="benchmarks/pretraining_throughput.py --device cuda $timing"
run base128_bf16 "$limit" $pretrain --precision bf16 --config base --seq_length 128 --batch_size 64 --no_graph
run base128_fp32 "$limit" $pretrain --precision fp32 --config base --seq_length 128 --batch_size 64 --no_graph
run large128_bf16 "$limit" $pretrain --precision bf16 --config large --seq_length 128 --batch_size 64 --no_graph
run base512_bf16 "$limit" $pretrain --precision bf16 --config base --seq_length 512 --batch_size 32 --no_graph
run large512_bf16 "$limit" $pretrain --precision bf16 --config large --seq_length 512 --batch_size 16 --no_graph
run base128_bf16_graph "$limit" $pretrain --precision bf16 --config base --seq_length 128 --batch_size 64
run large128_bf16_graph "$limit" $pretrain --precision bf16 --config large --seq_length 128 --batch_size 64
