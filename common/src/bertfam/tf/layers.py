"""The building blocks every TensorFlow network here is made of, on tf.Module and tf.Variable.

Each block takes the checkpoint scope its variables live under (``<scope>/kernel``,
``<scope>/gamma``), so a model folder's `modeling.py` spells its checkpoint names once,
where it builds the block. Each op is asked of the `Bf16Policy` under the op type and
name the upstream bf16 JSON knows it by, so the JSONs work unchanged for every model.

The arithmetic is Google's: dense layers as 2-D MatMul + BiasAdd, exact (erf) GELU,
layer norm with the epsilon the config gives (1e-12 for BERT and DistilBERT).
"""

from __future__ import annotations

import math

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
# The op type the bf16 JSON knows each activation by (GELU is Habana's fused op).
ACTIVATION_OP_TYPES = {"gelu": "HabanaGelu", "relu": "Relu", "tanh": "Tanh"}


class Activation:
    """The config's ``hidden_act``, asked of the bf16 policy under its op type."""

    def __init__(self, name: str, precision: Bf16Policy):
        self.fn = ACTIVATIONS[name]
        self.op_type = ACTIVATION_OP_TYPES.get(name, "HabanaGelu")
        self.precision = precision

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return self.precision(self.op_type, self.fn, x)


class Dense(tf.Module):
    """``<scope>/kernel`` [in, out] and ``<scope>/bias`` [out] (none with ``use_bias=False``)."""

    def __init__(
        self,
        scope: str,
        in_size: int,
        out_size: int,
        initializer,
        precision: Bf16Policy,
        use_bias: bool = True,
    ):
        super().__init__(name=scope.rsplit("/", 1)[-1])
        self.scope = scope
        self.precision = precision
        self.kernel = tf.Variable(initializer([in_size, out_size]), name=f"{scope}/kernel")
        self.bias = tf.Variable(tf.zeros([out_size]), name=f"{scope}/bias") if use_bias else None

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        # Google flattens to a matrix so every dense layer is one MatMul + BiasAdd.
        p = self.precision
        with tf.name_scope(self.scope):
            matrix = p("Reshape", tf.reshape, x, [-1, x.shape[-1]])
            out = p("MatMul", tf.matmul, matrix, self.kernel)
            if self.bias is not None:
                out = p("BiasAdd", tf.nn.bias_add, out, self.bias)
            shape = tf.concat([tf.shape(x)[:-1], [self.kernel.shape[-1]]], 0)
            return p("Reshape", tf.reshape, out, shape)


class LayerNorm(tf.Module):
    """``<scope>/gamma`` and ``<scope>/beta``."""

    def __init__(self, scope: str, size: int, epsilon: float, precision: Bf16Policy):
        super().__init__(name=scope.rsplit("/", 1)[-1])
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


def additive_attention_mask(input_mask: tf.Tensor) -> tf.Tensor:
    """[batch, seq] of 1/0 -> [batch, 1, 1, seq]: 0 where attended, -10000 where masked.

    Google's constant rather than the dtype's minimum: it survives a cast to bf16, where
    float32's minimum becomes -inf and a fully masked row would turn into NaN.
    """
    mask = tf.cast(input_mask, tf.float32)[:, tf.newaxis, tf.newaxis, :]
    return (1.0 - mask) * -10000.0


def packed_attention_mask(sequence_numbers: tf.Tensor) -> tf.Tensor:
    """Packed rows: [batch, seq] of 1, 2, 3 (which packed sequence a token is in; 0 for
    padding) -> [batch, 1, seq, seq], 0 where both tokens are in the same sequence and
    -10000 elsewhere, so no attention crosses from one packed sequence into another."""
    numbers = tf.cast(sequence_numbers, tf.int32)
    same = tf.equal(numbers[:, :, tf.newaxis], numbers[:, tf.newaxis, :])
    attended = tf.logical_and(same, numbers[:, tf.newaxis, :] > 0)
    return (1.0 - tf.cast(attended, tf.float32))[:, tf.newaxis] * -10000.0


