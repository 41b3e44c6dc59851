"""The BERT network in TensorFlow 2, on tf.Module and tf.Variable only.

Every variable is named exactly as in Google's checkpoints (``bert/embeddings/
word_embeddings``, ``bert/encoder/layer_3/attention/self/query/kernel``,
``cls/squad/output_weights``, the classifier's top-level ``output_weights``), so a Google
checkpoint loads one name to one variable. Each class owns one checkpoint scope and is
built from the config, as google-research/bert `modeling.py` and HuggingFace's
`modeling_bert.py` are. Ops carry the upstream scope names too
(``bert/encoder/layer_0/attention/self/Mul``), which is what the bf16 JSON's
name-based exceptions match.

The arithmetic follows Google's: dense layers as 2-D MatMul + BiasAdd, attention scores
scaled by 1/sqrt(head size) with -10000 added at masked positions, exact (erf) GELU,
layer norm with epsilon 1e-12.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import tensorflow as tf

from bertfam.bert_config import BertConfig
from bertfam.tf.bf16 import FP32, Bf16Policy, to_float32


def truncated_normal(config: BertConfig):
    """Google's initializer. Each call draws new values (a Keras initializer object would
    repeat the same values for every variable unless seeded per variable)."""

    def initializer(shape):
        return tf.random.truncated_normal(shape, stddev=config.initializer_range)

    return initializer


def gelu(x: tf.Tensor) -> tf.Tensor:
    """The exact GELU, x * Phi(x), as Google's and HuggingFace's "gelu"."""
    return 0.5 * x * (1.0 + tf.math.erf(x / math.sqrt(2.0)))


def gelu_tanh(x: tf.Tensor) -> tf.Tensor:
    """The tanh approximation ("gelu_new" in HuggingFace configs)."""
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))


# Each activation and the op type the bf16 JSON knows it by.
ACTIVATIONS = {
    "gelu": gelu,
    "gelu_new": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "relu": tf.nn.relu,
    "tanh": tf.tanh,
    "swish": tf.nn.silu,
    "silu": tf.nn.silu,
}


ACTIVATION_OP_TYPES = {"gelu": "HabanaGelu", "relu": "Relu", "tanh": "Tanh"}


class Dense(tf.Module):
    """``<scope>/kernel`` [in, out] and ``<scope>/bias`` [out]."""

    def __init__(self, scope: str, in_size: int, out_size: int, initializer, precision: Bf16Policy):
        super().__init__(name=scope.rsplit("/", 1)[-1])
        self.scope = scope
        self.precision = precision
        self.kernel = tf.Variable(initializer([in_size, out_size]), name=f"{scope}/kernel")
        self.bias = tf.Variable(tf.zeros([out_size]), name=f"{scope}/bias")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        # Google flattens to a matrix so every dense layer is one MatMul + BiasAdd.
        p = self.precision
        with tf.name_scope(self.scope):
            matrix = p("Reshape", tf.reshape, x, [-1, x.shape[-1]])
            out = p(
                "BiasAdd", tf.nn.bias_add, p("MatMul", tf.matmul, matrix, self.kernel), self.bias
            )
            shape = tf.concat([tf.shape(x)[:-1], [self.kernel.shape[-1]]], 0)
            return p("Reshape", tf.reshape, out, shape)


class LayerNorm(tf.Module):
    """``<scope>/gamma`` and ``<scope>/beta``."""

    def __init__(self, scope: str, size: int, epsilon: float, precision: Bf16Policy):
        super().__init__(name="LayerNorm")
        self.scope = scope
        self.epsilon = epsilon
        self.precision = precision
        self.gamma = tf.Variable(tf.ones([size]), name=f"{scope}/gamma")
        self.beta = tf.Variable(tf.zeros([size]), name=f"{scope}/beta")

    def _normalize(self, x, gamma, beta):
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + self.epsilon) * gamma + beta

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        # One op for the bf16 JSON: Habana runs layer norm as a fused HabanaLayerNorm.
        with tf.name_scope(self.scope):
            return self.precision("HabanaLayerNorm", self._normalize, x, self.gamma, self.beta)


def dropout(x: tf.Tensor, rate: float, training: bool, precision: Bf16Policy = FP32) -> tf.Tensor:
    if not training or rate <= 0.0:
        return x
    return precision("HabanaDropout", lambda t: tf.nn.dropout(t, rate=rate), x)


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


class BertSelfAttention(tf.Module):
    """``attention/self``: query, key and value projections and scaled dot-product attention."""

    def __init__(self, config: BertConfig, scope: str, precision: Bf16Policy):
        super().__init__(name="self")
        init = truncated_normal(config)
        hidden = config.hidden_size
        self.config = config
        self.scope = scope
        self.precision = precision
        self.query = Dense(f"{scope}/query", hidden, hidden, init, precision)
        self.key = Dense(f"{scope}/key", hidden, hidden, init, precision)
        self.value = Dense(f"{scope}/value", hidden, hidden, init, precision)

    def _heads(self, x: tf.Tensor) -> tf.Tensor:
        """[batch, seq, hidden] -> [batch, heads, seq, head_size]."""
        shape = tf.shape(x)
        heads = [shape[0], shape[1], self.config.num_attention_heads, self.config.head_size]
        x = self.precision("Reshape", tf.reshape, x, heads)
        return self.precision("Transpose", tf.transpose, x, [0, 2, 1, 3])

    def __call__(self, hidden, additive_mask, training: bool) -> tf.Tensor:
        p = self.precision
        query = self._heads(self.query(hidden))
        key = self._heads(self.key(hidden))
        value = self._heads(self.value(hidden))
        with tf.name_scope(self.scope):
            scores = p("BatchMatMulV2", lambda q, k: tf.matmul(q, k, transpose_b=True), query, key)
            scale = 1.0 / math.sqrt(self.config.head_size)
            scores = p("Mul", lambda s: tf.multiply(s, scale, name="Mul"), scores, name="Mul")
            scores = p(
                "AddV2", lambda s, m: tf.add(s, m, name="add"), scores, additive_mask, name="add"
            )
            probs = p("Softmax", tf.nn.softmax, scores)
            probs = dropout(probs, self.config.attention_probs_dropout_prob, training, p)
            context = p("BatchMatMulV2", tf.matmul, probs, value)
            context = p("Transpose", tf.transpose, context, [0, 2, 1, 3])
            shape = tf.shape(context)
            return p("Reshape", tf.reshape, context, [shape[0], shape[1], self.config.hidden_size])


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
        self.self_attention = BertSelfAttention(config, f"{scope}/self", precision)
        self.output = BertSelfOutput(config, f"{scope}/output", config.hidden_size, precision)

    def __call__(self, hidden, additive_mask, training: bool) -> tf.Tensor:
        return self.output(self.self_attention(hidden, additive_mask, training), hidden, training)


class BertIntermediate(tf.Module):
    """``intermediate``: the feed-forward expansion and its activation."""

    def __init__(self, config: BertConfig, scope: str, precision: Bf16Policy):
        super().__init__(name="intermediate")
        self.activation = ACTIVATIONS[config.hidden_act]
        self.activation_op = ACTIVATION_OP_TYPES.get(config.hidden_act, "HabanaGelu")
        self.precision = precision
        self.dense = Dense(
            f"{scope}/dense",
            config.hidden_size,
            config.intermediate_size,
            truncated_normal(config),
            precision,
        )

    def __call__(self, hidden) -> tf.Tensor:
        return self.precision(self.activation_op, self.activation, self.dense(hidden))


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
            # [batch, 1, 1, seq]: 0 where attended, -10000 where masked.
            mask = tf.cast(input_mask, tf.float32)[:, tf.newaxis, tf.newaxis, :]
            additive_mask = (1.0 - mask) * -10000.0
        for layer in self.layers:
            hidden = layer(hidden, additive_mask, training)
        return hidden, self.pooler(hidden) if self.pooler is not None else None


class BertForQuestionAnswering(tf.Module):
    """BERT with Google's SQuAD head: ``cls/squad/output_weights`` [2, H] and ``output_bias``."""

    def __init__(self, config: BertConfig, precision: Bf16Policy = FP32):
        super().__init__(name="bert_squad")
        self.bert = BertModel(config, with_pooler=False, precision=precision)
        self.precision = precision
        init = truncated_normal(config)
        self.output_weights = tf.Variable(
            init([2, config.hidden_size]), name="cls/squad/output_weights"
        )
        self.output_bias = tf.Variable(tf.zeros([2]), name="cls/squad/output_bias")

    def __call__(self, input_ids, input_mask, segment_ids, training: bool = False):
        """(start_logits, end_logits), each [batch, seq], in float32."""
        p = self.precision
        sequence_output, _ = self.bert(input_ids, input_mask, segment_ids, training)
        with tf.name_scope("cls/squad"):
            matmul = lambda x, w: tf.matmul(x, w, transpose_b=True)  # noqa: E731
            logits = p("BatchMatMulV2", matmul, sequence_output, self.output_weights)
            logits = to_float32(p("BiasAdd", tf.nn.bias_add, logits, self.output_bias))
        return logits[:, :, 0], logits[:, :, 1]


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


def task_head_prefixes(model: tf.Module) -> Optional[Tuple[str, ...]]:
    """Names a pretrained checkpoint is not expected to carry (freshly initialised heads)."""
    if isinstance(model, BertForQuestionAnswering):
        return ("cls/squad/",)
    if isinstance(model, BertForSequenceClassification):
        return ("output_weights", "output_bias")
    return ()
