"""run_pretraining.py's command line (NVIDIA's TF2 ELECTRA)
and the run's settings, checked before TensorFlow loads.

The flags keep upstream's argparse spelling (``--skip_adaptive`` is a switch,
``--json-summary`` has a dash). Paths follow upstream: everything under
``<results_dir>/models/<model_name>/``: ``checkpoints/`` (``pretrain_config.json``,
``ckpt-<step>``, phase 2's ``ckpt-p2-<step>``) and ``logs/`` (or ``--log_dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from bertfam.checkpoint_names import (
    ELECTRA_PHASE1,
    ELECTRA_PHASE2,
    tf_state_latest,
)
from bertfam.electra_config import SIZES, ElectraConfig
from bertfam.errors import FlagError, refuse_given
from bertfam.launch import detect_launch_env
from bertfam.pretraining.create import input_files
from bertfam.tf.run_config import RunConfig

BF16_CONFIG = Path(__file__).resolve().parent / "bf16_config" / "electra.json"
PADDED_TO = 8  # upstream pads the vocabulary size to a multiple of 8 (30522 -> 30528)


def parse_flags(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="run_pretraining.py", description=__doc__.split("\n")[0])
    p.add_argument("--model_name", required=True, help="Run name: results/models/<name>/")
    p.add_argument("--model_size", default="base", help="base or large")
    p.add_argument("--electra_config_file", help="Ours: a HuggingFace ELECTRA config.json "
                   "for the discriminator instead of --model_size's shape")  # fmt: skip
    p.add_argument("--pretrain_tfrecords", help="BERT's TFRecords: globs, comma-separated",
                   default="data/pretrain_tfrecords/pretrain_data.tfrecord*")  # fmt: skip
    p.add_argument("--phase2", action="store_true", help="Phase 2 from phase 1's checkpoint")
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--vocab_file", default="vocab/vocab.txt", help="BERT's uncased vocab.txt")
    p.add_argument("--mask_prob", type=float, default=0.15)
    p.add_argument("--disc_weight", type=float, default=50.0)
    p.add_argument("--generator_hidden_size", type=float, default=0.25)
    p.add_argument("--optimizer", default="adam", help="adam (AdamWeightDecay) or lamb")
    p.add_argument("--skip_adaptive", action="store_true",
                   help="LAMB: no trust ratio for LayerNorm and biases")  # fmt: skip
    p.add_argument("--learning_rate", type=float, default=5e-4)
    p.add_argument("--lr_decay_power", type=float, default=0.5)
    p.add_argument("--opt_beta_1", type=float, default=0.878)
    p.add_argument("--opt_beta_2", type=float, default=0.974)
    p.add_argument("--end_lr", type=float, default=0.0)
    p.add_argument("--num_train_steps", type=int, default=1000000)
    p.add_argument("--num_warmup_steps", type=int, default=10000)
    p.add_argument("--train_batch_size", type=int, default=128, help="Per process")
    p.add_argument("--gradient_accumulation_steps", type=int, default=1)
    p.add_argument("--save_checkpoints_steps", type=int, default=1000)
    p.add_argument("--keep_checkpoint_max", type=int, default=5)
    p.add_argument("--restore_checkpoint", help="A checkpoint prefix, or latest")
    p.add_argument("--load_weights", action="store_true",
                   help="Start from <weights_dir>/{generator,discriminator}")  # fmt: skip
    p.add_argument("--weights_dir")
    p.add_argument("--skip_checkpoint", action="store_true", help="Save no checkpoint")
    p.add_argument("--hmp", action="store_true", help="bf16 as bf16_config/electra.json says")
    p.add_argument("--xla", action="store_true", help="TensorFlow's XLA JIT")
    p.add_argument("--fp16_compression", action="store_true", help="Not supported (refused)")
    p.add_argument("--use_hpu", default="false", help="true: run on Gaudi")
    p.add_argument("--bfloat16", default="false", help="Unused upstream (true is refused)")
    p.add_argument("--log_freq", type=int, default=10, help="Updates between metric records")
    p.add_argument("--log_dir", help="DLLogger and TensorBoard (default: the model's logs/)")
    p.add_argument("--results_dir", default="results")
    p.add_argument("--json-summary", dest="json_summary", help="The DLLogger file")
    p.add_argument("--dump_config", default="", help="Upstream's debugging: refused")
    p.add_argument("--test_sbs", action="store_true", help="Upstream's debugging: refused")
    return p.parse_args(argv)


@dataclass(frozen=True, kw_only=True)
class ElectraPretrainingConfig(RunConfig):
    model_name: str
    model_size: str = "base"
    electra_config_file: Optional[str] = None
    pretrain_tfrecords: str = ""
    phase2: bool = False
    max_seq_length: int = 128
    seed: int = 42
    mask_prob: float = 0.15
    disc_weight: float = 50.0
    generator_hidden_size: float = 0.25
    optimizer: str = "adam"
    skip_adaptive: bool = False
    num_warmup_steps: int = 10000
    restore_checkpoint: Optional[str] = None
    load_weights: bool = False
    weights_dir: str = ""
    log_dir: str = ""
    json_summary: str = ""
    xla: bool = False
    keep_checkpoint_max: int = 5

    def discriminator_config(self) -> ElectraConfig:
        """--electra_config_file's, else --model_size's (ELECTRA's base or large), the
        vocabulary padded to a multiple of 8 as upstream."""
        if self.electra_config_file:
            config = ElectraConfig.from_json_file(self.electra_config_file)
        else:
            config = ElectraConfig.from_dict(dict(SIZES[self.model_size], vocab_size=30522))
        padded = -(-config.vocab_size // PADDED_TO) * PADDED_TO
        return dataclasses.replace(config, vocab_size=padded)


def config_from_flags(args: argparse.Namespace) -> ElectraPretrainingConfig:
    """The settings, with every flag checked; TensorFlow not loaded yet."""
    refuse = {
        "fp16_compression": "fp16 all-reduce compression is not supported",
        "test_sbs": "upstream's side-by-side debugging is not supported",
        "dump_config": "upstream's side-by-side debugging is not supported",
    }
    refuse_given(args, refuse)
    if args.bfloat16.lower() != "false":
        raise FlagError("--bfloat16: unused upstream; leave it false")
    if args.model_size not in ("base", "large") and not args.electra_config_file:
        raise FlagError(f"--model_size={args.model_size}: base or large")
    if args.phase2 and not args.restore_checkpoint:
        raise FlagError("--phase2 continues phase 1: give --restore_checkpoint (latest or a path)")
    if args.load_weights and args.restore_checkpoint:
        raise FlagError("--load_weights and --restore_checkpoint: give one of them")
    if args.optimizer not in ("adam", "lamb"):
        raise FlagError(f"--optimizer={args.optimizer}: adam or lamb")
    for flag in ("train_batch_size", "gradient_accumulation_steps", "num_train_steps",
                 "save_checkpoints_steps", "log_freq", "max_seq_length"):  # fmt: skip
        if getattr(args, flag) < 1:
            raise FlagError(f"--{flag} must be at least 1 (got {getattr(args, flag)})")
    if not 0.0 < args.mask_prob < 1.0:
        raise FlagError(f"--mask_prob={args.mask_prob}: a fraction in (0, 1)")
    output_dir = os.path.join(args.results_dir, "models", args.model_name)
    return ElectraPretrainingConfig(
        output_dir=output_dir,
        model_config_file=args.electra_config_file or "",
        vocab_file=args.vocab_file,
        do_train=True,
        model_name=args.model_name,
        model_size=args.model_size,
        electra_config_file=args.electra_config_file,
        pretrain_tfrecords=args.pretrain_tfrecords,
        phase2=args.phase2,
        max_seq_length=args.max_seq_length,
        seed=args.seed,
        mask_prob=args.mask_prob,
        disc_weight=args.disc_weight,
        generator_hidden_size=args.generator_hidden_size,
        optimizer=args.optimizer,
        skip_adaptive=args.skip_adaptive,
        learning_rate=args.learning_rate,
        schedule="google",
        lr_power=args.lr_decay_power,
        beta_1=args.opt_beta_1,
        beta_2=args.opt_beta_2,
        end_learning_rate=args.end_lr,
        num_train_steps=args.num_train_steps,
        num_warmup_steps=args.num_warmup_steps,
        train_batch_size=args.train_batch_size,
        num_accumulation_steps=args.gradient_accumulation_steps,
        save_checkpoints_steps=args.save_checkpoints_steps,
        save_summary_steps=args.log_freq,
        keep_checkpoint_max=args.keep_checkpoint_max,
        restore_checkpoint=args.restore_checkpoint,
        load_weights=args.load_weights,
        weights_dir=args.weights_dir or os.path.join(output_dir, "weights"),
        checkpoint_dir=os.path.join(output_dir, "checkpoints"),
        checkpoint_names=ELECTRA_PHASE2 if args.phase2 else ELECTRA_PHASE1,
        saves_checkpoints=not args.skip_checkpoint,
        resume_hint="rerun with --restore_checkpoint=latest to resume",
        log_dir=args.log_dir or os.path.join(output_dir, "logs"),
        json_summary=args.json_summary or "",
        xla=args.xla,
        device="hpu" if args.use_hpu.lower() == "true" else "auto",
        bf16_config_path=str(BF16_CONFIG) if args.hmp else None,
        # Several processes under mpirun train data-parallel with Horovod (upstream
        # imports Horovod and never starts it).
        use_horovod=detect_launch_env().world_size > 1,
    )


@dataclass(frozen=True)
class Prepared:
    model_config: ElectraConfig
    files: List[str]
    special_ids: Dict[str, int]
    restore_from: Optional[str]  # a checkpoint prefix to continue, or None


def prepare(config: ElectraPretrainingConfig) -> Prepared:
    """Check the inputs against the flags before anything is written."""
    from bertfam.tokenization.wordpiece import load_vocab

    model_config = config.discriminator_config()
    model_config.check_max_seq_length(config.max_seq_length)
    model_config.generator(config.generator_hidden_size)  # a usable fraction
    files = input_files(config.pretrain_tfrecords, "pretrain_tfrecords")
    try:
        vocab = load_vocab(config.vocab_file)
    except OSError:
        raise FlagError(
            f"--vocab_file={config.vocab_file}: cannot read it (BERT's uncased vocab.txt, "
            "which the records were made with)"
        ) from None
    missing = [token for token in ("[CLS]", "[SEP]", "[MASK]") if token not in vocab]
    if missing:
        raise FlagError(f"--vocab_file={config.vocab_file}: no {', '.join(missing)}")
    return Prepared(model_config, files, vocab, restore_from(config))


def restore_from(config: ElectraPretrainingConfig) -> Optional[str]:
    latest = tf_state_latest(config.checkpoint_dir)
    if config.restore_checkpoint is None:
        if latest is not None:
            raise FlagError(
                f"{config.checkpoint_dir} holds {os.path.basename(latest)} of an earlier run: "
                "continue it with --restore_checkpoint=latest, or give another --model_name"
            )
        return None
    prefix = latest if config.restore_checkpoint == "latest" else config.restore_checkpoint
    if prefix is None:
        if config.phase2:
            raise FlagError(
                f"--phase2 --restore_checkpoint=latest: {config.checkpoint_dir} holds no "
                "checkpoint of phase 1"
            )
        return None  # as upstream: nothing to continue, a new run
    if not Path(f"{prefix}.index").is_file():
        raise FlagError(f"--restore_checkpoint={prefix}: no such checkpoint ({prefix}.index)")
    return prefix


def write_pretrain_config(config: ElectraPretrainingConfig, model_config) -> None:
    """``checkpoints/pretrain_config.json``: every setting of the run, as upstream."""
    from bertfam.atomic import write_text

    values = {**dataclasses.asdict(config), "model": model_config.to_dict()}
    os.makedirs(config.checkpoint_dir, exist_ok=True)
    write_text(
        Path(config.checkpoint_dir) / "pretrain_config.json",
        json.dumps(values, indent=2, sort_keys=True, default=str) + "\n",
    )
