"""create_pretraining_data.py against google-research/albert's algorithm
(`google_albert_reference`): the same records at --ngram=1 (the script, end to end, on
sample_text.txt with ALBERT's 30k-clean SentencePiece model), the same instances under
the other switches with Google's n-gram draws seeded, one set of records per seed, and
the bad inputs."""

import random

import google_albert_reference as google
import numpy as np
import pytest
from albert_fixtures import run

from bertfam.pretraining.features import ALBERT_FEATURES, instance_arrays
from bertfam.pretraining.instances import read_documents
from bertfam.pretraining.ngram_masking import AlbertInstanceOptions, albert_instances
from bertfam.tokenization.sentencepiece import SentencePieceTokenizer
from bertfam.tokenization.wordpiece import WordPieceTokenizer

SEED = 12345
SMALL = dict(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=2, short_seq_prob=0.2)


@pytest.fixture(scope="module")
def spm(shared_data):
    folder = shared_data / "albert_spm"
    if not (folder / "30k-clean.model").is_file():
        pytest.skip(f"no ALBERT SentencePiece model in {folder}")
    return folder


@pytest.fixture(scope="module")
def sample_text(shared_data):
    path = shared_data / "pretraining" / "sample_text.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def reference_arrays(documents, tokenizer, options: AlbertInstanceOptions, seed=SEED):
    """Google's instances of `documents`, laid out as records (its n-gram draws seeded)."""
    flags = {name: getattr(options, name) for name in options.__dataclass_fields__}
    vocab_words = tokenizer.convert_ids_to_tokens(range(tokenizer.vocab_size))
    np.random.seed(seed)
    instances = google.create_instances(
        [[list(s) for s in d] for d in documents], vocab_words, random.Random(seed), flags
    )
    length, slots = options.max_seq_length, options.max_predictions_per_seq
    rows = []
    for instance in instances:
        ids = tokenizer.convert_tokens_to_ids(instance["tokens"])
        real, predictions = len(ids), len(instance["masked_lm_positions"])
        rows.append({
            "input_ids": ids + [0] * (length - real),
            "input_mask": [1] * real + [0] * (length - real),
            "segment_ids": instance["segment_ids"] + [0] * (length - real),
            "token_boundary": instance["token_boundary"] + [0] * (length - real),
            "masked_lm_positions": instance["masked_lm_positions"] + [0] * (slots - predictions),
            "masked_lm_ids": tokenizer.convert_tokens_to_ids(instance["masked_lm_labels"])
            + [0] * (slots - predictions),
            "masked_lm_weights": [1.0] * predictions + [0.0] * (slots - predictions),
            "next_sentence_labels": [int(instance["is_random_next"])],
        })  # fmt: skip
    return {name: np.array([row[name] for row in rows]) for name in ALBERT_FEATURES}


def our_arrays(documents, tokenizer, options: AlbertInstanceOptions, seed=SEED):
    vocab_words = tokenizer.convert_ids_to_tokens(range(tokenizer.vocab_size))
    instances = albert_instances(documents, vocab_words, options, seed)
    return instance_arrays(
        instances, tokenizer, options.max_seq_length, options.max_predictions_per_seq
    )


def read_records(path):
    """{feature: array} of a TFRecord file, read with TensorFlow's Example parser."""
    import tensorflow as tf

    rows = []
    for record in tf.data.TFRecordDataset(str(path)):
        example = tf.train.Example.FromString(record.numpy())
        features = example.features.feature
        assert set(features) == set(ALBERT_FEATURES)
        rows.append({
            name: list(features[name].float_list.value)
            if name == "masked_lm_weights" else list(features[name].int64_list.value)
            for name in ALBERT_FEATURES
        })  # fmt: skip
    return {name: np.array([row[name] for row in rows]) for name in ALBERT_FEATURES}


def assert_same_records(ours, reference):
    assert len(ours["input_ids"]) == len(reference["input_ids"]) > 0
    for name in ALBERT_FEATURES:
        np.testing.assert_array_equal(ours[name], reference[name], err_msg=name)


