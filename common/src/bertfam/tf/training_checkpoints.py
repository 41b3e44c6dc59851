"""Training checkpoints in Google's layout: ``<dir>/model.ckpt-<step>`` plus ``checkpoint``.

A TF1 Estimator run writes one tensor per variable name (``bert/pooler/dense/kernel``,
``cls/predictions/output_bias``, ``.../adam_m``, ``.../adam_v``, ``global_step``), and the
code users chain our runs into reads exactly that: Google's ``init_from_checkpoint``
(run_classifier.py, run_squad.py, run_pretraining.py), HuggingFace's
``load_tf_weights_in_bert`` and ``convert_tf_checkpoint_to_pytorch.py``, which skip the
optimizer slots and ``global_step`` by those names and fail on any other extra variable.
`tf.train.Checkpoint` would store ``model/bert.Spooler.S.../.ATTRIBUTES/VARIABLE_VALUE``
instead, which none of them can read, so the loop writes Google's layout itself.

Crash safety: ``SaveV2`` writes each file under a temporary name and renames it when
complete, the index last; the ``checkpoint`` state file is replaced atomically after
that, and an old checkpoint is deleted only once the state file no longer names it. A
kill at any moment leaves the previous checkpoint readable and named.
"""

from __future__ import annotations

import logging
import posixpath
from typing import Iterable, List, Mapping, Optional

import tensorflow as tf

from bertfam.checkpoint_names import TF_MODEL, TF_STATE_FILE, StepCheckpoints, tf_state_text
from bertfam.checkpoints import CheckpointError
from bertfam.tf.checkpoint import save_name_based_checkpoint

log = logging.getLogger(__name__)


class DamagedCheckpointError(CheckpointError):
    """A checkpoint's files cannot be read (cut short, corrupt), as opposed to one that
    reads but does not fit the run."""


def _first(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


class TrainingCheckpoints:
    """Saves and restores `variables` ({checkpoint name: variable}) in `directory`,
    keeping the newest `max_to_keep` checkpoints (the ones a resumed run wrote before
    included)."""

    def __init__(
        self,
        directory: str,
        variables: Mapping[str, tf.Variable],
        max_to_keep: int,
        names: StepCheckpoints = TF_MODEL,
    ):
        self.directory = str(directory)
        self.variables = dict(variables)
        self.max_to_keep = max_to_keep
        self.names = names
        self._kept: List[str] = self._listed()

    @property
    def latest(self) -> Optional[str]:
        """The prefix of the newest checkpoint, or None."""
        return tf.train.latest_checkpoint(self.directory)

    def save(self, step: int) -> str:
        # The state file names checkpoints relative to the directory, as an Estimator's
        # does, so the directory can be moved or mounted elsewhere.
        basename = self.names.name(step)
        prefix = posixpath.join(self.directory, basename)
        tf.io.gfile.makedirs(self.directory)  # made when first needed: a run may save none
        save_name_based_checkpoint(prefix, {n: v.read_value() for n, v in self.variables.items()})
        kept = [name for name in self._kept if name != basename] + [basename]
        dropped, kept = kept[: -self.max_to_keep], kept[-self.max_to_keep :]
        self._write_state(basename, kept)
        for old in dropped:
            for path in tf.io.gfile.glob(posixpath.join(self.directory, f"{old}.*")):
                tf.io.gfile.remove(path)
        self._kept = kept
        log.info("Saved checkpoint %s", prefix)
        return prefix

    def restore(self, prefix: str, names: Optional[Iterable[str]] = None) -> None:
        """Assign the checkpoint's values to the variables `names` (all by default); one
        error naming every variable it lacks or holds in another shape."""
        names = list(self.variables if names is None else names)
        try:
            reader = tf.train.load_checkpoint(prefix)
        except (tf.errors.OpError, ValueError) as error:
            raise DamagedCheckpointError(
                f"checkpoint {prefix}: cannot read it ({_first(error)})"
            ) from None
        shapes = reader.get_variable_to_shape_map()
        missing = [n for n in names if n not in shapes]
        wrong = [
            f"{n} {tuple(shapes[n])} (the run's is {tuple(self.variables[n].shape)})"
            for n in names
            if n in shapes and tuple(shapes[n]) != tuple(self.variables[n].shape)
        ]
        if missing or wrong:
            problems = []
            if missing:
                shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
                problems.append(f"{len(missing)} variables missing ({shown})")
            if wrong:
                problems.append("other shapes: " + ", ".join(wrong[:5]))
            raise CheckpointError(
                f"checkpoint {prefix} cannot continue this run: " + "; ".join(problems)
            )
        for name in names:
            variable = self.variables[name]
            try:
                value = reader.get_tensor(name)
            except (tf.errors.OpError, IndexError, ValueError) as error:  # a cut-short .data
                raise DamagedCheckpointError(
                    f"checkpoint {prefix}: cannot read {name} ({_first(error)})"
                ) from None
            variable.assign(value.astype(variable.dtype.as_numpy_dtype))

    def restore_newest(self) -> Optional[str]:
        """Restore the newest checkpoint that reads, saying in one line which damaged ones
        it passed over (a resumed run never silently starts again from step 0); returns its
        prefix, or None when the directory holds no checkpoint."""
        newest = self.latest
        kept = [posixpath.join(self.directory, name) for name in reversed(self._kept)]
        candidates = ([newest] if newest else []) + [p for p in kept if p != newest]
        damaged = []
        for prefix in candidates:
            try:
                self.restore(prefix)
            except DamagedCheckpointError as error:
                damaged.append(str(error))
                continue
            if damaged:
                log.warning("%s; resuming from the previous one, %s", "; ".join(damaged), prefix)
            return prefix
        if damaged:
            raise CheckpointError(
                "; ".join(damaged) + ": no readable checkpoint to resume from (delete them "
                "to start again)"
            )
        return None

    def _write_state(self, latest: str, kept: List[str]) -> None:
        # The text proto tf.train.get_checkpoint_state reads, replaced in one rename.
        path = posixpath.join(self.directory, TF_STATE_FILE)
        temporary = f"{path}.tmp"
        with tf.io.gfile.GFile(temporary, "w") as state:
            state.write(tf_state_text(latest, kept))
        tf.io.gfile.rename(temporary, path, overwrite=True)

    def _listed(self) -> List[str]:
        state = tf.train.get_checkpoint_state(self.directory)
        if state is None:
            return []
        return [posixpath.basename(path) for path in state.all_model_checkpoint_paths]
