"""BERT's pre-training instances (masked LM + next sentence), as Google makes them.

google-research/bert `create_pretraining_data.py` draws every choice from one
``random.Random(seed)``: the document order, each document's target length, where
segment A ends, whether B is the true continuation or a random document's text, which
side a too-long pair is cut from, which tokens are masked and what replaces them, and
finally the order of all instances. The records are identical to Google's only if the
same draws happen in the same order, so the functions below make exactly Google's calls
on the generator they are given, and nothing else touches it.

Reading is where the time goes in Google's script (its tokenizer is pure Python); here
the lines are tokenized in batches by the Rust WordPiece tokenizer, which gives the same
pieces (`bertfam.tokenization.wordpiece`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Union

from bertfam.errors import UserError

Document = List[List[str]]  # sentences, each a list of word pieces

CLS, SEP, MASK = "[CLS]", "[SEP]", "[MASK]"
BATCH_LINES = 4096


class PretrainingDataError(UserError):
    """A corpus or a setting that cannot give pre-training instances."""


@dataclass(frozen=True)
class InstanceOptions:
    """Google's flags for the instances (their defaults)."""

    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    dupe_factor: int = 10
    do_whole_word_mask: bool = False

    def check(self) -> None:
        if self.max_seq_length < 5:
            raise PretrainingDataError(
                f"--max_seq_length={self.max_seq_length}: need at least 5 tokens "
                "([CLS] A [SEP] B [SEP] with one token on each side)"
            )
        most = self.max_seq_length - 3  # every token but [CLS] and the two [SEP]s
        if not 1 <= self.max_predictions_per_seq <= most:
            raise PretrainingDataError(
                f"--max_predictions_per_seq={self.max_predictions_per_seq}: a sequence of "
                f"{self.max_seq_length} has {most} maskable tokens; give 1 to {most}"
            )
        if not 0.0 < self.masked_lm_prob < 1.0 or not 0.0 <= self.short_seq_prob <= 1.0:
            raise PretrainingDataError(
                "--masked_lm_prob must be in (0, 1) and --short_seq_prob in [0, 1]"
            )
        if self.dupe_factor < 1:
            raise PretrainingDataError(f"--dupe_factor={self.dupe_factor}: need at least 1")


@dataclass
class TrainingInstance:
    tokens: List[str]
    segment_ids: List[int]
    masked_lm_positions: List[int]
    masked_lm_labels: List[str]
    is_random_next: bool  # ALBERT: the sentence-order label (1: B came first, or is foreign)
    token_boundary: Optional[List[int]] = None  # ALBERT: 1 where a word starts


class Masked(NamedTuple):
    """A sequence with masks applied, and what the masked LM predicts."""

    tokens: List[str]
    positions: List[int]  # ascending
    labels: List[str]  # the original tokens at `positions`
    token_boundary: Optional[List[int]] = None


def read_documents(paths: Iterable[Union[str, Path]], tokenizer, ids: bool = False) -> list:
    """Documents of tokenized sentences from text files: one sentence a line, blank lines
    between documents (Google's reader: a line that tokenizes to nothing is dropped, and
    the documents of several files simply follow each other). Sentences are lists of
    word pieces, or of their ids with ``ids=True``."""
    documents: list = [[]]
    for lines in _line_batches(paths):
        texts = [line for line in lines if line]
        if ids:
            pieces = iter(tokenizer.ids_batch(texts))
        else:
            pieces = iter([encoding.tokens for encoding in tokenizer.encode_batch(texts)])
        for line in lines:
            if not line:
                documents.append([])
                continue
            tokens = next(pieces)
            if len(tokens):
                documents[-1].append(list(tokens))
    return documents


def _line_batches(paths: Iterable[Union[str, Path]]) -> Iterator[List[str]]:
    """The stripped lines of text files, in batches for the batch tokenizer."""
    for path in paths:
        lines: List[str] = []
        try:
            # Lines end at "\n" only, as TensorFlow's GFile.readline in Google's reader.
            with open(path, encoding="utf-8", newline="\n") as handle:
                for line in handle:
                    lines.append(line.strip())
                    if len(lines) == BATCH_LINES:
                        yield lines
                        lines = []
        except (OSError, UnicodeDecodeError) as error:
            raise PretrainingDataError(f"{path}: cannot read it as UTF-8 text ({error})") from None
        yield lines


MaskFn = Callable[[List[str], Sequence[str], InstanceOptions, random.Random], Masked]


def create_training_instances(
    documents: List[Document],
    vocab_words: Sequence[str],
    options: InstanceOptions,
    rng: random.Random,
    mask: Optional[MaskFn] = None,
    sentence_order: bool = False,
) -> List[TrainingInstance]:
    """Every document `dupe_factor` times, each pass with new masks; then all shuffled.
    ALBERT passes its n-gram `mask` and `sentence_order` (see `document_instances`)."""
    documents = [document for document in documents if document]
    check_sentence_counts([len(document) for document in documents])
    rng.shuffle(documents)
    instances: List[TrainingInstance] = []
    for _ in range(options.dupe_factor):
        for index in range(len(documents)):
            instances.extend(
                document_instances(
                    documents, index, vocab_words, options, rng, mask, sentence_order
                )
            )
    rng.shuffle(instances)
    return instances


