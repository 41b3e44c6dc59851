"""The custom training loop every TensorFlow script uses (fine-tuning and pre-training).

One update = `num_accumulation_steps` micro-batches whose gradients are summed (each loss
divided by the count, so the update equals one big batch), all-reduced across Horovod
workers, clipped to global norm 1.0 and applied by the optimizer the task chose
(`bertfam.tf.optimization.adamw` or `lamb`) at the scheduled learning rate. Steps are
`tf.function`s traced without AutoGraph, as every step and prediction function in the
repository is (the steps hold no Python control flow on tensors, and converting the
model's and optimizer's source to graph code took half of a run's first update: 6 of
12 s in a tiny run); the loop around them is plain Python:

    for step in range(start, total):
        loss, metrics = take_training_step(batches)   # tf.function
        log, checkpoint every N updates

The loss function returns ``(loss, metrics)``: the mean loss of the batch, which is
differentiated, and a dict of scalars logged beside it (pre-training's ``mlm_loss``,
``nsp_accuracy``...), averaged over micro-batches and workers as the loss is.

SIGTERM or SIGINT (a preempted pod, Ctrl-C) on any worker stops every worker after the
same update: rank 0 saves that update's checkpoint, says where in one line, and all exit
with status 143 (130) (`bertfam.preemption`); the same command then resumes.

Checkpoints are ``<output_dir>/model.ckpt-<step>`` in Google's layout
(`bertfam.tf.training_checkpoints`): the model's variables under their checkpoint names,
the optimizer slots and ``global_step``. Rerunning the same command after a kill restores
the latest one and goes on from there, skipping the batches it had already seen.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Dict, Iterator, Mapping, Optional, Tuple

import tensorflow as tf

from bertfam.errors import UserError
from bertfam.preemption import HANDLED, StopSignals, stop_run
from bertfam.runlog import RunLog, progress
from bertfam.tf.optimization import adamw, clip_by_global_norm, learning_rate
from bertfam.tf.run_config import RunConfig
from bertfam.tf.training_checkpoints import TrainingCheckpoints

log = logging.getLogger(__name__)


class DamagedDataError(UserError):
    """The training data stopped reading mid-run (a damaged TFRecord file)."""


# loss_fn(batch, training) -> (mean loss, {name: scalar})
LossFn = Callable[..., Tuple[tf.Tensor, Mapping[str, tf.Tensor]]]


class Trainer:
    """Owns the optimizer, the step counter and the checkpoints of one training run.

    `config` is the run's `RunConfig` (batch size, accumulation, learning rate and its
    warm-up share, checkpoint and summary intervals, optimizer constants); `total_steps`
    comes from the data. `variables` are the trainable variables by checkpoint name;
    `optimizer(variables, config)` builds the optimizer; `allreduce` averages a tensor
    across workers (identity in a single process); rank 0 alone writes.
    """

    def __init__(
        self,
        loss_fn: LossFn,
        variables: Dict[str, tf.Variable],
        config: RunConfig,
        total_steps: int,
        *,
        optimizer: Callable = adamw,
        is_main_process: bool = True,
        world_size: int = 1,
        allreduce: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
    ):
        self.loss_fn = loss_fn
        self.variables = variables
        self.config = config
        self.total_steps = total_steps
        self.warmup_steps = config.warmup_steps(total_steps)
        self.profile_steps = config.profile_steps()
        self.is_main_process = is_main_process
        self.world_size = world_size
        self.allreduce = allreduce
        self.optimizer = optimizer(variables, config)
        # The optimizer counts the updates it applied; that count is the run's step.
        self.step = self.optimizer.iterations
        self.checkpoints = TrainingCheckpoints(
            config.checkpoint_dir,
            {**variables, **self.optimizer.state},
            config.keep_checkpoint_max,
            config.checkpoint_names,
        )
        self._names = list(variables)
        self._profiling = False
        self._accumulators = None
        if config.num_accumulation_steps > 1:
            self._accumulators = {
                name: tf.Variable(tf.zeros_like(v), trainable=False)
                for name, v in variables.items()
            }

    # -- restore ---------------------------------------------------------------------

    def restore_latest(self) -> bool:
        """Continue an interrupted run from its last checkpoint; False when there is none."""
        restored = self.checkpoints.restore_newest()
        if restored is None:
            return False
        log.info("Resuming from %s (step %d of %d)", restored, int(self.step), self.total_steps)
        return True

    # -- steps -----------------------------------------------------------------------

    def _gradients(self, batch):
        with tf.GradientTape() as tape:
            loss, metrics = self.loss_fn(batch, training=True)
            scaled = loss / self.config.num_accumulation_steps
        grads = tape.gradient(scaled, [self.variables[n] for n in self._names])
        grads = {n: tf.convert_to_tensor(g) for n, g in zip(self._names, grads) if g is not None}
        return self._mean_over_workers({"loss": loss, **metrics}), grads

    def _apply(self, grads: Dict[str, tf.Tensor]) -> tf.Tensor:
        if self.allreduce is not None:
            grads = {name: self.allreduce(grad) for name, grad in grads.items()}
        grads, _ = clip_by_global_norm(grads, self.config.clip_norm)
        rate = learning_rate(
            self.step,
            peak=self.config.learning_rate,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
            schedule=self.config.schedule,
            power=self.config.lr_power,
            warmup_start=self.config.start_warmup_step,
            end_rate=self.config.end_learning_rate,
        )
        self.optimizer.apply(grads, rate)  # counts the update: self.step + 1
        return rate

    def _mean_over_workers(self, scalars: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        # Logged values are the global batch's, as one process with the whole batch reports.
        if self.allreduce is None:
            return scalars
        return {name: self.allreduce(value) for name, value in scalars.items()}

    @tf.function(autograph=False)
    def _single_batch_step(self, batch):
        scalars, grads = self._gradients(batch)
        rate = self._apply(grads)
        return scalars, rate

    @tf.function(autograph=False)
    def _accumulate(self, batch):
        scalars, grads = self._gradients(batch)
        for name, grad in grads.items():
            self._accumulators[name].assign_add(grad)
        return scalars

    @tf.function(autograph=False)
    def _apply_accumulated(self):
        rate = self._apply({name: acc.read_value() for name, acc in self._accumulators.items()})
        for acc in self._accumulators.values():
            acc.assign(tf.zeros_like(acc))
        return rate

    def take_training_step(self, batches: Iterator) -> Tuple[Dict[str, float], float]:
        """One update from `num_accumulation_steps` micro-batches: ({"loss": mean loss,
        metric: mean value...}, learning rate)."""
        if self._accumulators is None:
            scalars, rate = self._single_batch_step(next(batches))
            return {name: float(value) for name, value in scalars.items()}, float(rate)
        count = self.config.num_accumulation_steps
        micro = [self._accumulate(next(batches)) for _ in range(count)]
        rate = self._apply_accumulated()
        means = {name: sum(float(m[name]) for m in micro) / count for name in micro[0]}
        return means, float(rate)

    # -- loop ------------------------------------------------------------------------

    def train(self, dataset: tf.data.Dataset, run_log: RunLog, until: Optional[int] = None) -> None:
        """Run the remaining updates (up to update `until`, when given: an epoch's end);
        `dataset` repeats and is in the same order every run."""
        config = self.config
        start = int(self.step)
        stop = self.total_steps if until is None else min(until, self.total_steps)
        # Skip what an interrupted run consumed so the resumed run sees the same batches.
        batches = iter(dataset.skip(start * config.num_accumulation_steps))
        sequences_per_update = (
            config.train_batch_size * config.num_accumulation_steps * self.world_size
        )
        last_time, last_step = time.perf_counter(), start
        bar = progress(
            total=stop,
            initial=start,
            desc="train",
            unit="step",
            enabled=self.is_main_process and config.progress_bars,
        )
        saved, received = None, 0
        with bar, StopSignals() as signals:
            while int(self.step) < stop:
                self._profile(int(self.step))
                try:
                    scalars, rate = self.take_training_step(batches)
                except tf.errors.DataLossError as error:  # a record damaged mid-file
                    raise DamagedDataError(
                        f"a training record cannot be read ({error.message.splitlines()[0]}) "
                        f"at update {int(self.step) + 1}: replace the damaged file; the "
                        "checkpoints written so far are kept"
                    ) from None
                step = int(self.step)
                bar.update(1)
                bar.set_postfix(loss=f"{scalars['loss']:.4f}")
                if step % config.save_summary_steps == 0 or step == stop:
                    now = time.perf_counter()
                    throughput = (
                        sequences_per_update * (step - last_step) / max(now - last_time, 1e-9)
                    )
                    last_time, last_step = now, step
                    run_log.log(
                        step, **scalars, learning_rate=rate, sequences_per_second=throughput
                    )
                if (self.is_main_process and config.saves_checkpoints) and (
                    step % config.save_checkpoints_steps == 0 or step == stop
                ):
                    saved = (step, self.checkpoints.save(step))
                received = self._agreed_signal(signals.received)
                if received:
                    break
            self._profile(int(self.step), finished=True)
        if received:  # after the progress bar has closed, so the line is the last one
            self._stop(received, int(self.step), saved)

    def _agreed_signal(self, received: int) -> int:
        """The stop signal any worker received (SIGTERM before SIGINT), 0 if none: every
        worker learns it after the same update, so all save and stop together."""
        if self.allreduce is None:
            return received
        seen = tf.constant([float(received == number) for number in HANDLED])
        seen = self.allreduce(seen).numpy()
        return next((number for number, mean in zip(HANDLED, seen) if mean > 0), 0)

    def _stop(self, received: int, step: int, saved) -> None:
        """Preempted: rank 0 checkpoints this update (if not just done), says so, all exit."""
        checkpoint = None
        if self.is_main_process and self.config.saves_checkpoints:
            checkpoint = saved[1] if saved and saved[0] == step else self.checkpoints.save(step)
        hint = self.config.resume_hint
        stop_run(received, step, checkpoint, not self.is_main_process, hint)

    def _profile(self, step: int, finished: bool = False) -> None:
        """TensorFlow's profiler over updates [start, end) of --profile=START,END (rank 0)."""
        if self.profile_steps is None or not self.is_main_process:
            return
        start, end = self.profile_steps
        if step == start and not finished:
            tf.profiler.experimental.start(os.path.join(self.config.output_dir, "profile"))
            self._profiling = True
        elif self._profiling and (step == end or finished):
            tf.profiler.experimental.stop()
            self._profiling = False
