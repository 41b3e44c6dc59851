"""The steps every TensorFlow run shares (SQuAD, GLUE, pre-training; every model).

`start_run` puts the run on its device, seeds it, builds the model in the right
precision and makes the output directory; `starting_weights` reads and checks the
weights the run starts from (--init_checkpoint, or for a predict-only run the run's
latest checkpoint) before anything is written, so a checkpoint that does not fit is one
line and an empty output directory; `train` warm-starts from them or resumes, and runs
the shared loop over `worker_batches`; `plot_training` draws the loss curve at the end.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from bertfam.bert_config import BertConfig
from bertfam.checkpoint_names import has_tf_state
from bertfam.checkpoints import BERT_TABLE, NameTable, match_weights
from bertfam.errors import FlagError
from bertfam.plot_metrics import plot_metrics
from bertfam.runlog import RunLog, read_metrics
from bertfam.tf.bf16 import Bf16Policy
from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint
from bertfam.tf.device import bf16_policy, select_device
from bertfam.tf.distributed import Workers, init_workers
from bertfam.tf.optimization import adamw
from bertfam.tf.run_config import SHUFFLE_BUFFER, SHUFFLE_SEED, RunConfig
from bertfam.tf.training import LossFn, Trainer

log = logging.getLogger(__name__)

# Where the Trainer's checkpoints (and an Estimator's) store the update count.
_STEP_KEY = "global_step"


@dataclass(frozen=True)
class Run:
    """A started run: who we are, what we run on, and the model config to build with."""

    workers: Workers
    precision: Bf16Policy
    model_config: BertConfig
    output_dir: Path


def start_run(config: RunConfig, model_config: BertConfig) -> Run:
    device = select_device(config.device, config.bf16_config_path)
    precision = bf16_policy(device, config.bf16_config_path)
    workers = init_workers(config.use_horovod, config.horovod_hierarchical_allreduce)
    if config.deterministic_run:
        tf.random.set_seed(config.deterministic_seed)
        np.random.seed(config.deterministic_seed)
        random.seed(config.deterministic_seed)
        model_config = model_config.without_dropout()
    # Not created here: the run log creates it once the weights have been read and
    # checked, so a refused checkpoint leaves no empty output directory behind.
    return Run(workers, precision, model_config, Path(config.output_dir))


def worker_batches(
    arrays: Dict[str, np.ndarray], per_worker: int, workers: Workers
) -> tf.data.Dataset:
    """Batches in the same order in every run; under Horovod, each worker's rows of them.

    Every worker shuffles and batches the whole set identically, at the global batch
    size, and keeps its own rows of each batch: together the workers see exactly the
    batches one process would see with the global batch size, which is what makes N
    workers train like one process with N times the batch. The fixed seed gives the
    same order in every run, so a resumed run skips exactly what it had seen.
    """
    dataset = tf.data.Dataset.from_tensor_slices(arrays).repeat()
    # The same order from every iterator: a loop that trains epoch by epoch (ELECTRA's
    # SQuAD) skips into a new iterator each epoch, as a resumed run does.
    dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=SHUFFLE_SEED, reshuffle_each_iteration=False)
    dataset = dataset.batch(per_worker * workers.size, drop_remainder=True)
    return own_rows(dataset, per_worker, workers).prefetch(2)


def own_rows(global_batches: tf.data.Dataset, per_worker: int, workers: Workers):
    """This worker's rows of every global batch (all of them in a single process)."""
    if workers.size == 1:
        return global_batches
    rows = slice(workers.rank * per_worker, (workers.rank + 1) * per_worker)
    return global_batches.map(
        lambda batch: {
            key: value[rows] if value.shape.rank else value for key, value in batch.items()
        }
    )


def train(
    config: RunConfig,
    run: Run,
    variables: Dict[str, tf.Variable],
    loss_fn: LossFn,
    arrays: Dict[str, np.ndarray],
    num_examples: int,
    run_log: RunLog,
    warm_start: Optional[StartingWeights],
    optimizer: Callable = adamw,
) -> int:
    """Resume from the run's latest checkpoint, else start from `warm_start` (the
    --init_checkpoint weights `starting_weights` read), and train; returns the final
    update count."""
    total_steps = config.train_steps(num_examples, run.workers.size)
    trainer = ready_trainer(config, run, variables, loss_fn, total_steps, warm_start, optimizer)
    log.info("***** Running training *****")
    log.info("  Num examples = %d, num windows = %d", num_examples, len(arrays["input_ids"]))
    log.info("  Batch size = %d, num steps = %d", config.train_batch_size, total_steps)
    trainer.train(worker_batches(arrays, config.train_batch_size, run.workers), run_log)
    return int(trainer.step)


