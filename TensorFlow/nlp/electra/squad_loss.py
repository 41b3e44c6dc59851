"""The SQuAD fine-tuning losses: the span head's (Google's: the mean of the start and end
cross-entropies) and the joint head's, which adds, for SQuAD v2.0, half the binary
cross-entropy of the answerability logit against "the window holds no answer" (XLNet's
weighting, kept by NVIDIA's ELECTRA)."""

from __future__ import annotations

import tensorflow as tf

from bertfam.tf.squad import span_loss


def no_answer(start_positions: tf.Tensor) -> tf.Tensor:
    """float32 [batch]: 1 for windows without the answer, whose targets point at [CLS]."""
    return tf.cast(tf.equal(start_positions, 0), tf.float32)


def joint_loss(start_logits, end_logits, cls_logits, start_positions, end_positions) -> tf.Tensor:
    loss = span_loss(start_logits, end_logits, start_positions, end_positions)
    if cls_logits is None:
        return loss
    answerability = tf.nn.sigmoid_cross_entropy_with_logits(no_answer(start_positions), cls_logits)
    return loss + 0.5 * tf.reduce_mean(answerability)
