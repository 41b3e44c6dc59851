"""Every training loss of the TensorFlow flows, as the upstream programs define them.

- pre-training (google-research/bert `get_masked_lm_output` / `get_next_sentence_output`):
  the masked-LM loss is the mean over real predictions (``masked_lm_weights``) of the
  cross-entropy, with 1e-5 added to the count so a batch without one is 0, not NaN; the
  next-sentence (ALBERT: sentence-order) loss is the mean cross-entropy over examples.
  `eval_sums` gives Google's `metric_fn` values, each with the weight it is averaged with,
  so evaluation can pool batches as `tf.metrics.mean` does;
- SQuAD: Google's span loss, the mean of the start and end cross-entropies, and NVIDIA
  ELECTRA's joint loss, which adds, for SQuAD v2.0, half the binary cross-entropy of the
  answerability logit against "the window holds no answer" (XLNet's weighting);
- GLUE: Google's classifier loss, the batch mean of the softmax cross-entropy.

- ELECTRA (NVIDIA's TF2 ELECTRA): the generator's masked-LM loss, the mean over weighted
  slots with 1e-6 added to their count, and the discriminator's replaced-token loss, the
  mean sigmoid cross-entropy over real tokens; each divides by its share of the count
  when workers each hold part of it. ``TensorFlow/nlp/electra/objective.py`` masks and
  samples, and calls them.
"""

from __future__ import annotations

from typing import Dict, Tuple

import tensorflow as tf


def masked_lm_loss(logits, ids, weights, denominator=None) -> tf.Tensor:
    """Google's: sum of weighted cross-entropies / (sum of weights + 1e-5).

    When this batch is one part of an update (a micro-batch, one worker's rows), the
    update's loss is Google's over all its parts only if each part divides by its share of
    the whole count: `denominator` (see `bertfam.tf.pretraining.update_share`)."""
    per_prediction = tf.nn.sparse_softmax_cross_entropy_with_logits(ids, logits)
    weights = _real(weights)
    if denominator is None:
        denominator = tf.reduce_sum(weights) + 1e-5
    return tf.reduce_sum(per_prediction * weights) / denominator


def next_sentence_loss(logits, labels, weights=None) -> tf.Tensor:
    """The mean cross-entropy over examples (packed rows: over their real sequences)."""
    labels = tf.reshape(labels, [-1])
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels, tf.reshape(logits, [-1, 2])
    )
    if weights is None:
        return tf.reduce_mean(per_example)
    weights = tf.reshape(_real(weights), [-1])
    return tf.reduce_sum(per_example * weights) / tf.reduce_sum(weights)


def _real(weights) -> tf.Tensor:
    # Packed rows number each prediction's sequence (1, 2, 3) where unpacked ones have 1.0.
    return tf.cast(tf.cast(weights, tf.float32) > 0, tf.float32)


def pretraining_losses(mlm_logits, nsp_logits, batch, mlm_denominator=None) -> Dict[str, tf.Tensor]:
    """``mlm_loss``, ``nsp_loss`` and their sum ``total_loss`` (upstream's tensor names)."""
    mlm = masked_lm_loss(
        mlm_logits, batch["masked_lm_ids"], batch["masked_lm_weights"], mlm_denominator
    )
    nsp = next_sentence_loss(
        nsp_logits, batch["next_sentence_labels"], batch.get("next_sentence_weights")
    )
    return {"mlm_loss": mlm, "nsp_loss": nsp, "total_loss": mlm + nsp}


def eval_sums(mlm_logits, nsp_logits, batch) -> Dict[str, tf.Tensor]:
    """What Google's `metric_fn` averages, as (weighted) sums and their weights, so the
    batches of an evaluation pool exactly: masked-LM accuracy and loss over real
    predictions, next-sentence accuracy and loss over examples."""
    ids = tf.cast(batch["masked_lm_ids"], tf.int64)
    weights = _real(batch["masked_lm_weights"])
    per_prediction = tf.nn.sparse_softmax_cross_entropy_with_logits(ids, mlm_logits)
    correct = tf.cast(tf.equal(tf.argmax(mlm_logits, -1), ids), tf.float32)
    labels = tf.cast(tf.reshape(batch["next_sentence_labels"], [-1]), tf.int64)
    nsp_logits = tf.reshape(nsp_logits, [-1, 2])
    examples = tf.ones_like(labels, tf.float32)
    if "next_sentence_weights" in batch:
        examples = tf.reshape(_real(batch["next_sentence_weights"]), [-1])
    nsp_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, nsp_logits) * examples
    nsp_correct = tf.cast(tf.equal(tf.argmax(nsp_logits, -1), labels), tf.float32) * examples
    return {
        "masked_lm_accuracy": tf.reduce_sum(correct * weights),
        "masked_lm_loss": tf.reduce_sum(per_prediction * weights),
        "masked_lm_weight": tf.reduce_sum(weights),
        "next_sentence_accuracy": tf.reduce_sum(nsp_correct),
        "next_sentence_loss": tf.reduce_sum(nsp_loss),
        "next_sentence_weight": tf.reduce_sum(examples),
    }


def span_loss(start_logits, end_logits, start_positions, end_positions) -> tf.Tensor:
    """Google's SQuAD loss: the mean of the start and end cross-entropies."""
    start = tf.nn.sparse_softmax_cross_entropy_with_logits(start_positions, start_logits)
    end = tf.nn.sparse_softmax_cross_entropy_with_logits(end_positions, end_logits)
    return (tf.reduce_mean(start) + tf.reduce_mean(end)) / 2.0


def no_answer(start_positions: tf.Tensor) -> tf.Tensor:
    """float32 [batch]: 1 for windows without the answer, whose targets point at [CLS]."""
    return tf.cast(tf.equal(start_positions, 0), tf.float32)


def joint_loss(start_logits, end_logits, cls_logits, start_positions, end_positions) -> tf.Tensor:
    loss = span_loss(start_logits, end_logits, start_positions, end_positions)
    if cls_logits is None:
        return loss
    answerability = tf.nn.sigmoid_cross_entropy_with_logits(no_answer(start_positions), cls_logits)
    return loss + 0.5 * tf.reduce_mean(answerability)


def classification_loss(logits: tf.Tensor, label_ids: tf.Tensor) -> tf.Tensor:
    """Google's classifier loss: the mean over the batch of the softmax cross-entropy."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(label_ids, logits))


def generator_loss(logits, batch, workers: int = 1) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(mean masked-LM loss, per-slot losses, predictions) over the weighted slots."""
    log_probs = tf.nn.log_softmax(logits)
    per_slot = -tf.gather(log_probs, batch["masked_lm_ids"], batch_dims=2)
    weights = batch["masked_lm_weights"]
    count = batch.get("masked_lm_count", tf.reduce_sum(weights))
    loss = tf.reduce_sum(weights * per_slot) / ((count + 1e-6) / workers)
    return loss, per_slot, tf.argmax(log_probs, -1, output_type=tf.int32)


def discriminator_loss(logits, labels, input_mask, count=None, workers: int = 1) -> tf.Tensor:
    weights = tf.cast(input_mask, tf.float32)
    losses = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(labels, tf.float32), logits)
    count = tf.reduce_sum(weights) if count is None else count
    return tf.reduce_sum(losses * weights) / ((1e-6 + count) / workers)
