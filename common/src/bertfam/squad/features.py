"""SQuAD examples to model inputs: [CLS] question [SEP] context window [SEP], as arrays.

The windows, positions and "max context" flags follow google-research/bert run_squad.py
(`convert_examples_to_features`, `_check_is_max_context`): the context is cut into
windows of ``max_seq_length - len(question) - 3`` tokens, each starting ``doc_stride``
tokens after the previous one, and a token's prediction counts only in the window where
it has the most context around it.

Where Google keeps a whitespace-split copy of the context and a map from word pieces to
words, we keep each token's character offsets (`tokenizers` gives them for free). An
answer's token span is then simply the tokens its characters touch, and a predicted span
is cut straight out of the context. That is both simpler and faster: tokenization runs in
Rust over the whole batch, and everything after it is NumPy slicing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from bertfam.errors import UserError
from bertfam.squad.data import SquadExample
from bertfam.tokenization import Encoding, Tokenizer

UNIQUE_ID_BASE = 1000000000  # Google numbers features from here; TFRecords carry it


class SquadFeatureError(UserError):
    """Feature settings that cannot work (e.g. a question budget larger than the sequence)."""


@dataclass(frozen=True)
class SquadFeatures:
    """Model inputs for F features (windows) of sequence length L.

    unique_ids          int64 [F]      UNIQUE_ID_BASE + feature index
    example_index       int32 [F]      which example each window came from
    input_ids           int32 [F, L]   [CLS] question [SEP] context window [SEP] padding
    input_mask          int32 [F, L]   1 for real tokens, 0 for padding
    segment_ids         int32 [F, L]   0 for [CLS] question [SEP], 1 for context and [SEP]
    start_positions     int32 [F]      training: answer start in the window, 0 if absent
    end_positions       int32 [F]      training: answer end in the window, 0 if absent
    token_offsets       int32 [F, L, 2] character span in the context of each context
                                       token, -1 elsewhere (prediction only)
    token_is_max_context bool [F, L]   the window where the token has most context
    """

    unique_ids: np.ndarray
    example_index: np.ndarray
    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    start_positions: Optional[np.ndarray] = None
    end_positions: Optional[np.ndarray] = None
    token_offsets: Optional[np.ndarray] = None
    token_is_max_context: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.unique_ids)


@dataclass(frozen=True)
class _Window:
    example: int
    start: int  # first context token in the window
    length: int  # context tokens in the window
    query_length: int
    answer: Optional[tuple]  # (start, end) positions in the window, training only
    is_max_context: np.ndarray  # bool [length]


def validate_lengths(max_seq_length: int, doc_stride: int, max_query_length: int) -> None:
    if max_seq_length <= max_query_length + 3:
        raise SquadFeatureError(
            f"max_seq_length ({max_seq_length}) must be greater than max_query_length "
            f"({max_query_length}) + 3"
        )
    if doc_stride < 1:
        raise SquadFeatureError(f"doc_stride must be at least 1, not {doc_stride}")
    # A question of max_query_length tokens leaves this many context tokens a window;
    # windows starting farther apart would skip the tokens between them, silently.
    window = max_seq_length - max_query_length - 3
    if doc_stride > window:
        raise SquadFeatureError(
            f"doc_stride ({doc_stride}) is larger than the context window ({window} tokens: "
            f"max_seq_length {max_seq_length} - max_query_length {max_query_length} - 3), so "
            "tokens between windows would never be seen: lower doc_stride or raise "
            "max_seq_length"
        )


def convert_examples_to_features(
    examples: Sequence[SquadExample],
    tokenizer: Tokenizer,
    *,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    is_training: bool,
) -> SquadFeatures:
    validate_lengths(max_seq_length, doc_stride, max_query_length)
    contexts = _encode_unique(tokenizer, [example.context for example in examples])
    questions = _encode_unique(tokenizer, [example.question for example in examples])

    answers = _encode_unique(tokenizer, _first_answers(examples)) if is_training else {}

    windows: List[_Window] = []
    for index, example in enumerate(examples):
        context = contexts[example.context]
        query_length = min(len(questions[example.question]), max_query_length)
        window_size = max_seq_length - query_length - 3
        answer_tokens = None
        if is_training and example.answers and not example.is_impossible:
            answer_text = example.answers[0].text
            answer_tokens = _answer_token_span(example, context, answers[answer_text].tokens)
        starts = _window_starts(len(context), window_size, doc_stride)
        lengths = [min(window_size, len(context) - start) for start in starts]
        max_context = _max_context_masks(len(context), starts, lengths)
        for start, length, is_max in zip(starts, lengths, max_context):
            answer = None
            if is_training:
                answer = _position_in_window(answer_tokens, start, length, query_length)
            windows.append(_Window(index, start, length, query_length, answer, is_max))

    return _pack(windows, examples, contexts, questions, tokenizer, max_seq_length, is_training)


def _encode_unique(tokenizer: Tokenizer, texts: Sequence[str]) -> Dict[str, Encoding]:
    # Each SQuAD paragraph has about five questions: tokenize each context once.
    unique = list(dict.fromkeys(texts))
    return dict(zip(unique, tokenizer.encode_batch(unique)))


def _first_answers(examples: Sequence[SquadExample]) -> List[str]:
    return [e.answers[0].text for e in examples if e.answers and not e.is_impossible]


def _window_starts(num_tokens: int, window_size: int, doc_stride: int) -> List[int]:
    """Google's sliding window: the last window ends at the context's last token."""
    starts = []
    start = 0
    while start < num_tokens:
        starts.append(start)
        if start + window_size >= num_tokens:
            break
        start += min(window_size, doc_stride)
    return starts


def _max_context_masks(num_tokens: int, starts: List[int], lengths: List[int]) -> List[np.ndarray]:
    """For each window, which of its tokens have their most context in it.

    Google's score: min(tokens to the left, tokens to the right) + 0.01 * window length;
    on a tie the earlier window wins.
    """
    if len(starts) <= 1:  # most contexts fit one window: every token is at its best there
        return [np.ones(length, dtype=bool) for length in lengths]
    position = np.arange(num_tokens)
    first = np.asarray(starts)[:, None]
    size = np.asarray(lengths)[:, None]
    inside = (position >= first) & (position < first + size)
    score = np.minimum(position - first, first + size - 1 - position) + 0.01 * size
    best_window = np.argmax(np.where(inside, score, -np.inf), axis=0)
    return [
        best_window[start : start + length] == window
        for window, (start, length) in enumerate(zip(starts, lengths))
    ]


# Google splits contexts into words on these (run_squad.py `is_whitespace`).
_GOOGLE_WHITESPACE = np.array([ord(c) for c in " \t\r\n\u202f"], dtype=np.uint32)


def _answer_token_span(
    example: SquadExample, context: Encoding, answer_tokens: List[str]
) -> Optional[tuple]:
    """The gold answer's first and last context tokens, as Google's run_squad.py picks them.

    Google takes every token of the whitespace-separated words the answer touches, then
    narrows that to a sub-span whose tokens equal the tokenized answer, if there is one
    (`_improve_answer_span`): "1895" in "(1895-1943)" becomes the one token "1895",
    while "Japan" in "Japanese" stays the whole word.
    """
    if example.is_impossible or not example.answers or not len(context):
        return None
    answer = example.answers[0]
    char_word, is_space = _char_to_word(example.context)
    # A SentencePiece "▁" token starts on the space before its word: it belongs to that
    # word, not the one before. (WordPiece tokens never start on a space.)
    token_starts = context.offsets[:, 0]
    token_word = char_word[token_starts] + is_space[token_starts]
    first = int(np.searchsorted(token_word, char_word[answer.start], side="left"))
    last = int(np.searchsorted(token_word, char_word[answer.end - 1], side="right")) - 1
    if first > last:
        return None
    wanted = _joined(answer_tokens)
    for start in range(first, last + 1):
        for end in range(last, start - 1, -1):
            if _joined(context.tokens[start : end + 1]) == wanted:
                return (start, end)
    return (first, last)


def _joined(tokens: Sequence[str]) -> str:
    """Tokens as one comparable string. SentencePiece's word-start mark "▁" is dropped: an
    answer tokenized alone starts a word even where, in the context, it follows "."."""
    return " ".join(t for t in (token.lstrip("\u2581") for token in tokens) if t)


def _char_to_word(text: str) -> tuple:
    """Index of the whitespace-separated word of each character (a space: the word before,
    as Google counts), and which characters are spaces."""
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    is_space = np.isin(code_points, _GOOGLE_WHITESPACE)
    word_starts = ~is_space & np.concatenate(([True], is_space[:-1]))
    return np.cumsum(word_starts) - 1, is_space


def _position_in_window(answer_tokens, start: int, length: int, query_length: int) -> tuple:
    """Answer positions in the packed sequence, or (0, 0) ([CLS]) when not inside."""
    if answer_tokens is None:
        return (0, 0)
    first, last = answer_tokens
    if first < start or last >= start + length:
        return (0, 0)
    offset = query_length + 2 - start  # [CLS] + question + [SEP] come first
    return (first + offset, last + offset)


def _pack(windows, examples, contexts, questions, tokenizer, max_seq_length, is_training):
    count = len(windows)
    input_ids = np.full((count, max_seq_length), tokenizer.pad_id, dtype=np.int32)
    input_mask = np.zeros((count, max_seq_length), dtype=np.int32)
    segment_ids = np.zeros((count, max_seq_length), dtype=np.int32)
    is_max_context = np.zeros((count, max_seq_length), dtype=bool)
    offsets = None if is_training else np.full((count, max_seq_length, 2), -1, dtype=np.int32)

    for row, window in enumerate(windows):
        example = examples[window.example]
        query = questions[example.question].ids[: window.query_length]
        context = contexts[example.context]
        begin = window.query_length + 2  # first context position
        end = begin + window.length
        input_ids[row, 0] = tokenizer.cls_id
        input_ids[row, 1 : begin - 1] = query
        input_ids[row, begin - 1] = tokenizer.sep_id
        input_ids[row, begin:end] = context.ids[window.start : window.start + window.length]
        input_ids[row, end] = tokenizer.sep_id
        input_mask[row, : end + 1] = 1
        segment_ids[row, begin : end + 1] = 1
        is_max_context[row, begin:end] = window.is_max_context
        if offsets is not None:
            offsets[row, begin:end] = context.offsets[window.start : window.start + window.length]

    positions = None
    if is_training:
        positions = np.asarray([w.answer for w in windows], dtype=np.int32).reshape(-1, 2)
    return SquadFeatures(
        unique_ids=UNIQUE_ID_BASE + np.arange(count, dtype=np.int64),
        example_index=np.asarray([w.example for w in windows], dtype=np.int32),
        input_ids=input_ids,
        input_mask=input_mask,
        segment_ids=segment_ids,
        start_positions=positions[:, 0] if is_training else None,
        end_positions=positions[:, 1] if is_training else None,
        token_offsets=offsets,
        token_is_max_context=is_max_context,
    )
