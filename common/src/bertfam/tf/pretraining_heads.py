"""The pre-training heads and losses of google-research/bert `run_pretraining.py`.

- ``cls/predictions``: masked LM. The encoder's output at the masked positions goes
  through ``transform/dense`` (hidden -> embedding width) with the config's activation
  and ``transform/LayerNorm``, then is scored against the word-embedding table itself
  (the output layer is tied to the input one) plus ``output_bias`` [vocab].
- ``cls/seq_relationship``: next sentence prediction (ALBERT: sentence order) on the
  pooled output: ``output_weights`` [2, hidden] and ``output_bias`` [2].

The names are Google's, so Google's ``bert_model.ckpt`` (heads included) warm-starts
them and HuggingFace's ``BertForPreTraining`` loads ours (`bertfam.checkpoints`).

Losses as Google's `get_masked_lm_output` / `get_next_sentence_output` define them: the
masked-LM loss is the mean over real predictions (``masked_lm_weights``) of the
cross-entropy, with 1e-5 added to the count so a batch without one is 0, not NaN; the
next-sentence loss is the mean cross-entropy over examples. The metrics are those of
Google's `metric_fn`, each with the weight it is averaged with, so evaluation can pool
batches as `tf.metrics.mean` does.
"""

from __future__ import annotations

from typing import Dict, Optional

import tensorflow as tf

from bertfam.bert_config import BertConfig
from bertfam.tf.bf16 import FP32, Bf16Policy, to_float32
from bertfam.tf.layers import Activation, Dense, LayerNorm, truncated_normal

MASKED_LM_SCOPE = "cls/predictions"
NEXT_SENTENCE_SCOPE = "cls/seq_relationship"


class MaskedLmHead(tf.Module):
    def __init__(
        self,
        config: BertConfig,
        width: int,
        precision: Bf16Policy = FP32,
        scope: str = MASKED_LM_SCOPE,
        transform: str = f"{MASKED_LM_SCOPE}/transform",
        activation: Optional[str] = None,
    ):
        """`width`: the word embeddings' (BERT: hidden size; ALBERT: embedding size).
        ELECTRA's generator names it ``generator_predictions`` (`scope` and `transform`)
        and always uses the exact GELU (`activation`)."""
        super().__init__(name="predictions")
        self.precision = precision
        self.scope = scope
        init = truncated_normal(config)
        self.dense = Dense(f"{transform}/dense", config.hidden_size, width, init, precision)
        self.activation = Activation(activation or config.hidden_act, precision)
        self.LayerNorm = LayerNorm(
            f"{transform}/LayerNorm", width, config.layer_norm_eps, precision
        )
        self.output_bias = tf.Variable(tf.zeros([config.vocab_size]), name=f"{scope}/output_bias")

    def __call__(self, sequence_output, positions, word_embeddings) -> tf.Tensor:
        """Logits [batch, predictions, vocab] at `positions` [batch, predictions], float32."""
        p = self.precision
        with tf.name_scope(self.scope):
            picked = tf.gather(sequence_output, positions, batch_dims=1)
            hidden = self.LayerNorm(self.activation(self.dense(picked)))
            matmul = lambda x, w: tf.matmul(x, w, transpose_b=True)  # noqa: E731
            logits = p("BatchMatMulV2", matmul, hidden, tf.cast(word_embeddings, hidden.dtype))
            return to_float32(p("BiasAdd", tf.nn.bias_add, logits, self.output_bias))


class NextSentenceHead(tf.Module):
    def __init__(self, config: BertConfig, precision: Bf16Policy = FP32):
        super().__init__(name="seq_relationship")
        self.precision = precision
        self.output_weights = tf.Variable(
            truncated_normal(config)([2, config.hidden_size]),
            name=f"{NEXT_SENTENCE_SCOPE}/output_weights",
        )
        self.output_bias = tf.Variable(tf.zeros([2]), name=f"{NEXT_SENTENCE_SCOPE}/output_bias")

    def __call__(self, pooled_output) -> tf.Tensor:
        """Logits [..., 2] (0: B follows A; 1: B is random) for pooled [..., hidden]
        ([batch, hidden], or [batch, 3, hidden] for packed rows), float32."""
        p = self.precision
        with tf.name_scope(NEXT_SENTENCE_SCOPE):
            leading = tf.shape(pooled_output)[:-1]
            flat = tf.reshape(pooled_output, [-1, pooled_output.shape[-1]])
            matmul = lambda x, w: tf.matmul(x, w, transpose_b=True)  # noqa: E731
            logits = p("MatMul", matmul, flat, self.output_weights)
            logits = to_float32(p("BiasAdd", tf.nn.bias_add, logits, self.output_bias))
            return tf.reshape(logits, tf.concat([leading, [2]], 0))


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
