#!/usr/bin/env bash
# One phase of LAMB pre-training with NVIDIA's positional arguments:
#   bash scripts/lamb_phase.sh <1|2> [batch_p1] [batch_p2] [eval_batch] [lr_p1] [lr_p2]
#       [precision] [use_xla] [num_cards] [warmup_p1] [warmup_p2] [train_steps]
#       [save_checkpoints_steps] [accumulation_p1] [accumulation_p2] [bert_model]
# run_pretraining_lamb_phase1.sh and _phase2.sh call it; run_pretraining_lamb.sh runs both.
#
# Phase 1 trains 9/10 of train_steps on the 128/20 records; phase 2 warm-starts from
# phase 1's last checkpoint and trains the other 1/10, scaled by the ratio of the two
# global batches so that it sees the same share of sequences, on the 512/80 records.
# Environment: DATA_DIR (records under tfrecord/seq_len_<L>/wikicorpus_en/, as
# create_datasets_from_start.sh writes them; default data), RESULTS_DIR (phase_1/ and
# phase_2/ go under it; default /results), BERT_CONFIG (default: Google's config of
# bert_model under $DATA_DIR/download), PYTHON, and MPIRUN for num_cards > 1.
set -euo pipefail

phase=${1:?"give the phase, 1 or 2"}
shift
batch_p1=${1:-64}
batch_p2=${2:-8}
eval_batch=${3:-8}
lr_p1=${4:-7.5e-4}
lr_p2=${5:-5e-4}
precision=${6:-fp32}
use_xla=${7:-false}
num_cards=${8:-1}
warmup_p1=${9:-2000}
warmup_p2=${10:-200}
train_steps=${11:-7820}
save_checkpoints_steps=${12:-100}
accumulation_p1=${13:-128}
accumulation_p2=${14:-512}
bert_model=${15:-large}

fail() { echo "$(basename "$0"): $*" >&2; exit 2; }

case "$bert_model" in
  large) weights=uncased_L-24_H-1024_A-16 ;;
  base) weights=uncased_L-12_H-768_A-12 ;;
  *) fail "bert_model=$bert_model: use large or base" ;;
esac
DATA_DIR=${DATA_DIR:-data}
RESULTS_DIR=${RESULTS_DIR:-/results}
BERT_CONFIG=${BERT_CONFIG:-$DATA_DIR/download/google_pretrained_weights/$weights/bert_config.json}

# Our scripts compute in fp32 or, through Habana's JSON op lists, in bf16; fp16 loss
# scaling and XLA are not implemented, so asking for them stops here rather than later.
case "$precision" in
  fp32 | tf32) precision_flags=(--noamp) ;;
  bf16) precision_flags=(--noamp --bf16_config_path=bf16_config/bert.json) ;;
  *) fail "precision=$precision: use fp32, tf32 or bf16 (fp16 and manual_fp16 are not supported)" ;;
esac
[ "$use_xla" = false ] || fail "use_xla=$use_xla: XLA is not supported, give false"
precision_flags+=(--nouse_xla)

launcher=()
horovod=()
if [ "$num_cards" -gt 1 ]; then
  read -r -a launcher <<< "${MPIRUN:-mpirun --allow-run-as-root --bind-to socket}"
  launcher+=(-np "$num_cards")
  horovod=(--horovod=true)
fi

steps_p1=$((train_steps * 9 / 10))
if [ "$phase" = 1 ]; then
  seq_len=128 predictions=20 steps=$steps_p1 batch=$batch_p1 lr=$lr_p1
  warmup=$warmup_p1 accumulation=$accumulation_p1 init=()
elif [ "$phase" = 2 ]; then
  global_p1=$((batch_p1 * accumulation_p1))
  global_p2=$((batch_p2 * accumulation_p2))
  seq_len=512 predictions=80 steps=$((train_steps / 10 * global_p1 / global_p2))
  batch=$batch_p2 lr=$lr_p2 warmup=$warmup_p2 accumulation=$accumulation_p2
  init=(--init_checkpoint="$RESULTS_DIR/phase_1/model.ckpt-$steps_p1")
  [ -f "$RESULTS_DIR/phase_1/model.ckpt-$steps_p1.index" ] ||
    fail "phase 2 starts from $RESULTS_DIR/phase_1/model.ckpt-$steps_p1, which does not exist: run phase 1 first"
else
  fail "phase=$phase: use 1 or 2"
fi
[ "$steps" -gt 0 ] || fail "train_steps=$train_steps leaves phase $phase no updates"

records=$DATA_DIR/tfrecord/seq_len_$seq_len/wikicorpus_en
output=$RESULTS_DIR/phase_$phase
mkdir -p "$output"
cd "$(dirname "$0")/.."
exec "${launcher[@]}" "${PYTHON:-python3}" run_pretraining.py \
  --bert_config_file="$BERT_CONFIG" "${init[@]}" \
  --input_files_dir="$records/training" --eval_files_dir="$records/test" \
  --output_dir="$output" --dllog_path="$RESULTS_DIR/phase_${phase}_dllog.json" \
  --do_train=true --do_eval=true --optimizer_type=lamb \
  --train_batch_size="$batch" --eval_batch_size="$eval_batch" \
  --max_seq_length="$seq_len" --max_predictions_per_seq="$predictions" \
  --num_train_steps="$steps" --num_warmup_steps="$warmup" --learning_rate="$lr" \
  --num_accumulation_steps="$accumulation" --allreduce_post_accumulation=true \
  --save_checkpoints_steps="$save_checkpoints_steps" \
  "${horovod[@]}" "${precision_flags[@]}"