def scaled_dot_product_attention(
    query, key, value, additive_mask, config: BertConfig, training: bool, precision: Bf16Policy
) -> tf.Tensor:
    """Multi-head attention of projected [batch, seq, hidden] inputs -> [batch, seq, hidden].

    Call it inside the attention layer's name scope: the bf16 JSONs' exceptions name the
    scaling and the mask addition as ``<scope>/Mul`` and ``<scope>/add``.
    """
    p = precision

    def heads(x: tf.Tensor) -> tf.Tensor:  # [batch, seq, hidden] -> [batch, heads, seq, size]
        shape = tf.shape(x)
        x = p("Reshape", tf.reshape, x, [shape[0], shape[1], config.num_attention_heads, -1])
        return p("Transpose", tf.transpose, x, [0, 2, 1, 3])

    query, key, value = heads(query), heads(key), heads(value)
    scores = p("BatchMatMulV2", lambda q, k: tf.matmul(q, k, transpose_b=True), query, key)
    scale = 1.0 / math.sqrt(config.head_size)
    scores = p("Mul", lambda s: tf.multiply(s, scale, name="Mul"), scores, name="Mul")
    scores = p("AddV2", lambda s, m: tf.add(s, m, name="add"), scores, additive_mask, name="add")
    probs = p("Softmax", tf.nn.softmax, scores)
    probs = dropout(probs, config.attention_probs_dropout_prob, training, p)
    context = p("BatchMatMulV2", tf.matmul, probs, value)
    context = p("Transpose", tf.transpose, context, [0, 2, 1, 3])
    shape = tf.shape(context)
    return p("Reshape", tf.reshape, context, [shape[0], shape[1], config.hidden_size])


class SelfAttention(tf.Module):
    """Query, key and value projections under `scope`, named as the checkpoint names them
    (BERT's ``query``/``key``/``value``, DistilBERT's ``q_lin``/``k_lin``/``v_lin``),
    then `scaled_dot_product_attention` in that scope. The output projection is the
    model's own (BERT's ``attention/output/dense``, DistilBERT's ``out_lin``)."""

    def __init__(
        self,
        config: BertConfig,
        scope: str,
        precision: Bf16Policy,
        projections: tuple = ("query", "key", "value"),
    ):
        super().__init__(name=scope.rsplit("/", 1)[-1])
        size = config.hidden_size
        self.config = config
        self.scope = scope
        self.precision = precision
        for name in projections:
            dense = Dense(f"{scope}/{name}", size, size, truncated_normal(config), precision)
            setattr(self, name, dense)
        self.projections = projections

    def __call__(self, hidden, additive_mask, training: bool) -> tf.Tensor:
        query, key, value = (getattr(self, name)(hidden) for name in self.projections)
        with tf.name_scope(self.scope):
            return scaled_dot_product_attention(
                query, key, value, additive_mask, self.config, training, self.precision
            )


class SquadHead(tf.Module):
    """Google's SQuAD span head: ``cls/squad/output_weights`` [2, H] and ``output_bias``.

    HuggingFace's ``qa_outputs`` Linear is the same matrix, not transposed.
    """

    SCOPE = "cls/squad"

    def __init__(self, config: BertConfig, precision: Bf16Policy = FP32):
        super().__init__(name="squad")
        self.precision = precision
        self.output_weights = tf.Variable(
            truncated_normal(config)([2, config.hidden_size]), name=f"{self.SCOPE}/output_weights"
        )
        self.output_bias = tf.Variable(tf.zeros([2]), name=f"{self.SCOPE}/output_bias")

    def __call__(self, sequence_output: tf.Tensor):
        """(start_logits, end_logits), each [batch, seq], in float32."""
        p = self.precision
        with tf.name_scope(self.SCOPE):
            matmul = lambda x, w: tf.matmul(x, w, transpose_b=True)  # noqa: E731
            logits = p("BatchMatMulV2", matmul, sequence_output, self.output_weights)
            logits = to_float32(p("BiasAdd", tf.nn.bias_add, logits, self.output_bias))
        return logits[:, :, 0], logits[:, :, 1]


class ClassifierHead(tf.Module):
    """Google's classifier head (BERT's and ALBERT's run_classifier.py): dropout on the
    pooled output, then the top-level ``output_weights`` [labels, H] and ``output_bias``.

    HuggingFace's ``classifier`` Linear is the same matrix, not transposed.
    """

    def __init__(
        self,
        config: BertConfig,
        num_labels: int,
        dropout_before_logits: float = 0.1,
        precision: Bf16Policy = FP32,
    ):
        super().__init__(name="classifier")
        self.precision = precision
        self.dropout_before_logits = dropout_before_logits
        self.output_weights = tf.Variable(
            truncated_normal(config)([num_labels, config.hidden_size]), name="output_weights"
        )
        self.output_bias = tf.Variable(tf.zeros([num_labels]), name="output_bias")

    def __call__(self, pooled_output: tf.Tensor, training: bool) -> tf.Tensor:
        """Logits [batch, num_labels], in float32."""
        p = self.precision
        pooled = dropout(pooled_output, self.dropout_before_logits, training, p)
        matmul = lambda x, w: tf.matmul(x, w, transpose_b=True)  # noqa: E731
        logits = p("MatMul", matmul, pooled, self.output_weights)
        return to_float32(p("BiasAdd", tf.nn.bias_add, logits, self.output_bias))
