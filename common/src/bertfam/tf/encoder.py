"""One transformer encoder for every TensorFlow model: embeddings, a stack of post-norm
layers and the pooler, built under the root scope and the checkpoint names a model gives.

BERT, DistilBERT, ALBERT and ELECTRA run the same arithmetic (Google's `modeling.py`:
embeddings summed, layer-normed and dropped out; each layer self-attention, projection,
dropout, residual and layer norm, then the feed-forward block the same way). What differs
is where each weight lives in the model's checkpoint, and three switches:

- `EncoderNames` spells every checkpoint scope relative to the root (``bert``,
  ``distilbert``, ``electra``, ``generator``, ``discriminator``); its defaults are Google
  BERT's, which ALBERT's and ELECTRA's checkpoints follow;
- ``embedding_size`` smaller than ``hidden_size`` (ALBERT, ELECTRA-small) adds the
  projection from the embedding width to the hidden width (``names.embedding_projection``);
- ``share_layers`` (ALBERT) builds one layer and applies it ``num_hidden_layers`` times;
- ``embeddings`` given (ELECTRA's generator) uses another encoder's tables;
- ``names.dropout_after_attention`` is False for DistilBERT, whose ``out_lin`` has none.

Ops carry the upstream scope names (``bert/encoder/layer_0/attention/self/Mul``), which
is what the bf16 JSONs' name-based exceptions match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from bertfam.bert_config import BertConfig
from bertfam.tf.bf16 import FP32, Bf16Policy
from bertfam.tf.layers import (
    Activation,
    Dense,
    LayerNorm,
    SelfAttention,
    additive_attention_mask,
    dropout,
    packed_attention_mask,
    truncated_normal,
)


@dataclass(frozen=True)
class EncoderNames:
    """Checkpoint scopes relative to the encoder's root scope (Google BERT's by default).

    ``layer`` is a pattern with ``{index}``; the names below it are relative to one layer.
    ``residual_*`` name the residual sums (op names, for the bf16 JSON), not weights.
    """

    word_embeddings: str = "embeddings/word_embeddings"
    position_embeddings: str = "embeddings/position_embeddings"
    token_type_embeddings: Optional[str] = "embeddings/token_type_embeddings"
    embeddings: str = "embeddings"  # the scope of the embedding sums
    embeddings_layer_norm: str = "embeddings/LayerNorm"
    embedding_projection: str = "encoder/embedding_hidden_mapping_in"
    encoder: str = "encoder"  # the scope of the attention mask
    layer: str = "encoder/layer_{index}"
    attention: str = "attention/self"  # query/key/value and the attention ops live here
    projections: Tuple[str, str, str] = ("query", "key", "value")
    attention_output: str = "attention/output/dense"
    attention_layer_norm: str = "attention/output/LayerNorm"
    residual_attention: str = "attention/output/add"
    intermediate: str = "intermediate/dense"
    output: str = "output/dense"
    output_layer_norm: str = "output/LayerNorm"
    residual_output: str = "output/add"
    pooler: str = "pooler/dense"
    dropout_after_attention: bool = True


BERT_NAMES = EncoderNames()


def sinusoidal_positions(length: int, size: int) -> np.ndarray:
    """The fixed table of "Attention Is All You Need": sin on even columns, cos on odd."""
    exponents = 2 * (np.arange(size) // 2) / size
    angles = np.arange(length)[:, np.newaxis] / np.power(10000.0, exponents)[np.newaxis, :]
    table = np.empty((length, size), dtype=np.float32)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table


class Embeddings(tf.Module):
    """Word, position and (unless the names have none) token-type tables, summed, then
    layer norm and dropout. Sinusoidal positions (DistilBERT's option) are a fixed table."""

    def __init__(
        self,
        config: BertConfig,
        names: EncoderNames,
        scope: str,
        width: int,
        precision: Bf16Policy,
    ):
        super().__init__(name="embeddings")
        init = truncated_normal(config)
        self.config = config
        self.precision = precision
        self.scope = f"{scope}/{names.embeddings}"
        self.word_embeddings = tf.Variable(
            init([config.vocab_size, width]), name=f"{scope}/{names.word_embeddings}"
        )
        self.token_type_embeddings = None
        if names.token_type_embeddings:
            self.token_type_embeddings = tf.Variable(
                init([config.type_vocab_size, width]),
                name=f"{scope}/{names.token_type_embeddings}",
            )
        positions = config.max_position_embeddings
        if getattr(config, "sinusoidal_pos_embds", False):
            table, trainable = sinusoidal_positions(positions, width), False
        else:
            table, trainable = init([positions, width]), True
        self.position_embeddings = tf.Variable(
            table, trainable=trainable, name=f"{scope}/{names.position_embeddings}"
        )
        self.LayerNorm = LayerNorm(
            f"{scope}/{names.embeddings_layer_norm}", width, config.layer_norm_eps, precision
        )

    def __call__(self, input_ids, segment_ids, training: bool, positions=None) -> tf.Tensor:
        p = self.precision
        with tf.name_scope(self.scope):
            embedded = tf.gather(self.word_embeddings, input_ids)
            if self.token_type_embeddings is not None:
                token_types = tf.gather(self.token_type_embeddings, segment_ids)
                embedded = p("AddV2", tf.add, embedded, token_types)
            if positions is None:
                positions = self.position_embeddings[tf.newaxis, : tf.shape(input_ids)[1]]
            else:  # packed rows: positions restart in every packed sequence
                positions = tf.gather(self.position_embeddings, positions)
            embedded = p("AddV2", tf.add, embedded, positions)
        return dropout(self.LayerNorm(embedded), self.config.hidden_dropout_prob, training, p)


class _Projection(tf.Module):
    """A dense layer and (unless None) the layer norm after it: Google's ``attention/output``,
    ``intermediate`` and ``output`` blocks."""

    def __init__(self, dense: Dense, layer_norm: Optional[LayerNorm] = None):
        super().__init__(name="projection")
        self.dense = dense
        self.LayerNorm = layer_norm


class _Attention(tf.Module):
    def __init__(self, self_attention: SelfAttention, output: _Projection):
        super().__init__(name="attention")
        self.self_attention = self_attention
        self.output = output


class TransformerLayer(tf.Module):
    """One post-norm layer: attention, projection, (dropout,) residual, layer norm; then
    the feed-forward expansion, its activation, projection, dropout, residual, layer norm.

    The sub-modules follow Google's scopes (``attention`` with ``self_attention`` and
    ``output``, then ``intermediate`` and ``output``) whatever the checkpoint calls them.
    tf.Module lists variables by attribute name, and that is the order in which their
    gradients are summed into the global norm: a different layout moves results in the
    last bits.
    """

    def __init__(self, config: BertConfig, names: EncoderNames, scope: str, precision: Bf16Policy):
        super().__init__(name="layer")  # a Python name; the checkpoint names are `scope`
        init = truncated_normal(config)
        hidden, inner, eps = config.hidden_size, config.intermediate_size, config.layer_norm_eps
        self.config = config
        self.names = names
        self.scope = scope
        self.precision = precision

        def dense(name: str, size_in: int, size_out: int) -> Dense:
            return Dense(f"{scope}/{name}", size_in, size_out, init, precision)

        def layer_norm(name: str) -> LayerNorm:
            return LayerNorm(f"{scope}/{name}", hidden, eps, precision)

        # Created in Google's order (query, key, value, output, ...): each draws its
        # initial values from the seeded generator in turn.
        self_attention = SelfAttention(
            config, f"{scope}/{names.attention}", precision, names.projections
        )
        self.attention = _Attention(
            self_attention,
            _Projection(
                dense(names.attention_output, hidden, hidden),
                layer_norm(names.attention_layer_norm),
            ),
        )
        self.intermediate = _Projection(dense(names.intermediate, hidden, inner))
        self.activation = Activation(config.hidden_act, precision)
        self.output = _Projection(
            dense(names.output, inner, hidden), layer_norm(names.output_layer_norm)
        )

    def _residual(self, x, residual, op_path: str) -> tf.Tensor:
        """x + residual, as the op ``<layer>/<op_path>`` (e.g. ``attention/output/add``)."""
        scope, _, name = f"{self.scope}/{op_path}".rpartition("/")
        with tf.name_scope(scope):
            add = lambda a, b: tf.add(a, b, name=name)  # noqa: E731
            return self.precision("AddV2", add, x, residual, name=name)

    def __call__(self, hidden, additive_mask, training: bool) -> tf.Tensor:
        rate, p = self.config.hidden_dropout_prob, self.precision
        attention = self.attention
        attended = attention.output.dense(attention.self_attention(hidden, additive_mask, training))
        if self.names.dropout_after_attention:
            attended = dropout(attended, rate, training, p)
        attended = self._residual(attended, hidden, self.names.residual_attention)
        attended = attention.output.LayerNorm(attended)
        expanded = self.activation(self.intermediate.dense(attended))
        transformed = dropout(self.output.dense(expanded), rate, training, p)
        summed = self._residual(transformed, attended, self.names.residual_output)
        return self.output.LayerNorm(summed)


class Pooler(tf.Module):
    """tanh of a projection of the first ([CLS]) token."""

    def __init__(self, config: BertConfig, scope: str, precision: Bf16Policy):
        super().__init__(name="pooler")
        hidden = config.hidden_size
        self.precision = precision
        self.dense = Dense(scope, hidden, hidden, truncated_normal(config), precision)

    def __call__(self, sequence_output, positions=None) -> tf.Tensor:
        """[batch, hidden] from the first token; with `positions` [batch, n] (packed rows:
        each sequence's [CLS]), [batch, n, hidden]."""
        if positions is None:
            first = sequence_output[:, 0]
        else:
            first = tf.gather(sequence_output, positions, batch_dims=1)
        return self.precision("Tanh", tf.tanh, self.dense(first))


class TransformerEncoder(tf.Module):
    """``<scope>/``: embeddings, (projection,) the layer stack and, if asked, the pooler.

    `embedding_size` defaults to the config's (``embedding_size``, else ``hidden_size``);
    `share_layers` applies one layer ``num_hidden_layers`` times (the layer pattern then
    needs no ``{index}``). Returns (sequence_output [batch, seq, hidden], pooled [batch,
    hidden] or None).
    """

    def __init__(
        self,
        config: BertConfig,
        scope: str = "bert",
        names: EncoderNames = BERT_NAMES,
        precision: Bf16Policy = FP32,
        with_pooler: bool = True,
        embedding_size: Optional[int] = None,
        share_layers: bool = False,
        embeddings: Optional[Embeddings] = None,
    ):
        super().__init__(name=scope.replace("/", "_"))
        hidden = config.hidden_size
        width = embedding_size or getattr(config, "embedding_size", None) or hidden
        self.scope = scope
        self.names = names
        # ELECTRA's generator reads the discriminator's tables (`embeddings`, shared).
        self.embeddings = embeddings or Embeddings(config, names, scope, width, precision)
        self.embedding_projection = None
        if width != hidden:
            self.embedding_projection = Dense(
                f"{scope}/{names.embedding_projection}",
                width,
                hidden,
                truncated_normal(config),
                precision,
            )
        count = 1 if share_layers else config.num_hidden_layers
        self.layers = [
            TransformerLayer(config, names, f"{scope}/{names.layer.format(index=i)}", precision)
            for i in range(count)
        ]
        self.num_hidden_layers = config.num_hidden_layers
        self.pooler = Pooler(config, f"{scope}/{names.pooler}", precision) if with_pooler else None

    def __call__(
        self,
        input_ids,
        input_mask,
        segment_ids=None,
        training: bool = False,
        positions=None,
        pooled_positions=None,
    ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
        """With `positions` the rows are packed: `input_mask` numbers each token's
        sequence (1, 2, 3; 0 for padding), attention stays within a sequence, and the
        pooler reads each sequence's [CLS] at `pooled_positions`."""
        hidden = self.embeddings(input_ids, segment_ids, training, positions)
        if self.embedding_projection is not None:
            hidden = self.embedding_projection(hidden)
        with tf.name_scope(f"{self.scope}/{self.names.encoder}"):
            if positions is None:
                additive_mask = additive_attention_mask(input_mask)
            else:
                additive_mask = packed_attention_mask(input_mask)
        for index in range(self.num_hidden_layers):
            hidden = self.layers[index % len(self.layers)](hidden, additive_mask, training)
        if self.pooler is None:
            return hidden, None
        return hidden, self.pooler(hidden, pooled_positions)
