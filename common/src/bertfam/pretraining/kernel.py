"""`bertfam.pretraining.instances`, compiled: the same draws, on token ids.

Google's algorithm spends its time in Python-level random draws (about a hundred per
instance: the masking shuffles every candidate) and in list handling. This module runs
the whole of `create_training_instances` + `instance_arrays` as one Numba-compiled
loop. To give the very records Python gives, it carries its own copy of the generator
`random.Random` uses, MT19937, started from the Python generator's state, and derives
every draw as CPython does:

- ``random()``: two 32-bit words, ``((a >> 5) * 2**26 + (b >> 6)) / 2**53``;
- ``randint(a, b)`` and ``shuffle``: ``_randbelow(n)``, i.e. ``k = n.bit_length()``
  bits (one word shifted right by ``32 - k``), drawn again while ``>= n``.

When it is done the Python generator is set to the state the kernel reached, as if
Python had made the draws. Segments are ranges of the corpus's flat token array (the
sentences of a document are consecutive there), so cutting a pair to length moves two
bounds instead of deleting from lists. The tests hold this module to the readable
implementation in `instances` (and both to Google's script) on several corpora, seeds
and settings, and check the final generator state too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numba
import numpy as np

from bertfam.pretraining.instances import InstanceOptions, check_sentence_counts

_N, _M = 624, 397  # MT19937's state size and shift


@dataclass(frozen=True)
class TokenizedCorpus:
    """Documents as flat arrays: the token ids of every sentence, one after the other
    (``tokens``), where each sentence starts (``sentence_starts`` [sentences + 1]) and
    each document's first sentence (``document_starts`` [documents + 1]). Empty
    sentences and documents are left out, as Google's reader leaves them out."""

    tokens: np.ndarray
    sentence_starts: np.ndarray
    document_starts: np.ndarray

    @classmethod
    def from_documents(cls, documents: Sequence[Sequence[Sequence[int]]]) -> TokenizedCorpus:
        lengths: List[int] = []
        pieces: List[Sequence[int]] = []
        document_starts = [0]
        for document in documents:
            sentences = [sentence for sentence in document if len(sentence)]
            if not sentences:
                continue
            lengths.extend(len(sentence) for sentence in sentences)
            pieces.extend(sentences)
            document_starts.append(len(lengths))
        tokens = np.concatenate([np.asarray(p, np.int32) for p in pieces]) if pieces else None
        return cls(
            tokens=tokens if tokens is not None else np.zeros(0, np.int32),
            sentence_starts=np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]),
            document_starts=np.asarray(document_starts, np.int64),
        )

    @property
    def documents(self) -> int:
        return len(self.document_starts) - 1


def instance_arrays(
    corpus: TokenizedCorpus,
    vocab: Dict[str, int],
    options: InstanceOptions,
    rng: random.Random,
) -> Dict[str, np.ndarray]:
    """`instances.create_training_instances` then `features.instance_arrays`, compiled;
    `vocab` maps token -> id (its order is ``vocab_words``'); `rng` ends as Python's would."""
    check_sentence_counts(np.diff(corpus.document_starts))
    version, words, gauss = rng.getstate()
    state = np.asarray(words[:_N], np.int64)  # 32-bit words; int64 keeps Numba's arithmetic signed
    cursor = np.asarray([words[_N]], np.int64)
    is_subword = np.zeros(max(vocab.values()) + 1, np.bool_)
    for token, index in vocab.items():
        is_subword[index] = token.startswith("##")
    word_ids = np.asarray(list(vocab.values()), np.int32)  # vocab_words[i] -> its id
    rows = _create(
        corpus.tokens,
        corpus.sentence_starts,
        corpus.document_starts,
        is_subword,
        word_ids,
        vocab["[CLS]"],
        vocab["[SEP]"],
        vocab["[MASK]"],
        options.max_seq_length,
        options.max_predictions_per_seq,
        options.masked_lm_prob,
        options.short_seq_prob,
        options.dupe_factor,
        options.do_whole_word_mask,
        state,
        cursor,
    )
    rng.setstate((version, tuple(int(w) for w in state) + (int(cursor[0]),), gauss))
    return _features(*rows, options.max_seq_length)


