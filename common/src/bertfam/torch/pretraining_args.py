"""NVIDIA's (and Habana's) ``pretraining/run_pretraining.py`` command line, parsed once.

The flags and defaults are upstream's. `pretraining_config` turns them into a frozen
`PretrainingConfig` and checks every combination before torch loads, so a bad command
line is one line and nothing written. Where upstream accepts a
flag it ignores, we either do what the flag says or refuse it: ``--fp16``/``--amp``
(Apex, CUDA fp16) are refused in favour of ``--hmp``; ``--num_train_epochs`` is taken
and unused, as upstream (training is step-driven; the help says so).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bertfam.checkpoint_names import TORCH_PRETRAINING
from bertfam.errors import FlagError
from bertfam.run_config import require_at_least_one
from bertfam.torch.args import (
    add_device_mode_precision_flags,
    check_device_mode_precision,
    check_local_rank,
    device_mode_precision,
)


def add_pretraining_flags(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data and model")
    data.add_argument("--input_dir", required=True, help="hdf5 shards (files named *training*)")
    data.add_argument("--config_file", required=True, help="BERT config JSON")
    data.add_argument("--bert_model", default="bert-large-uncased", help="Name, for the logs")
    data.add_argument("--output_dir", required=True, help="Where ckpt_<step>.pt are written")
    data.add_argument(
        "--init_checkpoint",
        default=None,
        help="ckpt_<step>.pt or a HuggingFace folder to start from",
    )
    data.add_argument("--max_seq_length", type=int, default=512)
    data.add_argument("--max_predictions_per_seq", type=int, default=80)

    train = parser.add_argument_group("batch and schedule")
    train.add_argument(
        "--train_batch_size",
        type=int,
        default=32,
        help="Sequences per update and worker; the micro-batch is this over the accumulation",
    )
    train.add_argument("--learning_rate", type=float, default=5e-5)
    train.add_argument(
        "--num_train_epochs", type=float, default=3.0, help="Unused: --max_steps counts"
    )
    train.add_argument("--max_steps", type=float, default=1000, help="Updates in the phase")
    train.add_argument("--warmup_proportion", type=float, default=0.01)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument(
        "--steps_this_run", type=int, default=-1, help="Stop after this many updates (-1: all)"
    )
    train.add_argument("--seed", type=int, default=42, help="Each process adds its local rank")
    train.add_argument("--do_train", action="store_true", help="Required: pre-training trains")
    train.add_argument(
        "--checkpoint_activations",
        action="store_true",
        help="Recompute each layer's activations in the backward pass (less memory)",
    )

    precision = parser.add_argument_group("precision")
    precision.add_argument("--fp16", "--amp", action="store_true", help="Not supported: --hmp")
    precision.add_argument("--loss_scale", type=float, default=0.0, help="With --fp16 only")
    precision.add_argument("--init_loss_scale", type=int, default=2**20, help="--fp16 only")

    saving = parser.add_argument_group("checkpoints and resume")
    saving.add_argument("--resume_from_checkpoint", action="store_true")
    saving.add_argument("--resume_step", type=int, default=-1, help="-1: the latest")
    saving.add_argument("--num_steps_per_checkpoint", type=int, default=100)
    saving.add_argument("--skip_checkpoint", action="store_true", help="Write no checkpoints")
    saving.add_argument("--phase2", action="store_true", help="Start or go on with phase 2")
    saving.add_argument("--phase1_end_step", type=int, default=7038)

    device = parser.add_argument_group("device, mode and processes")
    device.add_argument("--local_rank", "--local-rank", type=int, default=-1)
    device.add_argument("--allreduce_post_accumulation", action="store_true")
    device.add_argument("--allreduce_post_accumulation_fp16", action="store_true")
    device.add_argument("--use_env", action="store_true", help="Local rank from the environment")
    device.add_argument("--use_fused_lamb", action="store_true")
    add_device_mode_precision_flags(device)

    logging = parser.add_argument_group("logging")
    logging.add_argument("--log_freq", type=float, default=1.0, help="Updates between logs")
    logging.add_argument("--json-summary", dest="json_summary", default="results/dllogger.json")
    logging.add_argument("--disable_progress_bar", action="store_true")
    logging.add_argument("--tqdm_smoothing", type=float, default=None)


@dataclass(frozen=True, kw_only=True)
class PretrainingConfig:
    """What run_pretraining.py runs with. `train_batch_size` means what it means in every
    config of the repository: one worker's micro-batch. NVIDIA's ``--train_batch_size``
    (one worker's sequences an update) is this times `gradient_accumulation_steps`; the
    flag is converted once, here, as NVIDIA's own setup divides it."""

    input_dir: str
    config_file: str
    output_dir: str
    bert_model: str = "bert-large-uncased"
    init_checkpoint: Optional[str] = None
    max_seq_length: int = 512
    max_predictions_per_seq: int = 80
    train_batch_size: int = 32  # per worker and micro-batch
    learning_rate: float = 5e-5
    max_steps: int = 1000
    warmup_proportion: float = 0.01
    gradient_accumulation_steps: int = 1
    steps_this_run: int = -1
    seed: int = 42
    checkpoint_activations: bool = False
    hmp: bool = False
    hmp_bf16: str = ""
    hmp_fp32: str = ""
    hmp_opt_level: str = "O1"
    hmp_verbose: bool = False
    resume_from_checkpoint: bool = False
    resume_step: int = -1
    num_steps_per_checkpoint: int = 100
    skip_checkpoint: bool = False
    phase2: bool = False
    phase1_end_step: int = 7038
    allreduce_post_accumulation: bool = False
    allreduce_post_accumulation_fp16: bool = False
    device: str = "auto"
    mode: str = "eager"
    use_fused_lamb: bool = False
    log_freq: int = 1
    json_summary: str = "results/dllogger.json"
    disable_progress_bar: bool = False
    tqdm_smoothing: Optional[float] = None

    @property
    def update_batch(self) -> int:
        """One worker's sequences an update: NVIDIA's ``--train_batch_size``."""
        return self.train_batch_size * self.gradient_accumulation_steps

    @property
    def step_offset(self) -> int:
        """What checkpoint names add to the phase's update count (phase 2: phase 1's end)."""
        return self.phase1_end_step if self.phase2 else 0


def pretraining_config(
    args: argparse.Namespace, default_bf16: str, default_fp32: str
) -> PretrainingConfig:
    """The parsed flags as a checked config; `default_*` are the folder's op lists."""
    if not args.do_train:
        raise FlagError("--do_train is required: run_pretraining.py only trains")
    if args.fp16 or args.loss_scale or args.init_loss_scale != 2**20:
        raise FlagError(
            "--fp16/--amp (Apex, with --loss_scale/--init_loss_scale) is not supported: use "
            "--hmp for bf16 mixed precision"
        )
    if args.max_steps != int(args.max_steps):
        raise FlagError(f"--max_steps={args.max_steps}: give a whole number of updates")
    require_at_least_one(
        train_batch_size=args.train_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
    )
    if args.train_batch_size % args.gradient_accumulation_steps:
        raise FlagError(
            f"--gradient_accumulation_steps={args.gradient_accumulation_steps} does not "
            f"divide --train_batch_size={args.train_batch_size} (the micro-batch is "
            "their quotient)"
        )
    config = PretrainingConfig(
        input_dir=args.input_dir,
        config_file=args.config_file,
        output_dir=args.output_dir,
        bert_model=args.bert_model,
        init_checkpoint=args.init_checkpoint,
        max_seq_length=args.max_seq_length,
        max_predictions_per_seq=args.max_predictions_per_seq,
        train_batch_size=args.train_batch_size // args.gradient_accumulation_steps,
        learning_rate=args.learning_rate,
        max_steps=int(args.max_steps),
        warmup_proportion=args.warmup_proportion,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        steps_this_run=args.steps_this_run,
        seed=args.seed,
        checkpoint_activations=args.checkpoint_activations,
        **device_mode_precision(args, default_bf16, default_fp32),
        resume_from_checkpoint=args.resume_from_checkpoint,
        resume_step=args.resume_step,
        num_steps_per_checkpoint=args.num_steps_per_checkpoint,
        skip_checkpoint=args.skip_checkpoint,
        phase2=args.phase2,
        phase1_end_step=args.phase1_end_step,
        allreduce_post_accumulation=args.allreduce_post_accumulation,
        allreduce_post_accumulation_fp16=args.allreduce_post_accumulation_fp16,
        use_fused_lamb=args.use_fused_lamb,
        log_freq=max(1, int(args.log_freq)),
        json_summary=args.json_summary,
        disable_progress_bar=args.disable_progress_bar,
        tqdm_smoothing=args.tqdm_smoothing,
    )
    check(config, args.local_rank)
    return config


def check(config: PretrainingConfig, local_rank: int = -1) -> None:
    """Every combination that cannot work, as one line."""
    require_at_least_one(
        max_steps=config.max_steps,
        max_seq_length=config.max_seq_length,
        max_predictions_per_seq=config.max_predictions_per_seq,
    )
    if not 0 <= config.warmup_proportion <= 1:
        raise FlagError(f"--warmup_proportion={config.warmup_proportion}: give 0 to 1")
    if config.num_steps_per_checkpoint < 1 and not config.skip_checkpoint:
        raise FlagError("--num_steps_per_checkpoint must be at least 1 (or --skip_checkpoint)")
    if not Path(config.config_file).is_file():
        raise FlagError(f"--config_file={config.config_file}: no such file")
    init = config.init_checkpoint
    if init and Path(f"{init}.index").is_file():
        raise FlagError(
            f"--init_checkpoint={init} is a TensorFlow checkpoint: convert it with "
            "convert_tf_checkpoint_to_pytorch.py and give the folder it writes"
        )
    if init and not Path(init).exists():
        raise FlagError(f"--init_checkpoint={init}: no such file or folder")
    check_device_mode_precision(config)
    if config.allreduce_post_accumulation_fp16 and not config.allreduce_post_accumulation:
        raise FlagError(
            "--allreduce_post_accumulation_fp16 sets the precision of "
            "--allreduce_post_accumulation's all-reduce: add that flag too"
        )
    if config.phase2 and not (config.resume_from_checkpoint or config.init_checkpoint):
        raise FlagError(
            "--phase2 starts from phase 1's checkpoint: add --resume_from_checkpoint (phase "
            "1's ckpt_<step>.pt in --output_dir) or --init_checkpoint"
        )
    check_local_rank(local_rank)
    found = TORCH_PRETRAINING.in_folder(config.output_dir)
    if found and not config.resume_from_checkpoint:
        newest = found[max(found)].name
        raise FlagError(
            f"--output_dir={config.output_dir} holds another run's checkpoints ({newest}): "
            "add --resume_from_checkpoint to continue it, or give another --output_dir"
        )
    wanted = config.resume_step
    if config.resume_from_checkpoint and wanted >= 0 and wanted not in found:
        raise FlagError(
            f"--resume_step={wanted}: no {TORCH_PRETRAINING.name(wanted)} in {config.output_dir}"
        )
