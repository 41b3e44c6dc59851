"""Sentence(-pair) classification features, as google-research/bert `run_classifier.py`.

`convert_examples_to_features` gives, for every example, what Google's
`convert_single_example` gives:

- tokens ``[CLS] a [SEP]``, or ``[CLS] a [SEP] b [SEP]`` when text_b has tokens;
- a pair is cut to max_seq_length - 3 tokens as `_truncate_seq_pair` does (one token at a
  time off the end of the longer text, off b when they are as long), a single text to
  max_seq_length - 2;
- segment ids 0 up to and including the first [SEP], 1 after it; input mask 1 on real
  tokens; everything padded with the tokenizer's pad id (0s for mask and segments) to
  max_seq_length;
- the label id is the label's position in the label list.

Tokenization is one `encode_batch` call over all texts (the tokenizer's fast, parallel
path), and the arrays are assembled with NumPy index arithmetic rather than per-token
Python, so nearly all the time goes to tokenizing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from bertfam.errors import UserError
from bertfam.glue.readers import InputExample
from bertfam.tokenization import Tokenizer

SPECIAL_TOKENS_SINGLE = 2  # [CLS] a [SEP]
SPECIAL_TOKENS_PAIR = 3  # [CLS] a [SEP] b [SEP]


class FeatureError(UserError):
    """Settings or examples that cannot be turned into classification features."""


@dataclass(frozen=True)
class ClassificationFeatures:
    """Model inputs for N examples, padded to L = max_seq_length.

    input_ids, input_mask, segment_ids: int32 [N, L]; label_ids: int32 [N], or float32
    scores for a regression task (label list `REGRESSION`).
    """

    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    label_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.label_ids.shape[0])


def convert_examples_to_features(
    examples: Sequence[InputExample],
    label_list: Sequence[str],
    max_seq_length: int,
    tokenizer: Tokenizer,
) -> ClassificationFeatures:
    """Google's `convert_single_example` applied to every example, as NumPy arrays."""
    has_pairs = any(example.text_b for example in examples)
    _check_max_seq_length(max_seq_length, has_pairs)
    label_ids = _label_ids(examples, label_list)
    ids_a, ids_b = _encode_texts(examples, tokenizer)
    lengths_a = np.array([len(ids) for ids in ids_a], dtype=np.int64)
    lengths_b = np.array([len(ids) for ids in ids_b], dtype=np.int64)
    # Google treats an example as a pair only when text_b yields at least one token.
    is_pair = lengths_b > 0
    kept_a, kept_b = truncated_lengths(lengths_a, lengths_b, is_pair, max_seq_length)
    input_ids, input_mask, segment_ids = _assemble(
        ids_a, ids_b, kept_a, kept_b, is_pair, max_seq_length, tokenizer
    )
    return ClassificationFeatures(
        input_ids=input_ids,
        input_mask=input_mask,
        segment_ids=segment_ids,
        label_ids=label_ids,
    )


def _check_max_seq_length(max_seq_length: int, has_pairs: bool) -> None:
    needed = SPECIAL_TOKENS_PAIR if has_pairs else SPECIAL_TOKENS_SINGLE
    layout = "[CLS] a [SEP] b [SEP]" if has_pairs else "[CLS] a [SEP]"
    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, (int, np.integer)):
        raise FeatureError(f"max_seq_length must be an integer, got {max_seq_length!r}")
    if max_seq_length < needed:
        raise FeatureError(
            f"max_seq_length must be at least {needed} to hold {layout}, got {max_seq_length}"
        )


# A regression task's label list (STS-B's, as google-research/albert spells it): one
# output, and each example's label is its score.
REGRESSION = [None]


def _label_ids(examples: Sequence[InputExample], label_list: Sequence[str]) -> np.ndarray:
    if list(label_list) == REGRESSION:
        return _scores(examples)
    label_map: Dict[str, int] = {label: index for index, label in enumerate(label_list)}
    ids = []
    for example in examples:
        if example.label not in label_map:
            raise FeatureError(
                f"example {example.guid}: label {example.label!r} is not one of "
                f"{', '.join(map(str, label_list))}"
            )
        ids.append(label_map[example.label])
    return np.array(ids, dtype=np.int32)


def _scores(examples: Sequence[InputExample]) -> np.ndarray:
    scores = []
    for example in examples:
        try:
            scores.append(float(example.label))
        except (TypeError, ValueError):
            raise FeatureError(
                f"example {example.guid}: label {example.label!r} is not a score"
            ) from None
    return np.array(scores, dtype=np.float32)


