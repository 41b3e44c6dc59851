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
BERT's network.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from absl import app, flags  # noqa: E402

from bertfam.classifier.run import ClassifierRunConfig, prepare  # noqa: E402
from bertfam.errors import UserError, report_and_exit  # noqa: E402
from bertfam.tf.flags import define_classifier_flags, training_run_kwargs  # noqa: E402

define_classifier_flags()
flags.DEFINE_string("bert_config_file", None, "The bert_config.json of the pre-trained model.")
for required in ("data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir"):
    flags.mark_flag_as_required(required)
FLAGS = flags.FLAGS


def config_from_flags() -> ClassifierRunConfig:
    return ClassifierRunConfig(
        **training_run_kwargs(FLAGS, model_config_file=FLAGS.bert_config_file),
        task_name=FLAGS.task_name,
        data_dir=FLAGS.data_dir,
        do_eval=FLAGS.do_eval,
        do_predict=FLAGS.do_predict,
        max_seq_length=FLAGS.max_seq_length,
        eval_batch_size=FLAGS.eval_batch_size,
        predict_batch_size=FLAGS.predict_batch_size,
        dropout_before_logits=FLAGS.dropout_before_logits,
    )


def main(_):
    logging.getLogger().setLevel(logging.INFO)
    try:
        config = config_from_flags()
        prepared = prepare(config)  # every input checked before TensorFlow loads
        import modeling

        from bertfam.tf.classifier import run_classifier

        run_classifier(config, prepared, modeling.BertForSequenceClassification)
    except UserError as error:
        report_and_exit(error, prog="run_classifier.py")


if __name__ == "__main__":
    app.run(main)
