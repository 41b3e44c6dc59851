r"""ALBERT pre-training (masked LM + sentence order), with google-research/albert's
command line.

    python run_pretraining.py --albert_config_file=albert_base_v1/albert_config.json \
      --input_file=$DATA/albert_records/train-*.tfrecord \
      --eval_file=$DATA/albert_records/eval-*.tfrecord \
      --output_dir=/tmp/albert_pretraining --do_train=True --do_eval=True \
      --train_batch_size=64 --max_seq_length=128 --max_predictions_per_seq=20 \
      --optimizer=lamb --learning_rate=0.00176 --num_train_steps=1000 \
      --num_warmup_steps=100 --save_checkpoints_steps=500

Records come from ``create_pretraining_data.py``. Add ``--use_horovod`` under
``mpirun -np N`` for several workers, ``--bf16_config_path=bf16_config/albert.json`` for
bf16. The flow is `pretraining_v1` on the shared pre-training core.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from pretraining_v1 import pretraining_v1_script  # noqa: E402
from recipe import RECIPE  # noqa: E402

SCRIPT = pretraining_v1_script(RECIPE)

if __name__ == "__main__":
    SCRIPT.run()
