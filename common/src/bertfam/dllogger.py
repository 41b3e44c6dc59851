"""DLLogger's JSON-lines output, as NVIDIA's and Habana's scripts write it (``DLLL {...}``).

Each record is one line, ``DLLL `` then a JSON object: ``timestamp``, ``elapsedtime``,
``type`` ("LOG"), ``step`` (an update number, ``[epoch, step]``, ``"PARAMETER"`` for the
run's settings or ``[]`` for the final summary, as upstream passes it) and ``data``.
Only the process that `enabled` writes; the file is appended to, so a resumed run
continues it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict


class DlLogger:
    """Appends DLLogger records to `path` (the directory must exist)."""

    def __init__(self, path: str, enabled: bool):
        self.path = Path(path)
        self.enabled = enabled
        self._start = time.time()

    def log(self, step: Any, data: Dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {
            "timestamp": time.time(),
            "elapsedtime": time.time() - self._start,
            "type": "LOG",
            "step": step,
            "data": data,
        }
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("DLLL " + json.dumps(record) + "\n")
