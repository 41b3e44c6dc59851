#!/usr/bin/env bash
# Fine-tune every pre-training checkpoint of a run on SQuAD, as Habana's
# scripts/finetune_ckpts_on_squad.sh: for each <checkpoints>/*.index,
# postprocess_pretrained_ckpt.py writes <checkpoints>/postprocessed/<ckpt>/{discriminator,
# generator}, then scripts/electra_squad.sh fine-tunes the discriminator into
# results/squad/<ckpt>/.
#   checkpoints=./results/models/base/checkpoints bash scripts/finetune_ckpts_on_squad.sh
#   checkpoints=... bash scripts/finetune_ckpts_on_squad.sh cpu fp32 2 16 128 4e-4 0 42 1.1 /data/squad
# Arguments, all optional: device (hpu; anything else runs elsewhere, default cpu) and
# precision, then electra_squad.sh's epochs, batch_size, infer_batch_size, learning_rate,
# num_hpu, seed, SQuAD version and SQuAD folder. Upstream passes the model folder where
# electra_squad.sh reads the device, so its fine-tunes ignore the checkpoints; here each
# one fine-tunes its own checkpoint.
set -euo pipefail

checkpoints=${checkpoints:-"results/base/checkpoints"}
device=${1:-"cpu"}
precision=${2:-"fp32"}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

shopt -s nullglob
indexes=("$checkpoints"/*.index)
if [ ${#indexes[@]} -eq 0 ]; then
  echo "Error! no checkpoint (*.index) in $checkpoints: set checkpoints=<run>/checkpoints" >&2
  exit 1
fi
for index in "${indexes[@]}"; do
  prefix=${index%.index}
  name=$(basename "$prefix")
  weights="$checkpoints/postprocessed/$name"
  "$PYTHON" "$HERE/postprocess_pretrained_ckpt.py" --pretrained_checkpoint="$prefix" \
    --output_dir="$weights"
  # electra_squad.sh's arguments 4-11 from ours 3-10 (its defaults otherwise), 12: the output.
  version=${9:-1.1}
  squad_args=("${3:-2}" "${4:-16}" "${5:-128}" "${6:-4e-4}" "${7:-0}" "${8:-$RANDOM}" "$version"
    "${10:-data/download/squad/v$version}")
  bash "$HERE/scripts/electra_squad.sh" "$device" "$precision" "$weights/discriminator" \
    "${squad_args[@]}" "results/squad/$name/"
done
