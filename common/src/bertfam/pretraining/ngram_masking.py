"""ALBERT's pre-training instances: sentence order, n-gram masking, word boundaries.

google-research/albert's ``create_pretraining_data.py`` makes instances as BERT's does
(`bertfam.pretraining.instances`: the same reading, chunking and truncation, the same
draws on one ``random.Random(seed)``) with three differences, all here or switched on by
`albert_instances`:

- sentence order instead of next sentence: half the pairs have A and B swapped (label 1);
  B from another document only when the chunk is a single sentence
  (``--random_next_sentence`` brings BERT's random-document pairs back);
- masking picks n-grams of whole words: the candidates are, for each word, the 1- to
  ``--ngram``-word spans starting there, in random order; each is masked at a length
  drawn with probability proportional to 1/n (``--favor_shorter_ngram``; reversed
  without it), shortened until it fits the budget, skipped if it overlaps a masked one;
- every record carries ``token_boundary``: 1 where a word starts (and at [CLS]/[SEP]),
  for masking on the fly at training time (``run_pretraining.py --masked_lm_budget``).

Google draws the n-gram lengths from NumPy's global generator, never seeded, so its
records change from run to run once ``--ngram`` > 1. Here they come from their own
generator seeded with ``--random_seed``: the same records every run, Google's
distribution, and with ``--ngram=1`` (one possible length, nothing drawn) exactly
Google's records. Google also shuffles the candidates a second time after masking (for
its permutation LM, off by default); that draw is made too, or every later record would
differ.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import numpy as np

from bertfam.pretraining.instances import (
    CLS,
    MASK,
    SEP,
    Document,
    InstanceOptions,
    Masked,
    PretrainingDataError,
    TrainingInstance,
    create_training_instances,
    replacement,
)

WORD_START = "\u2581"  # SentencePiece's "a space came before this piece"
# Google's punctuation set for SentencePiece pieces (no apostrophe, "<", "=" or ">").
_PUNCTUATION = frozenset('!"#$%&()*+,-./:;?@[\\]^_`{|}~')
_CONTINUES_WORD = frozenset("abcdefghijklmnopqrstuvwxyz") | _PUNCTUATION


@dataclass(frozen=True)
class AlbertInstanceOptions(InstanceOptions):
    """google-research/albert's flags for the instances (their defaults)."""

    max_seq_length: int = 512
    dupe_factor: int = 40
    do_whole_word_mask: bool = True
    ngram: int = 3
    favor_shorter_ngram: bool = True
    random_next_sentence: bool = False
    sentencepiece: bool = True  # which word-start rule: SentencePiece's or WordPiece's

    def check(self) -> None:
        super().check()
        if self.ngram < 1:
            raise PretrainingDataError(f"--ngram={self.ngram}: need at least 1")


def starts_word(piece: str, sentencepiece: bool) -> bool:
    """Whether `piece` begins a word, by Google's rules. SentencePiece: it follows a space
    ("▁"), is a control piece ("<..."), a punctuation mark, or holds a character that is
    neither an ASCII letter nor punctuation (digits and foreign scripts are words of their
    own). WordPiece: it is not a ``##`` continuation."""
    if not sentencepiece:
        return not piece.startswith("##")
    return (
        piece.startswith(WORD_START)
        or piece.startswith("<")
        or piece in _PUNCTUATION
        or not all(char.lower() in _CONTINUES_WORD for char in piece)
    )


def ngram_probabilities(options: AlbertInstanceOptions) -> np.ndarray:
    """P(n) for n = 1..ngram: proportional to 1/n, or to 1/(ngram + 1 - n) when longer
    n-grams are favoured."""
    weights = 1.0 / np.arange(1, options.ngram + 1)
    weights /= weights.sum()
    return weights if options.favor_shorter_ngram else weights[::-1]


