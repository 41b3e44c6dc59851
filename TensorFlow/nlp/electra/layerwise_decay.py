"""Layer-wise learning-rate decay, as ELECTRA fine-tunes (Clark et al., 2020; NVIDIA's
``optimization.py``): the task head trains at the full rate, each layer below it at
`decay` times the rate of the layer above, the embeddings lowest.

Depth counts from the embeddings: 0 for ``electra/embeddings*`` (the tables, their
LayerNorm and the projection), k + 1 for ``electra/encoder/layer_<k>/``, L + 2 for the
SQuAD heads; a variable's multiplier is ``decay ** (L + 2 - depth)``.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable

HEADS = ("cls/squad/", "start_logits/", "end_logits/", "answer_class/")
_LAYER = re.compile(r"^electra/encoder/layer_(\d+)/")


def depth(name: str, num_layers: int) -> int:
    if name.startswith("electra/embeddings"):
        return 0
    layer = _LAYER.match(name)
    if layer:
        return int(layer.group(1)) + 1
    if name.startswith(HEADS):
        return num_layers + 2
    # Upstream raises too: a variable of unknown depth would train at an unknown rate.
    raise ValueError(f"layer-wise decay: no depth for variable {name}")


def rate_multipliers(names: Iterable[str], num_layers: int, decay: float) -> Dict[str, float]:
    """{name: multiplier} for every variable; empty (all at the full rate) when decay <= 0."""
    if decay <= 0:
        return {}
    return {name: decay ** (num_layers + 2 - depth(name, num_layers)) for name in names}