def test_script_writes_googles_records_at_ngram_1(tmp_path, spm, sample_text):
    output = tmp_path / "albert.tfrecord"
    result = run([
        "create_pretraining_data.py", f"--input_file={sample_text}", f"--output_file={output}",
        f"--spm_model_file={spm / '30k-clean.model'}", f"--vocab_file={spm / '30k-clean.vocab'}",
        "--max_seq_length=64", "--max_predictions_per_seq=10", "--dupe_factor=2",
        "--short_seq_prob=0.2", "--ngram=1", f"--random_seed={SEED}",
    ])  # fmt: skip
    assert result.returncode == 0, result.stderr
    tokenizer = SentencePieceTokenizer(spm / "30k-clean.model")
    documents = read_documents([sample_text], tokenizer)
    options = AlbertInstanceOptions(**SMALL, ngram=1)
    reference = reference_arrays(documents, tokenizer, options)
    assert_same_records(read_records(output), reference)
    # Sentence order: some pairs swapped (label 1), the rest in order.
    assert 0 < reference["next_sentence_labels"].mean() < 1


@pytest.mark.parametrize(
    "switches",
    [
        dict(ngram=1, do_whole_word_mask=False),
        dict(ngram=1, random_next_sentence=True),
        dict(ngram=3),  # Google's draws seeded: the same n-grams
        dict(ngram=2, favor_shorter_ngram=False, masked_lm_prob=0.3),
    ],
)
def test_instances_equal_googles(spm, sample_text, switches):
    tokenizer = SentencePieceTokenizer(spm / "30k-clean.model")
    documents = read_documents([sample_text], tokenizer)
    options = AlbertInstanceOptions(**{**SMALL, **switches})
    assert_same_records(
        our_arrays(documents, tokenizer, options),
        reference_arrays(documents, tokenizer, options),
    )


def test_wordpiece_instances_equal_googles(shared_data, sample_text):
    vocab = shared_data / "bert_uncased" / "vocab.txt"
    if not vocab.is_file():
        pytest.skip(f"{vocab} not found")
    tokenizer = WordPieceTokenizer(vocab)
    documents = read_documents([sample_text], tokenizer)
    options = AlbertInstanceOptions(**SMALL, sentencepiece=False)
    assert_same_records(
        our_arrays(documents, tokenizer, options),
        reference_arrays(documents, tokenizer, options),
    )


def test_ngram_records_are_the_same_every_run_of_a_seed(spm, sample_text):
    tokenizer = SentencePieceTokenizer(spm / "30k-clean.model")
    documents = read_documents([sample_text], tokenizer)
    options = AlbertInstanceOptions(**SMALL, ngram=3)
    first = our_arrays(documents, tokenizer, options)
    assert_same_records(our_arrays(documents, tokenizer, options), first)
    other = our_arrays(documents, tokenizer, options, seed=SEED + 1)
    assert not np.array_equal(other["masked_lm_positions"], first["masked_lm_positions"])
    # n-grams of several words were masked: a masked position right after a masked word
    # that starts a word of its own.
    positions, boundary = first["masked_lm_positions"], first["token_boundary"]
    joined = [
        p for row in range(len(positions)) for p in positions[row]
        if p > 0 and p - 1 in positions[row] and boundary[row, p] == 1
    ]  # fmt: skip
    assert joined


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--do_permutation=true"], "--do_permutation=true: the permutation LM is not supported"),
        (["--ngram=0"], "--ngram=0: need at least 1"),
        (["--parallel"], "--parallel writes one output file per input file: 1 input files, 2"),
        (["--vocab_file={bert_vocab}"], "does not match --spm_model_file"),
    ],
)
def test_bad_input_is_one_line_and_nothing_written(tmp_path, spm, sample_text, shared_data,
                                                   flags, message):  # fmt: skip
    outputs = f"{tmp_path / 'a.tfrecord'},{tmp_path / 'b.tfrecord'}"
    bert_vocab = shared_data / "bert_uncased" / "vocab.txt"
    result = run([
        "create_pretraining_data.py", f"--input_file={sample_text}", f"--output_file={outputs}",
        f"--spm_model_file={spm / '30k-clean.model'}", f"--vocab_file={spm / '30k-clean.vocab'}",
        *[flag.format(bert_vocab=bert_vocab) for flag in flags],
    ])  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []
