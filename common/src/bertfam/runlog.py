"""What a training run leaves behind for people: JSON-lines metrics, TensorBoard, progress bars.

Every training script in the repository logs through `RunLog`, so every run writes the
same ``metrics.jsonl`` (one JSON object a line, appended to on resume)::

    {"step": 100, "elapsed": 12.5, "loss": 2.31, "learning_rate": 3e-05,
     "sequences_per_second": 40.1}

``elapsed`` is seconds since the logger started; keys other than ``step`` and
``elapsed`` are whatever the script measured (evaluation results use the same file).
The same scalars go to TensorBoard event files under ``tensorboard/``, and
``bertfam-plot-metrics metrics.jsonl`` draws loss and throughput into a PNG.
Only the process that is told it is the main one writes anything.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

from tqdm import tqdm

from bertfam.tensorboard_events import EventFileWriter

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def configure_logging(verbose: bool = False) -> None:
    """The console log of a script: time, level, logger and message on stderr (DEBUG with
    `verbose`, e.g. run_squad.py's --verbose_logging)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def progress(
    iterable: Optional[Iterable] = None,
    *,
    total: Optional[int] = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    initial: int = 0,
):
    """A progress bar on stderr for long loops; pass ``enabled=is_main_process``."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=1.0,
    )


class Throughput:
    """Sequences per second between successive calls to `tick`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self._clock = clock
        self._last = clock()

    def tick(self, sequences: int) -> float:
        now = self._clock()
        elapsed, self._last = now - self._last, now
        return sequences / elapsed if elapsed > 0 else math.inf


class RunLog:
    """Metrics to ``<output_dir>/metrics.jsonl`` and TensorBoard; a no-op when not enabled."""

    def __init__(
        self,
        output_dir: Union[str, Path],
        *,
        enabled: bool = True,
        tensorboard: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.enabled = enabled
        self._clock = clock
        self._start = clock()
        self._metrics = None
        self._writer = None
        if not enabled:
            return
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = output_dir / METRICS_FILE
        # Line-buffered append: a resumed run continues the file, and a killed run loses
        # at most the line being written. Closed in close(), not by a with-block.
        self._metrics = open(self.metrics_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        if tensorboard:
            self._writer = EventFileWriter(output_dir / TENSORBOARD_DIR)

    def log(self, step: int, **scalars: float) -> dict:
        """Record scalars for `step`; returns the record (also when disabled)."""
        record = {"step": int(step), "elapsed": round(self._clock() - self._start, 3)}
        record.update({key: _plain(value) for key, value in scalars.items() if value is not None})
        if self._metrics is not None:
            self._metrics.write(json.dumps(record) + "\n")
        if self._writer is not None:
            numbers = {
                key: value
                for key, value in record.items()
                if key != "step" and isinstance(value, (int, float))
            }
            self._writer.add_scalars(record["step"], numbers)
        return record

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _plain(value):
    """NumPy / framework scalars to Python numbers so they serialise as JSON."""
    if isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    return float(value)


def read_metrics(path: Union[str, Path]) -> list:
    """Records of a metrics.jsonl; a torn last line (from a killed run) is skipped."""
    records = []
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(record, dict) or "step" not in record:
            raise ValueError(f"{path}:{number}: a metrics record needs a 'step'")
        records.append(record)
    return records
