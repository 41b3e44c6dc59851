"""ELECTRA's pre-training objective (replaced-token detection), as NVIDIA's TF2 ELECTRA
(Habana's recipe) trains it.

- **Masking**, made as records are read: each row masks ``round(mask_prob * tokens)``
  positions (at least 1, at most ``max_predictions = int((mask_prob + 0.005) *
  seq_length)``: 19 at 128, 79 at 512), drawn with replacement among the real tokens
  that are not [CLS], [SEP] or [MASK]; 85% of them show [MASK], the rest keep their token.
- **Generator**: its masked-LM loss is the mean cross-entropy over the masked slots.
- **Sampling**: each masked slot takes a token drawn from the generator's softmax
  (Gumbel-max); a token is "replaced" where the draw differs from the original.
- **Discriminator**: on the sampled text, its loss is the mean sigmoid cross-entropy of
  replaced-or-not over the real tokens. The loss is ``mlm_loss + disc_weight *
  disc_loss``. Both losses are `bertfam.tf.losses`'s, with every other TF loss.

Upstream's `scatter_update` semantics are kept: slot 0 (padding slots point there) is
never written, and a position drawn twice gets the floor of the mean of its updates.

Every random draw is stateless, keyed by the run's seed and the draw's place in the
data: the masks by the global batch's index, the samples by the global row. So a resumed
run draws what the uninterrupted one did, and N workers, each with its rows of a
global batch, draw what one process with the whole batch draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import tensorflow as tf

from bertfam.tf.losses import discriminator_loss, generator_loss

GEN_WEIGHT = 1.0  # upstream's config fixes the generator's weight


@dataclass(frozen=True)
class SpecialIds:
    """The vocabulary ids masking treats specially."""

    cls: int
    sep: int
    mask: int


def max_predictions(mask_prob: float, seq_length: int) -> int:
    """Masked slots per row, as upstream computes it: 19 at 128 tokens, 79 at 512."""
    return int((mask_prob + 0.005) * seq_length)


def scatter_update(sequence, updates, positions) -> Tuple[tf.Tensor, tf.Tensor]:
    """(`sequence` [B, L] with `updates` [B, N] written at `positions` [B, N], the mask
    of positions written). Position 0 is never written; a position given twice gets the
    floor of the mean of its updates (upstream's rule)."""
    length = tf.shape(sequence)[1]
    shape = tf.shape(sequence)
    rows = tf.broadcast_to(tf.range(shape[0])[:, tf.newaxis], tf.shape(positions))
    index = tf.stack([rows, positions], -1)
    sums = tf.scatter_nd(index, updates, shape)
    counts = tf.scatter_nd(index, tf.ones_like(positions), shape)
    not_first = tf.cast(tf.range(length) > 0, counts.dtype)[tf.newaxis, :]
    counts *= not_first
    written = tf.minimum(counts, 1)
    values = tf.math.floordiv(sums, tf.maximum(counts, 1))
    return (1 - written) * sequence + written * values, written


def mask_batch(batch: Dict[str, tf.Tensor], ids: SpecialIds, mask_prob: float, slots: int,
               seed) -> Dict[str, tf.Tensor]:  # fmt: skip
    """`batch` with ``masked_input_ids`` and the ``masked_lm_*`` slots, drawn with the
    stateless `seed` ([2] int)."""
    input_ids, input_mask = batch["input_ids"], batch["input_mask"]
    position_seed, keep_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    candidates = tf.cast(input_mask, tf.bool)
    for special in (ids.cls, ids.sep, ids.mask):
        candidates &= tf.not_equal(input_ids, special)
    tokens = tf.cast(tf.reduce_sum(input_mask, -1), tf.float32)
    count = tf.maximum(1, tf.minimum(slots, tf.cast(tf.round(tokens * mask_prob), tf.int32)))
    weights = tf.sequence_mask(count, slots, tf.float32)
    probabilities = tf.cast(candidates, tf.float32)
    probabilities /= tf.reduce_sum(probabilities, -1, keepdims=True)
    positions = tf.random.stateless_categorical(
        tf.math.log(probabilities), slots, position_seed, dtype=tf.int32
    )
    positions *= tf.cast(weights, tf.int32)
    masked_ids = tf.gather(input_ids, positions, batch_dims=1) * tf.cast(weights, tf.int32)
    shown_as_mask = tf.random.stateless_uniform(tf.shape(positions), keep_seed) < 0.85
    masked_input_ids, _ = scatter_update(
        input_ids,
        tf.fill(tf.shape(positions), ids.mask),
        positions * tf.cast(shown_as_mask, tf.int32),
    )
    return {
        **batch,
        "masked_input_ids": masked_input_ids,
        "masked_lm_positions": positions,
        "masked_lm_ids": masked_ids,
        "masked_lm_weights": weights,
    }


def gumbel_noise(row_ids, slots: int, vocab_size: int, seed: int) -> tf.Tensor:
    """[B, slots, vocab] Gumbel noise, each row's drawn from its global row id."""

    def row_noise(row):
        uniform = tf.random.stateless_uniform(
            [slots, vocab_size], tf.stack([tf.cast(row, tf.int64), tf.constant(seed, tf.int64)])
        )
        return -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)

    return tf.map_fn(row_noise, row_ids, fn_output_signature=tf.float32)


