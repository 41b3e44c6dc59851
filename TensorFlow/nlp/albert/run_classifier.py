r"""ALBERT fine-tuning on GLUE (MRPC, CoLA, MNLI), with google-research/albert's command line.

    python run_classifier.py --task_name=mrpc --data_dir=$GLUE_DIR \
      --albert_config_file=albert_base_v1/albert_config.json \
      --spm_model_file=albert_base_v1/30k-clean.model \
      --vocab_file=albert_base_v1/30k-clean.vocab \
      --init_checkpoint=albert_base_v1/model.ckpt-best \
      --do_train=True --do_eval=True --do_predict=True \
      --max_seq_length=128 --train_batch_size=32 --learning_rate=2e-05 \
      --train_step=800 --warmup_step=200 --save_checkpoints_steps=100 \
      --output_dir=/tmp/albert_mrpc

The flow is `classifier_v1` (upstream's checkpoint-by-checkpoint evaluation and outputs)
on the shared GLUE pieces, with ALBERT's recipe (recipe.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from classifier_v1 import classifier_v1_script  # noqa: E402
from recipe import RECIPE  # noqa: E402

SCRIPT = classifier_v1_script(RECIPE)

if __name__ == "__main__":
    SCRIPT.run()
