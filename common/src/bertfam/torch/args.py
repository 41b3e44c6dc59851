"""HuggingFace v3.0.2's fine-tuning command line, with Habana's additions, parsed once.

`run_squad.py` and `run_glue.py` take the flags users know from HF's examples
(``--model_name_or_path --do_train --per_gpu_train_batch_size --learning_rate
--num_train_epochs --max_steps --save_steps --logging_steps --output_dir ...``) and from
Habana's fork (``--use_habana --use_jit_trace --use_lazy_mode --hmp --hmp_bf16 --hmp_fp32
--use_fused_adam --use_fused_clip_norm``). `add_finetune_flags` defines the flags the two
scripts share; `finetune_config` turns the parsed namespace into a frozen
`FinetuneConfig`, checking every combination. Nothing here imports torch, so a bad flag
costs a second and prints one line before the framework loads.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Type, TypeVar

from bertfam.devices import habana_installed
from bertfam.errors import FlagError
from bertfam.launch import detect_launch_env
from bertfam.precision import read_op_list
from bertfam.run_config import TrainingConfig, require_at_least_one

C = TypeVar("C", bound="FinetuneConfig")


def switch(parser: argparse.ArgumentParser, flag: str, help_text: str) -> None:
    parser.add_argument(flag, action="store_true", help=help_text)


def add_finetune_flags(parser: argparse.ArgumentParser) -> None:
    """The flags run_squad.py and run_glue.py share (HF v3.0.2 names and defaults)."""
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model_name_or_path",
        required=True,
        help="A HuggingFace BERT folder, a hub id in --cache_dir, a checkpoint-N folder of "
        "an earlier run (which resumes it), or a weights file: our or NVIDIA's ckpt_<step>.pt, "
        "a {'model': state_dict} file",
    )
    model.add_argument("--config_name", default="", help="config.json, if not the model's")
    model.add_argument(
        "--tokenizer_name",
        default="",
        help="Folder (or vocab.txt) of the vocabulary, if not the model's",
    )
    model.add_argument(
        "--cache_dir",
        default="",
        help="Where downloaded hub models are (hub ids are looked up here)",
    )
    model.add_argument("--output_dir", required=True, help="Checkpoints, model and results")
    switch(model, "--overwrite_output_dir", "Train into a non-empty --output_dir")

    train = parser.add_argument_group("training")
    switch(train, "--do_train", "Fine-tune")
    switch(train, "--do_eval", "Evaluate on the dev set")
    switch(train, "--evaluate_during_training", "Evaluate at every logging step")
    train.add_argument("--per_device_train_batch_size", type=int, default=8)
    train.add_argument("--per_device_eval_batch_size", type=int, default=8)
    train.add_argument(
        "--per_gpu_train_batch_size",
        type=int,
        default=None,
        help="HF's older name for --per_device_train_batch_size; wins if given",
    )
    train.add_argument(
        "--per_gpu_eval_batch_size",
        type=int,
        default=None,
        help="HF's older name for --per_device_eval_batch_size; wins if given",
    )
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--learning_rate", type=float, default=5e-5)
    train.add_argument("--weight_decay", type=float, default=0.0)
    train.add_argument("--adam_epsilon", type=float, default=1e-8)
    train.add_argument("--max_grad_norm", type=float, default=1.0)
    train.add_argument("--num_train_epochs", type=float, default=3.0)
    train.add_argument(
        "--max_steps",
        type=int,
        default=-1,
        help="Total updates; overrides --num_train_epochs when > 0",
    )
    train.add_argument(
        "--warmup_steps", type=int, default=0, help="Linear warm-up updates, then linear decay to 0"
    )
    train.add_argument("--logging_steps", type=int, default=500)
    switch(train, "--logging_first_step", "Log the first update too")
    train.add_argument(
        "--save_steps",
        type=int,
        default=500,
        help="Save checkpoint-N/ every N updates (0: only the final model)",
    )
    train.add_argument(
        "--save_total_limit",
        type=int,
        default=None,
        help="Keep at most this many checkpoint-N folders",
    )
    train.add_argument("--seed", type=int, default=42)

    device = parser.add_argument_group("device, precision and processes")
    add_device_mode_precision_flags(device)
    switch(device, "--use_fused_adam", "The fused AdamW kernel (torch's, or Habana's on Gaudi)")
    switch(
        device,
        "--use_fused_clip_norm",
        "Clip all gradients in one fused call (foreach, or Habana's on Gaudi)",
    )
    device.add_argument(
        "--local_rank",
        "--local-rank",
        type=int,
        default=-1,
        help="Set by torch.distributed.launch; the launcher's environment is what counts",
    )
    switch(device, "--fp16", "Apex fp16 (not supported: use --hmp)")
    device.add_argument("--fp16_opt_level", default="O1", help="Apex level (with --fp16)")


def add_device_mode_precision_flags(group) -> None:
    """Habana's device, mode and bf16 flags, which every PyTorch script takes."""
    switch(group, "--no_cuda", "Run on the CPU even when a GPU is there")
    switch(group, "--use_habana", "Run on Habana Gaudi (HPU)")
    switch(
        group,
        "--use_jit_trace",
        "Graph mode: compile the training step (torch.compile replaces upstream's trace)",
    )
    switch(group, "--use_lazy_mode", "Habana lazy mode (Gaudi only)")
    switch(group, "--hmp", "bf16 mixed precision from the op lists below")
    group.add_argument("--hmp_bf16", default="", help="Ops computed in bf16, one a line")
    group.add_argument("--hmp_fp32", default="", help="Ops kept in fp32, one a line")
    group.add_argument("--hmp_opt_level", default="O1", choices=("O1", "O2"))
    switch(group, "--hmp_verbose", "Habana HMP: log every cast (Gaudi only)")


