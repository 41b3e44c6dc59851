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
from bertfam.precision import bf16_setting  # noqa: E402
from bertfam.squad.run import SquadRunConfig, prepare  # noqa: E402
from bertfam.tf.flags import define_squad_flags  # noqa: E402

define_squad_flags()
flags.DEFINE_string("bert_config_file", None, "The bert_config.json of the pre-trained model.")
for required in ("vocab_file", "bert_config_file", "output_dir"):
    flags.mark_flag_as_required(required)
FLAGS = flags.FLAGS


def config_from_flags() -> SquadRunConfig:
    return SquadRunConfig(
        model_config_file=FLAGS.bert_config_file,
        vocab_file=FLAGS.vocab_file,
        output_dir=FLAGS.output_dir,
        init_checkpoint=FLAGS.init_checkpoint,
        do_lower_case=FLAGS.do_lower_case,
        do_train=FLAGS.do_train,
        do_predict=FLAGS.do_predict,
        do_eval=FLAGS.do_eval,
        train_file=FLAGS.train_file,
        predict_file=FLAGS.predict_file,
        max_seq_length=FLAGS.max_seq_length,
        doc_stride=FLAGS.doc_stride,
        max_query_length=FLAGS.max_query_length,
        train_batch_size=FLAGS.train_batch_size,
        predict_batch_size=FLAGS.predict_batch_size,
        learning_rate=FLAGS.learning_rate,
        num_train_epochs=FLAGS.num_train_epochs,
        num_train_steps=int(FLAGS.num_train_steps) if FLAGS.num_train_steps else None,
        warmup_proportion=FLAGS.warmup_proportion,
        num_accumulation_steps=FLAGS.num_accumulation_steps,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps,
        save_summary_steps=FLAGS.save_summary_steps,
        n_best_size=FLAGS.n_best_size,
        max_answer_length=FLAGS.max_answer_length,
        version_2_with_negative=FLAGS.version_2_with_negative,
        null_score_diff_threshold=FLAGS.null_score_diff_threshold,
        use_horovod=FLAGS.use_horovod,
        deterministic_run=FLAGS.deterministic_run,
        deterministic_seed=FLAGS.deterministic_seed,
        device="cpu" if FLAGS.cpu_only else FLAGS.device,
        bf16=bf16_setting(FLAGS.bf16_config_path, os.environ.get("TF_BF16_CONVERSION")),
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