def _encode_texts(
    examples: Sequence[InputExample], tokenizer: Tokenizer
) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Token ids of every text_a and text_b, from one batch call (the fast path)."""
    texts = [example.text_a for example in examples]
    # Google tokenizes text_b only when it is truthy; "" and None give no tokens.
    pair_rows = [row for row, example in enumerate(examples) if example.text_b]
    texts += [examples[row].text_b for row in pair_rows]
    encodings = tokenizer.encode_batch(texts) if texts else []
    ids_a = [encoding.ids for encoding in encodings[: len(examples)]]
    empty = np.zeros(0, dtype=np.int32)
    ids_b = [empty] * len(examples)
    for row, encoding in zip(pair_rows, encodings[len(examples) :]):
        ids_b[row] = encoding.ids
    return ids_a, ids_b


def truncated_lengths(
    lengths_a: np.ndarray, lengths_b: np.ndarray, is_pair: np.ndarray, max_seq_length: int
) -> Tuple[np.ndarray, np.ndarray]:
    """How many tokens of a and of b Google keeps, for every example at once.

    `_truncate_seq_pair` pops from the longer text until the pair fits, and from b on a
    tie. So only the longer text shrinks while the shorter one fits beside it; otherwise
    both end at half the budget, a keeping the odd token.
    """
    pair_budget = max_seq_length - SPECIAL_TOKENS_PAIR
    shorter = np.minimum(lengths_a, lengths_b)
    fits = lengths_a + lengths_b <= pair_budget
    longer_alone = 2 * shorter <= pair_budget  # shorter kept whole, longer cut to the rest
    a_is_longer = lengths_a > lengths_b
    pair_a = np.where(
        fits,
        lengths_a,
        np.where(
            longer_alone,
            np.where(a_is_longer, pair_budget - lengths_b, lengths_a),
            (pair_budget + 1) // 2,
        ),
    )
    pair_b = np.where(
        fits,
        lengths_b,
        np.where(
            longer_alone,
            np.where(a_is_longer, lengths_b, pair_budget - lengths_a),
            pair_budget // 2,
        ),
    )
    single_a = np.minimum(lengths_a, max_seq_length - SPECIAL_TOKENS_SINGLE)
    kept_a = np.where(is_pair, pair_a, single_a)
    kept_b = np.where(is_pair, pair_b, 0)
    return kept_a, kept_b


def _assemble(
    ids_a: List[np.ndarray],
    ids_b: List[np.ndarray],
    kept_a: np.ndarray,
    kept_b: np.ndarray,
    is_pair: np.ndarray,
    max_seq_length: int,
    tokenizer: Tokenizer,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = len(ids_a)
    input_ids = np.full((count, max_seq_length), tokenizer.pad_id, dtype=np.int32)
    rows = np.arange(count)
    input_ids[:, 0] = tokenizer.cls_id
    # Column layout: [CLS] at 0, a at 1.., [SEP] after a, then b at first_b.., [SEP].
    first_sep = kept_a + 1
    first_b = kept_a + 2
    second_sep = first_b + kept_b
    _scatter_prefixes(input_ids, ids_a, kept_a, np.ones(count, dtype=np.int64))
    input_ids[rows, first_sep] = tokenizer.sep_id
    _scatter_prefixes(input_ids, ids_b, kept_b, first_b)
    input_ids[rows[is_pair], second_sep[is_pair]] = tokenizer.sep_id

    length = np.where(is_pair, second_sep + 1, first_sep + 1)
    columns = np.arange(max_seq_length)[None, :]
    input_mask = (columns < length[:, None]).astype(np.int32)
    in_second_segment = (columns >= first_b[:, None]) & (columns < length[:, None])
    segment_ids = (in_second_segment & is_pair[:, None]).astype(np.int32)
    return input_ids, input_mask, segment_ids


def _scatter_prefixes(
    target: np.ndarray, sequences: List[np.ndarray], kept: np.ndarray, first_column: np.ndarray
) -> None:
    """Write sequences[r][:kept[r]] into target[r, first_column[r]:], for all rows r."""
    total = int(kept.sum())
    if total == 0:
        return
    lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
    flat = np.concatenate(sequences)
    sequence_starts = np.cumsum(lengths) - lengths
    rows = np.repeat(np.arange(len(sequences)), kept)
    # Position of each kept token within its own sequence: 0, 1, ... per row.
    row_starts = np.cumsum(kept) - kept
    within = np.arange(total) - np.repeat(row_starts, kept)
    target[rows, np.repeat(first_column, kept) + within] = flat[
        np.repeat(sequence_starts, kept) + within
    ]
