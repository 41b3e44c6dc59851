"""The BERT network in TensorFlow 2, on tf.Module and tf.Variable only.

Every variable is named exactly as in Google's checkpoints (``bert/embeddings/
word_embeddings``, ``bert/encoder/layer_3/attention/self/query/kernel``,
``cls/squad/output_weights``, ``cls/predictions/output_bias``, the classifier's
top-level ``output_weights``), so a Google
checkpoint loads one name to one variable. The encoder is the shared
`bertfam.tf.encoder.TransformerEncoder` under the ``bert`` scope with Google's names (its
defaults); this file adds the task heads, as google-research/bert `modeling.py` and
HuggingFace's `modeling_bert.py` put them on top of the encoder.

The arithmetic follows Google's: attention scores scaled by 1/sqrt(head size) with
-10000 added at masked positions.
"""

from __future__ import annotations

import tensorflow as tf

from bertfam.bert_config import BertConfig
from bertfam.tf.bf16 import FP32, Bf16Policy
from bertfam.tf.encoder import TransformerEncoder
from bertfam.tf.layers import ClassifierHead, SquadHead
from bertfam.tf.pretraining_heads import MaskedLmHead, NextSentenceHead

SCOPE = "bert"


def BertModel(
    config: BertConfig, with_pooler: bool = True, precision: Bf16Policy = FP32
) -> TransformerEncoder:
    """``bert/``: embeddings, the encoder stack and (unless `with_pooler` is False) the
    pooler; called with (input_ids, input_mask, segment_ids, training) it returns
    (sequence_output, pooled_output or None).

    The span head reads every token and never the pooler, so the question-answering
    model has none (HuggingFace's has none either; Google's builds one and leaves it
    untrained). `precision` decides each op's dtype from a bf16 JSON (fp32 by default).
    """
    return TransformerEncoder(config, SCOPE, precision=precision, with_pooler=with_pooler)


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
        self.classifier = ClassifierHead(config, num_labels, dropout_before_logits, precision)

    def __call__(self, input_ids, input_mask, segment_ids, training: bool = False) -> tf.Tensor:
        """Logits [batch, num_labels], in float32."""
        _, pooled = self.bert(input_ids, input_mask, segment_ids, training)
        return self.classifier(pooled, training)


class BertForPreTraining(tf.Module):
    """BERT with Google's pre-training heads: masked LM (``cls/predictions``, tied to the
    word embeddings) and next sentence prediction (``cls/seq_relationship``)."""

    def __init__(self, config: BertConfig, precision: Bf16Policy = FP32):
        super().__init__(name="bert_pretraining")
        self.bert = BertModel(config, precision=precision)
        self.predictions = MaskedLmHead(config, config.hidden_size, precision)
        self.seq_relationship = NextSentenceHead(config, precision)

    def __call__(
        self,
        input_ids,
        input_mask,
        segment_ids,
        masked_lm_positions,
        training: bool = False,
        positions=None,
        next_sentence_positions=None,
    ):
        """(masked-LM logits [batch, predictions, vocab], next-sentence logits [batch, 2]).

        Packed rows (Habana's layout) also give `positions` (restarting in each packed
        sequence) and `next_sentence_positions` (each sequence's [CLS]); `input_mask`
        then numbers the sequences, and the next-sentence logits are [batch, 3, 2].
        """
        sequence_output, pooled = self.bert(
            input_ids, input_mask, segment_ids, training, positions, next_sentence_positions
        )
        word_embeddings = self.bert.embeddings.word_embeddings
        mlm = self.predictions(sequence_output, masked_lm_positions, word_embeddings)
        return mlm, self.seq_relationship(pooled)
