"""Pre-training instances as NVIDIA's hdf5 shards (the PyTorch BERT recipe's input).

One file per shard, gzip-compressed datasets of N rows:
``input_ids`` int32 [N, L], ``input_mask`` and ``segment_ids`` int8 [N, L],
``masked_lm_positions`` and ``masked_lm_ids`` int32 [N, P] (zero-padded: the first 0
position ends the real ones), ``next_sentence_labels`` int8 [N]. The values are those of
`bertfam.pretraining.features.instance_arrays`, the arrays the TFRecord writer stores,
so the two formats hold the same examples. A shard is written under a temporary name
and renamed when complete. h5py is imported when used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Union

import numpy as np

from bertfam.pretraining.instances import PretrainingDataError

# Dataset name -> NVIDIA's dtype; masked_lm_weights is not stored (the zeros say it).
HDF5_DTYPES = {
    "input_ids": "i4",
    "input_mask": "i1",
    "segment_ids": "i1",
    "masked_lm_positions": "i4",
    "masked_lm_ids": "i4",
    "next_sentence_labels": "i1",
}


def write_hdf5_shard(arrays: Dict[str, np.ndarray], path: Union[str, Path]) -> int:
    """Write `arrays` (as `instance_arrays` gives them) as one shard; returns the rows."""
    import h5py

    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(temporary, "w") as shard:
            for name, dtype in HDF5_DTYPES.items():
                values = arrays[name]
                if name == "next_sentence_labels":
                    values = values.reshape(-1)
                shard.create_dataset(name, data=values.astype(dtype), compression="gzip")
        os.replace(temporary, path)
    except OSError as error:  # a full disk, a folder we may not write to
        raise PretrainingDataError(f"{path}: cannot write the shard ({error})") from None
    finally:
        temporary.unlink(missing_ok=True)
    return len(arrays["input_ids"])


def read_hdf5_shard(path: Union[str, Path]) -> Dict[str, np.ndarray]:
    """{dataset: array} of one shard; a file that is not one is a `PretrainingDataError`."""
    import h5py

    try:
        with h5py.File(path, "r") as shard:
            missing = [name for name in HDF5_DTYPES if name not in shard]
            if missing:
                raise PretrainingDataError(f"{path}: not a pre-training shard (no {missing[0]})")
            arrays = {name: shard[name][()] for name in HDF5_DTYPES}
    # h5py reports a damaged file as OSError mostly, but as the others from some of its
    # structures (found by fuzzing: common/tests/test_fuzz_readers.py).
    except (OSError, KeyError, RuntimeError, ValueError, TypeError, AttributeError) as error:
        raise PretrainingDataError(f"{path}: cannot read it as hdf5 ({error})") from None
    check_shard_arrays(path, arrays)
    return arrays


def check_shard_arrays(path, arrays: Dict[str, np.ndarray]) -> None:
    """Shapes and types a training loop can index: integer arrays, [N, L] sequences,
    [N, P] predictions at positions inside the sequence, N labels. Anything else would
    fail later, deep in a training step."""
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "iub":
            kind = getattr(array, "dtype", type(array).__name__)
            raise PretrainingDataError(f"{path}: {name} holds {kind} values, not integers")
    shapes = {name: array.shape for name, array in arrays.items()}
    for group, names in (("sequence", ("input_ids", "input_mask", "segment_ids")),
                         ("prediction", ("masked_lm_positions", "masked_lm_ids"))):  # fmt: skip
        if len(shapes[names[0]]) != 2 or any(shapes[n] != shapes[names[0]] for n in names):
            listed = ", ".join(f"{n} {shapes[n]}" for n in names)
            raise PretrainingDataError(f"{path}: {group} arrays of other shapes ({listed})")
    rows = {name: shape[0] if shape else 0 for name, shape in shapes.items()}
    labels = shapes["next_sentence_labels"]
    if len(set(rows.values())) > 1 or not 1 <= len(labels) <= 2 or np.prod(labels[1:]) != 1:
        raise PretrainingDataError(f"{path}: arrays of different lengths ({shapes})")
    positions, length = arrays["masked_lm_positions"], shapes["input_ids"][1]
    if positions.size and (positions.min() < 0 or positions.max() >= length):
        raise PretrainingDataError(
            f"{path}: masked_lm_positions outside the {length} tokens of a sequence"
        )


def masked_lm_labels(positions: np.ndarray, ids: np.ndarray, seq_length: int) -> np.ndarray:
    """NVIDIA's loader's labels [N, L]: -1 everywhere but at the real masked positions
    (those before the first 0 in a row of `positions`), which get their `ids`."""
    labels = np.full((len(positions), seq_length), -1, dtype=np.int64)
    for row, (row_positions, row_ids) in enumerate(zip(positions, ids)):
        zeros = np.flatnonzero(row_positions == 0)
        count = zeros[0] if len(zeros) else len(row_positions)
        labels[row, row_positions[:count]] = row_ids[:count]
    return labels
