"""Pre-training instances to and from TFRecord files of `tf.train.Example`s.

The layout is google-research/bert's (upstream-surface.md §7.1): int64 features
``input_ids``, ``input_mask``, ``segment_ids``, ``masked_lm_positions``,
``masked_lm_ids``, ``next_sentence_labels`` and float ``masked_lm_weights``, in that
order; examples go round-robin over the output files, as Google's writer deals them.
Each file is written under a temporary name and renamed when complete, so a killed run
never leaves a file that looks finished.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from bertfam.pretraining.features import FEATURES
from bertfam.runlog import progress

_FLOAT_FEATURES = ("masked_lm_weights",)


def _example(arrays: Dict[str, np.ndarray], row: int) -> bytes:
    feature = {}
    for name in FEATURES:
        values = arrays[name][row].tolist()
        if name in _FLOAT_FEATURES:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        else:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_example_files(
    arrays: Dict[str, np.ndarray], output_files: Sequence[str], show_progress: bool = True
) -> int:
    """Write every row of `arrays` (`bertfam.pretraining.features.instance_arrays`) as an
    Example, dealing them round-robin over `output_files`; returns how many."""
    temporary = [_temporary_name(path) for path in output_files]
    writers = [tf.io.TFRecordWriter(path) for path in temporary]
    count = len(arrays["input_ids"])
    try:
        rows = progress(range(count), desc="write", unit="record", enabled=show_progress)
        for row in rows:
            writers[row % len(writers)].write(_example(arrays, row))
    finally:
        for writer in writers:
            writer.close()
    for path, final in zip(temporary, output_files):
        os.replace(path, final)
    return count


def _temporary_name(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{os.getpid()}.tmp")


def read_example_files(paths: Sequence[str], max_seq_length: int, max_predictions: int):
    """The records of `paths`, in file order, as {feature: array} (for tests and checks)."""
    spec = {
        name: tf.io.FixedLenFeature(
            [1 if name == "next_sentence_labels" else max_seq_length], tf.int64
        )
        for name in ("input_ids", "input_mask", "segment_ids", "next_sentence_labels")
    }
    for name in ("masked_lm_positions", "masked_lm_ids"):
        spec[name] = tf.io.FixedLenFeature([max_predictions], tf.int64)
    spec["masked_lm_weights"] = tf.io.FixedLenFeature([max_predictions], tf.float32)
    rows: List[Dict[str, np.ndarray]] = []
    for path in paths:
        for record in tf.data.TFRecordDataset(str(Path(path))):
            parsed = tf.io.parse_single_example(record, spec)
            rows.append({name: value.numpy() for name, value in parsed.items()})
    return {name: np.stack([row[name] for row in rows]) for name in FEATURES} if rows else {}
