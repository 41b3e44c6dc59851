"""SQuAD fine-tuning step throughput: our PyTorch BERT vs HuggingFace's, eager and graph.

    cd PyTorch/nlp/bert
    python benchmarks/finetune_throughput.py                      # all-MiniLM-L6-v2 sizes
    python benchmarks/finetune_throughput.py --config base --batch_size 4 --steps 3
    python benchmarks/finetune_throughput.py --config tiny --steps 2 --rounds 1   # smoke test
    python benchmarks/finetune_throughput.py --device cuda --precision bf16 --batch_size 32

Needs the test requirements (``pip install -r tests/requirements.txt``).

Ours is what ``run_squad.py`` executes per update: `bertfam.torch.finetune.Trainer`'s
update (forward and `span_loss`, backward, clip to norm 1.0, AdamW over HF's two
parameter groups, linear schedule, zero_grad), with ``--use_fused_adam
--use_fused_clip_norm`` as the demo passes them; in graph mode the forward and loss are
compiled as ``--use_jit_trace`` compiles them. HuggingFace's is what its run_squad.py
executes: ``transformers.BertForQuestionAnswering`` with start/end positions,
backward, ``clip_grad_norm_``, ``torch.optim.AdamW``, a LambdaLR, zero_grad; "HF graph" is
the same with the model under ``torch.compile``. Same config, dropout 0.1, one fixed batch,
``loss.item()`` every step. After ``--warmup`` untimed updates (compiles included), rounds
of ``--steps`` timed updates rotate through the four variants; each figure is the median
over rounds of sequences per second. Not measured: data loading, checkpoints, logging,
evaluation, compile time. bf16 is ours with ``--hmp`` (the folder's fine-tuning op lists,
``bf16_config/ops_*_bert.txt``), HF's under ``torch.autocast(bfloat16)``. ``--profile``
prints where a step's time goes (GPU only), ``--cudagraphs`` replays the compiled steps
(both) as CUDA graphs.
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
from bertfam.torch.args import FinetuneConfig
from bertfam.torch.autocast_lists import op_list_precision
from bertfam.torch.checkpoint import SavedModel
from bertfam.torch.finetune import (
    Run,
    Trainer,
    linear_schedule,
    make_clipper,
    make_optimizer,
)
from bertfam.torch.losses import span_loss

FOLDER = Path(__file__).resolve().parents[1]

modeling = folder_module(FOLDER, "modeling")

CONFIGS = ("tiny", "minilm", "base")  # of harness.SHAPES


def batch(config: BertConfig, size: int, length: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, config.vocab_size, (size, length), generator=generator)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "token_type_ids": torch.zeros_like(ids),
        "start_positions": torch.randint(0, length, (size,), generator=generator),
        "end_positions": torch.randint(0, length, (size,), generator=generator),
    }


def ours(config: BertConfig, data: dict, device: torch.device, bf16: bool, graph: bool):
    settings = FinetuneConfig(
        model_name_or_path="-",
        output_dir="/tmp/unused",
        do_train=True,
        mode="graph" if graph else "eager",
        use_fused_adam=True,
        use_fused_clip_norm=True,
    )
    run = Run(settings, device, "gpu" if device.type == "cuda" else "cpu", detect_launch_env({}))
    if bf16:  # as start_run sets them up for --hmp
        run.op_lists, how = op_list_precision(
            read_op_list(FOLDER / "bf16_config" / "ops_bf16_bert.txt"),
            read_op_list(FOLDER / "bf16_config" / "ops_fp32_bert.txt"),
            device.type,
            graph=graph,
        )
        print(f"ours, bf16: {how}", file=sys.stderr)
    torch.manual_seed(0)
    model = modeling.BertForQuestionAnswering(config)

    def loss(network, batch):
        start, end = network(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        return span_loss(start, end, batch["start_positions"], batch["end_positions"])

    trainer = Trainer(run, model, loss, SavedModel(config, "", "BertForQuestionAnswering"))
    optimizer = make_optimizer(model, run)
    scheduler = linear_schedule(optimizer, 10, 10_000)
    clip = make_clipper(list(model.parameters()), run)
    arrays = {name: tensor.numpy() for name, tensor in data.items()}
    rows = [torch.arange(len(data["input_ids"])).numpy()]
    model.train()
    return lambda: trainer.update(rows, arrays, optimizer, scheduler, clip).item()


def huggingface(config: BertConfig, data: dict, device: torch.device, bf16: bool, graph: bool):
    from transformers import BertConfig as HFConfig
    from transformers import BertForQuestionAnswering

    torch.manual_seed(0)
    model = BertForQuestionAnswering(HFConfig(**config.to_dict())).to(device).train()
    forward = torch.compile(model) if graph else model
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)],
         "weight_decay": 0.0},
        {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)],
         "weight_decay": 0.0},
    ]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, lr=5e-5, eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

    inputs = {name: tensor.to(device) for name, tensor in data.items()}
    precision = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step():
        with precision:
            loss = forward(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        model.zero_grad()
        return loss.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=CONFIGS, default="minilm")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cudagraphs", action="store_true", help="Compiled steps as CUDA graphs")
    parser.add_argument("--profile", action="store_true", help="Where an update's time goes")
    args = parser.parse_args()
    use_cuda_graphs(args.cudagraphs)
    config = benchmark_config(args.config)
    data = batch(config, args.batch_size, args.seq_length)
    device, bf16 = torch.device(args.device), args.precision == "bf16"
    variants = {
        "ours eager": ours(config, data, device, bf16, graph=False),
        "HF eager": huggingface(config, data, device, bf16, graph=False),
        "ours graph": ours(config, data, device, bf16, graph=True),
        "HF graph": huggingface(config, data, device, bf16, graph=True),
    }
    synchronize = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    median = median_rates(
        variants, args.batch_size, args.steps, args.rounds, args.warmup, synchronize
    )
    where = torch.cuda.get_device_name() if device.type == "cuda" else (
        f"{torch.get_num_threads()} threads"
    )  # fmt: skip
    print(
        f"config {args.config}, {args.precision}, batch {args.batch_size}, seq "
        f"{args.seq_length}, {where}, torch {torch.__version__}"
    )
    for name, value in median.items():
        print(f"{name:>10}: {value:8.2f} sequences/s")
    print(f"ours eager / HF eager: {median['ours eager'] / median['HF eager']:.2f}")
    print(f"ours graph / HF eager: {median['ours graph'] / median['HF eager']:.2f}")
    print(f"ours graph / HF graph: {median['ours graph'] / median['HF graph']:.2f}")
    if args.profile and device.type == "cuda":
        for name, step in variants.items():
            profile_steps(name, step, args.steps)


if __name__ == "__main__":
    main()
