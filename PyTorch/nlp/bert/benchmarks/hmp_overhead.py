"""What the bf16 op lists cost per op: our BERT's forward (and forward+backward) six ways.

    cd PyTorch/nlp/bert
    python benchmarks/hmp_overhead.py                          # 12 layers of hidden 32, CPU
    python benchmarks/hmp_overhead.py --lists none             # no casts: dispatch alone
    python benchmarks/hmp_overhead.py --device cuda --config base --seq_length 128 --batch_size 64

The default model is too small to compute anything (12 layers, hidden 32, 2 heads, batch
2 x 16 tokens), so a step costs what its ops cost to dispatch. Each variant runs
`modeling.BertForQuestionAnswering` in train mode (dropout 0.1) and `span_loss`:

    fp32        no context
    mode floor  a TorchFunctionMode that passes every call straight on: what PyTorch
                charges any Python mode, before the mode does anything
    reference   `ReferenceOpListPrecision`: the op-list rules applied by name at each call
    fast mode   `OpListPrecision`: the same casts from a table (what ``--hmp`` falls back
                to where autocast cannot carry the lists)
    lists       what ``--hmp`` uses in eager mode: `AutocastOpLists` (autocast, plus a cast
                kernel for each listed op autocast would leave to its inputs or compute
                otherwise) where it carries the lists, else the fast mode
    autocast    ``torch.autocast(device, torch.bfloat16)``: PyTorch's own op policy, in C++

``--lists bert`` takes ``bf16_config/ops_{bf16,fp32}_bert.txt``, ``pt`` the ``*_pt.txt``
pair, ``none`` empty lists (every variant but autocast then computes in fp32, so what
separates them is dispatch alone). Rounds rotate through the variants; a figure is the
median over ``--rounds`` of the mean over ``--steps`` steps, after ``--warmup`` untimed
steps; on a GPU the clock is read after `torch.cuda.synchronize()`. "us/call over fp32"
divides the time above fp32 by the torch-function calls a forward makes (counted once and
printed): with bf16 lists it also holds the casts and the bf16 kernels' own cost (on a CPU,
bf16 matmuls this small are slower than fp32 ones). Before timing, the script lists the
calls of one forward where "lists", and then plain ``torch.autocast``, compute in another
dtype than "reference" (the dtype of each call's first floating-point output): the first
list must be empty, the proof that `AutocastOpLists` keeps the lists on this device.

CPU runs use ``--threads`` intra-op threads (default 1): at these sizes more threads only
add wake-up waits, which dominate on a busy machine.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import statistics
import time
from pathlib import Path

import torch
from harness import benchmark_config
from torch.overrides import TorchFunctionMode

from bertfam.folder_modules import folder_module
from bertfam.precision import read_op_list
from bertfam.testing.hmp_reference import ReferenceOpListPrecision
from bertfam.torch.autocast_lists import op_list_precision
from bertfam.torch.hmp import OpListPrecision, op_name
from bertfam.torch.losses import span_loss

FOLDER = Path(__file__).resolve().parents[1]

modeling = folder_module(FOLDER, "modeling")

CONFIGS = ("dispatch", "minilm", "base", "large")  # of harness.SHAPES
LISTS = {
    "bert": ("ops_bf16_bert.txt", "ops_fp32_bert.txt"),
    "pt": ("ops_bf16_bert_pt.txt", "ops_fp32_bert_pt.txt"),
}


class PassThrough(TorchFunctionMode):
    """The cheapest Python mode there is."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **kwargs) if kwargs else func(*args)


