"""The custom training loop every TensorFlow model folder uses.

One update = `accumulation_steps` micro-batches whose gradients are summed (each loss
divided by the count, so the update equals one big batch), all-reduced across Horovod
workers, clipped to global norm 1.0 and applied by AdamWeightDecay at the scheduled
learning rate. Steps are `tf.function`s; the loop around them is plain Python:

    for step in range(start, total):
        loss = take_training_step(batches)        # tf.function
        log, checkpoint every N updates

Checkpoints go through `tf.train.CheckpointManager` as ``<output_dir>/model.ckpt-<step>``
with the model's variables under their checkpoint names, the optimizer slots and the
step: rerunning the same command after a kill restores the latest one and goes on from
there, skipping the batches it had already seen.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional, Tuple

import tensorflow as tf

from bertfam.runlog import RunLog, progress
from bertfam.tf.optimization import AdamWeightDecay, clip_by_global_norm, learning_rate

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "model.ckpt"


@dataclass(frozen=True)
class TrainConfig:
    output_dir: str
    learning_rate: float
    total_steps: int
    warmup_steps: int
    batch_size: int  # per worker and micro-batch
    accumulation_steps: int = 1
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 1
    log_every_steps: int = 1
    schedule: str = "adjusted"
    weight_decay_rate: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-6
    clip_norm: float = 1.0
    profile_steps: Optional[Tuple[int, int]] = None  # (start, end) updates to profile


class Trainer:
    """Owns the optimizer, the step counter and the checkpoints of one training run.

    `loss_fn(batch, training)` returns the mean loss of a batch; `variables` are the
    trainable variables by checkpoint name; `allreduce` averages a gradient across
    workers (identity in a single process); rank 0 alone writes.
    """

    def __init__(
        self,
        loss_fn: Callable,
        variables: Dict[str, tf.Variable],
        config: TrainConfig,
        *,
        is_main_process: bool = True,
        world_size: int = 1,
        allreduce: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
    ):
        self.loss_fn = loss_fn
        self.variables = variables
        self.config = config
        self.is_main_process = is_main_process
        self.world_size = world_size
        self.allreduce = allreduce
        self.optimizer = AdamWeightDecay(
            variables,
            weight_decay_rate=config.weight_decay_rate,
            beta_1=config.beta_1,
            beta_2=config.beta_2,
            epsilon=config.epsilon,
        )
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.checkpoint = tf.train.Checkpoint(
            model=variables, optimizer=self.optimizer, step=self.step
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            config.output_dir,
            max_to_keep=config.keep_checkpoint_max,
            checkpoint_name=CHECKPOINT_NAME,
        )
        self._names = list(variables)
        self._profiling = False
        self._accumulators = None
        if config.accumulation_steps > 1:
            self._accumulators = {
                name: tf.Variable(tf.zeros_like(v), trainable=False)
                for name, v in variables.items()
            }

    # -- restore ---------------------------------------------------------------------

    def restore_latest(self) -> bool:
        """Continue an interrupted run from its last checkpoint; False when there is none."""
        latest = self.manager.latest_checkpoint
        if latest is None:
            return False
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        log.info(
            "Resuming from %s (step %d of %d)", latest, int(self.step), self.config.total_steps
        )
        return True

    # -- steps -----------------------------------------------------------------------

    def _gradients(self, batch):
        with tf.GradientTape() as tape:
            loss = self.loss_fn(batch, training=True)
            scaled = loss / self.config.accumulation_steps
        grads = tape.gradient(scaled, [self.variables[n] for n in self._names])
        return loss, {
            n: tf.convert_to_tensor(g) for n, g in zip(self._names, grads) if g is not None
        }

    def _apply(self, grads: Dict[str, tf.Tensor]) -> tf.Tensor:
        if self.allreduce is not None:
            grads = {name: self.allreduce(grad) for name, grad in grads.items()}
        grads, _ = clip_by_global_norm(grads, self.config.clip_norm)
        rate = learning_rate(
            self.step,
            peak=self.config.learning_rate,
            total_steps=self.config.total_steps,
            warmup_steps=self.config.warmup_steps,
            schedule=self.config.schedule,
        )
        self.optimizer.apply(grads, rate)
        self.step.assign_add(1)
        return rate

    def _mean_over_workers(self, loss: tf.Tensor) -> tf.Tensor:
        # Logged loss is the global batch's, as one process with the whole batch reports.
        return self.allreduce(loss) if self.allreduce is not None else loss

    @tf.function
    def _single_batch_step(self, batch):
        loss, grads = self._gradients(batch)
        rate = self._apply(grads)
        return self._mean_over_workers(loss), rate

    @tf.function
    def _accumulate(self, batch):
        loss, grads = self._gradients(batch)
        for name, grad in grads.items():
            self._accumulators[name].assign_add(grad)
        return self._mean_over_workers(loss)

    @tf.function
    def _apply_accumulated(self):
        rate = self._apply({name: acc.read_value() for name, acc in self._accumulators.items()})
        for acc in self._accumulators.values():
            acc.assign(tf.zeros_like(acc))
        return rate

    def take_training_step(self, batches: Iterator) -> tuple:
        """One update from `accumulation_steps` micro-batches: (mean loss, learning rate)."""
        if self._accumulators is None:
            loss, rate = self._single_batch_step(next(batches))
            return float(loss), float(rate)
        losses = [
            float(self._accumulate(next(batches))) for _ in range(self.config.accumulation_steps)
        ]
        rate = self._apply_accumulated()
        return sum(losses) / len(losses), float(rate)

    # -- loop ------------------------------------------------------------------------

    def train(self, dataset: tf.data.Dataset, run_log: RunLog) -> None:
        """Run the remaining updates; `dataset` repeats and is in the same order every run."""
        config = self.config
        start = int(self.step)
        # Skip what an interrupted run consumed so the resumed run sees the same batches.
        batches = iter(dataset.skip(start * config.accumulation_steps))
        sequences_per_update = config.batch_size * config.accumulation_steps * self.world_size
        last_time, last_step = time.perf_counter(), start
        bar = progress(
            total=config.total_steps,
            initial=start,
            desc="train",
            unit="step",
            enabled=self.is_main_process,
        )
        with bar:
            while int(self.step) < config.total_steps:
                self._profile(int(self.step))
                loss, rate = self.take_training_step(batches)
                step = int(self.step)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if step % config.log_every_steps == 0 or step == config.total_steps:
                    now = time.perf_counter()
                    throughput = (
                        sequences_per_update * (step - last_step) / max(now - last_time, 1e-9)
                    )
                    last_time, last_step = now, step
                    run_log.log(
                        step, loss=loss, learning_rate=rate, sequences_per_second=throughput
                    )
                if self.is_main_process and (
                    step % config.save_checkpoints_steps == 0 or step == config.total_steps
                ):
                    self.manager.save(checkpoint_number=step)
            self._profile(int(self.step), finished=True)

    def _profile(self, step: int, finished: bool = False) -> None:
        """TensorFlow's profiler over updates [start, end) of --profile=START,END (rank 0)."""
        if self.config.profile_steps is None or not self.is_main_process:
            return
        start, end = self.config.profile_steps
        if step == start and not finished:
            tf.profiler.experimental.start(os.path.join(self.config.output_dir, "profile"))
            self._profiling = True
        elif self._profiling and (step == end or finished):
            tf.profiler.experimental.stop()
            self._profiling = False
