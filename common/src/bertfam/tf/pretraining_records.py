"""Pre-training instances to and from TFRecord files of `tf.train.Example`s.

The layout is google-research/bert's: int64 features
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
from bertfam.tf.example_encoding import serialize_examples


def write_example_files(
    arrays: Dict[str, np.ndarray],
    output_files: Sequence[str],
    show_progress: bool = True,
    features: Sequence[str] = FEATURES,
) -> int:
    """Write every row of `arrays` (`bertfam.pretraining.features.instance_arrays`) as an
    Example of `features` (ALBERT's: ``ALBERT_FEATURES``), dealing them round-robin over
    `output_files`; returns how many."""
    data, offsets = serialize_examples({name: arrays[name] for name in features})
    temporary = [_temporary_name(path) for path in output_files]
    writers = [tf.io.TFRecordWriter(path) for path in temporary]
    count = len(offsets) - 1
    try:
        rows = progress(range(count), desc="write", unit="record", enabled=show_progress)
        view = memoryview(data)
        for row in rows:
            writers[row % len(writers)].write(bytes(view[offsets[row] : offsets[row + 1]]))
    finally:
        for writer in writers:
            writer.close()
    for path, final in zip(temporary, output_files):
        os.replace(path, final)
    return count


def _temporary_name(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{os.getpid()}.tmp")


def feature_spec(max_seq_length: int, max_predictions: int) -> Dict[str, tf.io.FixedLenFeature]:
    """How to parse one record: Google's ``name_to_features`` for run_pretraining.py."""
    spec = {
        name: tf.io.FixedLenFeature([max_seq_length], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    for name in ("masked_lm_positions", "masked_lm_ids"):
        spec[name] = tf.io.FixedLenFeature([max_predictions], tf.int64)
    spec["masked_lm_weights"] = tf.io.FixedLenFeature([max_predictions], tf.float32)
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    return spec


def parse_example(record, spec) -> Dict[str, tf.Tensor]:
    """One record as the model takes it: int64 features become int32, as in Google's
    input_fn (the accelerators want int32 ids)."""
    features = tf.io.parse_single_example(record, spec)
    return {
        name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
        for name, value in features.items()
    }


def pretraining_dataset(
    paths: Sequence[str],
    batch_size: int,
    max_seq_length: int,
    max_predictions: int,
    is_training: bool,
    seed: int = 12345,
    spec=None,
    per_record=None,
) -> tf.data.Dataset:
    """Batches of parsed records, as run_pretraining.py consumes them.

    Training: files shuffled, read interleaved, records shuffled through a small buffer,
    repeated forever (Google's input_fn); evaluation: the records in file order, once.
    Partial batches are dropped in training, kept in evaluation. `spec` parses other
    layouts (packed records: `bertfam.tf.packed_records.packed_feature_spec`);
    `per_record` maps each parsed record before batching, in record order (ALBERT's
    masking on the fly).
    """
    spec = spec or feature_spec(max_seq_length, max_predictions)
    if is_training:
        files = tf.data.Dataset.from_tensor_slices(list(paths))
        files = files.shuffle(len(paths), seed=seed).repeat()
        records = files.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(4, len(paths)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        ).shuffle(100, seed=seed)
    else:
        records = tf.data.TFRecordDataset(list(paths))
    parsed = records.map(
        lambda record: parse_example(record, spec), num_parallel_calls=tf.data.AUTOTUNE
    )
    if per_record is not None:
        parsed = parsed.map(per_record)  # sequential: its generator sees a fixed order
    batches = parsed.batch(batch_size, drop_remainder=is_training)
    return batches.prefetch(tf.data.AUTOTUNE)


def masking_records(masking, max_seq_length: int):
    """(spec, per_record) for `pretraining_dataset` when `masking`
    (`bertfam.pretraining.ngram_masking.OnTheFlyMasking`) makes each record's masks as it
    is read: the records' ids, mask, segments, labels and ``token_boundary`` are parsed
    (not their stored masks), and the masks are made in NumPy, in record order."""
    spec = {
        name: tf.io.FixedLenFeature([max_seq_length], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids", "token_boundary")
    }
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    slots = masking.max_predictions
    names = ("input_ids", "masked_lm_positions", "masked_lm_ids", "masked_lm_weights")

    def masked(ids, mask, segments, boundary):
        made = masking(ids, mask, segments, boundary)
        return tuple(made[name] for name in names)

    def per_record(record):
        made = tf.numpy_function(
            masked,
            [record[n] for n in ("input_ids", "input_mask", "segment_ids", "token_boundary")],
            (tf.int32, tf.int32, tf.int32, tf.float32),
            stateful=True,
        )
        widths = (max_seq_length, slots, slots, slots)
        return {
            **record,
            **{name: tf.ensure_shape(t, [w]) for name, t, w in zip(names, made, widths)},
        }

    return spec, per_record


def read_example_files(paths: Sequence[str], max_seq_length: int, max_predictions: int):
    """The records of `paths`, in file order, as {feature: array} with the dtypes written
    (int64, float32), for tests and checks."""
    spec = feature_spec(max_seq_length, max_predictions)
    rows: List[Dict[str, np.ndarray]] = []
    for path in paths:
        for record in tf.data.TFRecordDataset(str(Path(path))):
            parsed = tf.io.parse_single_example(record, spec)
            rows.append({name: value.numpy() for name, value in parsed.items()})
    return {name: np.stack([row[name] for row in rows]) for name in FEATURES} if rows else {}
