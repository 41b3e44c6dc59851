"""create_pretraining_data.py against Google's own code (PyPI's bert-tensorflow 1.0.4).

Google's script draws every choice from one random.Random(seed); ours must make the same
draws in the same order to write the same records. Compared on Google's sample_text.txt
and on a larger corpus made here (short and long documents, one-sentence documents,
words of several pieces), for several seeds and settings: the instances one by one, the
TFRecord files byte for byte, and the script's output against Google's writer.

bert-tensorflow predates --do_whole_word_mask. Whole-word masking is checked two ways:
on text whose words are all single pieces it must draw exactly what per-piece masking
draws (Google's current loop reduces to the old one there), and on real text every word
is masked whole or not at all, within the budget.
"""

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

google_cpd = pytest.importorskip("bert.create_pretraining_data", reason="bert-tensorflow")
google_tokenization = pytest.importorskip("bert.tokenization", reason="bert-tensorflow")

from bertfam.pretraining.instances import (  # noqa: E402
    InstanceOptions,
    create_training_instances,
    read_documents,
)
from bertfam.tinydata import pretraining_corpus as write_corpus  # noqa: E402
from bertfam.tokenization.wordpiece import WordPieceTokenizer  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "data_preprocessing" / "create_pretraining_data.py"


@pytest.fixture(scope="module", autouse=True)
def google_flags_parsed():
    """Google's tokenizer reads its absl flags (--preserve_unused_tokens) at their defaults."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


@pytest.fixture(scope="module")
def vocab(minilm_dir) -> Path:
    return minilm_dir / "vocab.txt"  # the BERT uncased vocabulary


def run_script(input_file, output_file, vocab, *flags):
    command = [sys.executable, str(SCRIPT), f"--input_file={input_file}",
               f"--output_file={output_file}", f"--vocab_file={vocab}", *flags]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def assert_refused(result, message: str, output: Path) -> None:
    """One line naming the problem, exit status 2, and no output file."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not output.exists()


def google_instances(files, vocab, seed, options: InstanceOptions):
    tokenizer = google_tokenization.FullTokenizer(str(vocab), do_lower_case=True)
    instances = google_cpd.create_training_instances(
        [str(f) for f in files],
        tokenizer,
        options.max_seq_length,
        options.dupe_factor,
        options.short_seq_prob,
        options.masked_lm_prob,
        options.max_predictions_per_seq,
        random.Random(seed),
    )
    return instances, tokenizer


def our_instances(files, vocab, seed, options: InstanceOptions):
    tokenizer = WordPieceTokenizer(vocab, do_lower_case=True)
    documents = read_documents(files, tokenizer)
    return create_training_instances(documents, list(tokenizer.vocab), options, random.Random(seed))


def as_tuples(instances):
    return [
        (
            list(i.tokens),
            list(i.segment_ids),
            list(i.masked_lm_positions),
            list(i.masked_lm_labels),
            bool(i.is_random_next),
        )
        for i in instances
    ]


CASES = [
    (12345, InstanceOptions(dupe_factor=2)),
    (1, InstanceOptions(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=3)),
    (7, InstanceOptions(max_seq_length=32, short_seq_prob=0.5, masked_lm_prob=0.2)),
]


@pytest.mark.parametrize("seed,options", CASES)
def test_instances_equal_googles_on_sample_text(shared_data, vocab, seed, options):
    sample = shared_data / "pretraining" / "sample_text.txt"
    if not sample.is_file():
        pytest.skip(f"pretraining/sample_text.txt not found in {shared_data}")
    google, _ = google_instances([sample], vocab, seed, options)
    ours = our_instances([sample], vocab, seed, options)
    assert len(ours) == len(google) > 20
    assert as_tuples(ours) == as_tuples(google)


@pytest.mark.parametrize("seed,options", CASES)
def test_instances_equal_googles_on_a_larger_corpus_in_two_files(tmp_path, vocab, seed, options):
    files = [write_corpus(tmp_path / f"part{n}.txt", vocab, seed=seed + n) for n in (0, 1)]
    google, _ = google_instances(files, vocab, seed, options)
    ours = our_instances(files, vocab, seed, options)
    assert len(ours) == len(google) > 200
    assert as_tuples(ours) == as_tuples(google)
    assert any(label.startswith("##") for i in ours for label in i.masked_lm_labels)


