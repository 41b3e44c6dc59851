"""The ELECTRA networks in TensorFlow 2, on tf.Module and tf.Variable only.

Every variable has Google's ELECTRA name, and HuggingFace
folders load through `bertfam.checkpoints.ELECTRA_TABLE` (discriminators, fine-tuned
SQuAD models) and ``ELECTRA_GENERATOR_TABLE`` (generators):

- the discriminator: the shared encoder under ``electra/`` (tables ``embedding_size``
  wide, ``electra/embeddings_project`` when that is not the hidden size), and the
  replaced-token head ``discriminator_predictions/dense`` (hidden, the config's
  activation) then ``discriminator_predictions/dense_1`` (one logit a token);
- the generator: its own, narrower encoder under ``generator/`` reading the
  discriminator's embedding tables (``electra/embeddings``), and the masked-LM head
  ``generator_predictions/{dense,LayerNorm}`` (exact GELU) scored against the word
  table plus ``generator_predictions/output_bias``;
- SQuAD: the discriminator with the span head (``cls/squad``; HuggingFace's
  ``qa_outputs``), or with the joint head NVIDIA's fine-tuning uses by default (XLNet's
  beam-search head, under NVIDIA's Keras names: ``start_logits/start_logit_pooler_dense``,
  ``end_logits/end_logit_pooler_{dense_0,LayerNorm,dense_1}`` and, for SQuAD v2.0,
  ``answer_class/pooler_answer_class_dense_{0,1}``).
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from bertfam.electra_config import ElectraConfig
from bertfam.tf.bf16 import FP32, Bf16Policy, to_float32
from bertfam.tf.encoder import Embeddings, EncoderNames, TransformerEncoder
from bertfam.tf.layers import Activation, Dense, LayerNorm, SquadHead, truncated_normal
from bertfam.tf.pretraining_heads import MaskedLmHead

DISCRIMINATOR, GENERATOR = "electra", "generator"
NAMES = EncoderNames(embedding_projection="embeddings_project")


def ElectraModel(
    config: ElectraConfig,
    scope: str = DISCRIMINATOR,
    precision: Bf16Policy = FP32,
    embeddings: Optional[Embeddings] = None,
) -> TransformerEncoder:
    """An ELECTRA encoder under `scope` (no pooler); called with (input_ids, input_mask,
    segment_ids, training) it returns (sequence_output, None)."""
    return TransformerEncoder(
        config,
        scope,
        NAMES,
        precision,
        with_pooler=False,
        embedding_size=config.embedding_size,
        embeddings=embeddings,
    )


class DiscriminatorHead(tf.Module):
    """One replaced-or-original logit per token."""

    SCOPE = "discriminator_predictions"

    def __init__(self, config: ElectraConfig, precision: Bf16Policy = FP32):
        super().__init__(name="discriminator_predictions")
        init = truncated_normal(config)
        hidden = config.hidden_size
        self.dense = Dense(f"{self.SCOPE}/dense", hidden, hidden, init, precision)
        self.activation = Activation(config.hidden_act, precision)
        self.dense_1 = Dense(f"{self.SCOPE}/dense_1", hidden, 1, init, precision)

    def __call__(self, sequence_output) -> tf.Tensor:
        """Logits [batch, seq], float32."""
        return to_float32(self.dense_1(self.activation(self.dense(sequence_output))))[..., 0]


class ElectraDiscriminator(tf.Module):
    """HuggingFace's ``ElectraForPreTraining``: the encoder and the replaced-token head."""

    def __init__(self, config: ElectraConfig, precision: Bf16Policy = FP32):
        super().__init__(name="discriminator")
        self.electra = ElectraModel(config, DISCRIMINATOR, precision)
        self.discriminator_predictions = DiscriminatorHead(config, precision)

    def __call__(self, input_ids, input_mask, segment_ids, training: bool = False):
        sequence_output, _ = self.electra(input_ids, input_mask, segment_ids, training)
        return self.discriminator_predictions(sequence_output)


