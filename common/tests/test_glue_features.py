"""Classification features against HuggingFace's slow BertTokenizer on every MRPC pair.

HF's `tokenizer(a, b, truncation="longest_first", max_length=L, padding="max_length")`
builds the same [CLS] a [SEP] b [SEP] layout, segment ids and mask as Google's
convert_single_example. Its longest_first rule is a closed form rather than Google's
pop-one-at-a-time loop, so `test_hf_truncation_is_googles_tie_rule` first checks, on every
length combination up to 40, that it removes the same tokens as that loop (written below
from Google's description); only then is HF a valid reference for the truncated pairs.
"""

import numpy as np
import pytest

from bertfam.errors import UserError
from bertfam.glue.features import (
    REGRESSION,
    ClassificationFeatures,
    FeatureError,
    convert_examples_to_features,
    truncated_lengths,
)
from bertfam.glue.readers import InputExample, read_msr_paraphrase
from bertfam.testing import shared_file
from bertfam.tokenization.wordpiece import WordPieceTokenizer

MRPC_FILES = ("mrpc/msr_paraphrase_train.txt", "mrpc/msr_paraphrase_test.txt")


def google_truncate_seq_pair(length_a, length_b, max_length):
    """Google's _truncate_seq_pair on lengths: pop from the longer, from b on a tie."""
    while length_a + length_b > max_length:
        if length_a > length_b:
            length_a -= 1
        else:
            length_b -= 1
    return length_a, length_b


@pytest.fixture(scope="module")
def vocab_file(shared_data):
    return shared_file(shared_data, "bert_uncased/vocab.txt")


@pytest.fixture(scope="module")
def tokenizer(vocab_file):
    return WordPieceTokenizer(vocab_file, do_lower_case=True)


@pytest.fixture(scope="module")
def reference(vocab_file):
    from transformers import BertTokenizer
    from transformers.utils import logging

    # HF logs a warning on every longest_first pair about overflowing tokens.
    logging.set_verbosity_error()
    return BertTokenizer(str(vocab_file), do_lower_case=True)


@pytest.fixture(scope="module")
def mrpc_examples(shared_data):
    examples = []
    for name in MRPC_FILES:
        examples += read_msr_paraphrase(shared_file(shared_data, name))
    assert len(examples) == 4076 + 1725
    return examples


def hf_features(reference, texts_a, texts_b, max_length):
    encoded = reference(
        texts_a,
        texts_b,
        truncation="longest_first",
        max_length=max_length,
        padding="max_length",
    )
    return (
        np.array(encoded["input_ids"]),
        np.array(encoded["token_type_ids"]),
        np.array(encoded["attention_mask"]),
    )


def assert_same_rows(name, ours, theirs, texts):
    assert ours.shape == theirs.shape, name
    differing = np.flatnonzero((ours != theirs).any(axis=1))
    shown = [(texts[i], ours[i].tolist(), theirs[i].tolist()) for i in differing[:2]]
    assert differing.size == 0, f"{name}: {differing.size} of {len(ours)} rows differ: {shown}"


def test_hf_truncation_is_googles_tie_rule(reference):
    """HF's longest_first removes what Google's loop removes, for every small case."""
    for length_a in range(40):
        for length_b in range(40):
            for budget in range(0, 45, 3):
                removed = max(0, length_a + length_b - budget)
                ids, pair, _ = reference.truncate_sequences(
                    list(range(length_a)),
                    pair_ids=list(range(length_b)),
                    num_tokens_to_remove=removed,
                    truncation_strategy="longest_first",
                )
                expected = google_truncate_seq_pair(length_a, length_b, budget)
                assert (len(ids), len(pair)) == expected, (length_a, length_b, budget)


def test_truncated_lengths_follow_googles_loop():
    lengths = np.arange(60)
    a, b = (grid.ravel() for grid in np.meshgrid(lengths, lengths))
    is_pair = np.ones_like(a, dtype=bool)
    for max_seq_length in range(3, 70):
        kept_a, kept_b = truncated_lengths(a, b, is_pair, max_seq_length)
        expected = [google_truncate_seq_pair(x, y, max_seq_length - 3) for x, y in zip(a, b)]
        assert list(zip(kept_a.tolist(), kept_b.tolist())) == expected, max_seq_length
    kept_a, kept_b = truncated_lengths(a, b, ~is_pair, 10)
    assert kept_a.tolist() == np.minimum(a, 8).tolist() and not kept_b.any()


@pytest.mark.parametrize("max_seq_length", [128, 24])
def test_every_mrpc_pair_matches_huggingface(tokenizer, reference, mrpc_examples, max_seq_length):
    features = convert_examples_to_features(mrpc_examples, ["0", "1"], max_seq_length, tokenizer)
    texts_a = [e.text_a for e in mrpc_examples]
    texts_b = [e.text_b for e in mrpc_examples]
    input_ids, token_type_ids, attention_mask = hf_features(
        reference, texts_a, texts_b, max_seq_length
    )
    pairs = list(zip(texts_a, texts_b))
    assert_same_rows("input_ids", features.input_ids, input_ids, pairs)
    assert_same_rows("segment_ids", features.segment_ids, token_type_ids, pairs)
    assert_same_rows("input_mask", features.input_mask, attention_mask, pairs)
    assert features.label_ids.tolist() == [int(e.label) for e in mrpc_examples]

    # How much truncation the comparison covered: at 24 most pairs, ties included.
    lengths_a = np.array([len(e) for e in tokenizer.encode_batch(texts_a)])
    lengths_b = np.array([len(e) for e in tokenizer.encode_batch(texts_b)])
    truncated = lengths_a + lengths_b > max_seq_length - 3
    if max_seq_length == 24:
        assert truncated.mean() > 0.9
        assert np.sum(truncated & (lengths_a == lengths_b)) > 10
        assert np.all(features.input_mask.sum(axis=1)[truncated] == max_seq_length)


