r"""ALBERT pre-training records from text, with google-research/albert's command line.

    python create_pretraining_data.py \
      --input_file=sample_text.txt \
      --output_file=/tmp/albert_examples.tfrecord \
      --spm_model_file=$ALBERT_DIR/30k-clean.model --vocab_file=$ALBERT_DIR/30k-clean.vocab \
      --max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=5 --ngram=3

Input: text files (``--input_file``, comma-separated globs), one sentence a line and a
blank line between documents. Output: `tf.train.Example` records (``--output_file``,
comma-separated, dealt round-robin) with sentence-order labels, n-gram masks and
``token_boundary`` (`bertfam.pretraining.ngram_masking`). With ``--ngram=1`` they are
the records Google's script writes, record for record; with longer n-grams they are the
same for every run of a seed (Google's change from run to run). Without
``--spm_model_file`` the text is cut into WordPiece pieces of ``--vocab_file``, as
upstream allows. ``--parallel`` makes each input file its own output file, each from
the seed, as upstream's process pool does.
"""

from __future__ import annotations

import logging
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from absl import app, flags  # noqa: E402

from bertfam.errors import FlagError, UserError, report_and_exit  # noqa: E402
from bertfam.pretraining.create import input_files, output_files  # noqa: E402
from bertfam.pretraining.create import options_from_flags as shared_options  # noqa: E402
from bertfam.pretraining.features import ALBERT_FEATURES, instance_arrays  # noqa: E402
from bertfam.pretraining.instances import read_documents  # noqa: E402
from bertfam.pretraining.ngram_masking import (  # noqa: E402
    AlbertInstanceOptions,
    albert_instances,
)

flags.DEFINE_string("input_file", None, "Input text files (comma-separated globs).")
flags.DEFINE_string("output_file", None, "Output TFRecord files (comma-separated).")
flags.DEFINE_string("vocab_file", None, "The model's vocabulary (30k-clean.vocab).")
flags.DEFINE_string("spm_model_file", None, "The SentencePiece model (30k-clean.model).")
flags.DEFINE_string("input_file_mode", "r", "r or rb: the text is read as UTF-8 either way.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input (uncased models).")
flags.DEFINE_bool("do_whole_word_mask", True, "Mask all pieces of a word together.")
flags.DEFINE_bool("do_permutation", False, "Permutation LM: not supported (true is refused).")
flags.DEFINE_bool("favor_shorter_ngram", True, "P(n) proportional to 1/n (else reversed).")
flags.DEFINE_bool(
    "random_next_sentence", False, "BERT's random-document pairs instead of sentence order."
)
flags.DEFINE_integer("max_seq_length", 512, "Maximum sequence length.")
flags.DEFINE_integer("ngram", 3, "Longest n-gram (in words) to mask.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum masked tokens per sequence.")
flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
flags.DEFINE_integer("dupe_factor", 40, "Passes over the input, each with new masks.")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
flags.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter target length.")
flags.DEFINE_bool("parallel", False, "One output file per input file, in processes.")
for _required in ("input_file", "output_file", "vocab_file"):
    flags.mark_flag_as_required(_required)
FLAGS = flags.FLAGS
log = logging.getLogger("create_pretraining_data")


def options_from_flags(values) -> AlbertInstanceOptions:
    if values.do_permutation:
        raise FlagError("--do_permutation=true: the permutation LM is not supported")
    if values.input_file_mode not in ("r", "rb"):
        raise FlagError(f"--input_file_mode={values.input_file_mode}: use r or rb")
    options = AlbertInstanceOptions(
        **vars(shared_options(values)),  # the flags Google's BERT script has too
        ngram=values.ngram,
        favor_shorter_ngram=values.favor_shorter_ngram,
        random_next_sentence=values.random_next_sentence,
        sentencepiece=bool(values.spm_model_file),
    )
    options.check()
    return options


def make_tokenizer(vocab_file: str, spm_model_file: str, do_lower_case: bool):
    """ALBERT's SentencePiece tokenizer (checked against --vocab_file), or WordPiece."""
    if spm_model_file:
        from checks import check_vocab_file

        from bertfam.tokenization.sentencepiece import SentencePieceTokenizer

        tokenizer = SentencePieceTokenizer(spm_model_file, do_lower_case=do_lower_case)
        check_vocab_file(vocab_file, tokenizer)
        return tokenizer
    from bertfam.tokenization.wordpiece import WordPieceTokenizer

    return WordPieceTokenizer(vocab_file, do_lower_case=do_lower_case)


def write_records(inputs, outputs, settings, show_progress: bool) -> int:
    """Read `inputs`, make the instances, write them to `outputs`; returns how many.
    `settings`: (vocab_file, spm_model_file, do_lower_case, random_seed, options)."""
    vocab_file, spm_model_file, do_lower_case, seed, options = settings
    tokenizer = make_tokenizer(vocab_file, spm_model_file, do_lower_case)
    vocab_words = tokenizer.convert_ids_to_tokens(range(tokenizer.vocab_size))
    documents = read_documents(inputs, tokenizer)
    instances = albert_instances(documents, vocab_words, options, seed)
    arrays = instance_arrays(
        instances, tokenizer, options.max_seq_length, options.max_predictions_per_seq
    )
    from bertfam.tf.pretraining_records import write_example_files  # TensorFlow loads

    return write_example_files(arrays, outputs, show_progress, features=ALBERT_FEATURES)


def _one_file(job) -> int:
    try:
        return write_records([job[0]], [job[1]], job[2], show_progress=False)
    except UserError as error:
        raise RuntimeError(str(error)) from None  # pickles across the pool, message kept


def main(_) -> None:
    logging.getLogger().setLevel(logging.INFO)
    try:
        options = options_from_flags(FLAGS)
        inputs, outputs = input_files(FLAGS.input_file), output_files(FLAGS.output_file)
        settings = (
            FLAGS.vocab_file,
            FLAGS.spm_model_file,
            FLAGS.do_lower_case,
            FLAGS.random_seed,
            options,
        )
        make_tokenizer(FLAGS.vocab_file, FLAGS.spm_model_file, FLAGS.do_lower_case)  # checked
        if not FLAGS.parallel:
            count = write_records(inputs, outputs, settings, show_progress=sys.stderr.isatty())
        else:
            if len(inputs) != len(outputs):
                raise FlagError(
                    f"--parallel writes one output file per input file: {len(inputs)} "
                    f"input files, {len(outputs)} output files"
                )
            jobs = [(i, o, settings) for i, o in zip(inputs, outputs)]
            # Spawned, not forked: each worker loads TensorFlow itself.
            with ProcessPoolExecutor(os.cpu_count(), mp_context=get_context("spawn")) as pool:
                try:
                    count = sum(pool.map(_one_file, jobs))
                except RuntimeError as error:
                    raise UserError(str(error)) from None
        log.info("Wrote %d total instances to %s", count, ", ".join(outputs))
    except UserError as error:
        report_and_exit(error, prog="create_pretraining_data.py")


if __name__ == "__main__":
    app.run(main)
