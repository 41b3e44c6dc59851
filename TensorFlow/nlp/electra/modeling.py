"""The ELECTRA networks in TensorFlow 2, on tf.Module and tf.Variable only.

Every variable has Google's ELECTRA name (upstream-surface.md §8.5), and HuggingFace
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
  ``qa_outputs``).
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from bertfam.electra_config import ElectraConfig
from bertfam.tf.bf16 import FP32, Bf16Policy, to_float32
from bertfam.tf.encoder import Embeddings, EncoderNames, TransformerEncoder
from bertfam.tf.layers import Activation, Dense, SquadHead, truncated_normal
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


class ElectraForQuestionAnswering(tf.Module):
    """The discriminator's encoder with the span head (HuggingFace's ``qa_outputs``)."""

    def __init__(self, config: ElectraConfig, precision: Bf16Policy = FP32):
        super().__init__(name="electra_squad")
        self.electra = ElectraModel(config, DISCRIMINATOR, precision)
        self.squad = SquadHead(config, precision)

    def __call__(self, input_ids, input_mask, segment_ids, training: bool = False):
        """(start_logits, end_logits), each [batch, seq], in float32."""
        sequence_output, _ = self.electra(input_ids, input_mask, segment_ids, training)
        return self.squad(sequence_output)
