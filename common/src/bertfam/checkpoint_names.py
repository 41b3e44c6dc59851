"""Every checkpoint layout the recipes write, each owned by one object here.

A layout knows how the checkpoint of update N is named, how a name is read back, which
checkpoints a folder holds, the newest, and how one is deleted. No other module builds
or parses these names. Framework-free: flags are checked against them before TensorFlow
or torch loads.

- `TF_MODEL`, ``model.ckpt-<N>.{index,data-*}``: every TensorFlow loop but ELECTRA's;
- `TF_BEST`, ``model.ckpt-best.*``: ALBERT's best, chosen checkpoint by checkpoint;
- `ELECTRA_PHASE1`, `ELECTRA_PHASE2`, ``ckpt-<N>.*`` and ``ckpt-p2-<N>.*``: ELECTRA's
  ``run_pretraining.py`` (phase 1 also its SQuAD loop's resume checkpoints);
- `TORCH_PRETRAINING`, ``ckpt_<N>.pt``: PyTorch ``run_pretraining.py`` (NVIDIA's names);
- `TORCH_FINETUNING`, ``checkpoint-<N>/``: PyTorch ``run_squad.py`` and ``run_glue.py``
  (HuggingFace's).

TensorFlow checkpoints are prefixes: a checkpoint is the files ``<prefix>.*``, complete
once its ``.index`` is there, and a folder's ``checkpoint`` state file (`TF_STATE_FILE`)
names the newest.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

TF_STATE_FILE = "checkpoint"
_STATE_LATEST = re.compile(r'^model_checkpoint_path: "(.+)"$', re.M)


@dataclass(frozen=True)
class StepCheckpoints:
    """Checkpoints named ``<stem><N><suffix>`` in one folder, N the update they hold.

    `kind`: ``"tf_prefix"``, TensorFlow's ``<name>.*`` files, present once
    ``<name>.index`` is; ``"file"``; or ``"folder"``."""

    stem: str
    suffix: str = ""
    kind: str = "file"

    @property
    def _pattern(self) -> re.Pattern:
        return re.compile(rf"{re.escape(self.stem)}(\d+){re.escape(self.suffix)}")

    def name(self, step: int) -> str:
        return f"{self.stem}{int(step)}{self.suffix}"

    def path(self, folder: PathLike, step: int) -> Path:
        return Path(folder) / self.name(step)

    def step(self, name: PathLike) -> Optional[int]:
        """N of a checkpoint named by this layout (a bare name or a path), else None."""
        found = self._pattern.fullmatch(os.path.basename(os.fspath(name)))
        return int(found.group(1)) if found else None

    def in_folder(self, folder: PathLike) -> Dict[int, Path]:
        """{N: path} of the complete checkpoints in `folder`, by step."""
        folder = Path(folder)
        if not folder.is_dir():
            return {}
        found = {}
        for entry in folder.iterdir():
            name = entry.name
            if self.kind == "tf_prefix":
                if not name.endswith(".index"):
                    continue
                name = name[: -len(".index")]
            elif (self.kind == "folder") != entry.is_dir():
                continue
            step = self.step(name)
            if step is not None:
                found[step] = folder / name
        return dict(sorted(found.items()))

    def newest(self, folder: PathLike) -> Optional[Path]:
        found = self.in_folder(folder)
        return found[max(found)] if found else None

    def delete(self, path: PathLike) -> None:
        """Remove one checkpoint: a TF prefix's files, a file or a folder."""
        path = Path(path)
        if self.kind == "tf_prefix":
            for part in path.parent.glob(f"{_glob_escape(path.name)}.*"):
                part.unlink()
        elif self.kind == "folder":
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?[])", r"[\1]", name)


TF_MODEL = StepCheckpoints("model.ckpt-", kind="tf_prefix")
TF_BEST = "model.ckpt-best"  # a TF prefix, copied from the best TF_MODEL checkpoint
ELECTRA_PHASE1 = StepCheckpoints("ckpt-", kind="tf_prefix")
ELECTRA_PHASE2 = StepCheckpoints("ckpt-p2-", kind="tf_prefix")
TORCH_PRETRAINING = StepCheckpoints("ckpt_", ".pt")
TORCH_FINETUNING = StepCheckpoints("checkpoint-", kind="folder")


def tf_state_latest(folder: PathLike) -> Optional[str]:
    """The prefix a TF ``checkpoint`` state file names as the newest (joined to `folder`
    when relative), or None; read without TensorFlow."""
    try:
        state = Path(folder, TF_STATE_FILE).read_text(encoding="utf-8")
    except OSError:
        return None
    found = _STATE_LATEST.search(state)
    return os.path.join(os.fspath(folder), found.group(1)) if found else None


def tf_state_text(latest: str, kept) -> str:
    """A ``checkpoint`` state file naming `latest` the newest of `kept` (names relative to
    its folder, as an Estimator writes them), the text proto TensorFlow reads."""
    lines = [f'model_checkpoint_path: "{latest}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in kept]
    return "\n".join(lines) + "\n"


def has_tf_state(folder: PathLike) -> bool:
    """Whether a TF run has left checkpoints in `folder` (its state file is there)."""
    return Path(folder, TF_STATE_FILE).is_file()
