"""The ALBERT network in TensorFlow 2, on tf.Module and tf.Variable only.

Every variable is named as in Google's ALBERT checkpoints (``model.ckpt-best`` in
``albert_{base,large}_v1``), so they load one name to one
variable: the embedding tables ``embedding_size`` wide under ``bert/embeddings``, their
projection ``bert/encoder/embedding_hidden_mapping_in``, and one transformer layer under
``bert/encoder/transformer/group_0/inner_group_0`` that every layer applies in turn. The
encoder is the shared `bertfam.tf.encoder.TransformerEncoder` with those names and
``share_layers``; this file adds the heads, as google-research/albert puts them: SQuAD v1
(``cls/squad``), the classifier (top-level ``output_weights``), and pre-training's masked
LM (``cls/predictions``, back to the embedding width and tied to the word table) and
sentence order (``cls/seq_relationship``, the next-sentence head's names).
"""

from __future__ import annotations

import tensorflow as tf

from bertfam.albert_config import AlbertConfig
from bertfam.tf.bf16 import FP32, Bf16Policy
from bertfam.tf.encoder import EncoderNames, TransformerEncoder
from bertfam.tf.layers import ClassifierHead, SquadHead
from bertfam.tf.pretraining_heads import MaskedLmHead, NextSentenceHead

SCOPE = "bert"

# Google's names inside the shared layer: attention_1 and ffn_1 are the scopes of its
# first (only) attention and feed-forward block, LayerNorm and LayerNorm_1 the default
# names of the two layer norms that follow them.
NAMES = EncoderNames(
    layer="encoder/transformer/group_0/inner_group_0",
    attention="attention_1/self",
    attention_output="attention_1/output/dense",
    attention_layer_norm="LayerNorm",
    residual_attention="add",
    intermediate="ffn_1/intermediate/dense",
    output="ffn_1/intermediate/output/dense",
    output_layer_norm="LayerNorm_1",
    residual_output="add_1",
)


def AlbertModel(
    config: AlbertConfig, with_pooler: bool = True, precision: Bf16Policy = FP32
) -> TransformerEncoder:
    """``bert/``: embeddings, their projection, the shared layer applied
    ``num_hidden_layers`` times and (unless `with_pooler` is False) the pooler; called with
    (input_ids, input_mask, segment_ids, training) it returns (sequence_output,
    pooled_output or None)."""
    return TransformerEncoder(
        config,
        SCOPE,
        NAMES,
        precision,
        with_pooler=with_pooler,
        embedding_size=config.embedding_size,
        share_layers=True,
    )


class AlbertForQuestionAnswering(tf.Module):
    """ALBERT with run_squad_v1.py's span head: ``cls/squad/output_weights`` [2, H], bias."""

    def __init__(self, config: AlbertConfig, precision: Bf16Policy = FP32):
        super().__init__(name="albert_squad")
        self.albert = AlbertModel(config, with_pooler=False, precision=precision)
        self.squad = SquadHead(config, precision)

    def __call__(self, input_ids, input_mask, segment_ids, training: bool = False):
        """(start_logits, end_logits), each [batch, seq], in float32."""
        sequence_output, _ = self.albert(input_ids, input_mask, segment_ids, training)
        return self.squad(sequence_output)


class AlbertForSequenceClassification(tf.Module):
    """ALBERT with run_classifier.py's head: top-level ``output_weights`` [labels, H], bias."""

    def __init__(
        self,
        config: AlbertConfig,
        num_labels: int,
        dropout_before_logits: float = 0.1,
        precision: Bf16Policy = FP32,
    ):
        super().__init__(name="albert_classifier")
        self.albert = AlbertModel(config, precision=precision)
        self.classifier = ClassifierHead(config, num_labels, dropout_before_logits, precision)

    def __call__(self, input_ids, input_mask, segment_ids, training: bool = False) -> tf.Tensor:
        """Logits [batch, num_labels], in float32."""
        _, pooled = self.albert(input_ids, input_mask, segment_ids, training)
        return self.classifier(pooled, training)


class AlbertForPreTraining(tf.Module):
    """ALBERT with its pre-training heads: masked LM (``cls/predictions``: hidden to the
    embedding width, then the tied word table) and sentence-order prediction
    (``cls/seq_relationship``; label 1 when the two segments were swapped)."""

    def __init__(self, config: AlbertConfig, precision: Bf16Policy = FP32):
        super().__init__(name="albert_pretraining")
        self.albert = AlbertModel(config, precision=precision)
        self.predictions = MaskedLmHead(config, config.embedding_size, precision)
        self.seq_relationship = NextSentenceHead(config, precision)

    def __call__(self, input_ids, input_mask, segment_ids, masked_lm_positions, training=False):
        """(masked-LM logits [batch, predictions, vocab], sentence-order logits [batch, 2])."""
        sequence_output, pooled = self.albert(input_ids, input_mask, segment_ids, training)
        word_embeddings = self.albert.embeddings.word_embeddings
        mlm = self.predictions(sequence_output, masked_lm_positions, word_embeddings)
        return mlm, self.seq_relationship(pooled)
