"""NVIDIA's PyTorch BERT pre-training loop: NVLAMB, accumulation, allreduce, resume.

One update on each of W workers = ``gradient_accumulation_steps`` micro-batches of
``train_batch_size`` sequences (`bertfam.torch.pretraining_data`), their
gradients summed, then summed across workers: through DDP on the last micro-batch, or,
with ``--allreduce_post_accumulation``, once per update over flat buckets of the
gradients (in half precision with ``--allreduce_post_accumulation_fp16``: fp16 on GPUs,
bf16 where fp16 is not native). NVLAMB (`bertfam.torch.lamb`, global-norm clipping
inside) then steps at the `PolyWarmUpScheduler`'s rate.

The loss of an update is that of one batch of all its sequences: the masked-LM
cross-entropy summed over every prediction of every micro-batch on every worker,
divided by their count, plus the next-sentence cross-entropy over the sequences. Each
micro-batch therefore divides its sums by the update's counts, which every worker adds
up once before the update (one small all-reduce). Upstream averages per micro-batch
instead, which is the same only when every micro-batch holds as many predictions; so
accumulation and workers here train exactly as the whole batch would.

Checkpoints (`bertfam.torch.pretraining_checkpoint`) carry the data position and every
rank's generator state, so a killed run resumed from its last ``ckpt_<step>.pt`` ends
with the weights of an uninterrupted one. Phase 2 starts from phase 1's last checkpoint:
its weights and optimizer moments, step counts and schedule anew, its own data.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from bertfam.checkpoint_names import TORCH_PRETRAINING
from bertfam.dllogger import DlLogger
from bertfam.preemption import StopSignals, stop_run
from bertfam.runlog import RunLog, progress
from bertfam.torch.checkpoint import VOCABULARY_PADDING
from bertfam.torch.distributed import agree_on_signal
from bertfam.torch.lamb import PolyWarmUpScheduler, make_lamb
from bertfam.torch.pretraining_args import PretrainingConfig
from bertfam.torch.pretraining_checkpoint import (
    checkpoint_contents,
    newest_readable_checkpoint,
    save_checkpoint,
    saved_position,
)
from bertfam.torch.pretraining_data import ReadPosition, ShardReader, epoch_order
from bertfam.torch.start import Run, TrainingError

log = logging.getLogger(__name__)

Batch = Dict[str, torch.Tensor]
# losses(model, batch) -> (summed masked-LM cross-entropy, summed next-sentence one)
LossesFn = Callable[[nn.Module, Batch], Tuple[torch.Tensor, torch.Tensor]]
BUCKET_ELEMENTS = 32 * 2**20  # gradients all-reduced 128 MB (fp32) at a time


@dataclass
class Start:
    """Where a run starts: its phase's update count, data position and saved state."""

    step: int = 0
    position: ReadPosition = ReadPosition()
    checkpoint: Optional[dict] = None  # the ckpt it continues from: its optimizer moments
    resume: bool = False  # its schedule, step, data and generators too (phase 2's start: no)


def find_start(config: PretrainingConfig, shards: List[Path]) -> Start:
    """What --resume_from_checkpoint, --phase2 and --init_checkpoint make of the run's
    directory, decided (and the checkpoint read) before anything is written."""
    if config.init_checkpoint:
        return Start()  # a warm start: the weights only, loaded by the script
    if not config.resume_from_checkpoint:
        return Start()
    newest = newest_readable_checkpoint(config.output_dir, config.resume_step)
    if newest is None:
        if config.phase2:
            raise TrainingError(
                f"--phase2 --resume_from_checkpoint: no ckpt_<step>.pt in {config.output_dir} "
                "to start phase 2 from (run phase 1 there first)"
            )
        log.info("No checkpoint in %s yet: starting from scratch", config.output_dir)
        return Start()
    path, contents = newest
    file_step = TORCH_PRETRAINING.step(path)
    # Upstream's files do not say their phase; like its resume, take a step past phase 1's
    # end for phase 2's.
    in_phase2 = contents.get("phase2", file_step > config.phase1_end_step)
    if config.phase2 and not in_phase2:
        log.info("Phase 2 starts from %s (phase 1's update %d)", path, file_step)
        return Start(checkpoint=contents)
    step = file_step - config.step_offset
    position, exact = saved_position(
        path, contents, lambda epoch: [str(p) for p in epoch_order(shards, config.seed, epoch)]
    )
    log.info("Resuming from %s (update %d of %d)", path, step, config.max_steps)
    if not exact:
        log.warning(
            "%s was written by another program: resuming at the start of shard %d of epoch %d,"
            " with fresh random generators, as NVIDIA's resume does", path, position.f_id,
            position.epoch,
        )  # fmt: skip
    return Start(step=step, position=position, checkpoint=contents, resume=True)


