"""How the benchmarks here time training steps: warm up, then rotate through variants.

After `warmup` untimed calls of each variant (compiles included), `rounds` rounds each
time `steps` calls of every variant, starting the rotation one variant later each
round so no variant always runs first (or right after another's allocations); each
figure is the median over rounds of sequences per second.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Callable, Dict


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
