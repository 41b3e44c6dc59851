r"""BERT fine-tuning on GLUE tasks (MRPC, CoLA, MNLI, XNLI) with google-research/bert's flags.

    python run_classifier.py --task_name=MRPC --do_train=true --do_eval=true \
      --data_dir=$GLUE_DIR/MRPC --vocab_file=$BERT_DIR/vocab.txt \
      --bert_config_file=$BERT_DIR/bert_config.json \
      --init_checkpoint=$BERT_DIR/bert_model.ckpt --max_seq_length=128 \
      --train_batch_size=32 --learning_rate=2e-5 --num_train_epochs=3.0 \
      --output_dir=/tmp/mrpc_output/

Add ``--do_predict=true`` for test_results.tsv, ``--use_horovod=true`` under ``mpirun -np N``
for several workers, and ``--bf16_config_path=bf16_config/bert.json`` for bf16. The flow is
shared with the other TensorFlow models (`bertfam.tf.classifier`); this file only picks
BERT's recipe.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from recipe import RECIPE  # noqa: E402

from bertfam.tf.scripts import classifier_script  # noqa: E402

SCRIPT = classifier_script(RECIPE)

if __name__ == "__main__":
    SCRIPT.run()