def _features(input_ids, a_lengths, lengths, positions, labels, predictions, random_next, width):
    """The §7.1 arrays from the kernel's rows (already in their final, shuffled order)."""
    columns = np.arange(width)
    input_mask = columns < lengths[:, None]
    segment_ids = input_mask & (columns >= a_lengths[:, None] + 2)  # B starts after A's [SEP]
    weights = np.arange(positions.shape[1]) < predictions[:, None]
    return {
        "input_ids": input_ids.astype(np.int64),
        "input_mask": input_mask.astype(np.int64),
        "segment_ids": segment_ids.astype(np.int64),
        "masked_lm_positions": positions.astype(np.int64),
        "masked_lm_ids": labels.astype(np.int64),
        "masked_lm_weights": weights.astype(np.float32),
        "next_sentence_labels": random_next.astype(np.int64)[:, None],
    }


# ---------------------------------------------------------------- CPython's generator


@numba.njit(cache=True)
def _next_word(state, cursor):
    """genrand_uint32: the next 32-bit output, regenerating the block when used up."""
    if cursor[0] >= _N:
        for k in range(_N):
            y = (state[k] & 0x80000000) | (state[(k + 1) % _N] & 0x7FFFFFFF)
            state[k] = state[(k + _M) % _N] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
        cursor[0] = 0
    y = state[cursor[0]]
    cursor[0] += 1
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C5680
    y ^= (y << 15) & 0xEFC60000
    y ^= y >> 18
    return y


@numba.njit(cache=True)
def _random(state, cursor):
    a = _next_word(state, cursor) >> 5
    b = _next_word(state, cursor) >> 6
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True)
def _below(n, state, cursor):
    """random._randbelow(n) for 0 < n < 2**32."""
    bits = 0
    while (n >> bits) > 0:
        bits += 1
    value = _next_word(state, cursor) >> (32 - bits)
    while value >= n:
        value = _next_word(state, cursor) >> (32 - bits)
    return value


@numba.njit(cache=True)
def _shuffle(values, state, cursor):
    for i in range(len(values) - 1, 0, -1):
        j = _below(i + 1, state, cursor)
        values[i], values[j] = values[j], values[i]


# ---------------------------------------------------------------- Google's algorithm


@numba.njit(cache=True)
def _grow(array, rows):
    bigger = np.zeros((rows,) + array.shape[1:], array.dtype)
    bigger[: len(array)] = array
    return bigger