@pytest.mark.parametrize("max_seq_length", [128, 12])
def test_single_sentences_match_huggingface(tokenizer, reference, mrpc_examples, max_seq_length):
    examples = [InputExample(e.guid, e.text_a, None, e.label) for e in mrpc_examples]
    features = convert_examples_to_features(examples, ["0", "1"], max_seq_length, tokenizer)
    texts = [e.text_a for e in examples]
    input_ids, token_type_ids, attention_mask = hf_features(reference, texts, None, max_seq_length)
    assert_same_rows("input_ids", features.input_ids, input_ids, texts)
    assert_same_rows("segment_ids", features.segment_ids, token_type_ids, texts)
    assert_same_rows("input_mask", features.input_mask, attention_mask, texts)
    assert not features.segment_ids.any()


def test_a_single_sentence_can_be_cut_to_nothing(tokenizer):
    """Google keeps max_seq_length - 2 tokens of a, even 0 (HF refuses, so no reference)."""
    features = convert_examples_to_features(
        [InputExample("x", "a b", None, "0")], ["0"], 2, tokenizer
    )
    assert features.input_ids.tolist() == [[tokenizer.cls_id, tokenizer.sep_id]]
    assert features.input_mask.tolist() == [[1, 1]]


def test_layout_dtypes_and_shapes(tokenizer):
    examples = [
        InputExample("a", "Hello world", "Good-bye", "1"),
        InputExample("b", "Just one sentence.", None, "0"),
    ]
    features = convert_examples_to_features(examples, ["0", "1"], 10, tokenizer)
    assert isinstance(features, ClassificationFeatures) and len(features) == 2
    for array in (features.input_ids, features.input_mask, features.segment_ids):
        assert array.dtype == np.int32 and array.shape == (2, 10)
    assert features.label_ids.dtype == np.int32 and features.label_ids.tolist() == [1, 0]
    tokens = [tokenizer.convert_ids_to_tokens(row) for row in features.input_ids]
    assert (
        tokens[0]
        == ["[CLS]", "hello", "world", "[SEP]", "good", "-", "bye", "[SEP]"] + ["[PAD]"] * 2
    )
    assert features.segment_ids[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert features.input_mask[0].tolist() == [1] * 8 + [0] * 2
    assert tokens[1][:6] == ["[CLS]", "just", "one", "sentence", ".", "[SEP]"]
    assert features.input_mask[1].tolist() == [1] * 6 + [0] * 4


def test_text_b_without_tokens_is_a_single_sentence(tokenizer):
    """Google pairs only when text_b has tokens; "" and control characters have none."""
    examples = [InputExample("a", "hello", "", "0"), InputExample("b", "hello", "\x00\x01", "0")]
    features = convert_examples_to_features(examples, ["0"], 5, tokenizer)
    for row in features.input_ids:
        assert tokenizer.convert_ids_to_tokens(row) == ["[CLS]", "hello", "[SEP]", "[PAD]", "[PAD]"]
    assert not features.segment_ids.any()


def test_uses_one_batch_call(tokenizer):
    class CountingTokenizer:
        def __init__(self, inner):
            self.inner, self.batches = inner, 0
            self.cls_id, self.sep_id, self.pad_id = inner.cls_id, inner.sep_id, inner.pad_id

        def encode_batch(self, texts):
            self.batches += 1
            return self.inner.encode_batch(texts)

        def encode(self, text):
            raise AssertionError("encode called: the batch path was not used")

    counting = CountingTokenizer(tokenizer)
    examples = [InputExample(str(i), f"sentence {i}", f"other {i}", "0") for i in range(50)]
    convert_examples_to_features(examples, ["0"], 16, counting)
    assert counting.batches == 1


def test_empty_example_list(tokenizer):
    features = convert_examples_to_features([], ["0", "1"], 8, tokenizer)
    assert features.input_ids.shape == (0, 8) and features.label_ids.shape == (0,)


@pytest.mark.parametrize(
    "text_b, max_seq_length, message",
    [
        ("b", 2, "max_seq_length must be at least 3 to hold [CLS] a [SEP] b [SEP], got 2"),
        (None, 1, "max_seq_length must be at least 2 to hold [CLS] a [SEP], got 1"),
        (None, 12.0, "max_seq_length must be an integer, got 12.0"),
        (None, True, "max_seq_length must be an integer, got True"),
    ],
)
def test_bad_max_seq_length(tokenizer, text_b, max_seq_length, message):
    examples = [InputExample("x", "a", text_b, "0")]
    with pytest.raises(FeatureError) as caught:
        convert_examples_to_features(examples, ["0", "1"], max_seq_length, tokenizer)
    assert isinstance(caught.value, UserError)
    assert str(caught.value) == message


def test_label_not_in_label_list(tokenizer):
    examples = [InputExample("dev-7", "a", "b", "entailment")]
    with pytest.raises(FeatureError) as caught:
        convert_examples_to_features(examples, ["0", "1"], 8, tokenizer)
    assert str(caught.value) == "example dev-7: label 'entailment' is not one of 0, 1"


def test_a_regression_label_list_keeps_scores(tokenizer):
    examples = [InputExample("a", "the cat", "a dog", "4.75"), InputExample("b", "hi", None, "0")]
    features = convert_examples_to_features(examples, REGRESSION, 16, tokenizer)
    assert features.label_ids.dtype == np.float32 and features.label_ids.tolist() == [4.75, 0.0]
    with pytest.raises(FeatureError, match="label 'high' is not a score"):
        convert_examples_to_features([InputExample("c", "x", None, "high")], REGRESSION, 16,
                                     tokenizer)  # fmt: skip
