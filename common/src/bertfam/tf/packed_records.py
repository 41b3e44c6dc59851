"""Packed pre-training TFRecords: unpacked records streamed in, packed records written out.

`pack_record_files` is the whole of Habana's ``pack_pretraining_data_tfrec.py`` but the
flags: it reads Google's unpacked records file by file through
`tf.data`, packs them chunk by chunk (`bertfam.pretraining.packing`, whose docstring gives
the layout and the memory bound) and deals the packed `tf.train.Example`s round-robin
over ``packed_part_<k>.tfrecord``, one output file per input file read. The files are
written into a temporary folder beside ``output_dir`` that replaces it when every file is
complete, and ``<output_dir name>_metadata.json`` is written atomically beside it, so a
run that fails or is killed leaves neither a partial folder nor metadata that points at
one. `read_packed_files` parses packed records back (`packed_feature_spec` is the
parsing spec ``run_pretraining.py`` uses).
"""

from __future__ import annotations

import contextlib
import logging
import re
import resource
import shutil
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

import numpy as np
import tensorflow as tf

from bertfam.atomic import atomic_directory
from bertfam.errors import FlagError, UserError
from bertfam.pretraining.features import FEATURES
from bertfam.pretraining.packing import (
    PACK_SLOTS,
    PACKED_FEATURES,
    PACKED_FLOAT_FEATURES,
    MixtureSolver,
    PackingOptions,
    PackingStats,
    SequenceChunk,
    check_batch,
    check_output_dir,
    chunks,
    pack_chunk,
    pack_row,
    write_metadata,
)
from bertfam.runlog import progress

log = logging.getLogger(__name__)

READ_BATCH = 1024  # records parsed at a time: TensorFlow parses a batch in one call
SEED = 12345  # Graphcore's default --random-seed; Habana's script shuffles unseeded


def output_file_names(count: int) -> List[str]:
    return [f"packed_part_{index}.tfrecord" for index in range(count)]


# --- reading unpacked records ----------------------------------------------------------


def _expected_widths(options: PackingOptions) -> Dict[str, int]:
    length, predictions = options.max_sequence_length, options.max_predictions_per_sequence
    widths = {name: length for name in ("input_ids", "input_mask", "segment_ids")}
    widths.update({name: predictions for name in FEATURES if name.startswith("masked_lm_")})
    widths["next_sentence_labels"] = 1
    return widths


_WIDTH_FLAGS = {
    "input_ids": "--max-sequence-length",
    "input_mask": "--max-sequence-length",
    "segment_ids": "--max-sequence-length",
    "masked_lm_positions": "--max-predictions-per-sequence",
    "masked_lm_ids": "--max-predictions-per-sequence",
    "masked_lm_weights": "--max-predictions-per-sequence",
}


def read_unpacked_batches(path: str, options: PackingOptions) -> Iterator[Dict[str, np.ndarray]]:
    """The records of one file, `READ_BATCH` at a time, as {feature: array [n, width]},
    checked: a feature of another width than the flags say is a `UserError` naming the
    file, the record and both widths."""
    widths = _expected_widths(options)
    spec = {
        name: tf.io.RaggedFeature(tf.float32 if name == "masked_lm_weights" else tf.int64)
        for name in FEATURES
    }
    # Parsed eagerly, a batch at a time: a `map` would trace a function per input file.
    batches = tf.data.TFRecordDataset(path).batch(READ_BATCH)
    record = 0  # of the file, for messages
    try:
        for records in batches:
            parsed = tf.io.parse_example(records, spec)
            batch = {name: _dense(parsed[name], widths[name], name, path, record) for name in spec}
            check_batch(batch, path, record)
            record += len(batch["input_ids"])
            yield batch
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        raise UserError(
            f"{path}: cannot read its records as pre-training tf.train.Examples "
            f"({_tensorflow_reason(error)})"
        ) from None


def _tensorflow_reason(error: tf.errors.OpError) -> str:
    """TensorFlow's message without the op and function names it wraps around it."""
    reason = str(error.message).strip().split("\n")[0]
    reason = re.sub(r"\{\{[^}]*\}\}\s*", "", reason)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", reason)


def _dense(ragged, width: int, name: str, path: str, first_record: int) -> np.ndarray:
    widths = ragged.row_lengths().numpy()
    wrong = np.flatnonzero(widths != width)
    if wrong.size:
        record, found = first_record + int(wrong[0]), int(widths[wrong[0]])
        problem = f"{path}: record {record} has {found} {name} values"
        if found == 0:
            raise UserError(f"{path}: record {record} has no {name}")
        if name in _WIDTH_FLAGS:
            raise UserError(
                f"{problem} but {_WIDTH_FLAGS[name]} is {width}; "
                "pass the value the records were made with"
            )
        raise UserError(f"{problem}, not {width}: not an unpacked pre-training record")
    return ragged.flat_values.numpy().reshape(len(widths), width)


# --- writing packed records -------------------------------------------------------------


