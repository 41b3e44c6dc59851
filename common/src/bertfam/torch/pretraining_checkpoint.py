"""``ckpt_<step>.pt``, the checkpoints of NVIDIA's PyTorch pre-training, in its layout.

A file is the dict NVIDIA's ``run_pretraining.py`` writes and reads back:

- ``model``: the state dict under NVIDIA's names (`bertfam.checkpoints.NVIDIA_KEYS`:
  HuggingFace's, with ``dense_act`` for the three Linear+activation pairs and the
  masked-LM bias once), the vocabulary padded as trained;
- ``optimizer``: LAMB's state (``exp_avg``/``exp_avg_sq``, the count in the groups);
- ``files``: ``[f_id] + files``, the epoch's shard order after the index of the shard the
  run continues from (rank r of W reads ``files[1:][(f_id * W + r) % len]``);
- ``epoch``, and ``data_loader``: None (upstream pickles its DataLoader there; a resume
  from None reads shard ``f_id`` from its start, as ours does at a shard's end).

What an exact resume needs besides sits under keys of our own, which NVIDIA's code never
reads: ``scheduler``, ``global_step`` (the phase's update count), ``phase2``,
``position`` (epoch, shard step and next micro-batch) and ``rng`` (every rank's torch
generator states). The step in the name is the phase's count, plus ``--phase1_end_step``
in phase 2, as upstream names them.

Read back, a checkpoint of ours resumes exactly; one of NVIDIA's or Habana's (no
``position``) resumes at the start of the shard its ``files`` name, as theirs would.
Files are written through a temporary name and renamed, so a kill leaves the previous
checkpoint intact; then all but the newest `KEEP` are deleted, as upstream keeps 3.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from bertfam.atomic import atomic_write
from bertfam.checkpoint_names import TORCH_PRETRAINING
from bertfam.checkpoints import NVIDIA_KEYS, CheckpointError, read_torch_file
from bertfam.torch.pretraining_data import ReadPosition

log = logging.getLogger(__name__)

KEEP = 3


def checkpoint_contents(
    model_state: Dict[str, torch.Tensor],
    optimizer_state: dict,
    shard_order: List[str],
    position: ReadPosition,
    **exact_resume: Any,
) -> Dict[str, Any]:
    """NVIDIA's dict for a model (HuggingFace-named `model_state`) read up to `position`
    in the epoch whose `shard_order` it is; `exact_resume`, our own keys, after them."""
    return {
        "model": NVIDIA_KEYS.from_hf(model_state),
        "optimizer": optimizer_state,
        "files": [position.f_id, *shard_order],
        "epoch": position.epoch,
        "data_loader": None,
        **exact_resume,
        "position": dataclasses.asdict(position),
    }


def saved_position(path, contents: Dict[str, Any], shard_order) -> Tuple[ReadPosition, bool]:
    """(where a checkpoint's run continues in its data, whether exactly).

    Ours store the micro-batch; NVIDIA's and Habana's ``files`` and ``epoch`` give the shard,
    read from its start, which needs the same shard order (`shard_order(epoch)`, ours)."""
    if "position" in contents:
        return ReadPosition(**contents["position"]), True
    files = contents.get("files")
    if not (isinstance(files, list) and files and isinstance(files[0], int)):
        raise CheckpointError(
            f"{path}: holds no data position ('files' as [f_id] + shards): start from it with "
            "--init_checkpoint instead"
        )
    epoch = int(contents.get("epoch", 0))
    ours = [Path(name).name for name in shard_order(epoch)]
    theirs = [Path(str(name)).name for name in files[1:]]
    if theirs != ours:
        raise CheckpointError(
            f"{path}: its shard order for epoch {epoch} is not this run's (other shards in "
            "--input_dir, or another --seed): give the run's own --input_dir and --seed"
        )
    return ReadPosition(epoch, files[0], 0), False


def save_checkpoint(output_dir, step: int, contents: Dict[str, Any]) -> Path:
    path = TORCH_PRETRAINING.path(output_dir, step)
    with atomic_write(path, "wb") as handle:
        torch.save(contents, handle)
    found = TORCH_PRETRAINING.in_folder(output_dir)
    for old in sorted(found)[:-KEEP]:
        TORCH_PRETRAINING.delete(found[old])
    log.info("Saved %s", path)
    return path


def read_checkpoint(path) -> Dict[str, Any]:
    """A ckpt file's dict on the CPU (ours, NVIDIA's or Habana's, or a bare
    ``{"model": state_dict}``); one line when it is not one."""
    contents = read_torch_file(path, what="it as a checkpoint")
    if not isinstance(contents, dict) or "model" not in contents:
        raise CheckpointError(f"{path}: not a pre-training checkpoint (no 'model' in it)")
    return contents


def newest_readable_checkpoint(output_dir, step: int = -1) -> Optional[Tuple[Path, Dict[str, Any]]]:
    """(path, contents) of ``ckpt_<step>.pt``, or with step -1 of the newest checkpoint
    that reads: a damaged newer one (a save cut short) is passed over in one logged line,
    never silently replaced by a fresh start. None when there is no checkpoint."""
    if step >= 0:
        path = TORCH_PRETRAINING.in_folder(output_dir).get(step)
        if path is None:
            name = TORCH_PRETRAINING.name(step)
            raise CheckpointError(f"{output_dir}: no {name} to resume from")
        return path, read_checkpoint(path)
    found = TORCH_PRETRAINING.in_folder(output_dir)
    damaged = []
    for number in sorted(found, reverse=True):
        try:
            contents = read_checkpoint(found[number])
        except CheckpointError as error:
            damaged.append(str(error))
            continue
        if damaged:
            log.warning("%s; resuming from the previous one, %s", "; ".join(damaged), found[number])
        return found[number], contents
    if damaged:
        raise CheckpointError("; ".join(damaged) + ": no readable checkpoint to resume from")
    return None