def ready_trainer(
    config: RunConfig,
    run: Run,
    variables: Dict[str, tf.Variable],
    loss_fn: LossFn,
    total_steps: int,
    warm_start: Optional[StartingWeights],
    optimizer: Callable = adamw,
    continue_from: Optional[str] = None,
    restore: Optional[Callable[[Trainer], None]] = None,
) -> Trainer:
    """The loop, resumed from the run's latest checkpoint, else started from `warm_start`
    (and, with `continue_from`, that checkpoint's step and optimizer state too), the
    same on every worker. A recipe whose flags name what to restore (ELECTRA's
    ``--restore_checkpoint``) passes `restore`, which does it instead."""
    trainer = Trainer(
        loss_fn,
        variables,
        config,
        total_steps,
        optimizer=optimizer,
        is_main_process=run.workers.is_main_process,
        world_size=run.workers.size,
        allreduce=run.workers.allreduce,
    )
    if restore is not None:
        restore(trainer)
    elif not trainer.restore_latest() and warm_start is not None:
        warm_start.assign(variables)
        if continue_from:
            trainer.checkpoints.restore(continue_from, names=trainer.optimizer.state)
            log.info("Continuing from %s at step %d", continue_from, int(trainer.step))
    run.workers.broadcast_from_rank0(list(variables.values()) + list(trainer.optimizer.variables))
    return trainer


@dataclass(frozen=True)
class StartingWeights:
    """Checked weights to load: from `source`; `step` is its update count (0 for a warm start)."""

    weights: Dict[str, np.ndarray]
    source: str
    fresh_prefixes: Sequence[str]
    step: int = 0

    def assign(self, variables: Dict[str, tf.Variable]) -> None:
        assign_weights(variables, self.weights, self.source, self.fresh_prefixes)


def starting_weights(
    config: RunConfig,
    variables: Dict[str, tf.Variable],
    fresh_prefixes: Sequence[str],
    table: NameTable = BERT_TABLE,
) -> Optional[StartingWeights]:
    """The weights this run starts from, read and checked against `variables`.

    Training: --init_checkpoint (None when there is none, or when the run will resume
    from its own checkpoint in --output_dir). Predicting without training: the run's
    latest checkpoint, as an Estimator would use, else --init_checkpoint.
    """
    if config.do_train:
        if has_tf_state(config.output_dir) or not config.init_checkpoint:
            return None
        return checked_weights(config.init_checkpoint, variables, fresh_prefixes, table)
    output_dir = Path(config.output_dir)
    latest = tf.train.latest_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if latest:
        reader = tf.train.load_checkpoint(latest)
        step = int(reader.get_tensor(_STEP_KEY)) if reader.has_tensor(_STEP_KEY) else 0
        return checked_weights(latest, variables, (), table, step)
    if not config.init_checkpoint:
        raise FlagError(
            "predicting without --do_train needs trained weights: a checkpoint in "
            "--output_dir or --init_checkpoint"
        )
    return checked_weights(config.init_checkpoint, variables, fresh_prefixes, table)


def checked_weights(source, variables, fresh_prefixes, table, step=0) -> StartingWeights:
    """The weights of `source` (any --init_checkpoint form), checked against `variables`
    before any is assigned: one error naming every problem."""
    weights, description = read_init_checkpoint(source, table)
    shapes = {name: tuple(variable.shape) for name, variable in variables.items()}
    match_weights(shapes, weights, description, fresh_prefixes)  # raises before any write
    return StartingWeights(weights, description, fresh_prefixes, step)


def plot_training(output_dir: Path) -> None:
    metrics = output_dir / "metrics.jsonl"
    records = read_metrics(metrics) if metrics.is_file() else []
    if any("loss" in record for record in records):
        plot_metrics(records, output_dir / "metrics.png")
