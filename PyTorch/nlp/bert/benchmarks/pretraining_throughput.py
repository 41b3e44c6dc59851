"""Pre-training step throughput: our PyTorch BERT vs HuggingFace's BertForPreTraining.

    cd PyTorch/nlp/bert
    python benchmarks/pretraining_throughput.py --config base --seq_length 128 --batch_size 8
    python benchmarks/pretraining_throughput.py --device cuda --precision bf16 \\
        --config large --seq_length 128 --batch_size 64         # on a GPU, with MFU
    python benchmarks/pretraining_throughput.py --config tiny --steps 2 --rounds 1  # smoke

Needs the test requirements (``pip install -r tests/requirements.txt``).

Ours is what ``run_pretraining.py`` executes per update (`Pretrainer.update`): forward
with the masked-LM head on the masked positions only, the summed losses over the update's
counts, backward, NVLAMB (global-norm clipping inside) at the PolyWarmUp rate; bf16 is
the op lists (``--hmp``, ``bf16_config/ops_*_bert_pt.txt``: carried by autocast in eager
mode, the op-list mode compiled), graph is ``torch.compile`` as ``--use_jit_trace``
compiles. HuggingFace's is ``transformers.BertForPreTraining``
with ``labels`` over every position and ``next_sentence_label``, backward and the same
NVLAMB and schedule (so the figures compare the model and loss, not the optimizer); bf16
is ``torch.autocast(bfloat16)``, graph the model under ``torch.compile``. Same config,
dropout 0.1, one fixed batch (P = 15% of the positions masked), ``loss.item()`` every
update. After ``--warmup`` untimed updates (compiles included), rounds of ``--steps``
timed updates rotate through the variants; each figure is the median over rounds.
``--accumulation N`` makes each update N micro-batches of ``--batch_size`` (phase 1 of the
demo: 64 x 128 per card, 128 micro-batches per update), so the optimizer's share is what
a real run pays. ``--profile`` prints where one update's time goes (GPU only),
``--cudagraphs`` replays the compiled steps as CUDA graphs.

MFU (on CUDA): model FLOPs per sequence, 6 x parameters x tokens plus the attention
matmuls (12 x layers x length^2 x hidden, forward and backward), times sequences per
second, over ``--peak_tflops`` (default 989: H100/H200 dense bf16).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from harness import (
    benchmark_config,
    median_rates,
    profile_steps,
    use_cuda_graphs,
)

from bertfam.bert_config import BertConfig
from bertfam.folder_modules import folder_module
from bertfam.launch import detect_launch_env
from bertfam.precision import read_op_list
from bertfam.torch.autocast_lists import op_list_precision
from bertfam.torch.lamb import PolyWarmUpScheduler, make_lamb
from bertfam.torch.losses import pretraining_losses
from bertfam.torch.pretraining import Pretrainer
from bertfam.torch.pretraining_args import PretrainingConfig
from bertfam.torch.start import Run

FOLDER = Path(__file__).resolve().parents[1]
OP_LISTS = FOLDER / "bf16_config"

modeling = folder_module(FOLDER, "modeling")

CONFIGS = ("tiny", "base", "large")  # of harness.SHAPES


def arrays(config: BertConfig, size: int, length: int, predictions: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30522, (size, length), generator=generator)
    positions = torch.stack(
        [torch.randperm(length - 1, generator=generator)[:predictions] + 1 for _ in range(size)]
    )
    return {
        "input_ids": ids,
        "token_type_ids": torch.zeros_like(ids),
        "attention_mask": torch.ones_like(ids),
        "masked_positions": positions,
        "masked_labels": ids.gather(1, positions),
        "next_sentence_labels": torch.randint(0, 2, (size,), generator=generator),
    }


def losses(model, batch):
    mlm, nsp = model(
        batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
        masked_positions=batch["masked_positions"],
    )  # fmt: skip
    return pretraining_losses(mlm, batch["masked_labels"], nsp, batch["next_sentence_labels"])


def ours(
    config: BertConfig, data: dict, device: torch.device, bf16: bool, graph: bool,
    accumulation: int,
):  # fmt: skip
    settings = PretrainingConfig(
        input_dir="-", config_file="-", output_dir="/tmp/unused",
        mode="graph" if graph else "eager", hmp=bf16, max_steps=10_000,
        learning_rate=1e-4, warmup_proportion=0.01,
    )  # fmt: skip
    kind = "gpu" if device.type == "cuda" else "cpu"
    run = Run(settings, device, kind, detect_launch_env({}))
    if bf16:  # as start_run sets them up for --hmp
        run.op_lists, how = op_list_precision(
            read_op_list(OP_LISTS / "ops_bf16_bert_pt.txt"),
            read_op_list(OP_LISTS / "ops_fp32_bert_pt.txt"),
            device.type,
            graph=graph,
        )
        print(f"ours, bf16: {how}", file=sys.stderr)
    torch.manual_seed(0)
    trainer = Pretrainer(run, modeling.BertForPreTraining(config), losses, [])
    micro = [{name: tensor.numpy() for name, tensor in data.items()}] * accumulation
    return lambda: trainer.update(micro).item()


def huggingface(
    config: BertConfig, data: dict, device: torch.device, bf16: bool, graph: bool,
    accumulation: int,
):  # fmt: skip
    from transformers import BertConfig as HFConfig
    from transformers import BertForPreTraining

    torch.manual_seed(0)
    model = BertForPreTraining(HFConfig(**config.to_dict())).to(device).train()
    forward = torch.compile(model) if graph else model
    optimizer = make_lamb(model, 1e-4, False, "gpu" if device.type == "cuda" else "cpu")
    scheduler = PolyWarmUpScheduler(optimizer, 0.01, 10_000)
    labels = torch.full_like(data["input_ids"], -100)
    labels.scatter_(1, data["masked_positions"], data["masked_labels"])
    inputs = {
        "input_ids": data["input_ids"].to(device),
        "attention_mask": data["attention_mask"].to(device),
        "token_type_ids": data["token_type_ids"].to(device),
        "labels": labels.to(device),
        "next_sentence_label": data["next_sentence_labels"].to(device),
    }
    precision = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step():
        total = 0.0
        for _ in range(accumulation):  # the loss over the whole update, as ours
            with precision:
                loss = forward(**inputs).loss / accumulation
            loss.backward()
            total += loss.detach()
        scheduler.step()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return total.item()

    return step


def model_flops_per_sequence(config: BertConfig, parameters: int, length: int) -> float:
    attention = 12 * config.num_hidden_layers * length * length * config.hidden_size
    return 6 * parameters * length + attention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=CONFIGS, default="base")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--accumulation", type=int, default=1, help="Micro-batches per update")
    parser.add_argument("--no_graph", action="store_true", help="Eager variants only")
    parser.add_argument("--cudagraphs", action="store_true", help="Compiled steps as CUDA graphs")
    parser.add_argument("--profile", action="store_true", help="Where an update's time goes")
    parser.add_argument("--peak_tflops", type=float, default=989.0)
    args = parser.parse_args()
    config = benchmark_config(args.config, vocab_size=30528)  # padded, as run_pretraining.py
    device = torch.device(args.device)
    bf16 = args.precision == "bf16"
    predictions = max(1, round(0.15 * args.seq_length))
    data = arrays(config, args.batch_size, args.seq_length, predictions)
    use_cuda_graphs(args.cudagraphs)
    same = (config, data, device, bf16)
    variants = {
        "ours eager": ours(*same, graph=False, accumulation=args.accumulation),
        "HF eager": huggingface(*same, graph=False, accumulation=args.accumulation),
    }
    if not args.no_graph:
        variants["ours graph"] = ours(*same, graph=True, accumulation=args.accumulation)
        variants["HF graph"] = huggingface(*same, graph=True, accumulation=args.accumulation)
    sequences = args.batch_size * args.accumulation

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    median = median_rates(variants, sequences, args.steps, args.rounds, args.warmup, synchronize)
    parameters = sum(p.numel() for p in modeling.BertForPreTraining(config).parameters())
    flops = model_flops_per_sequence(config, parameters, args.seq_length)
    where = torch.cuda.get_device_name() if device.type == "cuda" else (
        f"CPU, {torch.get_num_threads()} threads"
    )  # fmt: skip
    print(
        f"config {args.config} ({parameters / 1e6:.0f}M parameters), {args.precision}, batch "
        f"{args.batch_size}, seq {args.seq_length}, {where}, torch {torch.__version__}"
    )
    for name, value in median.items():
        mfu = value * flops / (args.peak_tflops * 1e12) if device.type == "cuda" else None
        suffix = f"   MFU {100 * mfu:5.1f}%" if mfu is not None else ""
        print(f"{name:>10}: {value:9.2f} sequences/s{suffix}")
    print(f"ours eager / HF eager: {median['ours eager'] / median['HF eager']:.2f}")
    if not args.no_graph:
        print(f"ours graph / HF graph: {median['ours graph'] / median['HF graph']:.2f}")
        print(f"ours graph / HF eager: {median['ours graph'] / median['HF eager']:.2f}")
    if args.profile and device.type == "cuda":
        for name, step in variants.items():
            profile_steps(name, step, args.steps)


if __name__ == "__main__":
    main()