def test_script_writes_googles_records_byte_for_byte(tmp_path, vocab):
    corpus = write_corpus(tmp_path / "corpus.txt", vocab, seed=3)
    options = InstanceOptions(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=2)
    instances, tokenizer = google_instances([corpus], vocab, 99, options)
    expected = [str(tmp_path / f"google-{n}.tfrecord") for n in range(2)]
    google_cpd.write_instance_to_example_files(instances, tokenizer, 64, 10, expected)

    ours = [tmp_path / f"ours-{n}.tfrecord" for n in range(2)]
    result = run_script(
        f"{tmp_path}/corpus*.txt",
        f"{ours[0]},{ours[1]}",
        vocab,
        "--do_lower_case=True",
        "--max_seq_length=64",
        "--max_predictions_per_seq=10",
        "--random_seed=99",
        "--dupe_factor=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for mine, google in zip(ours, expected):
        assert mine.read_bytes() == Path(google).read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


def test_whole_word_masking_on_single_piece_words_draws_as_per_piece(tmp_path, vocab):
    words = [w for w in vocab.read_text().split("\n") if w.isalpha() and len(w) > 3][:3000]
    rng = random.Random(5)
    text = "\n\n".join(
        "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(6))
        for _ in range(20)
    )
    corpus = tmp_path / "plain.txt"
    corpus.write_text(text + "\n")
    per_piece = InstanceOptions(dupe_factor=2, max_seq_length=64, max_predictions_per_seq=10)
    whole_word = InstanceOptions(
        dupe_factor=2, max_seq_length=64, max_predictions_per_seq=10, do_whole_word_mask=True
    )
    ours = our_instances([corpus], vocab, 3, whole_word)
    assert not any(t.startswith("##") for i in ours for t in i.masked_lm_labels)
    google, _ = google_instances([corpus], vocab, 3, per_piece)
    assert as_tuples(ours) == as_tuples(google)


def test_whole_word_masking_masks_every_piece_of_a_word_or_none(tmp_path, vocab):
    corpus = write_corpus(tmp_path / "corpus.txt", vocab, seed=11)
    options = InstanceOptions(dupe_factor=3, do_whole_word_mask=True)
    instances = our_instances([corpus], vocab, 11, options)
    words_masked = 0
    for instance in instances:
        original = list(instance.tokens)
        for position, label in zip(instance.masked_lm_positions, instance.masked_lm_labels):
            original[position] = label
        masked = set(instance.masked_lm_positions)
        budget = min(20, max(1, int(round(len(original) * 0.15))))
        assert len(masked) <= budget
        start = None
        for position, token in enumerate(original):
            if token in ("[CLS]", "[SEP]"):
                continue
            if not token.startswith("##") or start is None:
                start = position
            # Each piece is masked exactly when the first piece of its word is.
            assert (position in masked) == (start in masked)
            words_masked += position == start and position in masked
    assert words_masked > 100


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--max_predictions_per_seq=200", "--max_seq_length=32"], "29 maskable tokens"),
        (["--input_file=/nonexistent/*.txt"], "matches no file"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, vocab, flags, message):
    corpus = write_corpus(tmp_path / "corpus.txt", vocab, seed=1, documents=3)
    output = tmp_path / "out.tfrecord"
    assert_refused(run_script(corpus, output, vocab, *flags), message, output)


def test_empty_corpus_is_refused(tmp_path, vocab):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("\n\n   \n")
    output = tmp_path / "out.tfrecord"
    assert_refused(run_script(corpus, output, vocab), "no text", output)


def test_a_corpus_of_one_sentence_documents_is_refused(tmp_path, vocab):
    corpus = tmp_path / "blank_after_every_line.txt"
    corpus.write_text("The first sentence.\n\nThe second one.\n\nAnd a third.\n")
    output = tmp_path / "out.tfrecord"
    assert_refused(run_script(corpus, output, vocab), "documents of 2 sentences", output)


def test_records_read_back_as_the_arrays_written(tmp_path, vocab):
    from bertfam.pretraining.features import instance_arrays
    from bertfam.tf.pretraining_records import read_example_files, write_example_files

    corpus = write_corpus(tmp_path / "corpus.txt", vocab, seed=2, documents=10)
    options = InstanceOptions(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1)
    instances = our_instances([corpus], vocab, 2, options)
    arrays = instance_arrays(instances, WordPieceTokenizer(vocab), 64, 10)
    write_example_files(arrays, [str(tmp_path / "one.tfrecord")], show_progress=False)
    back = read_example_files([str(tmp_path / "one.tfrecord")], 64, 10)
    for name, array in arrays.items():
        np.testing.assert_array_equal(back[name], array)


@pytest.mark.parametrize("name", ["30k-clean.model", "30k-clean.vocab"])
def test_a_sentencepiece_vocabulary_is_refused(shared_data, tmp_path, name):
    vocab = shared_data / "albert_spm" / name
    if not vocab.is_file():
        pytest.skip(f"albert_spm/{name} not found in {shared_data}")
    output = tmp_path / "out.tfrecord"
    sample = Path(__file__)  # any text: the vocabulary is refused before it is read
    assert_refused(run_script(sample, output, vocab), f"vocab file {vocab}", output)
