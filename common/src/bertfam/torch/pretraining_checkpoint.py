"""``ckpt_<step>.pt``, the checkpoints of NVIDIA's PyTorch pre-training, written whole.

A file is a dict, upstream's keys first: ``model`` (the state dict under HuggingFace's
names, vocabulary padded as trained), ``optimizer``, ``files`` (the shard order), and
``epoch``; then what an exact resume needs besides: ``scheduler``, ``global_step`` (the
phase's update count), ``phase2``, ``position`` (epoch, shard step and next micro-batch
of the data) and ``rng`` (every rank's torch generator states). The step in the name is
the phase's count, plus ``--phase1_end_step`` in phase 2, as upstream names them.

Files are written through a temporary name and renamed, so a kill leaves the previous
checkpoint intact; then all but the newest `KEEP` are deleted, as upstream keeps 3.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from bertfam.atomic import atomic_write
from bertfam.checkpoints import CheckpointError
from bertfam.torch.pretraining_args import checkpoints_in

log = logging.getLogger(__name__)

KEEP = 3


def checkpoint_path(output_dir, step: int) -> Path:
    return Path(output_dir) / f"ckpt_{step}.pt"


def save_checkpoint(output_dir, step: int, contents: Dict[str, Any]) -> Path:
    path = checkpoint_path(output_dir, step)
    with atomic_write(path, "wb") as handle:
        torch.save(contents, handle)
    found = checkpoints_in(output_dir)
    for old in sorted(found)[:-KEEP]:
        found[old].unlink(missing_ok=True)
    log.info("Saved %s", path)
    return path


def read_checkpoint(path) -> Dict[str, Any]:
    """A ckpt file's dict on the CPU; one line when it is not one."""
    try:
        contents = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: cannot read it as a checkpoint ({first})") from None
    if not isinstance(contents, dict) or "model" not in contents:
        raise CheckpointError(f"{path}: not a pre-training checkpoint (no 'model' in it)")
    return contents


def newest_readable_checkpoint(output_dir, step: int = -1) -> Optional[Tuple[Path, Dict[str, Any]]]:
    """(path, contents) of ``ckpt_<step>.pt``, or with step -1 of the newest checkpoint
    that reads: a damaged newer one (a save cut short) is passed over in one logged line,
    never silently replaced by a fresh start. None when there is no checkpoint."""
    if step >= 0:
        path = checkpoints_in(output_dir).get(step)
        if path is None:
            raise CheckpointError(f"{output_dir}: no ckpt_{step}.pt to resume from")
        return path, read_checkpoint(path)
    found = checkpoints_in(output_dir)
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
