"""Features kept in files, for a rerun with the same inputs: what ALBERT's feature-file
flags (run_squad_v1.py's ``--*_feature_file``, run_classifier.py's ``--cached_dir``)
name.

Each file is a NumPy archive holding some of a features dataclass's arrays and a
fingerprint of what made them (the data, the SentencePiece model, the settings). A rerun
whose fingerprint matches reads them; one whose does not rebuilds them, saying so. A
file that is not such an archive is refused rather than overwritten. Files are replaced
whole (written beside, then renamed). Upstream writes TFRecords (and a pickle) there and
reads them back without checking what made them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from bertfam.errors import UserError

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the arrays or their meaning change


class FeatureCache:
    """`parts`: (file, the names of the arrays it holds); together they rebuild one
    `kind` (`SquadFeatures`, `ClassificationFeatures`)."""

    def __init__(self, kind: type, parts: Sequence[Tuple[str, Sequence[str]]], fingerprint: str):
        self.kind = kind
        self.parts = [(Path(path), fields) for path, fields in parts]
        self.fingerprint = fingerprint

    def load_or_build(self, build: Callable[[], object], write: bool):
        names = ", ".join(str(path) for path, _ in self.parts)
        stored = [self._read(path) for path, _ in self.parts]
        if all(s is not None and str(s.pop("fingerprint")) == self.fingerprint for s in stored):
            log.info("Reusing the features in %s", names)
            return self.kind(**{key: value for s in stored for key, value in s.items()})
        if any(s is not None for s in stored):
            log.warning("%s: written for other inputs or settings; rebuilding", names)
        features = build()
        if write:
            for path, fields in self.parts:
                self._write(path, {key: getattr(features, key) for key in fields})
        return features

    def _read(self, path: Path) -> Optional[Dict[str, np.ndarray]]:
        if feature_file_names(path) is None:
            return None
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}

    def _write(self, path: Path, arrays: Dict[str, np.ndarray]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as handle:  # a handle: np.savez would append .npz
            np.savez(handle, fingerprint=np.array(self.fingerprint), **arrays)
        os.replace(partial, path)
        log.info("Wrote features to %s", path)


def feature_file_names(path: Path) -> Optional[List[str]]:
    """The arrays a feature file of ours holds (None: no such file); anything else there
    is refused rather than overwritten."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            names = list(stored.files)
    except (OSError, ValueError, EOFError):
        names = []
    if "fingerprint" not in names:
        raise UserError(
            f"{path} exists and is not a feature file of this script: remove it or "
            "name another file"
        )
    return names


def fingerprint(files: Sequence[str], settings: dict) -> str:
    """What made a set of features: the bytes of `files` and the `settings`."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).read_bytes())
    digest.update(json.dumps(dict(settings, format=FORMAT), sort_keys=True).encode())
    return digest.hexdigest()
