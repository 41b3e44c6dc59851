"""Sequence packing for BERT pre-training: several short sequences in one row of length L.

The algorithm is the "non-negative least squares histogram packing" (NNLSHP) of Krell et
al. 2021, "Efficient Sequence Packing without Cross-contamination" (arXiv:2107.02027), as
Graphcore's ``pack_pretraining_data.py`` and Habana's ``pack_pretraining_data_tfrec.py``
implement it:

1. the histogram of sequence lengths (how many sequences have 1, 2, ... L tokens);
2. the packing strategies: every way to write L as a sum of at most
   ``max_sequences_per_pack`` lengths ([L], [a, L - a], [a, b, L - a - b]);
3. non-negative least squares picks how many packs of each strategy reproduce the
   histogram best. Whole packs are what the fit rewards, so a strategy part that no real
   sequence fills is padding: a row holds at most ``max_sequences_per_pack`` sequences of
   at most L tokens in all;
4. the counts are rounded down and the sequences the rounded plan leaves over go, longest
   first, into the free room of planned rows or new ones (best fit), so every sequence is
   used exactly once (``duplication_factor`` only says, in the metadata, how often
   create_pretraining_data.py repeated the text; Habana's script does not use it either).

The packed row (``pack_row``) is Habana's layout, which its ``run_pretraining.py`` reads:
the sequences one after another from position 0, each with
its own [CLS] and [SEP]s; ``input_mask`` holds 1, 2, 3 for the tokens of the first,
second, third sequence and 0 for padding; ``positions`` restarts at 0 in each sequence;
``masked_lm_*`` list the sequences' predictions in order, positions shifted by where the
sequence starts, ``masked_lm_weights`` holding the sequence's number (1, 2, 3) rather than
1.0; ``next_sentence_positions`` is each sequence's [CLS] position, with its label and a
weight of 1.0 in ``next_sentence_labels`` / ``next_sentence_weights``. The widths are
always P + 3 and 3 (``PACK_SLOTS``), the widths ``run_pretraining.py`` parses, whatever
``max_sequences_per_pack`` is (upstream writes P + 2 and 2 for 2, which its own trainer
cannot read).

Memory. Upstream reads every input record into memory before it packs, so its peak
memory grows with the number of input files (that is how a user's packing ran out of
memory). Here the input is read as a stream and packed in chunks of
``sequences_per_chunk`` sequences (``SequenceChunk``), each chunk on its own histogram,
so the peak is one chunk plus the solver's matrix (and a few kB per open output file),
whatever the input size. A chunk of tens of thousands of sequences is a close sample of
the whole histogram, and the sequences a chunk's plan leaves over are packed by best fit
within the chunk: in our measurements chunking moves the packing efficiency by well under
one percent, either way (``TensorFlow/nlp/bert/benchmarks/packing_memory.py`` prints it).
We chose chunks over two passes (lengths first, then one global plan filled from the
stream) because a stream fills a global plan's rows in arbitrary order: the rows waiting
for their partners are what would then grow without bound.

Solving a chunk's least squares over all 22,102 strategies of L = 512 takes about ten
seconds; `MixtureSolver` solves over the strategies the previous chunk used, adding those
the optimality (KKT) conditions still ask for, which gives the same optimum in a fraction
of a second.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

import numpy as np
from scipy.optimize import nnls

from bertfam.atomic import write_json
from bertfam.errors import FlagError, UserError

# Habana's run_pretraining.py parses 3 next-sentence slots and P + 3 masked positions.
PACK_SLOTS = 3

PACKED_FEATURES = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "positions",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "next_sentence_positions",
    "next_sentence_labels",
    "next_sentence_weights",
)
PACKED_FLOAT_FEATURES = ("masked_lm_weights", "next_sentence_weights")

# Lengths up to this many tokens are cheap padding: their residual weighs little in the
# least-squares fit, so the solver may over-use them (Graphcore's `padding_cutoff`).
SHORT_LENGTH = 8


@dataclass(frozen=True)
class PackingOptions:
    """What a packing run needs to know; `check` refuses impossible values by flag name."""

    max_sequence_length: int
    max_predictions_per_sequence: int
    max_sequences_per_pack: int = 3
    duplication_factor: int = 1

    def check(self) -> None:
        if self.max_sequence_length < 2:
            raise FlagError(f"--max-sequence-length={self.max_sequence_length}: must be >= 2")
        if self.max_predictions_per_sequence < 1:
            raise FlagError(
                f"--max-predictions-per-sequence={self.max_predictions_per_sequence}: must be >= 1"
            )
        if not 1 <= self.max_sequences_per_pack <= PACK_SLOTS:
            raise FlagError(
                f"--max-sequences-per-pack={self.max_sequences_per_pack}: "
                f"must be between 1 and {PACK_SLOTS}"
            )
        if self.duplication_factor < 1:
            raise FlagError(f"--duplication-factor={self.duplication_factor}: must be >= 1")

    @property
    def packed_predictions(self) -> int:
        """Width of a packed row's masked_lm_* features."""
        return self.max_predictions_per_sequence + PACK_SLOTS


