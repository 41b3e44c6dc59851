"""What the benchmarks here share: the model shapes they run, and how they time steps.

`SHAPES` and `benchmark_config` give the BERT configs by name. `median_rates` times
training steps: after `warmup` untimed calls of each variant (compiles included),
`rounds` rounds each time `steps` calls of every variant, starting the rotation one
variant later each round so no variant always runs first (or right after another's
allocations); each figure is the median over rounds of sequences per second.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Callable, Dict

from bertfam.bert_config import BertConfig

SHAPES = {  # hidden size, layers, heads, intermediate size
    "tiny": (64, 2, 4, 128),
    "dispatch": (32, 12, 2, 128),  # per-op overhead dominates: hmp_overhead.py's
    "minilm": (384, 6, 12, 1536),
    "base": (768, 12, 12, 3072),
    "large": (1024, 24, 16, 4096),
}


def benchmark_config(shape: str, vocab_size: int = 30522, max_positions: int = 512) -> BertConfig:
    """BERT's config at one of `SHAPES` (dropout 0.1, GELU, as the released models)."""
    hidden, layers, heads, intermediate = SHAPES[shape]
    return BertConfig.from_dict(
        dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
             intermediate_size=intermediate, vocab_size=vocab_size,
             max_position_embeddings=max_positions, type_vocab_size=2)
    )  # fmt: skip


def median_rates(
    variants: Dict[str, Callable[[], float]],
    sequences_per_step: int,
    steps: int,
    rounds: int,
    warmup: int,
    synchronize: Callable[[], None] = lambda: None,
) -> Dict[str, float]:
    """{variant: median sequences/s}; `synchronize` waits for queued device work."""
    for name, step in variants.items():
        for _ in range(warmup):
            step()
        print(f"warmed up {name}", file=sys.stderr, flush=True)
    rates = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                variants[name]()
            synchronize()
            rates[name].append(sequences_per_step * steps / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}