class NgramMasking:
    """ALBERT's masked LM as a `MaskFn`, drawing n-gram lengths from its own generator."""

    def __init__(self, options: AlbertInstanceOptions, seed: int):
        self.options = options
        self.probabilities = ngram_probabilities(options)
        self.lengths = np.random.RandomState(seed)

    def __call__(
        self, tokens: List[str], vocab_words: Sequence[str], options: InstanceOptions, rng
    ) -> Masked:
        words, boundary = self._words(tokens)
        output = list(tokens)
        budget = min(
            options.max_predictions_per_seq,
            max(1, int(round(len(tokens) * options.masked_lm_prob))),
        )

        def replace(position: int) -> None:
            output[position] = replacement(tokens[position], vocab_words, rng)

        chosen = self.choose(words, budget, rng, replace)
        return Masked(output, chosen, [tokens[p] for p in chosen], boundary)

    def choose(
        self, words: List[List[int]], budget: int, rng, replace: Callable[[int], None]
    ) -> List[int]:
        """Up to `budget` positions, as n-grams of `words` (lists of positions); calls
        `replace(position)` for each as it is chosen (its draws come in between, as in
        Google's loop). Returns them ascending."""
        ngram = self.options.ngram
        # spans[w][n - 1]: the n words from word w (fewer at the end of the sequence).
        spans = [[words[w : w + n] for n in range(1, ngram + 1)] for w in range(len(words))]
        rng.shuffle(spans)
        chosen: List[int] = []
        covered = set()
        for span in spans:
            if len(chosen) >= budget:
                break
            positions = self._fitting(span, budget - len(chosen))
            if positions is None or covered.intersection(positions):
                continue
            for position in positions:
                covered.add(position)
                replace(position)
                chosen.append(position)
        rng.shuffle(spans)  # Google's second shuffle (see the module's note)
        return sorted(chosen)

    def _words(self, tokens: List[str]):
        """The maskable words (lists of positions) and the boundary flags."""
        words: List[List[int]] = []
        boundary = [0] * len(tokens)
        for position, token in enumerate(tokens):
            if token in (CLS, SEP):
                boundary[position] = 1
                continue
            start = starts_word(token, self.options.sentencepiece)
            if self.options.do_whole_word_mask and words and not start:
                # As Google's: a continuation right after [SEP] joins the word before it.
                words[-1].append(position)
            else:
                words.append([position])
                boundary[position] = int(start)
        return words, boundary

    def _fitting(self, span: List[List[List[int]]], room: int):
        """The positions of the span at its drawn length, or at the longest shorter
        length that fits `room`; None if not even one word fits."""
        n = 1
        if len(span) > 1:  # one length only: nothing to draw (Google's choice is certain)
            n = int(self.lengths.choice(np.arange(1, len(span) + 1), p=self.probabilities))
        for length in range(n, 0, -1):
            positions = [p for word in span[length - 1] for p in word]
            if len(positions) <= room:
                return positions
        return None


def albert_instances(
    documents: List[Document],
    vocab_words: Sequence[str],
    options: AlbertInstanceOptions,
    seed: int,
) -> List[TrainingInstance]:
    """google-research/albert's instances of `documents` for `seed`."""
    return create_training_instances(
        documents,
        vocab_words,
        options,
        random.Random(seed),
        mask=NgramMasking(options, seed),
        sentence_order=not options.random_next_sentence,
    )


class OnTheFlyMasking:
    """``run_pretraining.py --masked_lm_budget``: a record's masks made as it is read,
    from its ``token_boundary``, new each time (ALBERT's records keep the boundaries for
    this; google-research/albert reads them but never released the masking).

    The words are the spans that start where ``token_boundary`` is 1 ([CLS] and the two
    [SEP]s excluded); ``budget`` of the real tokens (at least 1, at most
    ``max_predictions``) are chosen as n-grams of up to 3 words, as
    ``create_pretraining_data.py`` chooses them, each shown as [MASK] 80% of the time,
    itself 10%, a random id 10%. One generator per reader, seeded: the same masks for
    the same seed and record order."""

    def __init__(
        self, budget: float, max_predictions: int, vocab_size: int, mask_id: int, seed: int
    ):
        if not 0.0 < budget < 1.0:
            raise PretrainingDataError(f"--masked_lm_budget={budget}: give a fraction in (0, 1)")
        self.budget, self.max_predictions = budget, max_predictions
        self.vocab_size, self.mask_id = vocab_size, mask_id
        self.rng = random.Random(seed)
        self.selector = NgramMasking(AlbertInstanceOptions(), seed)

    def __call__(self, input_ids, input_mask, segment_ids, token_boundary) -> Dict[str, np.ndarray]:
        real = int(np.sum(input_mask))
        special = {0, int(np.sum(segment_ids[:real] == 0)) - 1, real - 1}  # [CLS], [SEP]s
        words: List[List[int]] = []
        for position in range(real):
            if position in special:
                continue
            if token_boundary[position] or not words:
                words.append([position])
            else:
                words[-1].append(position)
        budget = min(self.max_predictions, max(1, int(round(real * self.budget))))
        ids = np.array(input_ids, copy=True)

        def replace(position: int) -> None:
            shown = replacement(int(input_ids[position]), range(self.vocab_size), self.rng)
            ids[position] = self.mask_id if shown == MASK else shown

        chosen = self.selector.choose(words, budget, self.rng, replace)
        slots = self.max_predictions
        positions = np.zeros(slots, input_ids.dtype)
        labels = np.zeros(slots, input_ids.dtype)
        weights = np.zeros(slots, np.float32)
        positions[: len(chosen)] = chosen
        labels[: len(chosen)] = input_ids[chosen]
        weights[: len(chosen)] = 1.0
        return {
            "input_ids": ids,
            "masked_lm_positions": positions,
            "masked_lm_ids": labels,
            "masked_lm_weights": weights,
        }