# --- the strategies and the least-squares fit ---------------------------------------


def packing_strategies(length: int, depth: int) -> np.ndarray:
    """Every multiset of at most `depth` positive lengths summing to exactly `length`, as
    rows of `depth` ascending parts padded with 0 in front: [S, depth]."""
    found: List[List[int]] = []

    def extend(parts: List[int], smallest: int, remaining: int) -> None:
        if remaining >= smallest:
            found.append(parts + [remaining])  # close the pack with one last part
        if len(parts) + 1 < depth:
            for part in range(smallest, remaining // 2 + 1):
                extend(parts + [part], part, remaining - part)

    extend([], 1, length)
    table = np.zeros((len(found), depth), np.int64)
    for row, parts in enumerate(found):
        table[row, depth - len(parts) :] = parts
    return table


def strategy_matrix(strategies: np.ndarray, length: int) -> np.ndarray:
    """[length, S]: how many parts of each length (row l - 1 for length l) a strategy has."""
    matrix = np.zeros((length, len(strategies)), np.float64)
    for column, parts in enumerate(strategies):
        for part in parts[parts > 0]:
            matrix[part - 1, column] += 1
    return matrix


def residual_weights(length: int) -> np.ndarray:
    """Per-length weights of the least-squares residual: over-using a short length costs
    a few padding tokens, so its residual counts less (Graphcore's weights)."""
    weights = np.ones(length)
    weights[:SHORT_LENGTH] = SHORT_LENGTH / (2 * length)
    return np.sqrt(weights)


class MixtureSolver:
    """Non-negative least squares for how many packs of each strategy fit a histogram.

    One solver serves every chunk of a run: the strategy matrix is built once, and each
    solve starts from the strategies the previous chunk used (column generation). A
    strategy outside that set can lower the residual only if its gradient is positive;
    those with the largest gradients join the set until none is left, which are the
    optimality conditions of the whole problem, so the answer is the full problem's.
    """

    COLUMNS_PER_ROUND = 64
    MAX_ROUNDS = 200

    def __init__(self, options: PackingOptions):
        length = options.max_sequence_length
        self.strategies = packing_strategies(length, options.max_sequences_per_pack)
        self._weights = residual_weights(length)
        self._matrix = strategy_matrix(self.strategies, length) * self._weights[:, None]
        self._support = np.zeros(0, np.int64)

    def solve(self, histogram: np.ndarray) -> np.ndarray:
        """[S] non-negative (fractional) pack counts whose parts best match `histogram`."""
        target = histogram.astype(np.float64) * self._weights
        tolerance = 1e-9 * max(1.0, float(np.abs(target).sum()))
        support = self._support
        mixture = np.zeros(len(self.strategies))
        for _ in range(self.MAX_ROUNDS):
            mixture[:] = 0.0
            if support.size:
                mixture[support] = nnls(self._matrix[:, support], target)[0]
            gradient = self._matrix.T @ (target - self._matrix @ mixture)
            gradient[support] = 0.0
            wanted = np.flatnonzero(gradient > tolerance)
            if not wanted.size:
                break
            best = wanted[np.argsort(-gradient[wanted])[: self.COLUMNS_PER_ROUND]]
            support = np.union1d(support, best)
        self._support = np.flatnonzero(mixture)
        return mixture


# --- from a mixture to rows of sequences ---------------------------------------------


def length_histogram(lengths: np.ndarray, max_sequence_length: int) -> np.ndarray:
    """[L]: how many of `lengths` are 1, 2, ... L tokens long."""
    return np.bincount(lengths, minlength=max_sequence_length + 1)[1:]


@dataclass
class _Rows:
    """Rows under construction: members [R, depth] (item index or -1 for a free slot), and
    each row's tokens and masked predictions so far."""

    members: np.ndarray
    tokens: np.ndarray
    predictions: np.ndarray


def plan_rows(
    lengths: np.ndarray,
    predictions: np.ndarray,
    counts: np.ndarray,
    strategies: np.ndarray,
    options: PackingOptions,
    rng: np.random.Generator,
) -> Tuple[_Rows, List[int]]:
    """Fill `counts[j]` rows of each strategy j with items of its lengths, drawn at random
    within a length; returns the rows and the items the plan did not place.

    A part whose length has run out of items stays a free slot (padding, unless a
    leftover fills it later). A row whose predictions would overflow the packed width
    gives its last items back as leftovers.
    """
    order = np.lexsort((rng.random(len(lengths)), lengths))  # by length, random within
    bounds = np.searchsorted(lengths[order], np.arange(1, options.max_sequence_length + 2))
    next_item = bounds[:-1].copy()  # next unused item of length l is order[next_item[l - 1]]
    end = bounds[1:]
    depth = strategies.shape[1]
    used = np.flatnonzero(counts)
    members = np.full((int(counts[used].sum()), depth), -1, np.int64)
    row = 0
    for strategy in used:
        count = int(counts[strategy])
        for slot, part in enumerate(strategies[strategy]):
            if part == 0:
                continue
            take = min(count, end[part - 1] - next_item[part - 1])
            members[row : row + take, slot] = order[
                next_item[part - 1] : next_item[part - 1] + take
            ]
            next_item[part - 1] += take
        row += count
    leftovers = [order[start:stop] for start, stop in zip(next_item, end) if start < stop]
    leftovers = list(np.concatenate(leftovers)) if leftovers else []
    rows = _Rows(
        members,
        np.where(members >= 0, lengths[members], 0).sum(axis=1),
        np.where(members >= 0, predictions[members], 0).sum(axis=1),
    )
    _give_back_overflowing(rows, lengths, predictions, options.packed_predictions, leftovers)
    return rows, leftovers


def _give_back_overflowing(rows: _Rows, lengths, predictions, capacity: int, leftovers: list):
    """Google's masking predicts round(0.15 * n) of n tokens (at most P), so three
    sequences of L tokens in all need at most P + 3 slots when P is about 0.15 * L, as
    in the usual settings; other records might need more, so check."""
    for row in np.flatnonzero(rows.predictions > capacity):
        for slot in reversed(range(rows.members.shape[1])):
            item = rows.members[row, slot]
            if item < 0 or rows.predictions[row] <= capacity:
                continue
            rows.members[row, slot] = -1
            rows.tokens[row] -= lengths[item]
            rows.predictions[row] -= predictions[item]
            leftovers.append(item)


def fill_leftovers(
    rows: _Rows,
    leftovers: Sequence[int],
    lengths: np.ndarray,
    predictions: np.ndarray,
    options: PackingOptions,
) -> List[List[int]]:
    """Best fit decreasing: each leftover item, longest first, goes into the open row
    (free slot, enough free tokens and prediction slots) with the least room that takes
    it, else into a new row. Returns every non-empty row as a list of item indices."""
    length, capacity = options.max_sequence_length, options.packed_predictions
    members = [[item for item in row if item >= 0] for row in rows.members.tolist()]
    tokens, used_predictions = rows.tokens.tolist(), rows.predictions.tolist()
    depth = options.max_sequences_per_pack
    # Open rows, sorted by free tokens: (free tokens, row index).
    open_rows = sorted(
        (length - tokens[row], row)
        for row in range(len(members))
        if len(members[row]) < depth and tokens[row] < length
    )
    for item in sorted(leftovers, key=lambda item: -lengths[item]):
        need, item_predictions = int(lengths[item]), int(predictions[item])
        position = bisect.bisect_left(open_rows, (need, -1))
        while (
            position < len(open_rows)
            and used_predictions[open_rows[position][1]] + item_predictions > capacity
        ):
            position += 1
        if position < len(open_rows):
            row = open_rows.pop(position)[1]
        else:
            row = len(members)
            members.append([])
            tokens.append(0)
            used_predictions.append(0)
        members[row].append(int(item))
        tokens[row] += need
        used_predictions[row] += item_predictions
        if len(members[row]) < depth and tokens[row] < length:
            bisect.insort(open_rows, (length - tokens[row], row))
    return [row for row in members if row]


@dataclass
class Packing:
    """A packing of items: `rows` (lists of item indices, in random order) and how many
    rows of each strategy the least-squares plan asked for (`strategy_counts`, [S])."""

    rows: List[List[int]]
    strategy_counts: np.ndarray


def pack_items(
    lengths: np.ndarray,
    predictions: np.ndarray,
    solver: MixtureSolver,
    options: PackingOptions,
    rng: np.random.Generator,
) -> Packing:
    """Rows holding every item exactly once, with at most `max_sequences_per_pack` items
    and `max_sequence_length` tokens each."""
    if not len(lengths):
        return Packing([], np.zeros(len(solver.strategies), np.int64))
    mixture = solver.solve(length_histogram(lengths, options.max_sequence_length))
    # Rounded down, every planned row is one the fit asked for; the fractions left over
    # are at most a few items per strategy used, and best fit places those.
    counts = np.floor(mixture + 1e-9).astype(np.int64)
    rows, leftovers = plan_rows(lengths, predictions, counts, solver.strategies, options, rng)
    packed = fill_leftovers(rows, leftovers, lengths, predictions, options)
    placed = np.bincount(
        np.concatenate([np.asarray(row) for row in packed]), minlength=len(lengths)
    )
    assert placed.max() == 1 and placed.min() == 1, "an item was lost or placed twice"
    return Packing([packed[index] for index in rng.permutation(len(packed))], counts)


# --- the sequences themselves ----------------------------------------------------------


class SequenceChunk:
    """Up to `capacity` unpacked sequences in compact arrays (int32 ids, int8 segments):
    the only place input data is held, so its size is the packer's memory bound. The
    arrays grow as sequences arrive, so a capacity above the input costs only the input."""

    ARRAYS = (
        "input_ids",
        "segment_ids",
        "masked_lm_positions",
        "masked_lm_ids",
        "next_sentence_labels",
        "lengths",
        "predictions",
    )

    def __init__(self, capacity: int, options: PackingOptions, initial: int = 4096):
        self.capacity = capacity
        self.size = 0
        rows = min(capacity, initial)
        length, width = options.max_sequence_length, options.max_predictions_per_sequence
        self.input_ids = np.zeros((rows, length), np.int32)
        self.segment_ids = np.zeros((rows, length), np.int8)
        self.masked_lm_positions = np.zeros((rows, width), np.int32)
        self.masked_lm_ids = np.zeros((rows, width), np.int32)
        self.next_sentence_labels = np.zeros(rows, np.int32)
        self.lengths = np.zeros(rows, np.int64)
        self.predictions = np.zeros(rows, np.int64)

    def bytes_per_sequence(self) -> int:
        return sum(getattr(self, name)[0].nbytes for name in self.ARRAYS)

    def _make_room(self, rows: int) -> None:
        held = len(self.lengths)
        if rows <= held:
            return
        grown = min(self.capacity, max(rows, 2 * held))
        for name in self.ARRAYS:
            old = getattr(self, name)
            new = np.zeros((grown, *old.shape[1:]), old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)

    def add(self, batch: Dict[str, np.ndarray], start: int) -> int:
        """Copy rows `start:` of a checked batch (`check_batch`) while room is left;
        returns how many were copied."""
        count = min(self.capacity - self.size, len(batch["input_ids"]) - start)
        self._make_room(self.size + count)
        into, rows = slice(self.size, self.size + count), slice(start, start + count)
        self.input_ids[into] = batch["input_ids"][rows]
        self.segment_ids[into] = batch["segment_ids"][rows]
        self.masked_lm_positions[into] = batch["masked_lm_positions"][rows]
        self.masked_lm_ids[into] = batch["masked_lm_ids"][rows]
        self.next_sentence_labels[into] = batch["next_sentence_labels"][rows, 0]
        self.lengths[into] = batch["input_mask"][rows].sum(axis=1)
        self.predictions[into] = (batch["masked_lm_weights"][rows] > 0).sum(axis=1)
        self.size += count
        return count

    @property
    def full(self) -> bool:
        return self.size == self.capacity


def chunks(
    batches: Iterable[Dict[str, np.ndarray]], chunk: SequenceChunk
) -> Iterator[SequenceChunk]:
    """Fill `chunk` from the batches and yield it each time it is full (and at the end);
    the same buffer is refilled, so use each chunk before asking for the next."""
    for batch in batches:
        done = 0
        while done < len(batch["input_ids"]):
            done += chunk.add(batch, done)
            if chunk.full:
                yield chunk
                chunk.size = 0
    if chunk.size:
        yield chunk
        chunk.size = 0


def check_batch(batch: Dict[str, np.ndarray], where: str, first_record: int) -> None:
    """Refuse records that are not Google's unpacked layout: tokens first then padding
    (input_mask 1s then 0s), predictions first (weights 1.0 then 0.0) at token positions,
    segment ids that fit the compact store. `where` names the file in messages."""
    mask = batch["input_mask"]
    lengths = mask.sum(axis=1)
    _refuse_first(lengths == 0, where, first_record, "has no tokens (input_mask is all 0)")
    expected = np.arange(mask.shape[1])[None, :] < lengths[:, None]
    _refuse_first(
        (mask != expected).any(axis=1),
        where,
        first_record,
        "input_mask is not 1s followed by 0s (is the file packed already?)",
    )
    weights = batch["masked_lm_weights"]
    counts = (weights > 0).sum(axis=1)
    real = np.arange(weights.shape[1])[None, :] < counts[:, None]
    _refuse_first(
        (weights != real).any(axis=1),
        where,
        first_record,
        "masked_lm_weights are not 1.0s followed by 0.0s",
    )
    outside = real & (batch["masked_lm_positions"] >= lengths[:, None])
    _refuse_first(outside.any(axis=1), where, first_record, "a masked position is past its tokens")
    segments = batch["segment_ids"]
    _refuse_first(
        ((segments < 0) | (segments > 127)).any(axis=1),
        where,
        first_record,
        "segment_ids outside 0..127",
    )


def _refuse_first(bad: np.ndarray, where: str, first_record: int, problem: str) -> None:
    if bad.any():
        record = first_record + int(np.argmax(bad))
        raise UserError(f"{where}: record {record}: {problem}")


def pack_row(chunk: SequenceChunk, sequences: Sequence[int], options: PackingOptions):
    """One packed row (Habana's layout, see the module docstring) of the chunk's
    `sequences`, as {feature: array} in `PACKED_FEATURES` order."""
    length, width = options.max_sequence_length, options.packed_predictions
    row = {
        "input_ids": np.zeros(length, np.int64),
        "input_mask": np.zeros(length, np.int64),
        "segment_ids": np.zeros(length, np.int64),
        "positions": np.zeros(length, np.int64),
        "masked_lm_positions": np.zeros(width, np.int64),
        "masked_lm_ids": np.zeros(width, np.int64),
        "masked_lm_weights": np.zeros(width, np.float32),
        "next_sentence_positions": np.zeros(PACK_SLOTS, np.int64),
        "next_sentence_labels": np.zeros(PACK_SLOTS, np.int64),
        "next_sentence_weights": np.zeros(PACK_SLOTS, np.float32),
    }
    offset = predicted = 0
    for slot, sequence in enumerate(sequences):
        number = slot + 1  # input_mask and masked_lm_weights tell sequences apart by it
        tokens, count = chunk.lengths[sequence], chunk.predictions[sequence]
        into, masked = slice(offset, offset + tokens), slice(predicted, predicted + count)
        row["input_ids"][into] = chunk.input_ids[sequence, :tokens]
        row["input_mask"][into] = number
        row["segment_ids"][into] = chunk.segment_ids[sequence, :tokens]
        row["positions"][into] = np.arange(tokens)
        row["masked_lm_positions"][masked] = chunk.masked_lm_positions[sequence, :count] + offset
        row["masked_lm_ids"][masked] = chunk.masked_lm_ids[sequence, :count]
        row["masked_lm_weights"][masked] = number
        row["next_sentence_positions"][slot] = offset  # the sequence's [CLS]
        row["next_sentence_labels"][slot] = chunk.next_sentence_labels[sequence]
        row["next_sentence_weights"][slot] = 1.0
        offset += tokens
        predicted += count
    return row


def pack_chunk(
    chunk: SequenceChunk, solver: MixtureSolver, options: PackingOptions, rng: np.random.Generator
) -> Packing:
    """The chunk's rows as lists of sequence indices, each sequence in one row."""
    lengths = chunk.lengths[: chunk.size]
    predictions = chunk.predictions[: chunk.size]
    return pack_items(lengths, predictions, solver, options, rng)


# --- what a run reports --------------------------------------------------------------


class PackingStats:
    """Totals over a run, for the metadata file upstream writes."""

    def __init__(self, options: PackingOptions, strategies: np.ndarray):
        self.options = options
        self.strategies = strategies
        self.strategy_counts = np.zeros(len(strategies), np.int64)  # bounded: one per strategy
        self.sequences = self.rows = self.tokens = 0

    def add(self, chunk: SequenceChunk, packing: Packing) -> None:
        self.sequences += chunk.size
        self.tokens += int(chunk.lengths[: chunk.size].sum())
        self.rows += len(packing.rows)
        self.strategy_counts += packing.strategy_counts

    def metadata(self) -> dict:
        """Habana's keys (``avg_seq_per_sample`` is what run_pretraining.py reads), over
        every sequence written; ``top_8_strategies`` gives each planned
        strategy's lengths and rows rather than upstream's bare list indices."""
        length, rows, sequences = self.options.max_sequence_length, self.rows, self.sequences
        top = np.argsort(-self.strategy_counts, kind="stable")[:8]
        return {
            "avg_seq_per_sample": sequences / rows,
            "compression_ratio": 1 - rows / sequences,
            "expected_speedup": sequences / rows,
            "new_number_of_samples": rows,
            "num_strategies_utilized": int(np.count_nonzero(self.strategy_counts)),
            "original_number_of_samples": sequences,
            "packing_efficiency": self.tokens / (rows * length),
            "padding_tokens_original_dataset": sequences * length - self.tokens,
            "padding_tokens_packed_dataset": rows * length - self.tokens,
            "sequences_dropped": 0,
            "theoretical_speedup": sequences * length / self.tokens,
            "top_8_strategies": [
                [
                    [int(part) for part in self.strategies[index] if part],
                    int(self.strategy_counts[index]),
                ]
                for index in top
                if self.strategy_counts[index]
            ],
            "max_sequence_length": length,
            "max_predictions_per_sequence": self.options.max_predictions_per_sequence,
            "max_sequences_per_pack": self.options.max_sequences_per_pack,
            "duplication_factor": self.options.duplication_factor,
        }


def check_output_dir(path) -> None:
    """The packed folder must be new or empty: run_pretraining.py reads every file in it,
    so files of an earlier run would mix into the data (and the folder is replaced whole)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise FlagError(f"--output-dir={path}: is a file")
    if folder.is_dir() and any(folder.iterdir()):
        raise FlagError(f"--output-dir={path}: is not empty; give a new or empty folder")


def metadata_path(output_dir) -> Path:
    """``<parent>/<name>_metadata.json`` beside the packed folder, where Habana's
    run_pretraining.py looks for it (``training/`` -> ``training_metadata.json``)."""
    folder = Path(output_dir).resolve()
    return folder.parent / f"{folder.name}_metadata.json"


def write_metadata(output_dir, metadata: dict) -> Path:
    path = metadata_path(output_dir)
    write_json(path, metadata, indent=2)
    return path


def read_metadata(output_dir) -> dict:
    return json.loads(metadata_path(output_dir).read_text(encoding="utf-8"))
