r"""BERT pre-training (masked LM + next sentence), with the upstream TF BERT command line.

    python run_pretraining.py --bert_config_file=$BERT_DIR/bert_config.json \
      --input_files_dir=$DATA/tfrecord/seq_len_128/wikicorpus_en/training \
      --eval_files_dir=$DATA/tfrecord/seq_len_128/wikicorpus_en/test \
      --output_dir=/tmp/phase_1 --do_train=True --do_eval=True \
      --train_batch_size=64 --max_seq_length=128 --max_predictions_per_seq=20 \
      --num_train_steps=7038 --num_warmup_steps=2000 --learning_rate=7.5e-4 \
      --optimizer_type=lamb --save_checkpoints_steps=100 --dllog_path=/tmp/phase_1/dllog.json \
      --noamp --nouse_xla

Phase 2 runs the same way on the 512/80 records with ``--init_checkpoint`` set to phase
1's last ``model.ckpt-N``. Add ``--horovod`` under ``mpirun -np N`` for several workers,
``--bf16_config_path=bf16_config/bert.json`` for bf16. The flow is shared
(`bertfam.tf.pretraining`); this file only hands over BERT's recipe.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from recipe import RECIPE  # noqa: E402

from bertfam.tf.scripts import pretraining_script  # noqa: E402

SCRIPT = pretraining_script(RECIPE)

if __name__ == "__main__":
    SCRIPT.run()
