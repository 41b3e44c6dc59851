"""Our SQuAD features against HuggingFace v4's squad_convert_examples_to_features, which
ports Google's run_squad.py (windows, answer spans, max-context flags)."""

import numpy as np
import pytest
from squad_fixtures import qa, write_squad

from bertfam.squad.data import read_squad_examples
from bertfam.squad.features import (
    SquadFeatureError,
    _window_starts,
    convert_examples_to_features,
)
from bertfam.testing import shared_file
from bertfam.tokenization.wordpiece import WordPieceTokenizer


@pytest.fixture(scope="module")
def vocab(shared_data):
    return shared_file(shared_data, "bert_uncased/vocab.txt")


def huggingface_features(directory, filename, vocab, version_2, is_training, **settings):
    from transformers import BertTokenizer
    from transformers.data.processors.squad import (
        SquadV1Processor,
        SquadV2Processor,
        squad_convert_examples_to_features,
    )

    processor = SquadV2Processor() if version_2 else SquadV1Processor()
    read = processor.get_train_examples if is_training else processor.get_dev_examples
    examples = read(str(directory), filename)
    return squad_convert_examples_to_features(
        examples,
        BertTokenizer(str(vocab)),
        is_training=is_training,
        threads=1,
        tqdm_enabled=False,
        **settings,
    )


def assert_same_features(ours, theirs, is_training):
    assert len(ours) == len(theirs)
    assert np.array_equal(ours.input_ids, [f.input_ids for f in theirs])
    assert np.array_equal(ours.input_mask, [f.attention_mask for f in theirs])
    assert np.array_equal(ours.segment_ids, [f.token_type_ids for f in theirs])
    assert np.array_equal(ours.example_index, [f.example_index for f in theirs])
    max_context = np.zeros_like(ours.token_is_max_context)
    for row, feature in enumerate(theirs):
        for position, flag in feature.token_is_max_context.items():
            max_context[row, position] = flag
    assert np.array_equal(ours.token_is_max_context, max_context)
    if is_training:
        assert np.array_equal(ours.start_positions, [f.start_position for f in theirs])
        assert np.array_equal(ours.end_positions, [f.end_position for f in theirs])


@pytest.mark.parametrize(
    "is_training, settings",
    [
        (True, dict(max_seq_length=384, doc_stride=128, max_query_length=64)),
        (False, dict(max_seq_length=384, doc_stride=128, max_query_length=64)),
        # Short windows: most contexts need several, so max-context flags and answers
        # falling outside a window are exercised on every article.
        (True, dict(max_seq_length=96, doc_stride=24, max_query_length=24)),
    ],
)
def test_same_features_as_huggingface_on_xquad(shared_data, vocab, is_training, settings):
    path = shared_file(shared_data, "squad/xquad.en.json")
    tokenizer = WordPieceTokenizer(vocab)
    ours = convert_examples_to_features(
        read_squad_examples(path, is_training=is_training),
        tokenizer,
        is_training=is_training,
        **settings,
    )
    theirs = huggingface_features(path.parent, path.name, vocab, False, is_training, **settings)
    assert_same_features(ours, theirs, is_training)
    if settings["max_seq_length"] == 96:
        assert len(ours) > 5000 and (ours.start_positions == 0).sum() > 3000


def test_same_features_as_huggingface_on_v2_with_impossible_questions(tmp_path, vocab):
    context = (
        "The Normans were the people who in the 10th and 11th centuries gave their name to "
        "Normandy, a region in France. They were descended from Norse raiders and pirates "
        "from Denmark, Iceland and Norway (1895-1943) who swore fealty to King Charles III."
    )
    questions = [
        qa("a", "Where is Normandy?", [("France", context.index("France"))], False),
        qa(
            "b",
            "Who did they swear fealty to?",
            [("King Charles III", context.index("King"))],
            False,
        ),
        qa(
            "c",
            "When were the Normans in Normandy?",
            [("10th and 11th centuries", context.index("10th"))],
            False,
        ),
        qa("d", "What is the capital of Normandy?", [], True),
        qa("e", "Which years?", [("1895", context.index("1895"))], False),  # inside "(1895-1943)"
        qa(
            "f", "Where from?", [("Den", context.index("Denmark"))], False
        ),  # mid-word: whole word kept
    ]
    path = write_squad(
        tmp_path / "train-v2.0.json", [{"context": context, "qas": questions}], version="v2.0"
    )
    settings = dict(max_seq_length=32, doc_stride=8, max_query_length=12)
    ours = convert_examples_to_features(
        read_squad_examples(path, is_training=True, version_2_with_negative=True),
        WordPieceTokenizer(vocab),
        is_training=True,
        **settings,
    )
    theirs = huggingface_features(tmp_path, path.name, vocab, True, True, **settings)
    assert_same_features(ours, theirs, True)


@pytest.mark.parametrize(
    "num_tokens, window, stride, expected",
    [
        (10, 4, 2, [0, 2, 4, 6]),
        (10, 4, 8, [0, 4, 8]),
        (4, 4, 2, [0]),
        (0, 4, 2, []),
        (5, 4, 1, [0, 1]),
    ],
)
def test_window_starts_as_google(num_tokens, window, stride, expected):
    assert _window_starts(num_tokens, window, stride) == expected


def test_impossible_settings_are_refused(vocab):
    with pytest.raises(
        SquadFeatureError,
        match=r"max_seq_length \(64\) must be greater than max_query_length \(64\) \+ 3",
    ):
        convert_examples_to_features(
            [],
            WordPieceTokenizer(vocab),
            max_seq_length=64,
            doc_stride=16,
            max_query_length=64,
            is_training=False,
        )
    with pytest.raises(SquadFeatureError, match="doc_stride must be at least 1"):
        convert_examples_to_features(
            [],
            WordPieceTokenizer(vocab),
            max_seq_length=64,
            doc_stride=0,
            max_query_length=8,
            is_training=False,
        )


def test_a_stride_past_the_context_window_is_refused(vocab):
    # 128 - 64 - 3 = 61 context tokens a window: a stride of 64 would skip tokens.
    settings = dict(max_seq_length=128, max_query_length=64, is_training=False)
    with pytest.raises(SquadFeatureError, match=r"doc_stride \(64\) is larger than the context"):
        convert_examples_to_features([], WordPieceTokenizer(vocab), doc_stride=64, **settings)
    convert_examples_to_features([], WordPieceTokenizer(vocab), doc_stride=61, **settings)


def test_offsets_cut_the_context_tokens(shared_data, vocab):
    path = shared_file(shared_data, "squad/xquad.en.json")
    examples = read_squad_examples(path, is_training=False)[:50]
    tokenizer = WordPieceTokenizer(vocab)
    features = convert_examples_to_features(
        examples,
        tokenizer,
        max_seq_length=128,
        doc_stride=32,
        max_query_length=32,
        is_training=False,
    )
    for row in range(len(features)):
        context = examples[features.example_index[row]].context
        in_context = features.token_offsets[row, :, 0] >= 0
        assert np.array_equal(
            in_context,
            (features.segment_ids[row] == 1) & (features.input_ids[row] != tokenizer.sep_id),
        )
        for position in np.flatnonzero(in_context):
            start, end = features.token_offsets[row, position]
            token = tokenizer.convert_ids_to_tokens([features.input_ids[row, position]])[0]
            assert token == "[UNK]" or context[start:end].lower().endswith(
                token.removeprefix("##")[-1:]
            )
