"""DLLogger's JSON-lines output, as NVIDIA's and Habana's scripts write it (``DLLL {...}``).

Each record is one line, ``DLLL `` then the JSON object of dllogger's
``JSONStreamBackend.log``, its fields in its order: ``timestamp`` (seconds since the
epoch, as a string), ``datetime`` (the local time, ``str(datetime.now())``),
``elapsedtime`` (seconds since the logger started, as a string), ``type`` ("LOG"),
``step`` (an update number, ``[epoch, step]``, ``"PARAMETER"`` for the run's settings
or ``[]`` for the final summary, as upstream passes it) and ``data``. Tools that parse
upstream's files (NVIDIA's log parsers, MLPerf-style plotting) read ours unchanged.
Only the process that `enabled` writes; the file is appended to, so a resumed run
continues it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Dict


class DlLogger:
    """Appends DLLogger records to `path` (the directory must exist)."""

    def __init__(self, path: str, enabled: bool):
        self.path = Path(path)
        self.enabled = enabled
        self._start = datetime.now()

    def log(self, step: Any, data: Dict[str, Any]) -> None:
        if not self.enabled:
            return
        now = datetime.now()
        record = {
            "timestamp": str(now.timestamp()),
            "datetime": str(now),
            "elapsedtime": str((now - self._start).total_seconds()),
            "type": "LOG",
            "step": step,
            "data": data,
        }
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("DLLL " + json.dumps(record) + "\n")
