#!/usr/bin/env bash
# ELECTRA pre-training, phase 1 (128 tokens) then phase 2 (512), as Habana's
# scripts/electra.sh runs run_pretraining.py: the same positional arguments, in the order
# the script uses them, the same constant flags and log files.
#   bash scripts/electra.sh hpu                  # or cpu / gpu: anything but hpu
#   bash scripts/electra.sh cpu fp32 2 6e-3 2    # two processes under mpirun
# Run from TensorFlow/nlp/electra with a results/ folder there (as upstream requires) and
# BERT's uncased vocab at vocab/vocab.txt. Ours: ELECTRA_CONFIG_FILE, when set, is passed
# as --electra_config_file (a smaller discriminator than --model_size's).
set -euo pipefail

device=${1:?usage: bash scripts/electra.sh <hpu|cpu|gpu> [precision] [batch_p1] ...}
precision=${2:-"fp32"}
train_batch_size_p1=${3:-2}
learning_rate_p1=${4:-"6e-3"}
num_hpu=${5:-0}
xla=${6:-"xla"}
warmup_steps_p1=${7:-5}
train_steps_p1=${8:-20}
save_checkpoint_steps=${9:-20}
resume_training=${10:-"false"}
optimizer=${11:-"lamb"}
accumulate_gradients=${12:-"true"}
gradient_accumulation_steps_p1=${13:-4}
seed=${14:-100}
job_name=${15:-"electra_lamb_pretraining"}
train_batch_size_p2=${16:-2}
learning_rate_p2=${17:-"4e-3"}
warmup_steps_p2=${18:-5}
train_steps_p2=${19:-20}
gradient_accumulation_steps_p2=${20:-4}
ELECTRA_MODEL=${21:-"base"}
DATA_DIR_P1=${22:-"/data/tensorflow/bert/books_wiki_en_corpus/tfrecord/seq_len_128/books_wiki_en_corpus/training/books_wiki*"}
DATA_DIR_P2=${23:-"/data/tensorflow/bert/books_wiki_en_corpus/tfrecord/seq_len_512/books_wiki_en_corpus/training/books_wiki*"}
CODEDIR=${24:-"."}
init_checkpoint=${25:-"None"}
restore_checkpoint=${restore_checkpoint:-"true"}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

RESULTS_DIR=$CODEDIR/results
if [ ! -d "$RESULTS_DIR" ]; then
  echo "Error! $RESULTS_DIR directory missing." >&2
  exit 1
fi

case "$precision" in
  hmp) precision_flag="--hmp" ;;
  fp32 | tf32) precision_flag="" ;;
  *) echo "Unknown <precision> argument: $precision (hmp, fp32 or tf32)" >&2; exit 2 ;;
esac
use_hpu=false
[ "$device" = "hpu" ] && use_hpu=true
xla_flag=""
[ "$xla" = "xla" ] && xla_flag="--xla"
launcher=()
if [ "$num_hpu" -ge 1 ]; then
  launcher=(mpirun -np "$num_hpu" --allow-run-as-root)
fi

common=(--model_name="$ELECTRA_MODEL" --model_size="$ELECTRA_MODEL" --disc_weight=50.0
  --generator_hidden_size=0.3333333 --skip_adaptive --opt_beta_1=0.878 --opt_beta_2=0.974
  --lr_decay_power=0.5 --log_dir "$RESULTS_DIR" --log_freq=1 --optimizer="$optimizer"
  --seed="$seed" --use_hpu="$use_hpu" --save_checkpoints_steps="$save_checkpoint_steps")
[ -n "${ELECTRA_CONFIG_FILE:-}" ] && common+=(--electra_config_file="$ELECTRA_CONFIG_FILE")
[ -n "$precision_flag" ] && common+=("$precision_flag")
[ -n "$xla_flag" ] && common+=("$xla_flag")

phase() {  # phase number, its own flags...
  local number=$1
  shift
  local log="$RESULTS_DIR/$job_name.electra_pretraining_phase${number}_$precision.$(date +%y%m%d%H%M%S).log"
  echo "${launcher[*]} $PYTHON $HERE/run_pretraining.py ${common[*]} $*" | tee "$log"
  "${launcher[@]}" "$PYTHON" "$HERE/run_pretraining.py" "${common[@]}" "$@" 2>&1 | tee -a "$log"
}

p1=(--pretrain_tfrecords="$DATA_DIR_P1" --max_seq_length=128
  --train_batch_size="$train_batch_size_p1" --learning_rate="$learning_rate_p1"
  --num_warmup_steps="$warmup_steps_p1" --num_train_steps="$train_steps_p1")
[ "$accumulate_gradients" = "true" ] && p1+=(--gradient_accumulation_steps="$gradient_accumulation_steps_p1")
[ "$resume_training" = "true" ] && p1+=(--restore_checkpoint=latest)
[ "$init_checkpoint" != "None" ] && p1+=(--restore_checkpoint="$init_checkpoint")
phase 1 "${p1[@]}"

p2=(--pretrain_tfrecords="$DATA_DIR_P2" --max_seq_length=512
  --train_batch_size="$train_batch_size_p2" --learning_rate="$learning_rate_p2"
  --num_warmup_steps="$warmup_steps_p2" --num_train_steps="$train_steps_p2")
[ "$accumulate_gradients" = "true" ] && p2+=(--gradient_accumulation_steps="$gradient_accumulation_steps_p2")
[ "$restore_checkpoint" = "true" ] && p2+=(--restore_checkpoint=latest --phase2)
phase 2 "${p2[@]}"
