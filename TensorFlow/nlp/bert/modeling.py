"""The BERT network in TensorFlow 2, on tf.Module and tf.Variable only.

Every variable is named exactly as in Google's checkpoints (``bert/embeddings/
word_embeddings``, ``bert/encoder/layer_3/attention/self/query/kernel``,
``cls/squad/output_weights``, the classifier's top-level ``output_weights``), so a Google
checkpoint loads one name to one variable. Each class owns one checkpoint scope and is
built from the config, as google-research/bert `modeling.py` and HuggingFace's
`modeling_bert.py` are. Ops carry the upstream scope names too
(``bert/encoder/layer_0/attention/self/Mul``), which is what the bf16 JSON's
name-based exceptions match.

The arithmetic follows Google's: attention scores scaled by 1/sqrt(head size) with
-10000 added at masked positions. The blocks (dense, layer norm, GELU, dropout and the
SQuAD head) are `bertfam.tf.layers`, which DistilBERT and the other models share.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import tensorflow as tf

from bertfam.bert_config import BertConfig
from bertfam.tf.bf16 import FP32, Bf16Policy, to_float32
from bertfam.tf.layers import (
    Activation,
    Dense,
    LayerNorm,
    SelfAttention,
    SquadHead,
    additive_attention_mask,
    dropout,
    truncated_normal,
)


class BertEmbeddings(tf.Module):
    """``bert/embeddings``: word, position and token-type tables, then LayerNorm."""

    def __init__(self, config: BertConfig, precision: Bf16Policy, scope: str = "bert/embeddings"):
        super().__init__(name="embeddings")
        init = truncated_normal(config)
        hidden = config.hidden_size
        self.config = config
        self.precision = precision
        self.scope = scope
        self.word_embeddings = tf.Variable(
            init([config.vocab_size, hidden]), name=f"{scope}/word_embeddings"
        )
        self.token_type_embeddings = tf.Variable(
            init([config.type_vocab_size, hidden]), name=f"{scope}/token_type_embeddings"
        )
        self.position_embeddings = tf.Variable(
            init([config.max_position_embeddings, hidden]), name=f"{scope}/position_embeddings"
        )
        self.LayerNorm = LayerNorm(f"{scope}/LayerNorm", hidden, config.layer_norm_eps, precision)

    def __call__(self, input_ids, segment_ids, training: bool) -> tf.Tensor:
        p = self.precision
        with tf.name_scope(self.scope):
            length = tf.shape(input_ids)[1]
            embedded = p(
                "AddV2",
                tf.add,
                tf.gather(self.word_embeddings, input_ids),
                tf.gather(self.token_type_embeddings, segment_ids),
            )
            embedded = p("AddV2", tf.add, embedded, self.position_embeddings[tf.newaxis, :length])
        return dropout(self.LayerNorm(embedded), self.config.hidden_dropout_prob, training, p)


class BertSelfOutput(tf.Module):
    """``attention/output`` and ``output``: projection, dropout, residual and LayerNorm."""

    def __init__(self, config: BertConfig, scope: str, in_size: int, precision: Bf16Policy):
        super().__init__(name="output")
        self.config = config
        self.scope = scope
        self.precision = precision
        init = truncated_normal(config)
        self.dense = Dense(f"{scope}/dense", in_size, config.hidden_size, init, precision)
        self.LayerNorm = LayerNorm(
            f"{scope}/LayerNorm", config.hidden_size, config.layer_norm_eps, precision
        )

    def __call__(self, hidden, residual, training: bool) -> tf.Tensor:
        p = self.precision
        hidden = dropout(self.dense(hidden), self.config.hidden_dropout_prob, training, p)
        with tf.name_scope(self.scope):
            summed = p("AddV2", lambda a, b: tf.add(a, b, name="add"), hidden, residual, name="add")
        return self.LayerNorm(summed)


class BertAttention(tf.Module):
    def __init__(self, config: BertConfig, scope: str, precision: Bf16Policy):
        super().__init__(name="attention")
        self.self_attention = SelfAttention(config, f"{scope}/self", precision)
        self.output = BertSelfOutput(config, f"{scope}/output", config.hidden_size, precision)

    def __call__(self, hidden, additive_mask, training: bool) -> tf.Tensor:
        return self.output(self.self_attention(hidden, additive_mask, training), hidden, training)


class BertIntermediate(tf.Module):
    """``intermediate``: the feed-forward expansion and its activation."""

    def __init__(self, config: BertConfig, scope: str, precision: Bf16Policy):
        super().__init__(name="intermediate")
        self.activation = Activation(config.hidden_act, precision)
        self.dense = Dense(
            f"{scope}/dense",
            config.hidden_size,
            config.intermediate_size,
            truncated_normal(config),
            precision,
        )

    def __call__(self, hidden) -> tf.Tensor:
        return self.activation(self.dense(hidden))


class BertLayer(tf.Module):
    """``bert/encoder/layer_N``."""

    def __init__(self, config: BertConfig, scope: str, precision: Bf16Policy):
        super().__init__(name=scope.rsplit("/", 1)[-1])
        self.attention = BertAttention(config, f"{scope}/attention", precision)
        self.intermediate = BertIntermediate(config, f"{scope}/intermediate", precision)
        self.output = BertSelfOutput(config, f"{scope}/output", config.intermediate_size, precision)

    def __call__(self, hidden, additive_mask, training: bool) -> tf.Tensor:
        attended = self.attention(hidden, additive_mask, training)
        return self.output(self.intermediate(attended), attended, training)


class BertPooler(tf.Module):
    """``bert/pooler``: tanh of a projection of the first ([CLS]) token."""

    def __init__(self, config: BertConfig, precision: Bf16Policy, scope: str = "bert/pooler"):
        super().__init__(name="pooler")
        hidden = config.hidden_size
        self.precision = precision
        self.dense = Dense(f"{scope}/dense", hidden, hidden, truncated_normal(config), precision)

    def __call__(self, sequence_output) -> tf.Tensor:
        return self.precision("Tanh", tf.tanh, self.dense(sequence_output[:, 0]))


class BertModel(tf.Module):
    """``bert/``: embeddings, the encoder stack and (unless `with_pooler` is False) the pooler.

    The span head reads every token and never the pooler, so the question-answering
    model has none (HuggingFace's has none either; Google's builds one and leaves it
    untrained). `precision` decides each op's dtype from a bf16 JSON (fp32 by default).
    """

    def __init__(self, config: BertConfig, with_pooler: bool = True, precision: Bf16Policy = FP32):
        super().__init__(name="bert")
        self.config = config
        self.embeddings = BertEmbeddings(config, precision)
        self.layers = [
            BertLayer(config, f"bert/encoder/layer_{index}", precision)
            for index in range(config.num_hidden_layers)
        ]
        self.pooler = BertPooler(config, precision) if with_pooler else None

    def __call__(
        self, input_ids, input_mask, segment_ids, training: bool = False
    ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
        """(sequence_output [batch, seq, hidden], pooled_output [batch, hidden] or None)."""
        hidden = self.embeddings(input_ids, segment_ids, training)
        with tf.name_scope("bert/encoder"):
            additive_mask = additive_attention_mask(input_mask)
        for layer in self.layers:
            hidden = layer(hidden, additive_mask, training)
        return hidden, self.pooler(hidden) if self.pooler is not None else None


class BertForQuestionAnswering(tf.Module):
    """BERT with Google's SQuAD head: ``cls/squad/output_weights`` [2, H] and ``output_bias``."""

    def __init__(self, config: BertConfig, precision: Bf16Policy = FP32):
        super().__init__(name="bert_squad")
        self.bert = BertModel(config, with_pooler=False, precision=precision)
        self.squad = SquadHead(config, precision)

    def __call__(self, input_ids, input_mask, segment_ids, training: bool = False):
        """(start_logits, end_logits), each [batch, seq], in float32."""
        sequence_output, _ = self.bert(input_ids, input_mask, segment_ids, training)
        return self.squad(sequence_output)


