"""NVIDIA's hdf5 pre-training shards, read the way its run_pretraining.py reads them.

`PretrainingShard` is one shard as a `Dataset` in NVIDIA's form: items ``[input_ids,
segment_ids, input_mask, masked_lm_labels, next_sentence_labels]``, int64, where
``masked_lm_labels`` [L] is -1 everywhere but at the masked positions.

The training loop reads shards through `ShardReader`, as upstream does: the files of
``--input_dir`` whose name contains ``training``, sorted, shuffled by
``Random(seed + epoch)``; at step ``f_id`` of an epoch rank r of W reads shard
``(f_id * W + r) mod N``, its rows in an order drawn from (seed, epoch, f_id), in batches
of the micro-batch size with the last partial one dropped. Where upstream hands the
model labels over all L positions, a batch here carries the P masked positions and
their labels (-1 for padding), so the vocabulary projection covers those only. The next
shard is read on a background thread while the current one trains, so the device never
waits on the disk. A shard is small next to host memory (NVIDIA's are about 300 MB), so
it is read whole, as upstream does.
"""

from __future__ import annotations

import random
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from bertfam.pretraining.hdf5 import PretrainingDataError, masked_lm_labels, read_hdf5_shard


class PretrainingShard(Dataset):
    def __init__(self, path: Union[str, Path]):
        arrays = read_hdf5_shard(path)
        self.input_ids = torch.from_numpy(arrays["input_ids"].astype(np.int64))
        self.segment_ids = torch.from_numpy(arrays["segment_ids"].astype(np.int64))
        self.input_mask = torch.from_numpy(arrays["input_mask"].astype(np.int64))
        labels = masked_lm_labels(
            arrays["masked_lm_positions"], arrays["masked_lm_ids"], self.input_ids.shape[1]
        )
        self.masked_lm_labels = torch.from_numpy(labels)
        self.next_sentence_labels = torch.from_numpy(
            arrays["next_sentence_labels"].astype(np.int64)
        )

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> List[torch.Tensor]:
        return [
            self.input_ids[index],
            self.segment_ids[index],
            self.input_mask[index],
            self.masked_lm_labels[index],
            self.next_sentence_labels[index],
        ]


def training_shards(input_dir: Union[str, Path]) -> List[Path]:
    """The shards of a run, sorted: regular files in `input_dir` named ``*training*``."""
    folder = Path(input_dir)
    if not folder.is_dir():
        raise PretrainingDataError(f"--input_dir={folder}: no such directory")
    shards = sorted(p for p in folder.iterdir() if p.is_file() and "training" in p.name)
    if not shards:
        raise PretrainingDataError(
            f"--input_dir={folder}: no training shards (files whose name contains 'training')"
        )
    return shards


def epoch_order(shards: List[Path], seed: int, epoch: int) -> List[Path]:
    order = list(shards)
    random.Random(seed + epoch).shuffle(order)
    return order


def row_order(rows: int, seed: int, epoch: int, f_id: int) -> np.ndarray:
    """The order one shard's rows are read in at (epoch, f_id): the same on every rank
    and every rerun, so a resumed run reads exactly what the interrupted one would have."""
    return np.random.default_rng([seed, epoch, f_id]).permutation(rows)


