"""run_tf_squad.py's command line (NVIDIA's TF2 ELECTRA) and the
run's settings, checked before TensorFlow loads.

As upstream: the SQuAD files are ``<data_dir>/{train,dev}-v<version>.json``; the model
starts from ``--electra_model`` (a HuggingFace folder, or a hub id already downloaded);
without ``--do_train`` the weights are ``--init_checkpoint``'s, which is then required;
``--do_eval`` runs ``--eval_script`` on the written predictions. Upstream's
``type=bool`` flag ``--joint_head`` reads any non-empty text as true; here it takes
true/false (1/0, yes/no) and refuses anything else.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from pretraining_config import BF16_CONFIG

from bertfam.checkpoint_names import ELECTRA_PHASE1
from bertfam.checkpoints import HfFolder, resolve_pretrained
from bertfam.electra_config import ElectraConfig
from bertfam.errors import FlagError, OneLineParser, refuse_given
from bertfam.launch import detect_launch_env
from bertfam.squad.features import SquadFeatures
from bertfam.tf.run_config import SquadRunConfig

PROG = "run_tf_squad.py"
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def boolean(text: str) -> bool:
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: true or false")


def parse_flags(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--electra_model", required=True,
                   help="A HuggingFace ELECTRA folder, or a downloaded hub id")  # fmt: skip
    p.add_argument("--data_dir", required=True, help="Holds {train,dev}-v1.1.json (or v2.0)")
    p.add_argument("--output_dir", default=".", help="predictions.json, nbest_predictions.json")
    p.add_argument("--init_checkpoint", help="Fine-tuned weights for eval or prediction runs")
    p.add_argument("--do_train", action="store_true")
    p.add_argument("--do_predict", action="store_true")
    p.add_argument("--do_eval", action="store_true", help="Score predictions with --eval_script")
    p.add_argument("--train_file", help="Upstream ignores it (refused): use --data_dir")
    p.add_argument("--predict_file", help="Upstream ignores it (refused): use --data_dir")
    p.add_argument("--train_batch_size", type=int, default=32, help="Per process")
    p.add_argument("--predict_batch_size", type=int, default=8)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--weight_decay_rate", type=float, default=0.01)
    p.add_argument("--layerwise_lr_decay", type=float, default=0.8,
                   help="Each layer's rate is this times the next one's; <= 0: off")  # fmt: skip
    p.add_argument("--num_train_epochs", type=int, default=3)
    p.add_argument("--max_steps", type=float, default=-1, help="> 0: stop after these updates")
    p.add_argument("--warmup_proportion", type=float, default=0.1)
    p.add_argument("--max_seq_length", type=int, default=384)
    p.add_argument("--doc_stride", type=int, default=128)
    p.add_argument("--max_query_length", type=int, default=64)
    p.add_argument("--vocab_file", help="Default: the --electra_model folder's vocab.txt")
    p.add_argument("--joint_head", type=boolean, default=True,
                   help="XLNet's heads with beam search (false: a span layer)")  # fmt: skip
    p.add_argument("--beam_size", type=int, default=4, help="Joint head: starts and ends kept")
    p.add_argument("--n_best_size", type=int, default=20)
    p.add_argument("--max_answer_length", type=int, default=30)
    p.add_argument("--verbose_logging", action="store_true", help="Debug-level log")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--evaluate_during_training", action="store_true",
                   help="Predict (and evaluate) after every epoch")  # fmt: skip
    p.add_argument("--gradient_accumulation_steps", type=int, default=1)
    p.add_argument("--do_lower_case", action="store_true")
    p.add_argument("--local_rank", type=int, default=int(os.environ.get("LOCAL_RANK", -1)),
                   help="torch.distributed's launchers set it (refused): use mpirun")  # fmt: skip
    p.add_argument("--hmp", action="store_true", help="bf16 as bf16_config/electra.json says")
    p.add_argument("--fp16_all_reduce", action="store_true", help="Not supported (refused)")
    p.add_argument("--xla", action="store_true", help="TensorFlow's XLA JIT")
    p.add_argument("--version_2_with_negative", action="store_true", help="SQuAD v2.0")
    p.add_argument("--null_score_diff_threshold", type=float, default=0.0)
    p.add_argument("--log_freq", type=int, default=50, help="Updates between log lines")
    p.add_argument("--json-summary", dest="json_summary", default="results/dllogger.json")
    p.add_argument("--eval_script", default="evaluate.py",
                   help="python <script> <dev file> <predictions.json>")  # fmt: skip
    p.add_argument("--use_env", action="store_true", help="torch.distributed's (refused)")
    p.add_argument("--skip_checkpoint", action="store_true", help="No per-epoch checkpoint")
    p.add_argument("--disable-progress-bar", dest="disable_progress_bar", action="store_true")
    p.add_argument("--skip_cache", action="store_true", help="Write no feature cache")
    p.add_argument("--cache_dir", help="Feature caches and hub models (default: --data_dir)")
    p.add_argument("--use_hpu", default="false", help="true: run on Gaudi")
    p.add_argument("--bfloat16", default="false", help="Unused upstream (true is refused)")
    p.add_argument("--train_iter_per_epoch", type=float, default=-1,
                   help="> 0: at most these updates an epoch")  # fmt: skip
    return p.parse_args(argv)


@dataclass(frozen=True, kw_only=True)
class ElectraSquadConfig(SquadRunConfig):
    electra_model: str
    data_dir: str
    version: str = "1.1"
    layerwise_lr_decay: float = 0.8
    joint_head: bool = True
    beam_size: int = 4
    seed: int = 42
    evaluate_during_training: bool = False
    do_eval: bool = False
    eval_script: str = "evaluate.py"
    max_steps: int = -1
    train_iter_per_epoch: int = -1
    log_freq: int = 50
    json_summary: str = "results/dllogger.json"
    skip_checkpoint: bool = False
    skip_cache: bool = False
    cache_dir: str = ""
    xla: bool = False
    verbose_logging: bool = False
    # Fixed by NVIDIA's recipe: its AdamWeightDecay is Keras Adam (bias-corrected).
    bias_correction: bool = True

    def cache_file(self, split: str) -> str:
        """Upstream's feature cache: ``TF2_<split>-v<version>.json_<model>_<seq>_<stride>_<query>``,
        <model> being what follows the first "/" of --electra_model (all of it without one)."""
        model = (
            self.electra_model.split("/")[1] if "/" in self.electra_model else self.electra_model
        )
        name = f"TF2_{split}-v{self.version}.json_{model}_{self.max_seq_length}_{self.doc_stride}"
        return os.path.join(self.cache_dir or self.data_dir, f"{name}_{self.max_query_length}")

    def schedule_steps(self, num_features: int, world_size: int) -> int:
        """Upstream's count for the learning-rate schedule: int(features x epochs / global
        batch) + 1 (the decay never quite reaches 0)."""
        global_batch = self.train_batch_size * self.num_accumulation_steps * world_size
        return int(num_features * self.num_train_epochs / global_batch) + 1

    def updates_per_epoch(self, num_features: int, world_size: int) -> int:
        """Whole global batches in the training windows, capped by --train_iter_per_epoch."""
        global_batch = self.train_batch_size * self.num_accumulation_steps * world_size
        updates = num_features // global_batch
        if updates < 1:
            raise FlagError(
                f"{num_features} training windows make no batch of {global_batch} "
                "(--train_batch_size x --gradient_accumulation_steps x processes): lower it"
            )
        if self.train_iter_per_epoch > 0:
            updates = min(updates, self.train_iter_per_epoch)
        return updates


def config_from_flags(args: argparse.Namespace) -> ElectraSquadConfig:
    """The settings, with every flag checked; TensorFlow not loaded yet."""
    refuse = {
        "fp16_all_reduce": "fp16 all-reduce compression is not supported",
        "use_env": "torch.distributed's launcher flag: start processes with mpirun",
        "train_file": "upstream ignores it: the training file is <data_dir>/train-v1.1.json",
        "predict_file": "upstream ignores it: the dev file is <data_dir>/dev-v1.1.json",
    }
    refuse_given(args, refuse)
    if args.local_rank != -1:  # upstream reads it and then ranks by Horovod anyway
        raise FlagError(
            "--local_rank (LOCAL_RANK): a torch.distributed launcher; start processes with mpirun"
        )
    if args.bfloat16.lower() != "false":
        raise FlagError("--bfloat16: unused upstream; leave it false (bf16 is --hmp)")
    if not (args.do_train or args.do_predict):
        raise FlagError("nothing to do: give --do_train and/or --do_predict")
    if args.do_eval and not args.do_predict:
        raise FlagError("--do_eval scores the predictions: give --do_predict too")
    if not args.do_train and not args.init_checkpoint:
        raise FlagError("--init_checkpoint is required without --do_train (the weights to use)")
    counts = (
        "train_batch_size",
        "predict_batch_size",
        "num_train_epochs",
        "beam_size",
        "n_best_size",
        "max_answer_length",
        "gradient_accumulation_steps",
        "log_freq",
    )
    for flag in counts:
        if getattr(args, flag) < 1:
            raise FlagError(f"--{flag} must be at least 1 (got {getattr(args, flag)})")
    version = "2.0" if args.version_2_with_negative else "1.1"
    folder = resolve_pretrained(args.electra_model, args.cache_dir)
    return ElectraSquadConfig(
        output_dir=args.output_dir,
        model_config_file=str(folder.config_file),
        vocab_file=args.vocab_file or str(folder.vocab_file or folder.path / "vocab.txt"),
        init_checkpoint=args.init_checkpoint,
        progress_bars=not args.disable_progress_bar,
        # Ours, beside upstream's epoch checkpoints: the loop's resume checkpoints (every
        # 1000 updates, each epoch's end, and on SIGTERM), so a stopped run goes on when
        # the same command runs again. Removed once training completes, so a finished
        # command reruns from the start, as upstream's does.
        checkpoint_dir=os.path.join(
            "checkpoints", f"electra_base_qa_v2_{args.version_2_with_negative}_resume"
        ),
        checkpoint_names=ELECTRA_PHASE1,
        do_lower_case=args.do_lower_case,
        do_train=args.do_train,
        do_predict=args.do_predict,
        do_eval=args.do_eval,
        train_file=os.path.join(args.data_dir, f"train-v{version}.json"),
        predict_file=os.path.join(args.data_dir, f"dev-v{version}.json"),
        train_batch_size=args.train_batch_size,
        predict_batch_size=args.predict_batch_size,
        learning_rate=args.learning_rate,
        weight_decay_rate=args.weight_decay_rate,
        layerwise_lr_decay=args.layerwise_lr_decay,
        num_train_epochs=args.num_train_epochs,
        max_steps=int(args.max_steps),
        warmup_proportion=args.warmup_proportion,
        max_seq_length=args.max_seq_length,
        doc_stride=args.doc_stride,
        max_query_length=args.max_query_length,
        joint_head=args.joint_head,
        beam_size=args.beam_size,
        n_best_size=args.n_best_size,
        max_answer_length=args.max_answer_length,
        verbose_logging=args.verbose_logging,
        seed=args.seed,
        evaluate_during_training=args.evaluate_during_training,
        num_accumulation_steps=args.gradient_accumulation_steps,
        version_2_with_negative=args.version_2_with_negative,
        null_score_diff_threshold=args.null_score_diff_threshold,
        log_freq=args.log_freq,
        save_summary_steps=args.log_freq,
        json_summary=args.json_summary,
        eval_script=args.eval_script,
        skip_checkpoint=args.skip_checkpoint,
        skip_cache=args.skip_cache,
        cache_dir=args.cache_dir or "",
        train_iter_per_epoch=int(args.train_iter_per_epoch),
        xla=args.xla,
        electra_model=args.electra_model,
        data_dir=args.data_dir,
        version=version,
        device="hpu" if args.use_hpu.lower() == "true" else "auto",
        bf16_config_path=str(BF16_CONFIG) if args.hmp else None,
        use_horovod=detect_launch_env().world_size > 1,  # under mpirun, as pre-training
    )


@dataclass(frozen=True)
class Prepared:
    model_config: ElectraConfig
    folder: HfFolder
    tokenizer: object
    train_examples: list
    predict_examples: list


def prepare(config: ElectraSquadConfig) -> Prepared:
    """Read and check every input the flags name, before anything is written."""
    from bertfam.squad.data import read_squad_examples
    from bertfam.tokenization.wordpiece import WordPieceTokenizer

    folder = resolve_pretrained(config.electra_model, config.cache_dir or None)
    model_config = ElectraConfig.from_json_file(folder.config_file)
    config.check_inputs(model_config, train=config.do_train, predict=config.do_predict)
    if config.do_eval and not Path(config.eval_script).is_file():
        raise FlagError(f"--eval_script={config.eval_script}: no such file")
    if config.init_checkpoint and not config.do_train:
        prefix = config.init_checkpoint
        if not (Path(f"{prefix}.index").is_file() or Path(prefix, "config.json").is_file()):
            raise FlagError(f"--init_checkpoint={prefix}: no such checkpoint ({prefix}.index)")
    if not Path(config.vocab_file).is_file():
        raise FlagError(f"--vocab_file={config.vocab_file}: no such file")
    tokenizer = WordPieceTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
    if tokenizer.vocab_size > model_config.vocab_size:  # smaller: the table is padded
        raise FlagError(
            f"the vocab file {config.vocab_file} has {tokenizer.vocab_size} tokens, more than "
            f"{folder.config_file}'s vocab_size={model_config.vocab_size}"
        )

    def examples(path, training):
        v2 = config.version_2_with_negative
        return read_squad_examples(path, is_training=training, version_2_with_negative=v2)

    train = examples(config.train_file, True) if config.do_train else []
    dev = examples(config.predict_file, False) if config.do_predict else []
    return Prepared(model_config, folder, tokenizer, train, dev)


def cached_features(config: ElectraSquadConfig, prepared: Prepared, split: str,
                    write: bool) -> SquadFeatures:  # fmt: skip
    """The windows of `split` (train or dev), from upstream's cache file when it was built
    from the same vocabulary and casing, else computed (and cached unless --skip_cache)."""
    import pickle

    from bertfam.atomic import write_bytes

    path = Path(config.cache_file(split))
    key = {
        "vocab": Path(config.vocab_file).resolve().as_posix(),
        "vocab_size": Path(config.vocab_file).stat().st_size,
        "do_lower_case": config.do_lower_case,
        "examples": len(prepared.train_examples if split == "train" else prepared.predict_examples),
    }
    try:
        with open(path, "rb") as handle:
            cached = pickle.load(handle)
        if isinstance(cached, dict) and cached.get("key") == key:
            return cached["features"]
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass  # absent, or not ours (upstream pickles HuggingFace features): rebuild
    training = split == "train"
    examples = prepared.train_examples if training else prepared.predict_examples
    features = config.features(prepared.tokenizer, examples, is_training=training)
    if write and not config.skip_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, pickle.dumps({"key": key, "features": features}))
    return features