class ElectraGenerator(tf.Module):
    """HuggingFace's ``ElectraForMaskedLM``: the generator's encoder on `embeddings` (the
    discriminator's, in pre-training; its own ``electra/embeddings`` alone), and the
    masked-LM head tied to the word table."""

    def __init__(
        self,
        config: ElectraConfig,
        precision: Bf16Policy = FP32,
        embeddings: Optional[Embeddings] = None,
    ):
        super().__init__(name="generator")
        width = config.embedding_size
        embeddings = embeddings or Embeddings(config, NAMES, DISCRIMINATOR, width, precision)
        self.electra = ElectraModel(config, GENERATOR, precision, embeddings)
        self.generator_predictions = MaskedLmHead(
            config,
            width,
            precision,
            scope="generator_predictions",
            transform="generator_predictions",
            activation="gelu",
        )

    def __call__(self, input_ids, input_mask, segment_ids, positions, training: bool = False):
        """Masked-LM logits [batch, predictions, vocab] at `positions`, float32."""
        sequence_output, _ = self.electra(input_ids, input_mask, segment_ids, training)
        word_embeddings = self.electra.embeddings.word_embeddings
        return self.generator_predictions(sequence_output, positions, word_embeddings)


class ElectraPretrainingModel(tf.Module):
    """The discriminator and a generator `generator_hidden_size` as wide, sharing the
    embedding tables, as run_pretraining.py trains them."""

    def __init__(
        self,
        config: ElectraConfig,
        generator_hidden_size: float = 0.25,
        precision: Bf16Policy = FP32,
    ):
        super().__init__(name="electra_pretraining")
        self.discriminator = ElectraDiscriminator(config, precision)
        self.generator = ElectraGenerator(
            config.generator(generator_hidden_size),
            precision,
            embeddings=self.discriminator.electra.embeddings,
        )


# Logits of positions no answer may start or end at; NVIDIA's value in float32.
MASKED_LOGIT = 1e30


def answer_mask(input_mask: tf.Tensor, segment_ids: tf.Tensor) -> tf.Tensor:
    """float32 [batch, seq]: 1 where no answer can be (the question, [SEP]s, padding), 0
    on context tokens and on [CLS], which stands for "no answer" (HuggingFace's p_mask)."""
    context = tf.cast(segment_ids * input_mask, tf.float32)  # context tokens and the last [SEP]
    last_sep = tf.one_hot(tf.reduce_sum(input_mask, axis=1) - 1, tf.shape(input_mask)[1])
    cls = tf.one_hot(tf.zeros_like(input_mask[:, 0]), tf.shape(input_mask)[1])
    return 1.0 - (context - last_sep) - cls


def _masked(logits: tf.Tensor, p_mask: tf.Tensor) -> tf.Tensor:
    logits = to_float32(logits)
    return logits * (1.0 - p_mask) - MASKED_LOGIT * p_mask