def device_mode_precision(args: argparse.Namespace, default_bf16: str, default_fp32: str):
    """The config fields those flags give (``device``, ``mode``, ``hmp*``); `default_*`
    are the folder's op lists, which ``--hmp`` alone takes."""
    if args.use_lazy_mode and args.use_jit_trace:
        raise FlagError("--use_lazy_mode and --use_jit_trace are two modes: pick one")
    return dict(
        device="hpu" if args.use_habana else "cpu" if args.no_cuda else "auto",
        mode="lazy" if args.use_lazy_mode else "graph" if args.use_jit_trace else "eager",
        hmp=args.hmp,
        hmp_bf16=args.hmp_bf16 or (default_bf16 if args.hmp else ""),
        hmp_fp32=args.hmp_fp32 or (default_fp32 if args.hmp else ""),
        hmp_opt_level=args.hmp_opt_level,
        hmp_verbose=args.hmp_verbose,
    )


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig(TrainingConfig):
    """What both fine-tuning scripts run with; built once by `finetune_config`. A
    `bertfam.run_config.TrainingConfig`: the fields the TensorFlow side shares."""

    model_name_or_path: str
    config_name: str = ""
    tokenizer_name: str = ""
    cache_dir: str = ""
    overwrite_output_dir: bool = False
    do_eval: bool = False
    evaluate_during_training: bool = False
    train_batch_size: int = 8  # per device (HF's default; the TensorFlow side's is 32)
    eval_batch_size: int = 8  # per device
    gradient_accumulation_steps: int = 1
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    max_steps: int = -1
    warmup_steps: int = 0
    logging_steps: int = 500
    logging_first_step: bool = False
    save_steps: int = 500
    save_total_limit: Optional[int] = None
    seed: int = 42
    drop_last: bool = False  # the train loader's last partial batch
    mode: str = "eager"  # eager, graph or lazy
    hmp: bool = False
    hmp_bf16: str = ""
    hmp_fp32: str = ""
    hmp_opt_level: str = "O1"
    hmp_verbose: bool = False
    use_fused_adam: bool = False
    use_fused_clip_norm: bool = False
    local_rank: int = -1  # as torch.distributed.launch passes it; checked against the env

    def total_updates(self, updates_per_epoch: int) -> int:
        """--max_steps, else HF's int(updates per epoch * epochs)."""
        if self.max_steps > 0:
            return self.max_steps
        return int(updates_per_epoch * self.num_train_epochs)


