"""The fine-tuning loop both PyTorch fine-tuning scripts share.

A script starts its process with `bertfam.torch.start.start_run` (device, processes, seeds,
precision) and makes the model, its new task head drawn from ``--seed``
(`built_from_seed`). `Trainer` then runs HF v3.0.2's loop: AdamW over two parameter
groups (no weight decay on biases and LayerNorm weights), linear warm-up then linear
decay, gradient accumulation, clipping, a ``checkpoint-<step>/`` folder every
``--save_steps`` (`bertfam.torch.checkpoint`; resuming restores optimizer, scheduler and
RNG state), JSON-lines metrics, TensorBoard and a progress bar. A script supplies the
model, its loss on a batch and the arrays.

In graph mode the forward and loss are compiled with `torch.compile` (upstream traced
them with TorchScript, which modern PyTorch replaces), with the op-list casts entered
inside the compiled region (entered around it, Inductor miscompiles dropout under the
casts).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
from torch import nn

from bertfam.preemption import StopSignals, stop_run
from bertfam.runlog import RunLog, Throughput, progress
from bertfam.torch.checkpoint import (
    SavedModel,
    restore_checkpoint,
    save_checkpoint,
    write_model_folder,
)
from bertfam.torch.distributed import agree_on_signal
from bertfam.torch.start import Run, TrainingError

log = logging.getLogger(__name__)

Batch = Dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]

NO_DECAY = ("bias", "LayerNorm.weight")  # HF v3.0.2's weight-decay exclusions


# -- batches -----------------------------------------------------------------------------


def epoch_batches(
    num_examples: int, per_worker: int, run: Run, epoch: int, drop_last: bool
) -> List[np.ndarray]:
    """This worker's example indices for each batch of one epoch.

    Every worker draws the same permutation (seed + epoch) and cuts it into global
    batches of `per_worker * world_size`; worker r keeps rows r*B..(r+1)*B of each. So N
    workers together see exactly the batches one process sees at N times the batch,
    which is why they train alike; and a resumed run draws the same order again. With
    several workers a last partial global batch is dropped (it cannot split evenly).
    """
    order = np.random.default_rng(run.config.seed + epoch).permutation(num_examples)
    world, rank = run.world_size, run.launch.rank
    global_batch = per_worker * world
    batches = []
    for start in range(0, num_examples, global_batch):
        rows = order[start : start + global_batch]
        if len(rows) < global_batch and (drop_last or world > 1):
            break
        batches.append(rows[rank * per_worker : (rank + 1) * per_worker])
    return batches


def to_device(arrays: Dict[str, np.ndarray], rows: np.ndarray, device: torch.device) -> Batch:
    return {
        name: torch.from_numpy(np.ascontiguousarray(values[rows])).to(device, non_blocking=True)
        for name, values in arrays.items()
    }


# -- optimizer ---------------------------------------------------------------------------


def parameter_groups(model: nn.Module, weight_decay: float) -> List[dict]:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if any(part in name for part in NO_DECAY) else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, run: Run) -> torch.optim.Optimizer:
    """AdamW; with --use_fused_adam, the fused kernel (Habana's FusedAdamW on Gaudi)."""
    config = run.config
    groups = parameter_groups(model, config.weight_decay)
    if config.use_fused_adam and run.kind == "hpu":
        from habana_frameworks.torch.hpex.optimizers import FusedAdamW

        return FusedAdamW(groups, lr=config.learning_rate, eps=config.adam_epsilon)
    return torch.optim.AdamW(
        groups,
        lr=config.learning_rate,
        eps=config.adam_epsilon,
        fused=True if config.use_fused_adam else None,
        foreach=None if config.use_fused_adam else False,
    )


def linear_schedule(optimizer, warmup_steps: int, total_steps: int):
    """HF's get_linear_schedule_with_warmup: 0 -> lr over warm-up, then down to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_clipper(parameters: List[nn.Parameter], run: Run) -> Callable[[], None]:
    max_norm = run.config.max_grad_norm
    if run.config.use_fused_clip_norm and run.kind == "hpu":
        from habana_frameworks.torch.hpex.normalization import FusedClipNorm

        fused = FusedClipNorm(parameters, max_norm)
        return lambda: fused.clip_norm(parameters)
    foreach = run.config.use_fused_clip_norm
    return lambda: nn.utils.clip_grad_norm_(parameters, max_norm, foreach=foreach)


# -- the loop ----------------------------------------------------------------------------


class Trainer:
    def __init__(self, run: Run, model: nn.Module, loss_fn: LossFn, saved: SavedModel):
        self.run = run
        self.config = run.config
        self.model = model.to(run.device)
        self.saved = saved
        self.wrapped: nn.Module = self.model
        if run.world_size > 1:
            device_ids = [run.device.index] if run.kind == "gpu" else None
            self.wrapped = nn.parallel.DistributedDataParallel(
                self.model, device_ids=device_ids, bucket_cap_mb=230
            )
        self._loss = self._loss_step(loss_fn)
        self.epoch = 0.0  # epochs trained, as HF's Trainer reports it

    def _loss_step(self, loss_fn: LossFn) -> Callable[[Batch], torch.Tensor]:
        def forward_and_loss(batch: Batch) -> torch.Tensor:
            with self.run.precision():
                return loss_fn(self.wrapped, batch).float()

        if self.config.mode != "graph":
            return forward_and_loss
        return self.run.compile(forward_and_loss, cuda_graphs=True)

    def train(
        self,
        arrays: Dict[str, np.ndarray],
        run_log: RunLog,
        resume_from: Optional[Path] = None,
        evaluate: Optional[Callable[[], Dict[str, float]]] = None,
    ) -> int:
        """Train on `arrays` (name -> [N, ...]); returns the number of updates made."""
        config, run = self.config, self.run
        num_examples = len(next(iter(arrays.values())))
        per_epoch = len(
            epoch_batches(num_examples, config.train_batch_size, run, 0, config.drop_last)
        )
        updates_per_epoch = per_epoch // config.gradient_accumulation_steps
        if updates_per_epoch < 1:
            raise TrainingError(
                f"{num_examples} training examples give no full update at "
                f"{config.train_batch_size} a batch x {config.gradient_accumulation_steps} "
                f"accumulation x {run.world_size} process(es): use smaller batches"
            )
        total = config.total_updates(updates_per_epoch)
        optimizer = make_optimizer(self.model, run)
        scheduler = linear_schedule(optimizer, config.warmup_steps, total)
        clip = make_clipper([p for p in self.model.parameters() if p.requires_grad], run)
        step = 0
        if resume_from is not None:
            step = restore_checkpoint(resume_from, optimizer, scheduler, run.device)
            log.info("Resuming from %s at update %d", resume_from, step)
        log.info(
            "%d examples, %d updates of %d x %d x %d sequences (batch x accumulation x "
            "processes), warm-up %d",
            num_examples, total, config.train_batch_size, config.gradient_accumulation_steps,
            run.world_size, config.warmup_steps,
        )  # fmt: skip
        self.wrapped.train()
        throughput = Throughput()
        interval_loss = torch.zeros((), device=run.device)
        bar = progress(total=total, initial=step, desc="train", unit="update", enabled=run.is_main)
        last_folder, saved_now, received = None, False, 0
        with StopSignals() as signals:
            while step < total and not received:
                epoch, position = divmod(step, updates_per_epoch)
                batches = epoch_batches(
                    num_examples, config.train_batch_size, run, epoch, config.drop_last
                )
                for micro in self._updates(batches, position):
                    interval_loss += self.update(micro, arrays, optimizer, scheduler, clip)
                    step += 1
                    bar.update(1)
                    if step % config.logging_steps == 0 or (
                        step == 1 and config.logging_first_step
                    ):
                        count = config.logging_steps if step % config.logging_steps == 0 else 1
                        record = run_log.log(
                            step,
                            loss=interval_loss.item() / count,
                            learning_rate=scheduler.get_last_lr()[0],
                            epoch=step / updates_per_epoch,
                            sequences_per_second=throughput.tick(
                                count * len(micro[0]) * len(micro) * run.world_size
                            ),
                        )
                        interval_loss.zero_()
                        bar.set_postfix(loss=f"{record['loss']:.4f}")
                        if evaluate is not None and config.evaluate_during_training:
                            run_log.log(step, **evaluate())
                            self.wrapped.train()
                    last_folder = None  # rank 0's folder; every rank knows whether one was saved
                    saved_now = bool(config.save_steps and step % config.save_steps == 0)
                    if saved_now:
                        last_folder = self.save_checkpoint(step, optimizer, scheduler)
                    received = agree_on_signal(signals.received, run.world_size, run.device)
                    if received or step >= total:
                        break
        bar.close()
        self.epoch = step / updates_per_epoch
        if received:  # preempted: this update's checkpoint, one line, the signal's status
            folder = last_folder if saved_now else self.save_checkpoint(step, optimizer, scheduler)
            hint = f"rerun with --model_name_or_path {folder} --overwrite_output_dir to resume"
            stop_run(received, step, str(folder), not run.is_main, hint)
        return step

    def _updates(self, batches: List[np.ndarray], skip: int) -> Iterator[List[np.ndarray]]:
        """Groups of `gradient_accumulation_steps` batches, after the first `skip` groups."""
        accumulation = self.config.gradient_accumulation_steps
        for start in range(skip * accumulation, len(batches) - accumulation + 1, accumulation):
            yield batches[start : start + accumulation]

    def update(self, micro_batches, arrays, optimizer, scheduler, clip) -> torch.Tensor:
        """One optimizer update over the micro-batches; returns its (mean) loss."""
        total = torch.zeros((), device=self.run.device)
        for index, rows in enumerate(micro_batches):
            batch = to_device(arrays, rows, self.run.device)
            last = index == len(micro_batches) - 1
            sync = (
                contextlib.nullcontext()
                if last or self.wrapped is self.model
                else self.wrapped.no_sync()
            )
            with sync:
                loss = self._loss(batch) / len(micro_batches)
                loss.backward()
            self.run.mark_step()
            total += loss.detach()
        clip()
        if self.run.habana_hmp is not None:
            with self.run.habana_hmp.disable_casts():
                optimizer.step()
        else:
            optimizer.step()
        self.run.mark_step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return total

    def save_checkpoint(self, step: int, optimizer, scheduler) -> Optional[Path]:
        """checkpoint-<step>/ (rank 0; the folder, None elsewhere); every rank waits for it."""
        folder = None
        if self.run.is_main:
            folder = save_checkpoint(
                self.model, self.saved, self.config, step, optimizer, scheduler
            )
            log.info("Saved %s", folder)
        self.run.barrier()
        return folder

    def save_final(self) -> None:
        """The trained model in --output_dir, as HF's save_pretrained leaves it (rank 0)."""
        if self.run.is_main:
            output = Path(self.config.output_dir)
            write_model_folder(self.model, self.saved, output, self.config)
            log.info("Saved the model to %s", output)
        self.run.barrier()

    @torch.no_grad()
    def predict(
        self, arrays: Dict[str, np.ndarray], forward: Callable[[nn.Module, Batch], tuple]
    ) -> List[np.ndarray]:
        """`forward`'s outputs over every row of `arrays`, in order, as float32 arrays."""
        self.model.eval()
        num_examples = len(next(iter(arrays.values())))
        size = self.config.eval_batch_size
        outputs: List[List[np.ndarray]] = []
        rows = np.arange(num_examples)
        bar = progress(
            total=num_examples, desc="evaluate", unit="example", enabled=self.run.is_main
        )
        for start in range(0, num_examples, size):
            batch = to_device(arrays, rows[start : start + size], self.run.device)
            with self.run.precision():
                results = forward(self.model, batch)
            self.run.mark_step()
            for index, result in enumerate(results):
                if len(outputs) <= index:
                    outputs.append([])
                outputs[index].append(result.float().cpu().numpy())
            bar.update(len(batch[next(iter(batch))]))
        bar.close()
        return [np.concatenate(parts) for parts in outputs]
