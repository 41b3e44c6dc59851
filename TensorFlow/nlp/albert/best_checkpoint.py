"""The checkpoints of a run, as google-research/albert's scripts pick the best of them:
listed by step, loaded one at a time, the best copied to ``model.ckpt-best``, the others
removed."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

from bertfam.checkpoint_names import TF_BEST as BEST
from bertfam.checkpoint_names import TF_MODEL

log = logging.getLogger(__name__)


def checkpoint_steps(output_dir: Path) -> List[int]:
    """The steps of the ``model.ckpt-<step>`` checkpoints in `output_dir`, in order."""
    return list(TF_MODEL.in_folder(output_dir))


def has_best(output_dir: Path) -> bool:
    return (output_dir / f"{BEST}.index").is_file()


def load_weights(prefix: Path, variables: Dict[str, object]) -> int:
    """Assign the model weights of checkpoint `prefix` (its optimizer slots are left);
    returns its global step."""
    import tensorflow as tf

    from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint

    weights, description = read_init_checkpoint(str(prefix))
    weights = {name: value for name, value in weights.items() if name in variables}
    assign_weights(variables, weights, description)
    return int(tf.train.load_checkpoint(str(prefix)).get_tensor("global_step"))


def copy_to_best(prefix: Path) -> List[Tuple[Path, Path]]:
    """Copy checkpoint `prefix`'s files to ``model.ckpt-best.*`` beside it, each replaced
    whole; returns (source, target) pairs."""
    copied = []
    for source in sorted(prefix.parent.glob(f"{prefix.name}.*")):
        target = source.with_name(BEST + source.name[len(prefix.name) :])
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
        log.info("saving %s to %s", source, target)
        copied.append((source, target))
    return copied


def remove_checkpoint(prefix: Path) -> None:
    log.info("removing %s.*", prefix)
    TF_MODEL.delete(prefix)