@numba.njit(cache=True)
def _create(
    tokens, sentence_starts, document_starts, is_subword, word_ids, cls_id, sep_id, mask_id,
    max_seq_length, max_predictions, masked_lm_prob, short_seq_prob, dupe_factor,
    whole_word, state, cursor,
):  # fmt: skip
    documents = len(document_starts) - 1
    order = np.arange(documents)
    _shuffle(order, state, cursor)  # rng.shuffle(all_documents)

    # About one instance per target length of text, or per document; grown when short.
    capacity = 16 + dupe_factor * (len(tokens) // (max_seq_length // 2) + documents)
    input_ids = np.zeros((capacity, max_seq_length), np.int32)
    positions = np.zeros((capacity, max_predictions), np.int32)
    labels = np.zeros((capacity, max_predictions), np.int32)
    a_lengths = np.zeros(capacity, np.int32)
    lengths = np.zeros(capacity, np.int32)
    predictions = np.zeros(capacity, np.int32)
    random_next = np.zeros(capacity, np.bool_)
    count = 0
    max_tokens = max_seq_length - 3
    row = np.zeros(max_seq_length, np.int32)
    candidates = np.zeros(max_seq_length, np.int32)  # positions, word after word
    word_starts = np.zeros(max_seq_length + 1, np.int32)
    words = np.zeros(max_seq_length, np.int32)
    chosen = np.zeros(max_predictions, np.int32)
    chosen_labels = np.zeros(max_predictions, np.int32)

    for _ in range(dupe_factor):
        for index in range(documents):
            document = order[index]
            first = document_starts[document]
            sentences = document_starts[document + 1] - first
            target = max_tokens
            if _random(state, cursor) < short_seq_prob:
                target = 2 + _below(max_tokens - 1, state, cursor)
            chunk_first = 0  # the chunk is sentences chunk_first..i of the document
            length = 0
            i = 0
            while i < sentences:
                s = first + i
                length += sentence_starts[s + 1] - sentence_starts[s]
                if i == sentences - 1 or length >= target:
                    chunk = i - chunk_first + 1
                    a_end = 1
                    if chunk >= 2:
                        a_end = 1 + _below(chunk - 1, state, cursor)
                    a_lo = sentence_starts[first + chunk_first]
                    a_hi = sentence_starts[first + chunk_first + a_end]
                    is_random = chunk == 1 or _random(state, cursor) < 0.5
                    if is_random:
                        other = 0
                        for _try in range(10):
                            other = order[_below(documents, state, cursor)]
                            if other != document:
                                break
                        other_first = document_starts[other]
                        other_count = document_starts[other + 1] - other_first
                        start = other_first + _below(other_count, state, cursor)
                        b_lo = sentence_starts[start]
                        b_hi = b_lo
                        for t in range(start, other_first + other_count):
                            b_hi = sentence_starts[t + 1]
                            if b_hi - b_lo >= target - (a_hi - a_lo):
                                break
                        i -= chunk - a_end  # the unused sentences start the next instance
                    else:
                        b_lo = a_hi
                        b_hi = sentence_starts[first + i + 1]
                    while (a_hi - a_lo) + (b_hi - b_lo) > max_tokens:
                        if a_hi - a_lo > b_hi - b_lo:
                            if _random(state, cursor) < 0.5:
                                a_lo += 1
                            else:
                                a_hi -= 1
                        elif _random(state, cursor) < 0.5:
                            b_lo += 1
                        else:
                            b_hi -= 1

                    if count == capacity:
                        capacity *= 2
                        input_ids = _grow(input_ids, capacity)
                        positions = _grow(positions, capacity)
                        labels = _grow(labels, capacity)
                        a_lengths = _grow(a_lengths, capacity)
                        lengths = _grow(lengths, capacity)
                        predictions = _grow(predictions, capacity)
                        random_next = _grow(random_next, capacity)
                    n = 0
                    row[n] = cls_id
                    n += 1
                    for t in range(a_lo, a_hi):
                        row[n] = tokens[t]
                        n += 1
                    row[n] = sep_id
                    n += 1
                    for t in range(b_lo, b_hi):
                        row[n] = tokens[t]
                        n += 1
                    row[n] = sep_id
                    n += 1

                    # Masking: candidates are every token but [CLS]/[SEP]; with whole
                    # words a "##" piece joins the word before it (even across [SEP]).
                    candidate_count = 0
                    word_count = 0
                    for p in range(n):
                        if row[p] == cls_id or row[p] == sep_id:
                            continue
                        if not (whole_word and word_count > 0 and is_subword[row[p]]):
                            word_starts[word_count] = candidate_count
                            word_count += 1
                        candidates[candidate_count] = p
                        candidate_count += 1
                    word_starts[word_count] = candidate_count
                    for w in range(word_count):
                        words[w] = w
                    _shuffle(words[:word_count], state, cursor)
                    budget = min(max_predictions, max(1, int(np.rint(n * masked_lm_prob))))
                    masked = 0
                    for w in range(word_count):
                        if masked >= budget:
                            break
                        lo = word_starts[words[w]]
                        hi = word_starts[words[w] + 1]
                        if masked + (hi - lo) > budget:
                            continue
                        for c in range(lo, hi):
                            p = candidates[c]
                            original = row[p]
                            if _random(state, cursor) < 0.8:
                                row[p] = mask_id
                            elif _random(state, cursor) < 0.5:
                                pass
                            else:
                                row[p] = word_ids[_below(len(word_ids), state, cursor)]
                            chosen[masked] = p
                            chosen_labels[masked] = original
                            masked += 1
                    sort = np.argsort(chosen[:masked])
                    positions[count, :masked] = chosen[:masked][sort]
                    labels[count, :masked] = chosen_labels[:masked][sort]
                    input_ids[count, :n] = row[:n]
                    a_lengths[count] = a_hi - a_lo
                    lengths[count] = n
                    predictions[count] = masked
                    random_next[count] = is_random
                    count += 1
                    chunk_first = i + 1
                    length = 0
                i += 1

    final = np.arange(count)
    _shuffle(final, state, cursor)  # rng.shuffle(instances)
    return (
        input_ids[final], a_lengths[final], lengths[final], positions[final],
        labels[final], predictions[final], random_next[final],
    )  # fmt: skip