def model_arrays(arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """A shard's arrays as the model takes them (int64), masked labels at their positions."""
    positions = arrays["masked_lm_positions"].astype(np.int64)
    ids = arrays["masked_lm_ids"].astype(np.int64)
    # Predictions end at the first position 0 (NVIDIA's padding); later slots are ignored.
    padding = np.cumsum(positions == 0, axis=1) > 0
    return {
        "input_ids": arrays["input_ids"].astype(np.int64),
        "token_type_ids": arrays["segment_ids"].astype(np.int64),
        "attention_mask": arrays["input_mask"].astype(np.int64),
        "masked_positions": np.where(padding, 0, positions),
        "masked_labels": np.where(padding, -1, ids),
        "next_sentence_labels": arrays["next_sentence_labels"].astype(np.int64).reshape(-1),
    }


def check_shard_widths(path: Path, max_seq_length: int, max_predictions: int) -> None:
    """A shard's widths against the flags, from its header (nothing else read)."""
    import h5py

    names = ("input_ids", "masked_lm_positions")
    try:
        with h5py.File(path, "r") as shard:
            missing = [name for name in names if name not in shard]
            shapes = {name: shard[name].shape for name in names if name not in missing}
    except (OSError, KeyError, RuntimeError, ValueError, TypeError, AttributeError) as error:
        raise PretrainingDataError(f"{path}: cannot read it as hdf5 ({error})") from None
    if missing:
        raise PretrainingDataError(f"{path}: not a pre-training shard (no {missing[0]})")
    if any(len(shape) != 2 for shape in shapes.values()):
        raise PretrainingDataError(f"{path}: not a pre-training shard (shapes {shapes})")
    _check_widths(path, shapes["input_ids"][1], shapes["masked_lm_positions"][1],
                  max_seq_length, max_predictions)  # fmt: skip


def _check_widths(path, length: int, predictions: int, max_seq_length: int, max_predictions: int):
    if length != max_seq_length:
        raise PretrainingDataError(
            f"{path}: sequences of length {length} but --max_seq_length={max_seq_length}; "
            "give the length the shards were made with"
        )
    if predictions != max_predictions:
        raise PretrainingDataError(
            f"{path}: {predictions} predictions a sequence but "
            f"--max_predictions_per_seq={max_predictions}"
        )


def read_training_shard(
    path: Path, max_seq_length: int, max_predictions: int
) -> Dict[str, np.ndarray]:
    arrays = read_hdf5_shard(path)
    _check_widths(path, arrays["input_ids"].shape[1], arrays["masked_lm_positions"].shape[1],
                  max_seq_length, max_predictions)  # fmt: skip
    return model_arrays(arrays)


@dataclass(frozen=True)
class ReadPosition:
    """Where a run is in its data: the epoch, the shard step and the next micro-batch."""

    epoch: int = 0
    f_id: int = 0
    batch: int = 0


class ShardReader:
    """This rank's micro-batches, from `start` on, forever (epoch after epoch)."""

    def __init__(
        self,
        shards: List[Path],
        micro_batch: int,
        seed: int,
        rank: int,
        world: int,
        max_seq_length: int,
        max_predictions: int,
    ):
        self.shards, self.micro_batch, self.seed = shards, micro_batch, seed
        self.rank, self.world = rank, world
        self.widths = (max_seq_length, max_predictions)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-reader")

    def shard_at(self, epoch: int, f_id: int) -> Path:
        order = epoch_order(self.shards, self.seed, epoch)
        return order[(f_id * self.world + self.rank) % len(order)]

    def _next(self, epoch: int, f_id: int) -> Tuple[int, int]:
        return (epoch, f_id + 1) if f_id + 1 < len(self.shards) else (epoch + 1, 0)

    def _read(self, epoch: int, f_id: int) -> Future:
        return self._pool.submit(read_training_shard, self.shard_at(epoch, f_id), *self.widths)

    def batches(
        self, start: ReadPosition = ReadPosition()
    ) -> Iterator[Tuple[ReadPosition, Dict[str, np.ndarray]]]:
        """(position after this batch, batch arrays) pairs; positions are what a checkpoint
        stores to resume right after that batch."""
        epoch, f_id, first = start.epoch, start.f_id, start.batch
        pending: Optional[Future] = self._read(epoch, f_id)
        while True:
            arrays = pending.result()
            following = self._next(epoch, f_id)
            pending = self._read(*following)  # read ahead while this shard trains
            rows = len(arrays["input_ids"])
            count = rows // self.micro_batch
            if count == 0:
                raise PretrainingDataError(
                    f"{self.shard_at(epoch, f_id)}: {rows} sequences, fewer than one batch of "
                    f"{self.micro_batch}"
                )
            order = row_order(rows, self.seed, epoch, f_id)
            for index in range(first, count):
                picked = np.sort(order[index * self.micro_batch : (index + 1) * self.micro_batch])
                batch = {name: values[picked] for name, values in arrays.items()}
                after = ReadPosition(epoch, f_id, index + 1)
                if index + 1 == count:
                    after = ReadPosition(*following, 0)
                yield after, batch
            epoch, f_id = following
            first = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
