"""The BERT network in PyTorch, shared by fine-tuning and pre-training.

Parameter names are HuggingFace's state-dict keys (``bert.embeddings.word_embeddings.weight``,
``bert.encoder.layer.3.attention.self.query.weight``, ``qa_outputs.weight``,
``classifier.weight``, ``cls.predictions.transform.dense.weight``), so any HuggingFace
BERT folder loads one key to one parameter and what we save loads back into HuggingFace.
One class per checkpoint scope, each built from the config, as `modeling_bert.py` is;
`LayerNorm` keeps its TensorFlow-era capital so the names stay the checkpoint's.

The arithmetic is BERT's: exact (erf) GELU by default, layer norm with the config's
epsilon, attention through `torch.nn.functional.scaled_dot_product_attention` with an
additive mask (the fused kernel where the device has one; the same numbers otherwise).
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from bertfam.bert_config import BertConfig

ACTIVATIONS = {
    "gelu": nn.GELU(),
    "gelu_new": nn.GELU(approximate="tanh"),
    "gelu_fast": nn.GELU(approximate="tanh"),
    "gelu_pytorch_tanh": nn.GELU(approximate="tanh"),
    "relu": nn.ReLU(),
    "tanh": nn.Tanh(),
    "swish": nn.SiLU(),
    "silu": nn.SiLU(),
}


class BertEmbeddings(nn.Module):
    """``bert.embeddings``: word, position and token-type tables, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        embedded = (
            self.word_embeddings(input_ids)
            + self.token_type_embeddings(token_type_ids)
            + self.position_embeddings(positions)[None]
        )
        return self.dropout(self.LayerNorm(embedded))


class BertSelfAttention(nn.Module):
    """``attention.self``: query, key and value projections and scaled dot-product attention."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_prob = config.attention_probs_dropout_prob

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, seq, hidden] -> [batch, heads, seq, head_size]."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        context = F.scaled_dot_product_attention(
            self._heads(self.query(hidden)),
            self._heads(self.key(hidden)),
            self._heads(self.value(hidden)),
            attn_mask=additive_mask.to(hidden.dtype),
            dropout_p=self.dropout_prob if self.training else 0.0,
        )
        batch, _, length, _ = context.shape
        return context.transpose(1, 2).reshape(batch, length, self.num_heads * self.head_size)


class BertSelfOutput(nn.Module):
    """``attention.output`` (and, with the intermediate size in, ``output``): projection,
    dropout, residual and LayerNorm."""

    def __init__(self, config: BertConfig, in_size: int):
        super().__init__()
        self.dense = nn.Linear(in_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config, config.hidden_size)

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(hidden, additive_mask), hidden)


class BertIntermediate(nn.Module):
    """``intermediate``: the feed-forward expansion and its activation."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACTIVATIONS[config.hidden_act]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden))


class BertLayer(nn.Module):
    """``bert.encoder.layer.N``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertSelfOutput(config, config.intermediate_size)

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        attended = self.attention(hidden, additive_mask)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        # NVIDIA's --checkpoint_activations: keep only each layer's input for the backward
        # pass and recompute the rest, trading a second forward for memory. The recompute
        # runs inside backward, so it enters `layer_context` (the run's precision) itself.
        self.checkpoint_activations = False
        self.layer_context: Callable[[], ContextManager] = contextlib.nullcontext

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            if self.checkpoint_activations and self.training:
                hidden = checkpoint(
                    self._in_context, layer, hidden, additive_mask, use_reentrant=False
                )
            else:
                hidden = layer(hidden, additive_mask)
        return hidden

    def _in_context(self, layer: nn.Module, hidden, additive_mask) -> torch.Tensor:
        with self.layer_context():
            return layer(hidden, additive_mask)


class BertPooler(nn.Module):
    """``bert.pooler``: tanh of a projection of the first ([CLS]) token."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(sequence_output[:, 0]))


class BertModel(nn.Module):
    """``bert``: embeddings, encoder and (unless `with_pooler` is False) the pooler."""

    def __init__(self, config: BertConfig, with_pooler: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if with_pooler else None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(sequence_output [batch, seq, hidden], pooled_output [batch, hidden] or None)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids)
        # [batch, 1, 1, seq]: 0 where attended, the dtype's minimum where masked. Filled,
        # not multiplied: 0 * min is 0 only while min stays finite, and float32's minimum
        # rounds to -inf in bf16 (0 * -inf = nan).
        padding = attention_mask[:, None, None, :] == 0
        additive_mask = torch.zeros(padding.shape, dtype=hidden.dtype, device=hidden.device)
        additive_mask = additive_mask.masked_fill(padding, torch.finfo(hidden.dtype).min)
        sequence_output = self.encoder(hidden, additive_mask)
        pooled = self.pooler(sequence_output) if self.pooler is not None else None
        return sequence_output, pooled


class BertPreTrainedModel(nn.Module):
    """BERT's initialisation: normal(0, initializer_range) weights, zero biases, unit norms."""

    def init_weights(self, config: BertConfig) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=config.initializer_range)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


class BertForQuestionAnswering(BertPreTrainedModel):
    """BERT with a span head: ``qa_outputs`` [2, hidden] (start and end logits)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, with_pooler=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.init_weights(config)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        """(start_logits, end_logits), each [batch, seq]."""
        sequence_output, _ = self.bert(input_ids, attention_mask, token_type_ids)
        start, end = self.qa_outputs(sequence_output).split(1, dim=-1)
        return start.squeeze(-1), end.squeeze(-1)


class BertForSequenceClassification(BertPreTrainedModel):
    """BERT with a classifier over the pooled output: ``classifier`` [num_labels, hidden]."""

    def __init__(self, config: BertConfig, num_labels: int):
        super().__init__()
        self.config = config
        self.num_labels = num_labels
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        self.init_weights(config)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """Logits [batch, num_labels]."""
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(pooled))


class BertPredictionHeadTransform(nn.Module):
    """``cls.predictions.transform``: dense, activation and LayerNorm before the vocabulary."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACTIVATIONS[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.activation(self.dense(hidden)))


class BertLMPredictionHead(nn.Module):
    """``cls.predictions``: the transform, then the word embeddings (tied) and a bias."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        # One bias under two names, registered as HuggingFace registers it: the state
        # dict holds cls.predictions.bias and cls.predictions.decoder.bias.
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.decoder.weight = word_embeddings.weight
        self.decoder.bias = self.bias

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden))


class BertPreTrainingHeads(nn.Module):
    """``cls``: the masked-LM head and ``seq_relationship``, the next-sentence classifier."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


class BertForPreTraining(BertPreTrainedModel):
    """BERT with both pre-training heads, as HuggingFace's (and NVIDIA's) BertForPreTraining."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config, self.bert.embeddings.word_embeddings)
        self.init_weights(config)

    def forward(
        self, input_ids, attention_mask=None, token_type_ids=None, masked_positions=None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(masked-LM logits, next-sentence logits [batch, 2]).

        The masked-LM logits are [batch, seq, vocab], or with `masked_positions`
        [batch, predictions] only [batch, predictions, vocab]: the vocabulary projection,
        the costliest matmul of the step, then covers the 15% of tokens the loss reads.
        """
        sequence_output, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        if masked_positions is not None:
            index = masked_positions[..., None].expand(-1, -1, sequence_output.shape[-1])
            sequence_output = sequence_output.gather(1, index)
        return self.cls.predictions(sequence_output), self.cls.seq_relationship(pooled)
