#!/usr/bin/env bash
# Two questions the first GPU run (gpu_pretraining.sh) left open, in one run:
# 1. Where bf16 loses to fp32 at MiniLM size (SQuAD fine-tuning, 32 x 128): each step's
#    wall time against its kernel time, fp32 and bf16, eager and compiled, with the
#    compiled steps replayed as CUDA graphs.
# 2. Model FLOPs utilization of BERT-large phase 1 as the demo runs it: micro-batches of
#    64 x 128 accumulated into one update (the demo accumulates 128; 16 here), eager, then
#    compiled; BERT-base the same.
# Run from PyTorch/nlp/bert on a machine with one CUDA GPU:
#   PYTHONPATH=../../../common/src bash benchmarks/gpu_bf16_phase1.sh [output folder]
set -uo pipefail
out=${1:-gpu_results}
python=${PYTHON:-python3}
source "$(dirname "$0")/gpu_common.sh"
finetune="benchmarks/finetune_throughput.py --device cuda --config minilm --batch_size 32"
finetune="$finetune --steps 5 --rounds 3 --warmup 3 --cudagraphs --profile"
run minilm_bf16 110 $finetune --precision bf16
run minilm_fp32 110 $finetune --precision fp32
phase1="benchmarks/pretraining_throughput.py --device cuda --precision bf16 --seq_length 128"
phase1="$phase1 --batch_size 64 --accumulation 16 --steps 2 --rounds 3 --warmup 1"
run large_phase1_eager 150 $phase1 --config large --no_graph --profile
run large_phase1 400 $phase1 --config large
run base_phase1 200 $phase1 --config base