def padded_vocab_size(vocab_size: int, multiple: int = VOCABULARY_PADDING) -> int:
    """Upstream pads the vocabulary to a multiple of 8 (30522 -> 30528): tensor cores
    and Gaudi's matmul engine take whole tiles."""
    return int(math.ceil(vocab_size / multiple) * multiple)


# -- allreduce --------------------------------------------------------------------------


def allreduce_gradients(parameters: List[nn.Parameter], half: Optional[torch.dtype]) -> None:
    """Sum every gradient across workers, in flat buckets (`half`: the wire dtype)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    bucket: List[torch.Tensor] = []
    size = 0
    for grad in grads + [None]:
        if grad is not None and (size + grad.numel() <= BUCKET_ELEMENTS or not bucket):
            bucket.append(grad)
            size += grad.numel()
            continue
        if bucket:
            flat = torch.cat([g.reshape(-1) for g in bucket])
            wire = flat.to(half) if half is not None else flat
            dist.all_reduce(wire, op=dist.ReduceOp.SUM)
            if half is not None:
                flat.copy_(wire)
            offset = 0
            for g in bucket:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()
        bucket, size = ([grad], grad.numel()) if grad is not None else ([], 0)


def wire_dtype(run: Run) -> torch.dtype:
    # fp16 where collectives and arithmetic take it natively (NVIDIA GPUs); bf16 on Gaudi
    # and CPUs, whose collectives reduce bf16.
    return torch.float16 if run.kind == "gpu" else torch.bfloat16


# -- the loop ---------------------------------------------------------------------------


class Pretrainer:
    def __init__(self, run: Run, model: nn.Module, losses: LossesFn, shards: List[Path]):
        self.run, self.config = run, run.config
        self.model = model.to(run.device)
        self.shards = shards
        # Checkpointed layers run their forward again inside backward, outside the
        # forward's precision context: they enter it themselves.
        model.bert.encoder.layer_context = run.precision
        world = run.world_size
        self.post_accumulation = self.config.allreduce_post_accumulation and world > 1
        self.wrapped: nn.Module = self.model
        if world > 1 and not self.post_accumulation:
            device_ids = [run.device.index] if run.kind == "gpu" else None
            self.wrapped = nn.parallel.DistributedDataParallel(
                self.model, device_ids=device_ids, bucket_cap_mb=230
            )
        self._losses = self._compiled(losses)
        self.optimizer = make_lamb(
            self.model, self.config.learning_rate, self.config.use_fused_lamb, run.kind
        )
        self.scheduler = PolyWarmUpScheduler(
            self.optimizer, self.config.warmup_proportion, self.config.max_steps
        )
        self.step = 0
        self.position = ReadPosition()

    def _compiled(self, losses: LossesFn) -> Callable[[Batch], Tuple[torch.Tensor, ...]]:
        def forward_and_losses(batch: Batch):
            with self.run.precision():
                return losses(self.wrapped, batch)

        if self.config.mode != "graph":
            return forward_and_losses
        # No CUDA graphs: at phase-1 sizes the GPU, not the host, sets the pace (BERT-base
        # 64 x 128 compiled: 1.15x HuggingFace without them), and accumulating
        # micro-batches under them is not measured.
        return self.run.compile(forward_and_losses)

    # -- starting ----------------------------------------------------------------------

    def restore(self, start: Start) -> None:
        """Load what `start` continues: optimizer moments, and for a resume the schedule,
        step, data position and generator states too."""
        saved = start.checkpoint
        if saved is None:
            return
        if "optimizer" in saved:
            self.optimizer.load_state_dict(saved["optimizer"])
        if start.resume:
            if "scheduler" in saved:  # upstream's have none: the rate follows the optimizer's count
                self.scheduler.load_state_dict(saved["scheduler"])
            self.step, self.position = start.step, start.position
            self._restore_rng(saved.get("rng"))
        else:  # phase 2: phase 1's moments, its own step count and schedule (as upstream)
            for group in self.optimizer.param_groups:
                group["step"] = 0
                group["lr"] = group["initial_lr"] = self.config.learning_rate
            self.scheduler = PolyWarmUpScheduler(
                self.optimizer, self.config.warmup_proportion, self.config.max_steps
            )

    def _rng_states(self) -> Optional[list]:
        state = {"cpu": torch.get_rng_state()}
        if self.run.kind == "gpu":
            state["cuda"] = torch.cuda.get_rng_state(self.run.device)
        if self.run.world_size == 1:
            return [state]
        gathered = [None] * self.run.world_size
        dist.all_gather_object(gathered, state)
        return gathered

    def _restore_rng(self, states: Optional[list]) -> None:
        rank = self.run.launch.rank
        if not states or len(states) != self.run.world_size:
            return  # another world size: the generators start from the seed instead
        torch.set_rng_state(states[rank]["cpu"])
        if "cuda" in states[rank] and self.run.kind == "gpu":
            torch.cuda.set_rng_state(states[rank]["cuda"], self.run.device)

    # -- one update --------------------------------------------------------------------

    def _to_device(self, arrays: Dict[str, np.ndarray]) -> Batch:
        pin = self.run.kind == "gpu"
        batch = {}
        for name, values in arrays.items():
            tensor = torch.from_numpy(values)
            if pin:
                tensor = tensor.pin_memory()
            batch[name] = tensor.to(self.run.device, non_blocking=True)
        return batch

    def _update_counts(self, micro_batches: List[Dict[str, np.ndarray]]) -> torch.Tensor:
        """[predictions, sequences] of the whole update, every worker's summed."""
        predictions = sum(int((b["masked_labels"] != -1).sum()) for b in micro_batches)
        sequences = sum(len(b["input_ids"]) for b in micro_batches)
        counts = torch.tensor([predictions, sequences], dtype=torch.float64)
        if self.run.world_size > 1:
            counts = counts.to(self.run.device)
            dist.all_reduce(counts)
        return counts.cpu().clamp(min=1)

    def update(self, micro_batches: List[Dict[str, np.ndarray]]) -> torch.Tensor:
        """One optimizer update; returns this worker's share of its loss (detached)."""
        predictions, sequences = (float(c) for c in self._update_counts(micro_batches))
        # DDP averages gradients over workers where the loss wants their sum.
        scale = self.run.world_size if self.wrapped is not self.model else 1
        total = torch.zeros((), device=self.run.device)
        for index, arrays in enumerate(micro_batches):
            last = index == len(micro_batches) - 1
            sync = self.wrapped.no_sync() if self.wrapped is not self.model and not last else None
            with sync if sync is not None else contextlib.nullcontext():
                mlm, nsp = self._losses(self._to_device(arrays))
                loss = mlm / predictions + nsp / sequences
                (loss * scale).backward()
            self.run.mark_step()
            total += loss.detach()
        if self.post_accumulation:
            half = wire_dtype(self.run) if self.config.allreduce_post_accumulation_fp16 else None
            allreduce_gradients(list(self.model.parameters()), half)
        self.scheduler.step()  # this update's rate, from the optimizer's count (upstream's order)
        if self.run.habana_hmp is not None:
            with self.run.habana_hmp.disable_casts():
                self.optimizer.step()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.run.mark_step()
        return total

    # -- the run -----------------------------------------------------------------------

    def checkpoint_contents(self) -> dict:
        order = epoch_order(self.shards, self.config.seed, self.position.epoch)
        return checkpoint_contents(
            self.model.state_dict(),
            self.optimizer.state_dict(),
            [str(path) for path in order],
            self.position,
            scheduler=self.scheduler.state_dict(),
            global_step=self.step,
            phase2=self.config.phase2,
            rng=self._rng_states(),
        )

    def save(self) -> None:
        contents = self.checkpoint_contents()  # every rank: the generator states gather
        if self.run.is_main:
            save_checkpoint(self.config.output_dir, self.step + self.config.step_offset, contents)
        self.run.barrier()

    def train(self, run_log: RunLog, dllog: DlLogger) -> float:
        """Updates until --max_steps (or --steps_this_run more); returns the last loss."""
        config, run = self.config, self.run
        stop = config.max_steps
        if config.steps_this_run > 0:
            stop = min(stop, self.step + config.steps_this_run)
        reader = ShardReader(
            self.shards, config.train_batch_size, config.seed, run.launch.rank, run.world_size,
            config.max_seq_length, config.max_predictions_per_seq,
        )  # fmt: skip
        batches = reader.batches(self.position)
        per_update = config.update_batch * run.world_size
        self.wrapped.train()
        bar = progress(
            total=config.max_steps, initial=self.step, desc="pretrain", unit="update",
            enabled=run.is_main and not config.disable_progress_bar,
        )  # fmt: skip
        if config.tqdm_smoothing is not None:
            bar.smoothing = config.tqdm_smoothing
        interval_loss = torch.zeros((), device=run.device)
        interval_start, interval_steps, times = time.perf_counter(), 0, []
        last_loss = math.nan
        received, saved_now = 0, False
        try:
            with StopSignals() as signals:
                while self.step < stop and not received:
                    micro = []
                    for _ in range(config.gradient_accumulation_steps):
                        self.position, arrays = next(batches)
                        micro.append(arrays)
                    interval_loss += self.update(micro)
                    self.step += 1
                    interval_steps += 1
                    bar.update(1)
                    finished = self.step == stop
                    if self.step % config.log_freq == 0 or finished:
                        last_loss = self._reduced(interval_loss) / interval_steps
                        elapsed = time.perf_counter() - interval_start
                        times.append(elapsed / interval_steps)
                        rate = self.scheduler.get_last_lr()[0]
                        record = run_log.log(
                            self.step, loss=last_loss, learning_rate=rate,
                            sequences_per_second=per_update * interval_steps / elapsed,
                        )  # fmt: skip
                        dllog.log(
                            [self.position.epoch, self.step + config.step_offset],
                            {
                                "average_loss": last_loss,
                                "step_loss": last_loss,
                                "learning_rate": rate,
                                "average_training_time_step": elapsed / interval_steps,
                                "average_perf_per_step": per_update * interval_steps / elapsed,
                            },
                        )
                        bar.set_postfix(loss=f"{record['loss']:.4f}")
                        interval_loss.zero_()
                        interval_start, interval_steps = time.perf_counter(), 0
                    saved_now = not config.skip_checkpoint and (
                        self.step % config.num_steps_per_checkpoint == 0 or finished
                    )
                    if saved_now:
                        self.save()
                    received = agree_on_signal(signals.received, run.world_size, run.device)
        finally:
            bar.close()
            reader.close()
        if received:  # preempted: this update's checkpoint, one line, the signal's status
            checkpoint = None
            if not config.skip_checkpoint:
                if not saved_now:
                    self.save()
                step = self.step + config.step_offset
                checkpoint = str(TORCH_PRETRAINING.path(config.output_dir, step))
            hint = "rerun with --resume_from_checkpoint to resume"
            stop_run(received, self.step, checkpoint, not run.is_main, hint)
        if times:
            mean_time = float(np.mean(times))
            dllog.log(
                [],
                {
                    "final_loss": last_loss,
                    "average_training_time_step": mean_time,
                    "average_perf_per_step": per_update / mean_time,
                },
            )
        return last_loss

    def _reduced(self, local: torch.Tensor) -> float:
        """The update loss: every worker's share added up."""
        if self.run.world_size > 1:
            local = local.clone()
            dist.all_reduce(local)
        return float(local)