def _example(row: Dict[str, np.ndarray]) -> bytes:
    example = tf.train.Example()
    features = example.features.feature
    for name in PACKED_FEATURES:
        # Filling the message in place is about twice as fast as building Feature objects.
        if name in PACKED_FLOAT_FEATURES:
            features[name].float_list.value.extend(row[name].tolist())
        else:
            features[name].int64_list.value.extend(row[name].tolist())
    return example.SerializeToString()


class RoundRobinWriter:
    """Examples dealt over `count` TFRecord files in `folder`, as Google's writer deals them."""

    def __init__(self, folder: Path, count: int):
        _allow_open_files(count)
        self.paths = [folder / name for name in output_file_names(count)]
        self._writers = [tf.io.TFRecordWriter(str(path)) for path in self.paths]
        self.written = 0

    def write(self, record: bytes) -> None:
        self._writers[self.written % len(self._writers)].write(record)
        self.written += 1

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


def _allow_open_files(count: int) -> None:
    """Every output file stays open for the round-robin; raise the soft limit on open
    files up to the hard one when a long --max-files needs it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = count + 256  # TensorFlow, Python and the input file keep their own
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise FlagError(
                f"--max-files: {count} output files cannot be open at once (the limit is "
                f"{hard}); pass a smaller --max-files"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@contextlib.contextmanager
def _missing_parents_removed_on_failure(folder: Path) -> Iterator[None]:
    """Create `folder`'s missing parents (upstream makes the whole path); if the block
    fails, remove the ones we made, so a failed run leaves the disk as it found it."""
    missing = [parent for parent in reversed(folder.parents) if not parent.exists()]
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if missing:
            shutil.rmtree(missing[0], ignore_errors=True)
        raise


def pack_record_files(
    input_files: Sequence[str],
    output_dir: str,
    options: PackingOptions,
    sequences_per_chunk: int,
    show_progress: bool = True,
) -> PackingStats:
    """Pack the records of `input_files` into ``output_dir`` (which must be absent or
    empty) and write the metadata file beside it; returns the run's totals."""
    options.check()
    check_output_dir(output_dir)
    output = Path(output_dir).resolve()
    solver = MixtureSolver(options)
    stats = PackingStats(options, solver.strategies)
    chunk = SequenceChunk(sequences_per_chunk, options)
    rng = np.random.default_rng(SEED)
    with _missing_parents_removed_on_failure(output), atomic_directory(output) as staging:
        writer = RoundRobinWriter(staging, len(input_files))
        try:
            files = progress(input_files, desc="pack", unit="file", enabled=show_progress)
            for packed in chunks(_all_batches(files, options), chunk):
                packing = pack_chunk(packed, solver, options, rng)
                for row in packing.rows:
                    writer.write(_example(pack_row(packed, row, options)))
                stats.add(packed, packing)
                log.info(
                    "packed %d sequences into %d rows (%d rows so far)",
                    packed.size,
                    len(packing.rows),
                    stats.rows,
                )
        finally:
            writer.close()
        if not stats.rows:
            raise UserError(f"{', '.join(input_files)}: no records to pack")
        write_metadata(output, stats.metadata())
    return stats


def _all_batches(files, options: PackingOptions) -> Iterator[Dict[str, np.ndarray]]:
    for path in files:
        yield from read_unpacked_batches(str(path), options)


# --- reading packed records -----------------------------------------------------------------


def packed_feature_spec(max_sequence_length: int, max_predictions_per_sequence: int) -> dict:
    """The `tf.io.parse_example` spec of a packed record (Habana's run_pretraining.py)."""
    widths = {
        "masked_lm_positions": max_predictions_per_sequence + PACK_SLOTS,
        "masked_lm_ids": max_predictions_per_sequence + PACK_SLOTS,
        "masked_lm_weights": max_predictions_per_sequence + PACK_SLOTS,
        "next_sentence_positions": PACK_SLOTS,
        "next_sentence_labels": PACK_SLOTS,
        "next_sentence_weights": PACK_SLOTS,
    }
    return {
        name: tf.io.FixedLenFeature(
            [widths.get(name, max_sequence_length)],
            tf.float32 if name in PACKED_FLOAT_FEATURES else tf.int64,
        )
        for name in PACKED_FEATURES
    }


def read_packed_files(
    paths: Sequence[str], max_sequence_length: int, max_predictions_per_sequence: int
) -> Dict[str, np.ndarray]:
    """Every packed record of `paths`, in file order, as {feature: array [rows, width]}."""
    spec = packed_feature_spec(max_sequence_length, max_predictions_per_sequence)
    parts: Dict[str, List[np.ndarray]] = {name: [] for name in PACKED_FEATURES}
    for path in paths:
        records = tf.data.TFRecordDataset(str(path)).batch(READ_BATCH)
        for parsed in records.map(lambda batch: tf.io.parse_example(batch, spec)):
            for name in PACKED_FEATURES:
                parts[name].append(parsed[name].numpy())
    return {
        name: np.concatenate(arrays) if arrays else np.zeros((0, spec[name].shape[0]))
        for name, arrays in parts.items()
    }
