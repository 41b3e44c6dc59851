"""The ALBERT config: Google's ``albert_config.json`` or a HuggingFace ``config.json``.

ALBERT is BERT with two changes the config spells out: the embedding tables are
``embedding_size`` wide (128 in every released model), projected to ``hidden_size`` before
the encoder, and the encoder's layers share their weights: ``num_hidden_groups`` groups
of ``inner_group_num`` layers, applied ``num_hidden_layers`` times in all. Every released
model (v1 and v2, base to xxlarge) has one group of one layer, and that is what this
release builds; other values are refused by name rather than built differently.

Google's ``"hidden_act": "gelu"`` is the tanh approximation (google-research/albert's
`gelu`), which HuggingFace calls ``gelu_new`` and writes into its ALBERT configs. A
Google file (no ``model_type``) therefore reads ``gelu`` as ``gelu_new``, so the same
weights compute the same function from either file.
"""

from __future__ import annotations

from dataclasses import dataclass

from bertfam.bert_config import BertConfig, BertConfigError

# Google's keys for ALBERT variants no released model uses, with the value that means
# "not used"; a file asking for another value asks for a network this release lacks.
_UNUSED_VARIANTS = {"net_structure_type": 0, "gap_size": 0, "num_memory_blocks": 0}


@dataclass(frozen=True)
class AlbertConfig(BertConfig):
    vocab_size: int = 30000
    embedding_size: int = 128
    num_hidden_groups: int = 1
    inner_group_num: int = 1
    type_vocab_size: int = 2
    POSITIVE_INTEGERS = BertConfig.POSITIVE_INTEGERS + ("embedding_size",)
    hidden_act: str = "gelu_new"

    @classmethod
    def from_dict(cls, values: dict, source: str = "<memory>") -> AlbertConfig:
        values = dict(values)
        if values.get("model_type") != "albert" and values.get("hidden_act") == "gelu":
            values["hidden_act"] = "gelu_new"  # Google's gelu is the tanh approximation
        for key, unused in _UNUSED_VARIANTS.items():
            if values.get(key, unused) not in (unused, None):
                raise BertConfigError(
                    f"config {source}: {key} {values[key]!r} is an ALBERT variant this "
                    f"release does not build (only {unused})"
                )
        return super().from_dict(values, source)

    def validate(self) -> None:
        super().validate()
        if (self.num_hidden_groups, self.inner_group_num) != (1, 1):
            raise BertConfigError(
                f"config {self.source}: num_hidden_groups {self.num_hidden_groups} and "
                f"inner_group_num {self.inner_group_num}: this release builds ALBERT's one "
                "shared layer (1 and 1, as every released ALBERT)"
            )
