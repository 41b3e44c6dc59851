"""Pre-training instances as the fixed-size arrays every record format stores.

Google's `write_instance_to_example_files` layout, padded with
zeros: ``input_ids``, ``input_mask``, ``segment_ids`` [max_seq_length];
``masked_lm_positions``, ``masked_lm_ids`` [max_predictions_per_seq] and
``masked_lm_weights`` (1.0 per real prediction); ``next_sentence_labels`` (1 when B is
a random document's text; ALBERT: A and B swapped, or B foreign); ALBERT's instances add
``token_boundary`` [max_seq_length] (1 where a word starts). The TFRecord writer
(`bertfam.tf.pretraining_records`) and the hdf5 writer store exactly these arrays.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from bertfam.pretraining.instances import TrainingInstance

FEATURES = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "next_sentence_labels",
)
# google-research/albert's records: BERT's plus where words start, in its order.
ALBERT_FEATURES = FEATURES[:3] + ("token_boundary",) + FEATURES[3:]


def instance_arrays(
    instances: Sequence[TrainingInstance],
    tokenizer,
    max_seq_length: int,
    max_predictions_per_seq: int,
) -> Dict[str, np.ndarray]:
    """{feature: array [len(instances), width]} (int64, masked_lm_weights float32)."""
    count = len(instances)
    arrays = {
        "input_ids": np.zeros((count, max_seq_length), np.int64),
        "input_mask": np.zeros((count, max_seq_length), np.int64),
        "segment_ids": np.zeros((count, max_seq_length), np.int64),
        "masked_lm_positions": np.zeros((count, max_predictions_per_seq), np.int64),
        "masked_lm_ids": np.zeros((count, max_predictions_per_seq), np.int64),
        "masked_lm_weights": np.zeros((count, max_predictions_per_seq), np.float32),
        "next_sentence_labels": np.zeros((count, 1), np.int64),
    }
    if count and instances[0].token_boundary is not None:
        arrays["token_boundary"] = np.zeros((count, max_seq_length), np.int64)
    for row, instance in enumerate(instances):
        length, predictions = len(instance.tokens), len(instance.masked_lm_positions)
        arrays["input_ids"][row, :length] = tokenizer.convert_tokens_to_ids(instance.tokens)
        arrays["input_mask"][row, :length] = 1
        arrays["segment_ids"][row, :length] = instance.segment_ids
        arrays["masked_lm_positions"][row, :predictions] = instance.masked_lm_positions
        arrays["masked_lm_ids"][row, :predictions] = tokenizer.convert_tokens_to_ids(
            instance.masked_lm_labels
        )
        arrays["masked_lm_weights"][row, :predictions] = 1.0
        arrays["next_sentence_labels"][row, 0] = int(instance.is_random_next)
        if "token_boundary" in arrays:
            arrays["token_boundary"][row, :length] = instance.token_boundary
    return arrays