class BertForSequenceClassification(tf.Module):
    """BERT with Google's classifier head: top-level ``output_weights`` [labels, H] and bias."""

    def __init__(
        self,
        config: BertConfig,
        num_labels: int,
        dropout_before_logits: float = 0.1,
        precision: Bf16Policy = FP32,
    ):
        super().__init__(name="bert_classifier")
        self.bert = BertModel(config, precision=precision)
        self.precision = precision
        self.dropout_before_logits = dropout_before_logits
        self.output_weights = tf.Variable(
            truncated_normal(config)([num_labels, config.hidden_size]), name="output_weights"
        )
        self.output_bias = tf.Variable(tf.zeros([num_labels]), name="output_bias")

    def __call__(self, input_ids, input_mask, segment_ids, training: bool = False) -> tf.Tensor:
        """Logits [batch, num_labels], in float32."""
        p = self.precision
        _, pooled = self.bert(input_ids, input_mask, segment_ids, training)
        pooled = dropout(pooled, self.dropout_before_logits, training, p)
        matmul = lambda x, w: tf.matmul(x, w, transpose_b=True)  # noqa: E731
        logits = p("MatMul", matmul, pooled, self.output_weights)
        return to_float32(p("BiasAdd", tf.nn.bias_add, logits, self.output_bias))


def variables_by_name(model: tf.Module) -> Dict[str, tf.Variable]:
    """{checkpoint name: variable}, e.g. ``bert/pooler/dense/kernel``."""
    return {variable.name.rsplit(":", 1)[0]: variable for variable in model.variables}
