"""The pre-training heads of google-research/bert `run_pretraining.py` (their losses are
in `bertfam.tf.losses`).

- ``cls/predictions``: masked LM. The encoder's output at the masked positions goes
  through ``transform/dense`` (hidden -> embedding width) with the config's activation
  and ``transform/LayerNorm``, then is scored against the word-embedding table itself
  (the output layer is tied to the input one) plus ``output_bias`` [vocab].
- ``cls/seq_relationship``: next sentence prediction (ALBERT: sentence order) on the
  pooled output: ``output_weights`` [2, hidden] and ``output_bias`` [2].

The names are Google's, so Google's ``bert_model.ckpt`` (heads included) warm-starts
them and HuggingFace's ``BertForPreTraining`` loads ours (`bertfam.checkpoints`).

"""

from __future__ import annotations

from typing import Optional

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