def finetune_config(
    args: argparse.Namespace,
    config_class: Type[C],
    default_bf16_ops: str,
    default_fp32_ops: str,
    **task_fields,
) -> C:
    """The parsed flags as a checked `config_class` (a `FinetuneConfig` with the task's
    fields, given as `task_fields`); `default_*_ops` are the folder's op lists."""
    if args.fp16:
        raise FlagError("--fp16 (Apex) is not supported: use --hmp for bf16 mixed precision")
    config = config_class(
        model_name_or_path=args.model_name_or_path,
        output_dir=args.output_dir,
        config_name=args.config_name,
        tokenizer_name=args.tokenizer_name,
        cache_dir=args.cache_dir,
        overwrite_output_dir=args.overwrite_output_dir,
        do_train=args.do_train,
        do_eval=args.do_eval,
        evaluate_during_training=args.evaluate_during_training,
        train_batch_size=_first_given(
            args.per_gpu_train_batch_size, args.per_device_train_batch_size
        ),
        eval_batch_size=_first_given(args.per_gpu_eval_batch_size, args.per_device_eval_batch_size),
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        adam_epsilon=args.adam_epsilon,
        max_grad_norm=args.max_grad_norm,
        num_train_epochs=args.num_train_epochs,
        max_steps=args.max_steps,
        warmup_steps=args.warmup_steps,
        logging_steps=args.logging_steps,
        logging_first_step=args.logging_first_step,
        save_steps=args.save_steps,
        save_total_limit=args.save_total_limit,
        seed=args.seed,
        **device_mode_precision(args, default_bf16_ops, default_fp32_ops),
        use_fused_adam=args.use_fused_adam,
        use_fused_clip_norm=args.use_fused_clip_norm,
        local_rank=args.local_rank,
        **task_fields,
    )
    check(config)
    return config


def _first_given(older_name: Optional[int], newer_name: int) -> int:
    """HF's rule: the deprecated --per_gpu_* wins when given (0 included, to be refused)."""
    return older_name if older_name is not None else newer_name


def check(config: FinetuneConfig) -> None:
    """Every combination that cannot work, as one line."""
    if not (config.do_train or config.do_eval):
        raise FlagError("nothing to do: give --do_train and/or --do_eval")
    require_at_least_one(
        per_device_train_batch_size=config.train_batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        logging_steps=config.logging_steps,
    )
    if config.save_steps < 0 or config.warmup_steps < 0:
        raise FlagError("--save_steps and --warmup_steps cannot be negative")
    if config.max_steps <= 0 and config.num_train_epochs <= 0 and config.do_train:
        raise FlagError("--num_train_epochs must be positive (or give --max_steps)")
    if config.evaluate_during_training and not config.do_eval:
        raise FlagError("--evaluate_during_training scores the dev set: add --do_eval")
    check_device_mode_precision(config)
    check_local_rank(config.local_rank)
    output = Path(config.output_dir)
    if (
        config.do_train
        and output.is_dir()
        and any(output.iterdir())
        and not config.overwrite_output_dir
    ):
        raise FlagError(
            f"output directory ({output}) already exists and is not empty: use "
            "--overwrite_output_dir to train into it"
        )


def check_device_mode_precision(config) -> None:
    """What every PyTorch script checks of ``device``, ``mode`` and the ``hmp*`` fields."""
    on_gaudi_possible = habana_installed()
    if config.device == "hpu" and not on_gaudi_possible:
        raise FlagError(
            "--use_habana (device hpu) needs Habana Gaudi and habana_frameworks, which this "
            "machine does not have: leave it out to run on the GPU or CPU"
        )
    if config.mode == "lazy" and not (on_gaudi_possible and config.device != "cpu"):
        raise FlagError(
            "--use_lazy_mode (--mode lazy) is Habana's lazy graph mode and runs on Gaudi "
            "only: use --mode eager, or --mode graph (torch.compile), on this machine"
        )
    if not on_gaudi_possible and (config.hmp_verbose or config.hmp_opt_level != "O1"):
        raise FlagError(
            "--hmp_verbose and --hmp_opt_level O2 are Habana HMP's (Gaudi only); elsewhere the "
            "op lists apply as O1 does"
        )
    if config.hmp:
        read_op_list(config.hmp_bf16)
        read_op_list(config.hmp_fp32)
    elif config.hmp_bf16 or config.hmp_fp32:
        raise FlagError("--hmp_bf16 / --hmp_fp32 take effect with --hmp: add it")


def check_local_rank(local_rank: int) -> None:
    """--local_rank, when given, must be the launcher's."""
    launch = detect_launch_env()
    if local_rank >= 0 and local_rank != launch.local_rank:
        raise FlagError(
            f"--local_rank {local_rank} but the launcher's environment says local rank "
            f"{launch.local_rank} ({launch.launcher}): start the script with torchrun, mpirun "
            "or torch.distributed.launch rather than giving --local_rank by hand"
        )
