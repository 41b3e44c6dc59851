"""The ELECTRA config: a HuggingFace ``config.json`` (``model_type`` "electra").

ELECTRA is BERT with the embedding tables ``embedding_size`` wide, projected to the
hidden size when the two differ (ELECTRA-small: 128 to 256). Pre-training trains two
such encoders: the discriminator, and a generator `generator_hidden_size` times as wide
(rounded up to a multiple of 64, with 64-wide heads and a 4x feed-forward block), which
uses the discriminator's embedding tables.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from bertfam.bert_config import BertConfig, BertConfigError

HEAD_SIZE = 64  # every ELECTRA: heads of 64, so a generator's heads follow its width

# The discriminators of NVIDIA's/Habana's --model_size, HuggingFace's released shapes.
SIZES = {
    "small": dict(embedding_size=128, hidden_size=256, num_hidden_layers=12,
                  num_attention_heads=4, intermediate_size=1024),
    "base": dict(embedding_size=768, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072),
    "large": dict(embedding_size=1024, hidden_size=1024, num_hidden_layers=24,
                  num_attention_heads=16, intermediate_size=4096),
}  # fmt: skip


@dataclass(frozen=True)
class ElectraConfig(BertConfig):
    vocab_size: int = 30522
    embedding_size: int = 128
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    type_vocab_size: int = 2
    POSITIVE_INTEGERS = BertConfig.POSITIVE_INTEGERS + ("embedding_size",)

    def generator(self, fraction: float) -> ElectraConfig:
        """The generator's config for ``--generator_hidden_size=fraction``: the hidden
        size times `fraction`, rounded up to a multiple of 64 (base at 1/3: 256 wide, 4
        heads, 1,024 feed-forward), the same depth, embeddings and vocabulary."""
        if not 0.0 < fraction <= 1.0:
            raise BertConfigError(
                f"--generator_hidden_size={fraction}: give a fraction of the discriminator "
                "width in (0, 1]"
            )
        hidden = HEAD_SIZE * math.ceil(self.hidden_size * fraction / HEAD_SIZE)
        return dataclasses.replace(
            self,
            hidden_size=hidden,
            num_attention_heads=hidden // HEAD_SIZE,
            intermediate_size=4 * hidden,
        )
