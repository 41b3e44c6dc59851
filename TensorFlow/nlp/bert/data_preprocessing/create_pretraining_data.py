r"""BERT pre-training records from text, with google-research/bert's command line.

    python data_preprocessing/create_pretraining_data.py \
      --input_file=sample_text.txt \
      --output_file=/tmp/tf_examples.tfrecord --vocab_file=$BERT_DIR/vocab.txt \
      --do_lower_case=True --max_seq_length=128 --max_predictions_per_seq=20 \
      --masked_lm_prob=0.15 --random_seed=12345 --dupe_factor=5

Input: text files (``--input_file``, comma-separated globs), one sentence a line and a
blank line between documents. Output: `tf.train.Example` records (``--output_file``,
comma-separated; examples dealt round-robin), for the same input, flags and seed the
records Google's script writes, record for record. ``--do_whole_word_mask`` masks the
pieces of a word together, as Google's current script does.
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from absl import app, flags  # noqa: E402

from bertfam.errors import UserError, report_and_exit  # noqa: E402
from bertfam.pretraining.create import output_files, pretraining_arrays  # noqa: E402

flags.DEFINE_string("input_file", None, "Input text files (comma-separated globs).")
flags.DEFINE_string("output_file", None, "Output TFRecord files (comma-separated).")
flags.DEFINE_string("vocab_file", None, "The WordPiece vocabulary of the model.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input (uncased models).")
flags.DEFINE_bool("do_whole_word_mask", False, "Mask all pieces of a word together.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum masked tokens per sequence.")
flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
flags.DEFINE_integer("dupe_factor", 10, "Passes over the input, each with new masks.")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
flags.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter target length.")
for _required in ("input_file", "output_file", "vocab_file"):
    flags.mark_flag_as_required(_required)
FLAGS = flags.FLAGS
log = logging.getLogger("create_pretraining_data")


def main(_) -> None:
    logging.getLogger().setLevel(logging.INFO)
    try:
        outputs = output_files(FLAGS.output_file)
        arrays = pretraining_arrays(FLAGS)
        from bertfam.tf.pretraining_records import write_example_files  # TensorFlow loads

        count = write_example_files(arrays, outputs, show_progress=sys.stderr.isatty())
        log.info("Wrote %d total instances to %s", count, ", ".join(outputs))
    except UserError as error:
        report_and_exit(error, prog="create_pretraining_data.py")


if __name__ == "__main__":
    app.run(main)
