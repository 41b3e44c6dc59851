r"""ALBERT fine-tuning on SQuAD v1.1, with Habana's (google-research/albert's) command line.

    TF_BF16_CONVERSION=bf16_config/albert.json python run_squad_v1.py \
      --train_feature_file=/root/tmp/albert_large/train_feature_file.tf_record \
      --predict_feature_file=/root/tmp/albert_large/predict_feature_file.tf_record \
      --predict_feature_left_file=/root/tmp/albert_large/predict_feature_left_file.tf_record \
      --spm_model_file=albert_large_v1/30k-clean.model \
      --vocab_file=albert_large_v1/30k-clean.vocab \
      --albert_config_file=albert_large_v1/albert_config.json \
      --init_checkpoint=albert_large_v1/model.ckpt-best \
      --do_train=True --train_file=$SQUAD_DIR/train-v1.1.json \
      --do_predict=True --predict_file=$SQUAD_DIR/dev-v1.1.json \
      --train_batch_size=32 --learning_rate=3e-05 --num_train_epochs=2 \
      --max_seq_length=384 --doc_stride=128 --output_dir=/root/tmp/albert_large \
      --use_horovod=false --enable_scoped_allocator=False --save_checkpoints_steps=5000

The flow is `squad_v1` (upstream's checkpoint-by-checkpoint evaluation and outputs) on
the shared SQuAD pieces, with ALBERT's recipe (recipe.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from recipe import RECIPE  # noqa: E402
from squad_v1 import squad_v1_script  # noqa: E402

SCRIPT = squad_v1_script(RECIPE)

if __name__ == "__main__":
    SCRIPT.run()
