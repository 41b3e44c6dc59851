"""What the benchmarks here share: the model shapes they run, and how they time steps.

`SHAPES` and `benchmark_config` give the BERT configs by name. `median_rates` times
training steps: after `warmup` untimed calls of each variant (compiles included),
`rounds` rounds each time `steps` calls of every variant, starting the rotation one
variant later each round so no variant always runs first (or right after another's
allocations); each figure is the median over rounds of sequences per second.
`profile_steps` says where a step's time goes on a GPU: the host's wall time against the
time the device spent in kernels, and the kernels that took it.
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


def use_cuda_graphs(wanted: bool) -> None:
    """Have Inductor replay compiled steps as CUDA graphs (``mode="reduce-overhead"``):
    one launch per graph instead of one per kernel."""
    if wanted:
        import torch._inductor.config

        torch._inductor.config.triton.cudagraphs = True


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


def profile_steps(name: str, step: Callable[[], float], steps: int, top: int = 12) -> None:
    """Print, for `steps` calls of `step` on CUDA: wall ms, device-busy ms and kernels per
    step (busy well under wall: the host, not the GPU, sets the pace), then the top kernels."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - start) / steps
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy = sum(e.time_range.elapsed_us() for e in kernels) / 1e3 / steps
    print(
        f"profile {name}: {1e3 * wall:.2f} ms wall, {busy:.2f} ms in kernels "
        f"({100 * busy / (1e3 * wall):.0f}% busy), {len(kernels) / steps:.0f} kernels per step"
    )
    print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=top))
