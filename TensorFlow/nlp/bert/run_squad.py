r"""BERT fine-tuning on SQuAD v1.1 / v2.0, with google-research/bert's command line.

    python run_squad.py --vocab_file=$BERT_DIR/vocab.txt \
      --bert_config_file=$BERT_DIR/bert_config.json \
      --init_checkpoint=$BERT_DIR/bert_model.ckpt \
      --do_train=True --train_file=$SQUAD_DIR/train-v1.1.json \
      --do_predict=True --predict_file=$SQUAD_DIR/dev-v1.1.json --do_eval=True \
      --train_batch_size=24 --learning_rate=3e-5 --num_train_epochs=2.0 \
      --max_seq_length=384 --doc_stride=128 --output_dir=/tmp/squad_base/

Add ``--use_horovod=true`` under ``mpirun -np N`` for several workers, and
``--bf16_config_path=bf16_config/bert.json`` for bf16. The flow is shared with the other
TensorFlow models (`bertfam.tf.squad`); this file only hands over BERT's recipe.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from recipe import RECIPE  # noqa: E402

from bertfam.tf.scripts import squad_script  # noqa: E402

SCRIPT = squad_script(RECIPE)

if __name__ == "__main__":
    SCRIPT.run()
