#!/usr/bin/env bash
# ELECTRA SQuAD fine-tuning and evaluation, as Habana's scripts/electra_squad.sh runs
# run_tf_squad.py: the same positional arguments in the order the script reads them, the
# same constant flags, the log tee'd to $OUT_DIR/logfile.txt.
#   bash scripts/electra_squad.sh hpu                # or cpu / gpu: anything but hpu
#   bash scripts/electra_squad.sh cpu fp32 results/base/discriminator 2 16 128 4e-4 0 42 1.1 \
#     /data/squad/v1.1
# Run from TensorFlow/nlp/electra with BERT's uncased vocab at vocab/vocab.txt. The SQuAD
# folder must hold train-v<version>.json, dev-v<version>.json and evaluate-v<version>.py;
# ours defaults to data/download/squad/v<version>, where this repository ships the
# evaluation script (upstream's default is a placeholder to edit).
set -euo pipefail

device=${1:?usage: bash scripts/electra_squad.sh <hpu|cpu|gpu> [precision] [electra_model] ...}
precision=${2:-"fp32"}
electra_model=${3:-"google/electra-base-discriminator"}
epochs=${4:-"2"}
batch_size=${5:-"16"}
infer_batch_size=${6:-"128"}
learning_rate=${7:-"4e-4"}
num_hpu=${8:-"0"}
seed=${9:-$RANDOM}
SQUAD_VERSION=${10:-"1.1"}
squad_dir=${11:-"data/download/squad/v$SQUAD_VERSION"}
OUT_DIR=${12:-"results/"}
init_checkpoint=${13:-"init_checkpoint_loc"}
mode=${14:-"train_eval"}
env=${15:-"interactive"}
cache_dir=${16:-"$squad_dir"}
max_steps=${17:-"-1"}
train_iter_per_epoch=${18:-"-1"}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

fail() { echo "Error! $*" >&2; exit 1; }

case "$precision" in
  hmp) precision_flags=(--hmp --xla) ;;
  fp32 | tf32) precision_flags=() ;;
  *) fail "unknown <precision> argument: $precision (hmp, fp32 or tf32)" ;;
esac
case "$SQUAD_VERSION" in
  1.1) version_flags=() ;;
  2.0) version_flags=(--version_2_with_negative) ;;
  *) fail "unknown SQuAD version: $SQUAD_VERSION (1.1 or 2.0)" ;;
esac
train_flags=(--do_train --train_batch_size="$batch_size")
eval_flags=(--do_predict --predict_batch_size="$infer_batch_size"
  --eval_script="$squad_dir/evaluate-v$SQUAD_VERSION.py" --do_eval)
case "$mode" in
  train) mode_flags=("${train_flags[@]}") ;;
  eval) mode_flags=("${eval_flags[@]}") ;;
  prediction) mode_flags=(--do_predict --predict_batch_size="$infer_batch_size") ;;
  train_eval) mode_flags=("${train_flags[@]}" "${eval_flags[@]}") ;;
  *) fail "unknown mode: $mode (train, eval, prediction or train_eval)" ;;
esac
# Every file the run reads from the SQuAD folder, checked before anything is written.
case "$mode" in
  train) needs=("train-v$SQUAD_VERSION.json") ;;
  prediction) needs=("dev-v$SQUAD_VERSION.json") ;;
  eval) needs=("dev-v$SQUAD_VERSION.json" "evaluate-v$SQUAD_VERSION.py") ;;
  train_eval) needs=("train-v$SQUAD_VERSION.json" "dev-v$SQUAD_VERSION.json" "evaluate-v$SQUAD_VERSION.py") ;;
esac
for file in "${needs[@]}"; do
  [ -f "$squad_dir/$file" ] || fail "$squad_dir/$file missing (the SQuAD folder, argument 11; \
evaluate-v*.py ships in $HERE/data/download/squad/v$SQUAD_VERSION)"
done

use_hpu=false
[ "$device" = "hpu" ] && use_hpu=true
launcher=()
if [ "$num_hpu" -ge 1 ] && [ "$env" != "cluster" ]; then
  launcher=(mpirun -np "$num_hpu" --allow-run-as-root)
fi
if [ "$use_hpu" = "true" ] && [ "$precision" = "hmp" ]; then
  export TF_BF16_CONVERSION=1
else
  export TF_BF16_CONVERSION=false
fi

mkdir -p "$OUT_DIR"
command=("$PYTHON" "$HERE/run_tf_squad.py" --init_checkpoint="$init_checkpoint"
  --data_dir="$squad_dir" --do_lower_case --electra_model="$electra_model"
  --learning_rate="$learning_rate" --warmup_proportion 0.05 --weight_decay_rate 0.01
  --layerwise_lr_decay 0.8 --seed="$seed" --num_train_epochs="$epochs"
  --max_seq_length=384 --doc_stride=128 --beam_size 5 --joint_head True
  --null_score_diff_threshold -5.6 --output_dir="$OUT_DIR" --cache_dir="$cache_dir"
  --max_steps="$max_steps" --vocab_file=vocab/vocab.txt --use_hpu="$use_hpu" --log_freq=1
  --train_iter_per_epoch="$train_iter_per_epoch"
  "${mode_flags[@]}" "${version_flags[@]}" "${precision_flags[@]}")
echo "${launcher[*]} ${command[*]}" | tee "$OUT_DIR/logfile.txt"
"${launcher[@]}" "${command[@]}" 2>&1 | tee -a "$OUT_DIR/logfile.txt"
