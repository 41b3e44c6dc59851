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
TensorFlow models (`bertfam.tf.squad`); this file only picks BERT's network.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from absl import app, flags  # noqa: E402

from bertfam.errors import UserError, report_and_exit  # noqa: E402
from bertfam.squad.run import SquadRunConfig, prepare  # noqa: E402
from bertfam.tf.flags import define_squad_flags, training_run_kwargs  # noqa: E402

define_squad_flags()
flags.DEFINE_string("bert_config_file", None, "The bert_config.json of the pre-trained model.")
for required in ("vocab_file", "bert_config_file", "output_dir"):
    flags.mark_flag_as_required(required)
FLAGS = flags.FLAGS


def config_from_flags() -> SquadRunConfig:
    return SquadRunConfig(
        **training_run_kwargs(FLAGS, model_config_file=FLAGS.bert_config_file),
        do_predict=FLAGS.do_predict,
        do_eval=FLAGS.do_eval,
        train_file=FLAGS.train_file,
        predict_file=FLAGS.predict_file,
        max_seq_length=FLAGS.max_seq_length,
        doc_stride=FLAGS.doc_stride,
        max_query_length=FLAGS.max_query_length,
        predict_batch_size=FLAGS.predict_batch_size,
        n_best_size=FLAGS.n_best_size,
        max_answer_length=FLAGS.max_answer_length,
        version_2_with_negative=FLAGS.version_2_with_negative,
        null_score_diff_threshold=FLAGS.null_score_diff_threshold,
    )


def main(_):
    logging.getLogger().setLevel(logging.INFO)
    try:
        config = config_from_flags()
        prepared = prepare(config)  # every input checked before TensorFlow loads
        import modeling

        from bertfam.tf.squad import run_squad

        run_squad(config, prepared, modeling.BertForQuestionAnswering)
    except UserError as error:
        report_and_exit(error, prog="run_squad.py")


if __name__ == "__main__":
    app.run(main)
