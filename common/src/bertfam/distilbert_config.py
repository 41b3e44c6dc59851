"""The DistilBERT config: Habana's ``distilbert_config.json`` or a HuggingFace ``config.json``.

Habana's download helper writes DistilBERT's architecture in BERT's schema
(``hidden_size``, ``num_hidden_layers``...), and ``--distilbert_config_file`` reads it
so. HuggingFace names the same things its own way (``dim``, ``n_layers``...);
`DistilBertConfig.from_dict` takes either, so a HuggingFace folder's config.json works as
``--distilbert_config_file`` too.

Two keys are DistilBERT's own: ``sinusoidal_pos_embds`` (fixed sine/cosine position
embeddings instead of learned ones) and ``qa_dropout`` (dropout before the SQuAD head,
as HuggingFace's DistilBertForQuestionAnswering has). A file without them (one Habana's
helper wrote) gets learned positions and no head dropout, which is what upstream's TF
network does. ``type_vocab_size`` is read and ignored: DistilBERT has no token types.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bertfam.bert_config import BertConfig, BertConfigError

# HuggingFace DistilBertConfig key -> BERT-schema key; the others are spelled alike.
HF_TO_BERT_KEYS = {
    "dim": "hidden_size",
    "n_layers": "num_hidden_layers",
    "n_heads": "num_attention_heads",
    "hidden_dim": "intermediate_size",
    "activation": "hidden_act",
    "dropout": "hidden_dropout_prob",
    "attention_dropout": "attention_probs_dropout_prob",
}


@dataclass(frozen=True)
class DistilBertConfig(BertConfig):
    num_hidden_layers: int = 6
    sinusoidal_pos_embds: bool = False
    qa_dropout: float = 0.0

    @classmethod
    def from_dict(cls, values: dict, source: str = "<memory>") -> DistilBertConfig:
        if values.get("model_type") == "distilbert" or "dim" in values:
            values = {HF_TO_BERT_KEYS.get(key, key): value for key, value in values.items()}
        return super().from_dict(values, source)

    def without_dropout(self) -> DistilBertConfig:
        return dataclasses.replace(super().without_dropout(), qa_dropout=0.0)

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.sinusoidal_pos_embds, bool):
            raise BertConfigError(
                f"config {self.source}: 'sinusoidal_pos_embds' must be true or false, "
                f"not {self.sinusoidal_pos_embds!r}"
            )
        if not 0.0 <= self.qa_dropout < 1.0:
            raise BertConfigError(
                f"config {self.source}: 'qa_dropout' must be in [0, 1), not {self.qa_dropout!r}"
            )
