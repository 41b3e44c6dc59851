"""Documents dealt into training and test shards, streaming, the same on every rerun.

The input is text in the pre-training format (one sentence a line, a blank line after
each document), in any number of files read in order. Each document goes to the test
split with probability ``fraction_test``, drawn from ``random.Random(seed)``, and is
dealt round-robin over that split's shards, so shards differ in size by one document
at most and a rerun with the same input and seed writes the same files. The shards
are written into a temporary folder that replaces the destination only when all are
complete; at most `MAX_OPEN_FILES` are open at once (the default 1472 + 1472 shards
would exceed many systems' limit), so the input is read once per group of shards.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Dict, Iterator, List, Sequence

from bertfam.atomic import atomic_directory
from bertfam.pretraining.instances import PretrainingDataError

MAX_OPEN_FILES = 256
SPLITS = ("training", "test")


@dataclass(frozen=True)
class ShardPlan:
    """How many shards of each split, the test fraction and the seed of the deal."""

    n_training: int
    n_test: int
    fraction_test: float
    seed: int = 12345

    def check(self) -> None:
        if self.n_training < 1 or self.n_test < 0:
            raise PretrainingDataError(
                f"--n_training_shards={self.n_training} --n_test_shards={self.n_test}: "
                "need at least 1 training shard and no negative count"
            )
        if not 0.0 <= self.fraction_test < 1.0 or (self.fraction_test > 0) != (self.n_test > 0):
            raise PretrainingDataError(
                f"--fraction_test_set={self.fraction_test} with --n_test_shards="
                f"{self.n_test}: give a fraction in [0, 1), and test shards exactly when "
                "it is above 0"
            )

    def count(self, split: str) -> int:
        return self.n_training if split == "training" else self.n_test


def shard_name(dataset: str, split: str, index: int, suffix: str = "txt") -> str:
    """Upstream's shard names: ``wikicorpus_en_training_0.txt``."""
    return f"{dataset}_{split}_{index}.{suffix}"


def documents(paths: Sequence[Path]) -> Iterator[str]:
    """Each document's text (its lines, each ending in a newline), across `paths` in
    order; blank lines only separate documents."""
    lines: List[str] = []
    for path in paths:
        with open(path, encoding="utf-8", newline="\n") as handle:
            for line in handle:
                if line.strip():
                    lines.append(line if line.endswith("\n") else line + "\n")
                elif lines:
                    yield "".join(lines)
                    lines = []
    if lines:
        yield "".join(lines)


def _deal(paths: Sequence[Path], plan: ShardPlan) -> Iterator[tuple]:
    """(split, shard index, document) for every document, in input order."""
    rng = random.Random(plan.seed)
    dealt = {split: 0 for split in SPLITS}
    for document in documents(paths):
        split = "test" if plan.n_test and rng.random() < plan.fraction_test else "training"
        yield split, dealt[split] % plan.count(split), document
        dealt[split] += 1


def shard_documents(paths: Sequence[Path], folder: Path, dataset: str, plan: ShardPlan) -> int:
    """Write ``<folder>/<dataset>_{training,test}_<i>.txt``; returns the documents dealt.
    A corpus with fewer documents than a split has shards is refused before anything
    is written (every shard must hold text for create_pretraining_data)."""
    plan.check()
    dealt = {split: 0 for split in SPLITS}
    for split, _, _ in _deal(paths, plan):
        dealt[split] += 1
    for split in SPLITS:
        if dealt[split] < plan.count(split):
            raise PretrainingDataError(
                f"the corpus gives {dealt[split]} {split} documents for "
                f"{plan.count(split)} {split} shards: use fewer shards or more text"
            )
    names = [(split, i) for split in SPLITS for i in range(plan.count(split))]
    with atomic_directory(folder) as temporary:
        for start in range(0, len(names), MAX_OPEN_FILES):
            group = names[start : start + MAX_OPEN_FILES]
            with contextlib.ExitStack() as files:
                handles: Dict[tuple, IO[str]] = {
                    name: files.enter_context(
                        open(temporary / shard_name(dataset, *name), "w", encoding="utf-8")
                    )
                    for name in group
                }
                for split, index, document in _deal(paths, plan):
                    handle = handles.get((split, index))
                    if handle is not None:
                        handle.write(document + "\n")  # the blank line ends the document
    return sum(dealt.values())