class OutputDtypes(TorchFunctionMode):
    """(op name, dtype of its first floating-point output or None) for each call, in order.
    For every op a BERT step calls, that is the dtype the op computed in."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **kwargs) if kwargs else func(*args)
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        floating = [
            t.dtype for t in outputs if isinstance(t, torch.Tensor) and t.is_floating_point()
        ]
        self.calls.append((op_name(func), floating[0] if floating else None))
        return result


def differences(forward, reference, other) -> collections.Counter:
    """(op, dtype under `reference`, dtype under `other`) -> calls, for the calls of one
    forward where the two contexts disagree."""
    under_reference, under_other = OutputDtypes(), OutputDtypes()
    with reference, under_reference:
        forward()
    with other, under_other:
        forward()
    if [name for name, _ in under_reference.calls] != [name for name, _ in under_other.calls]:
        raise RuntimeError("the forward called different ops under the two contexts")
    return collections.Counter(
        (name, ours, theirs)
        for (name, ours), (_, theirs) in zip(under_reference.calls, under_other.calls)
        if ours != theirs
    )


def short(dtype) -> str:
    return str(dtype).replace("torch.", "")


def op_lists(name: str, device_type: str):
    """(fast mode, reference, autocast-carried) precisions for lists `name`."""
    if name == "none":
        bf16, fp32 = set(), set()
    else:
        bf16, fp32 = (read_op_list(FOLDER / "bf16_config" / file) for file in LISTS[name])
    carried, how = op_list_precision(bf16, fp32, device_type)  # as --hmp takes them
    print(f"lists on {device_type}: {how}")
    return OpListPrecision(bf16, fp32), ReferenceOpListPrecision(bf16, fp32), carried


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--config", choices=CONFIGS, default="dispatch")
    parser.add_argument("--lists", choices=("bert", "pt", "none"), default="bert")
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--seq_length", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    return args


def span_loss_of(args: argparse.Namespace, device: torch.device):
    """The model (train mode) and a function computing its span loss on one fixed batch."""
    config = benchmark_config(args.config, max_positions=max(512, args.seq_length))
    torch.manual_seed(0)
    model = modeling.BertForQuestionAnswering(config).to(device).train()
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch_size, args.seq_length)
    ids = torch.randint(1000, config.vocab_size, shape, generator=generator).to(device)
    starts, ends = (
        torch.randint(0, args.seq_length, shape[:1], generator=generator).to(device)
        for _ in range(2)
    )

    def loss():
        start, end = model(ids)
        return span_loss(start, end, starts, ends)

    return model, loss


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
        where = f"cpu, {torch.get_num_threads()} threads"
    else:
        where = torch.cuda.get_device_name(device)
    model, loss = span_loss_of(args, device)
    fast, reference, carried = op_lists(args.lists, device.type)
    variants = {
        "fp32": contextlib.nullcontext,
        "mode floor": PassThrough,
        "reference": lambda: reference,
        "fast mode": lambda: fast,
        "lists": lambda: carried,
        "autocast": lambda: torch.autocast(device.type, dtype=torch.bfloat16),
    }

    def forward(context):
        with context():
            return loss()

    def train_step(context):
        forward(context).backward()
        model.zero_grad(set_to_none=True)

    counter = OutputDtypes()
    with counter:
        loss()
    calls = len(counter.calls)
    losses = {}
    for name, context in variants.items():
        torch.manual_seed(1)  # the same dropout masks
        losses[name] = forward(context).item()
    print(
        f"config {args.config}, batch {args.batch_size}, seq {args.seq_length}, lists "
        f"{args.lists}, {where}, torch {torch.__version__}; {calls} torch-function calls a "
        "forward; losses " + ", ".join(f"{name} {value:.4f}" for name, value in losses.items())
    )
    plain = torch.autocast(device.type, dtype=torch.bfloat16)
    for label, other in (("lists", carried), ("plain autocast", plain)):
        found = differences(loss, reference, other)
        print(f"calls a forward where {label} computes in another dtype than the reference: "
              f"{sum(found.values())}")  # fmt: skip
        for (name, ours, theirs), count in sorted(found.items(), key=str):  # dtypes: no <
            why = "listed" if fast.dtype_for(name) else "on no list: follows what it is given"
            print(f"{name:>16}: lists {short(ours)}, {label} {short(theirs)}, {count} ({why})")
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    for label, step in (("forward", forward), ("forward+backward", train_step)):
        names = list(variants)
        for name in names:
            for _ in range(args.warmup):
                step(variants[name])
        times = {name: [] for name in names}
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                sync()
                begin = time.perf_counter()
                for _ in range(args.steps):
                    step(variants[name])
                sync()
                times[name].append((time.perf_counter() - begin) / args.steps * 1e6)
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"\n{label:>16}: us/step  fp32/it  us/call over fp32")
        for name, value in median.items():
            over = (value - median["fp32"]) / calls
            print(f"{name:>16}: {value:8.0f}  {median['fp32'] / value:7.2f}  {over:8.2f}")
        saved = (median["reference"] - median["fast mode"]) / calls
        floor = (median["mode floor"] - median["fp32"]) / calls
        print(
            f"fast mode saves {saved:.2f} us a call over reference; any Python mode costs "
            f"{floor:.2f}; lists run at {median['fp32'] / median['lists']:.2f}x fp32"
        )


if __name__ == "__main__":
    main()