class JointSquadHead(tf.Module):
    """XLNet's SQuAD head: a start logit per token; an end logit per token given a start
    (from [token, start token] through dense, tanh, LayerNorm, dense); for SQuAD v2.0 an
    answerability logit from [start token, CLS]. Training conditions the end on the gold
    start; prediction keeps the `beam_size` best starts and, for each, the best ends."""

    def __init__(
        self,
        config: ElectraConfig,
        beam_size: int,
        version_2_with_negative: bool,
        precision: Bf16Policy = FP32,
    ):
        super().__init__(name="joint_squad")
        init, hidden = truncated_normal(config), config.hidden_size
        self.beam_size = beam_size
        self.start_dense = Dense(
            "start_logits/start_logit_pooler_dense", hidden, 1, init, precision
        )
        self.end_dense_0 = Dense("end_logits/end_logit_pooler_dense_0", 2 * hidden, hidden, init,
                                 precision)  # fmt: skip
        self.end_norm = LayerNorm(
            "end_logits/end_logit_pooler_LayerNorm", hidden, config.layer_norm_eps, precision
        )
        self.end_dense_1 = Dense("end_logits/end_logit_pooler_dense_1", hidden, 1, init, precision)
        self.tanh = Activation("tanh", precision)
        self.answer_class = None
        if version_2_with_negative:
            self.answer_class = (
                Dense("answer_class/pooler_answer_class_dense_0", 2 * hidden, hidden, init,
                      precision),
                Dense("answer_class/pooler_answer_class_dense_1", hidden, 1, init, precision,
                      use_bias=False),
            )  # fmt: skip

    def start_logits(self, sequence_output, p_mask):
        return _masked(self.start_dense(sequence_output)[..., 0], p_mask)

    def end_logits(self, sequence_output, start_states, p_mask):
        """`start_states`: the start token's hidden state beside every token's."""
        x = self.end_dense_0(tf.concat([sequence_output, start_states], axis=-1))
        x = self.end_dense_1(self.end_norm(self.tanh(x)))
        return _masked(x[..., 0], p_mask)

    def answerability(self, sequence_output, start_state):
        dense_0, dense_1 = self.answer_class
        x = dense_0(tf.concat([start_state, sequence_output[:, 0]], axis=-1))
        return to_float32(dense_1(self.tanh(x)))[:, 0]

    def training_logits(self, sequence_output, p_mask, start_positions):
        """(start_logits, end_logits [batch, seq], answerability [batch] or None), the end
        and the answerability conditioned on the gold start."""
        start_state = tf.gather(sequence_output, start_positions, axis=1, batch_dims=1)
        beside = tf.broadcast_to(start_state[:, None], tf.shape(sequence_output))
        end = self.end_logits(sequence_output, beside, p_mask)
        cls = (
            None if self.answer_class is None else self.answerability(sequence_output, start_state)
        )
        return self.start_logits(sequence_output, p_mask), end, cls

    def beams(self, sequence_output, p_mask):
        """(start_top_log_probs [B, K], start_top_index [B, K], end_top_log_probs [B, K*K],
        end_top_index [B, K*K], answerability [B]): entry i*K + j is start i's j-th end."""
        start = self.start_logits(sequence_output, p_mask)
        k = min(self.beam_size, sequence_output.shape[1])
        start_top_log_probs, start_top_index = tf.math.top_k(tf.nn.log_softmax(start), k=k)
        start_states = tf.gather(sequence_output, start_top_index, axis=1, batch_dims=1)
        shape = tf.concat([tf.shape(sequence_output)[:2], [k], tf.shape(sequence_output)[2:]], 0)
        end = self.end_logits(  # [B, L, K]: every token as the end of each start
            tf.broadcast_to(sequence_output[:, :, None], shape),
            tf.broadcast_to(start_states[:, None], shape),
            p_mask[:, :, None],
        )
        end_log_probs = tf.transpose(tf.nn.log_softmax(end, axis=1), [0, 2, 1])
        end_top_log_probs, end_top_index = tf.math.top_k(end_log_probs, k=k)  # [B, K, K]
        if self.answer_class is None:
            cls = tf.zeros_like(start[:, 0])
        else:  # the start as the start-probability-weighted mean of the tokens
            weights = tf.cast(tf.nn.softmax(start), sequence_output.dtype)
            cls = self.answerability(sequence_output, tf.einsum("blh,bl->bh", sequence_output,
                                                                weights))  # fmt: skip
        return (
            start_top_log_probs,
            start_top_index,
            tf.reshape(end_top_log_probs, [-1, k * k]),
            tf.reshape(end_top_index, [-1, k * k]),
            cls,
        )


class ElectraForQuestionAnswering(tf.Module):
    """The discriminator's encoder with the span head (HuggingFace's ``qa_outputs``), or
    with `JointSquadHead` (``joint_head``)."""

    def __init__(
        self,
        config: ElectraConfig,
        precision: Bf16Policy = FP32,
        *,
        joint_head: bool = False,
        beam_size: int = 4,
        version_2_with_negative: bool = False,
    ):
        super().__init__(name="electra_squad")
        self.electra = ElectraModel(config, DISCRIMINATOR, precision)
        self.joint_head = joint_head
        if joint_head:
            self.squad = JointSquadHead(config, beam_size, version_2_with_negative, precision)
        else:
            self.squad = SquadHead(config, precision)

    def __call__(self, input_ids, input_mask, segment_ids, training: bool = False):
        """The span head's (start_logits, end_logits), each [batch, seq], in float32."""
        sequence_output, _ = self.electra(input_ids, input_mask, segment_ids, training)
        return self.squad(sequence_output)

    def joint_training_logits(self, input_ids, input_mask, segment_ids, start_positions):
        """The joint head's `JointSquadHead.training_logits`, in training mode."""
        sequence_output, _ = self.electra(input_ids, input_mask, segment_ids, True)
        p_mask = answer_mask(input_mask, segment_ids)
        return self.squad.training_logits(sequence_output, p_mask, start_positions)

    def joint_beams(self, input_ids, input_mask, segment_ids):
        """The joint head's `JointSquadHead.beams`, in inference mode."""
        sequence_output, _ = self.electra(input_ids, input_mask, segment_ids, False)
        return self.squad.beams(sequence_output, answer_mask(input_mask, segment_ids))
