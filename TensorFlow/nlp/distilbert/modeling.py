"""The DistilBERT network in TensorFlow 2, on tf.Module and tf.Variable only.

DistilBERT is BERT with six layers, no token types and no pooler, as HuggingFace's
`modeling_distilbert.py` builds it: the shared `bertfam.tf.encoder.TransformerEncoder`
under the ``distilbert`` scope, with the names below. They are the object paths of
HuggingFace's TF DistilBERT, which download/download_pretrained_model.py writes and
Habana's loader matches (``distilbert/embeddings/weight``,
``distilbert/transformer/layer/3/attention/q_lin/kernel``). The SQuAD head is Google's
(``cls/squad/output_weights``), as in BERT; HuggingFace's ``qa_outputs`` loads into it.

Ops carry upstream's scope names too (``distilbert/transformer/layer/0/attention/Mul``
and ``.../attention/add``), which is what bf16_config/distilbert.json's exceptions match.
"""

from __future__ import annotations

import tensorflow as tf

from bertfam.distilbert_config import DistilBertConfig
from bertfam.tf import layers
from bertfam.tf.bf16 import FP32, Bf16Policy
from bertfam.tf.encoder import EncoderNames, TransformerEncoder

SCOPE = "distilbert"

# HuggingFace TF names the word table "weight" and the position table "embeddings" inside
# the embeddings scope; out_lin has no dropout after it.
NAMES = EncoderNames(
    word_embeddings="embeddings/weight",
    position_embeddings="embeddings/embeddings",
    token_type_embeddings=None,
    embeddings="embeddings",
    embeddings_layer_norm="embeddings/LayerNorm",
    encoder="transformer",
    layer="transformer/layer/{index}",
    attention="attention",
    projections=("q_lin", "k_lin", "v_lin"),
    attention_output="attention/out_lin",
    attention_layer_norm="sa_layer_norm",
    residual_attention="sa_add",
    intermediate="ffn/lin1",
    output="ffn/lin2",
    output_layer_norm="output_layer_norm",
    residual_output="output_add",
    dropout_after_attention=False,
)


def DistilBertModel(config: DistilBertConfig, precision: Bf16Policy = FP32) -> TransformerEncoder:
    """``distilbert/``: embeddings and the transformer stack. Called with (input_ids,
    input_mask) it returns (last hidden states [batch, seq, hidden], None)."""
    return TransformerEncoder(config, SCOPE, NAMES, precision, with_pooler=False)


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
        hidden, _ = self.distilbert(input_ids, input_mask, training=training)
        return self.squad(layers.dropout(hidden, self.qa_dropout, training, self.precision))
