r"""DistilBERT fine-tuning on SQuAD v1.1, with Habana's command line.

    python run_squad.py --vocab_file=uncased_L-12_H-768_A-12/vocab.txt \
      --distilbert_config_file=uncased_L-12_H-768_A-12/distilbert_config.json \
      --init_checkpoint=uncased_L-12_H-768_A-12/distilbert-base-uncased.ckpt-1 \
      --bf16_config_path=bf16_config/distilbert.json \
      --do_train=True --train_file=$SQUAD_DIR/train-v1.1.json \
      --do_predict=True --predict_file=$SQUAD_DIR/dev-v1.1.json --do_eval=True \
      --train_batch_size=32 --learning_rate=5e-05 --num_train_epochs=2 \
      --max_seq_length=384 --doc_stride=128 --output_dir=/tmp/squad_distilbert/ \
      --use_horovod=false

Under ``mpirun -np N`` pass ``--use_horovod=true``. BERT's flags and flow
(`bertfam.tf.squad`), with DistilBERT's recipe (recipe.py): its network and config, two
epochs by default, and the AdamW constants Habana tuned for DistilBERT.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from recipe import RECIPE  # noqa: E402

from bertfam.tf.scripts import squad_script  # noqa: E402

SCRIPT = squad_script(RECIPE)

if __name__ == "__main__":
    SCRIPT.run()