def check_sentence_counts(counts: Sequence[int]) -> None:
    """Refuse a corpus without text, or one whose documents are all single sentences
    (Google's script would make every pair a random one: NSP with nothing to learn)."""
    if not len(counts):
        raise PretrainingDataError("the corpus has no text: no instances to make")
    if all(count == 1 for count in counts):
        raise PretrainingDataError(
            "every document of the corpus is a single sentence (a blank line after every "
            "line?): next-sentence prediction needs documents of 2 sentences or more"
        )


def document_instances(
    documents: List[Document],
    index: int,
    vocab_words: Sequence[str],
    options: InstanceOptions,
    rng: random.Random,
    mask: Optional[MaskFn] = None,
    sentence_order: bool = False,
) -> List[TrainingInstance]:
    """The instances of one document: sentences gathered up to a target length, split
    into A and B at a random sentence boundary; half the time (always, with a single
    sentence) B is replaced by text from a random other document, and the sentences it
    displaced are used for the next instance.

    With `sentence_order` (ALBERT), the half that is not the true order swaps A and B
    instead; a single sentence still takes B from another document (label 1 too)."""
    mask = mask or masked_lm_predictions
    document = documents[index]
    max_tokens = options.max_seq_length - 3
    # Mostly full sequences; now and then a short one, as fine-tuning sees them.
    target = max_tokens
    if rng.random() < options.short_seq_prob:
        target = rng.randint(2, max_tokens)

    instances = []
    chunk: Document = []
    length = 0
    i = 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = [token for sentence in chunk[:a_end] for token in sentence]
            tokens_b: List[str] = []
            is_random_next = len(chunk) == 1 or (not sentence_order and rng.random() < 0.5)
            if is_random_next:
                other = _other_document(len(documents), index, rng)
                start = rng.randint(0, len(documents[other]) - 1)
                for sentence in documents[other][start:]:
                    tokens_b.extend(sentence)
                    if len(tokens_b) >= target - len(tokens_a):
                        break
                i -= len(chunk) - a_end  # the unused sentences start the next instance
            else:
                tokens_b = [token for sentence in chunk[a_end:] for token in sentence]
                if sentence_order and rng.random() < 0.5:
                    is_random_next = True
                    tokens_a, tokens_b = tokens_b, tokens_a
            _truncate_pair(tokens_a, tokens_b, max_tokens, rng)
            tokens = [CLS, *tokens_a, SEP, *tokens_b, SEP]
            segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
            masked = mask(tokens, vocab_words, options, rng)
            instances.append(
                TrainingInstance(
                    masked.tokens,
                    segment_ids,
                    masked.positions,
                    masked.labels,
                    is_random_next,
                    masked.token_boundary,
                )
            )
            chunk, length = [], 0
        i += 1
    return instances


def _other_document(count: int, index: int, rng: random.Random) -> int:
    """A random document other than `index`, with Google's ten tries (with a single
    document the last try is the document itself, as in Google's script)."""
    for _ in range(10):
        other = rng.randint(0, count - 1)
        if other != index:
            break
    return other


def _truncate_pair(tokens_a: List[str], tokens_b: List[str], max_tokens: int, rng) -> None:
    """Cut the longer side (B on a tie) one token at a time, from the front or the back
    at random, until the pair fits."""
    while len(tokens_a) + len(tokens_b) > max_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def masked_lm_predictions(
    tokens: List[str], vocab_words: Sequence[str], options: InstanceOptions, rng
) -> Masked:
    """BERT's masked LM (tokens with masks applied, masked positions in order, labels).

    Candidates are every token but [CLS] and [SEP], in random order; with whole-word
    masking a word's pieces (a piece and the ``##`` pieces after it) are one candidate,
    masked together or not at all. Up to round(15% of the length) positions are chosen
    (at least 1, at most --max_predictions_per_seq); each becomes [MASK] 80% of the time,
    stays itself 10% and becomes a random vocabulary word 10%.
    """
    candidates: List[List[int]] = []
    for position, token in enumerate(tokens):
        if token in (CLS, SEP):
            continue
        if options.do_whole_word_mask and candidates and token.startswith("##"):
            candidates[-1].append(position)
        else:
            candidates.append([position])
    rng.shuffle(candidates)

    output = list(tokens)
    budget = min(
        options.max_predictions_per_seq,
        max(1, int(round(len(tokens) * options.masked_lm_prob))),
    )
    chosen: List[int] = []
    for word in candidates:
        if len(chosen) >= budget:
            break
        if len(chosen) + len(word) > budget:
            continue  # a whole word that no longer fits
        for position in word:
            output[position] = replacement(tokens[position], vocab_words, rng)
            chosen.append(position)
    chosen.sort()
    return Masked(output, chosen, [tokens[position] for position in chosen])


def replacement(token: str, vocab_words: Sequence[str], rng: random.Random) -> str:
    """What a masked position shows: [MASK] 80% of the time, itself 10%, a random
    vocabulary word 10% (Google's draws, in its order)."""
    if rng.random() < 0.8:
        return MASK
    if rng.random() < 0.5:
        return token
    return vocab_words[rng.randint(0, len(vocab_words) - 1)]
