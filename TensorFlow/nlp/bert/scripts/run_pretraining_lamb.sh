#!/usr/bin/env bash
# Phase 1 then phase 2 with NVIDIA's positional arguments (see lamb_phase.sh), logged to
# $RESULTS_DIR/<tag>.<date>.log; phase 2 starts only when phase 1 succeeded.
set -euo pipefail
here=$(dirname "$0")
batch_p1=${1:-64} batch_p2=${2:-8} precision=${6:-fp32} num_cards=${8:-1}
accumulation_p1=${13:-128} accumulation_p2=${14:-512} bert_model=${15:-large}
global_p1=$((batch_p1 * num_cards * accumulation_p1))
global_p2=$((batch_p2 * num_cards * accumulation_p2))
tag=tf_bert_pretraining_lamb_${bert_model}_${precision}_gbs1${global_p1}_gbs2${global_p2}
date=$(date +%y%m%d%H%M%S)
export RESULTS_DIR=${RESULTS_DIR:-/results/${tag}_${date}}
mkdir -p "$RESULTS_DIR"
log=$RESULTS_DIR/$tag.$date.log
echo "Checkpoints in $RESULTS_DIR, log in $log"
bash "$here/run_pretraining_lamb_phase1.sh" "$@" 2>&1 | tee -a "$log"
bash "$here/run_pretraining_lamb_phase2.sh" "$@" 2>&1 | tee -a "$log"