def replaced(input_ids, positions, sampled) -> Tuple[tf.Tensor, tf.Tensor]:
    """(the text with `sampled` written at `positions`, 1 where a token differs from the
    original)."""
    fake_ids, written = scatter_update(input_ids, sampled, positions)
    return fake_ids, written * tf.cast(tf.not_equal(fake_ids, input_ids), tf.int32)


def with_global_counts(batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """A global batch with its counts of masked slots and of real tokens (scalars, which
    each worker keeps whole): each worker's losses then divide by the global counts, so
    N workers average to the loss of the whole batch, as one process computes it."""
    return {
        **batch,
        "masked_lm_count": tf.reduce_sum(batch["masked_lm_weights"]),
        "token_count": tf.cast(tf.reduce_sum(batch["input_mask"]), tf.float32),
    }


def electra_loss(model, batch, disc_weight: float, sampled=None, noise_seed: int = 0,
                 training: bool = False, workers: int = 1
                 ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:  # fmt: skip
    """(total loss, upstream's metrics) of a masked `batch` (`mask_batch`'s); the masked
    slots take `sampled` ids when given (tests), else draws from the generator. With the
    global counts (`with_global_counts`), this worker's share of the global batch's loss,
    `workers` shares averaging to it."""
    segments, input_mask = batch["segment_ids"], batch["input_mask"]
    gen_logits = model.generator(
        batch["masked_input_ids"], input_mask, segments, batch["masked_lm_positions"], training
    )
    mlm_loss, per_slot, predictions = generator_loss(gen_logits, batch, workers)
    if sampled is None:
        noise = gumbel_noise(batch["row_ids"], gen_logits.shape[1], gen_logits.shape[2], noise_seed)
        sampled = tf.argmax(tf.stop_gradient(gen_logits) + noise, -1, output_type=tf.int32)
    fake_ids, labels = replaced(batch["input_ids"], batch["masked_lm_positions"], sampled)
    disc_logits = model.discriminator(fake_ids, input_mask, segments, training)
    disc_loss = discriminator_loss(
        disc_logits, labels, input_mask, batch.get("token_count"), workers
    )
    total = GEN_WEIGHT * mlm_loss + disc_weight * disc_loss
    return total, metrics(batch, per_slot, predictions, sampled, disc_logits, labels, disc_loss)


def metrics(batch, per_slot, predictions, sampled, disc_logits, labels, disc_loss):
    """Upstream's training metrics (accuracies in percent), for this batch."""
    weights, ids = batch["masked_lm_weights"], batch["masked_lm_ids"]
    real = tf.cast(batch["input_mask"], tf.float32)
    guessed = tf.cast(disc_logits > 0, tf.int32)
    right = tf.cast(tf.equal(guessed, labels), tf.float32)

    def share(hits, weight):
        return 100.0 * tf.math.divide_no_nan(tf.reduce_sum(hits * weight), tf.reduce_sum(weight))

    return {
        "masked_lm_accuracy": share(tf.cast(tf.equal(predictions, ids), tf.float32), weights),
        "masked_lm_loss": tf.math.divide_no_nan(
            tf.reduce_sum(per_slot * weights), tf.reduce_sum(weights)
        ),
        "sampled_masked_lm_accuracy": share(tf.cast(tf.equal(sampled, ids), tf.float32), weights),
        "disc_loss": disc_loss,
        "disc_accuracy": share(right, real),
        "disc_precision": share(right, tf.cast(guessed, tf.float32) * real),
        "disc_recall": share(right, tf.cast(labels, tf.float32) * real),
    }
