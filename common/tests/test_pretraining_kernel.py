"""The compiled instance loop against the readable one (which the TensorFlow folder's
tests hold to Google's script), and hand-serialized Examples against protobuf's."""

import random

import numpy as np
import pytest

from bertfam import tinydata
from bertfam.pretraining import kernel
from bertfam.pretraining.features import instance_arrays
from bertfam.pretraining.instances import (
    InstanceOptions,
    PretrainingDataError,
    create_training_instances,
    read_documents,
)
from bertfam.tokenization.wordpiece import WordPieceTokenizer


@pytest.fixture(scope="module")
def tokenizer(shared_data):
    return WordPieceTokenizer(shared_data / "bert_uncased" / "vocab.txt")


def both(documents, tokenizer, options, seed):
    """(reference arrays, its generator, kernel arrays, its generator)."""
    reference_rng = random.Random(seed)
    instances = create_training_instances(
        [list(d) for d in documents], list(tokenizer.vocab), options, reference_rng
    )
    reference = instance_arrays(
        instances, tokenizer, options.max_seq_length, options.max_predictions_per_seq
    )
    ids = [[tokenizer.convert_tokens_to_ids(s) for s in d] for d in documents]
    kernel_rng = random.Random(seed)
    compiled = kernel.instance_arrays(
        kernel.TokenizedCorpus.from_documents(ids), tokenizer.vocab, options, kernel_rng
    )
    return reference, reference_rng, compiled, kernel_rng


SETTINGS = [
    dict(),
    dict(do_whole_word_mask=True),
    dict(max_seq_length=24, max_predictions_per_seq=4, short_seq_prob=0.5),  # much cutting
    dict(max_seq_length=512, max_predictions_per_seq=80, dupe_factor=2, masked_lm_prob=0.3),
    dict(max_seq_length=16, max_predictions_per_seq=13, do_whole_word_mask=True),
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("seed", [0, 12345])
def test_kernel_equals_the_readable_algorithm(tmp_path, tokenizer, shared_data, settings, seed):
    vocab = shared_data / "bert_uncased" / "vocab.txt"
    corpus = tinydata.pretraining_corpus(tmp_path / "corpus.txt", vocab, seed, documents=80)
    documents = read_documents([corpus], tokenizer)
    options = InstanceOptions(**{"dupe_factor": 3, **settings})
    reference, reference_rng, compiled, kernel_rng = both(documents, tokenizer, options, seed)
    assert sorted(compiled) == sorted(reference)
    for name in reference:
        assert compiled[name].dtype == reference[name].dtype
        np.testing.assert_array_equal(compiled[name], reference[name], err_msg=name)
    assert kernel_rng.getstate() == reference_rng.getstate()  # the same draws, all of them


def test_a_single_document_takes_its_random_text_from_itself(tokenizer):
    document = [tokenizer.tokenize(f"Sentence number {n} of the only document.") for n in range(9)]
    options = InstanceOptions(max_seq_length=32, max_predictions_per_seq=5)
    reference, reference_rng, compiled, kernel_rng = both([document], tokenizer, options, 3)
    for name in reference:
        np.testing.assert_array_equal(compiled[name], reference[name], err_msg=name)
    assert kernel_rng.getstate() == reference_rng.getstate()


def test_kernel_refuses_what_the_readable_algorithm_refuses(tokenizer):
    options = InstanceOptions()
    for documents, message in (([], "no text"), ([[[5]], [[6, 7]]], "single sentence")):
        corpus = kernel.TokenizedCorpus.from_documents(documents)
        with pytest.raises(PretrainingDataError, match=message):
            kernel.instance_arrays(corpus, tokenizer.vocab, options, random.Random(0))


def test_examples_serialize_as_protobuf_does():
    tf = pytest.importorskip("tensorflow")
    from bertfam.tf.example_encoding import serialize_examples

    rng = np.random.default_rng(0)
    arrays = {
        "input_ids": rng.integers(0, 30522, (50, 17)),
        "big": rng.integers(-(2**62), 2**62, (50, 3)),  # ten-byte and negative varints
        "masked_lm_weights": rng.random((50, 5)).astype(np.float32),
        "next_sentence_labels": rng.integers(0, 2, (50, 1)),
    }
    data, offsets = serialize_examples(arrays)
    for row in range(50):
        feature = {}
        for name, values in arrays.items():
            if values.dtype.kind == "f":
                feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values[row]))
            else:
                feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values[row]))
        expected = tf.train.Example(features=tf.train.Features(feature=feature))
        assert data[offsets[row] : offsets[row + 1]].tobytes() == expected.SerializeToString()
