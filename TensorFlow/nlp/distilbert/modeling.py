"""The DistilBERT network in TensorFlow 2, on tf.Module and tf.Variable only.

DistilBERT is BERT with six layers, no token types and no pooler, as HuggingFace's
`modeling_distilbert.py` builds it. Every variable is named as in the TF checkpoint that
download/download_pretrained_model.py writes, which are the object paths of HuggingFace's
TF DistilBERT, the names Habana's loader matches (``distilbert/embeddings/weight``,
``distilbert/transformer/layer/3/attention/q_lin/kernel``). The SQuAD head is Google's
(``cls/squad/output_weights``), as in BERT; HuggingFace's ``qa_outputs`` loads into it.

Ops carry upstream's scope names too (``distilbert/transformer/layer/0/attention/Mul``
and ``.../attention/add``), which is what bf16_config/distilbert.json's exceptions match.
The blocks (dense, layer norm, attention, dropout, the SQuAD head) are
`bertfam.tf.layers`, shared with BERT.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bertfam.distilbert_config import DistilBertConfig
from bertfam.tf import layers
from bertfam.tf.bf16 import FP32, Bf16Policy

SCOPE = "distilbert"


def sinusoidal_positions(length: int, size: int) -> np.ndarray:
    """The fixed table of "Attention Is All You Need": sin on even columns, cos on odd."""
    exponents = 2 * (np.arange(size) // 2) / size
    angles = np.arange(length)[:, np.newaxis] / np.power(10000.0, exponents)[np.newaxis, :]
    table = np.empty((length, size), dtype=np.float32)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table


class Embeddings(tf.Module):
    """``distilbert/embeddings``: word and position tables, then LayerNorm and dropout."""

    def __init__(self, config: DistilBertConfig, precision: Bf16Policy):
        super().__init__(name="embeddings")
        scope = f"{SCOPE}/embeddings"
        init = layers.truncated_normal(config)
        hidden, positions = config.hidden_size, config.max_position_embeddings
        self.config = config
        self.precision = precision
        self.scope = scope
        self.weight = tf.Variable(init([config.vocab_size, hidden]), name=f"{scope}/weight")
        # HuggingFace TF names the position table "embeddings" inside this scope. Sinusoidal
        # positions are a fixed table, never trained (as HuggingFace freezes them).
        if config.sinusoidal_pos_embds:
            table, trainable = sinusoidal_positions(positions, hidden), False
        else:
            table, trainable = init([positions, hidden]), True
        self.embeddings = tf.Variable(table, trainable=trainable, name=f"{scope}/embeddings")
        self.LayerNorm = layers.LayerNorm(
            f"{scope}/LayerNorm", hidden, config.layer_norm_eps, precision
        )

    def __call__(self, input_ids, training: bool) -> tf.Tensor:
        with tf.name_scope(self.scope):
            positions = self.embeddings[tf.newaxis, : tf.shape(input_ids)[1]]
            summed = self.precision("AddV2", tf.add, tf.gather(self.weight, input_ids), positions)
        normalized = self.LayerNorm(summed)
        return layers.dropout(normalized, self.config.hidden_dropout_prob, training, self.precision)


class FFN(tf.Module):
    """``layer/N/ffn``: lin1, the activation, lin2, dropout."""

    def __init__(self, config: DistilBertConfig, scope: str, precision: Bf16Policy):
        super().__init__(name="ffn")
        init = layers.truncated_normal(config)
        size, inner = config.hidden_size, config.intermediate_size
        self.rate = config.hidden_dropout_prob
        self.precision = precision
        self.lin1 = layers.Dense(f"{scope}/lin1", size, inner, init, precision)
        self.activation = layers.Activation(config.hidden_act, precision)
        self.lin2 = layers.Dense(f"{scope}/lin2", inner, size, init, precision)

    def __call__(self, hidden, training: bool) -> tf.Tensor:
        expanded = self.activation(self.lin1(hidden))
        return layers.dropout(self.lin2(expanded), self.rate, training, self.precision)


class TransformerBlock(tf.Module):
    """``distilbert/transformer/layer/N``: attention and feed-forward, each followed by a
    residual sum and its layer norm (sa_layer_norm, output_layer_norm)."""

    def __init__(self, config: DistilBertConfig, index: int, precision: Bf16Policy):
        super().__init__(name=f"layer_{index}")
        scope = f"{SCOPE}/transformer/layer/{index}"
        eps, size = config.layer_norm_eps, config.hidden_size
        self.scope = scope
        self.precision = precision
        # q_lin, k_lin, v_lin and the attention; out_lin follows with no dropout.
        projections = ("q_lin", "k_lin", "v_lin")
        self.attention = layers.SelfAttention(config, f"{scope}/attention", precision, projections)
        self.out_lin = layers.Dense(
            f"{scope}/attention/out_lin", size, size, layers.truncated_normal(config), precision
        )
        self.sa_layer_norm = layers.LayerNorm(f"{scope}/sa_layer_norm", size, eps, precision)
        self.ffn = FFN(config, f"{scope}/ffn", precision)
        self.output_layer_norm = layers.LayerNorm(
            f"{scope}/output_layer_norm", size, eps, precision
        )

    def _residual(self, x, residual, name: str) -> tf.Tensor:
        with tf.name_scope(self.scope):
            return self.precision("AddV2", lambda a, b: tf.add(a, b, name=name), x, residual)

    def __call__(self, hidden, additive_mask, training: bool) -> tf.Tensor:
        attended = self.out_lin(self.attention(hidden, additive_mask, training))
        attended = self.sa_layer_norm(self._residual(attended, hidden, "sa_add"))
        transformed = self.ffn(attended, training)
        return self.output_layer_norm(self._residual(transformed, attended, "output_add"))


class DistilBertModel(tf.Module):
    """``distilbert/``: embeddings and the transformer stack; the last hidden states."""

    def __init__(self, config: DistilBertConfig, precision: Bf16Policy = FP32):
        super().__init__(name=SCOPE)
        self.embeddings = Embeddings(config, precision)
        self.layer = [
            TransformerBlock(config, index, precision) for index in range(config.num_hidden_layers)
        ]

    def __call__(self, input_ids, input_mask, training: bool = False) -> tf.Tensor:
        """[batch, seq, hidden]."""
        hidden = self.embeddings(input_ids, training)
        with tf.name_scope(f"{SCOPE}/transformer"):
            additive_mask = layers.additive_attention_mask(input_mask)
        for block in self.layer:
            hidden = block(hidden, additive_mask, training)
        return hidden


class DistilBertForQuestionAnswering(tf.Module):
    """DistilBERT, ``qa_dropout``, then Google's SQuAD head ``cls/squad/*``."""

    def __init__(self, config: DistilBertConfig, precision: Bf16Policy = FP32):
        super().__init__(name="distilbert_squad")
        self.distilbert = DistilBertModel(config, precision)
        self.qa_dropout = config.qa_dropout
        self.precision = precision
        self.squad = layers.SquadHead(config, precision)

    def __call__(self, input_ids, input_mask, segment_ids=None, training: bool = False):
        """(start_logits, end_logits), each [batch, seq], in float32. `segment_ids` is
        accepted, as the SQuAD features carry it, and unused: DistilBERT has no token types."""
        hidden = self.distilbert(input_ids, input_mask, training)
        return self.squad(layers.dropout(hidden, self.qa_dropout, training, self.precision))
