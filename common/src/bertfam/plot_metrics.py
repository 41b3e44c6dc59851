"""``bertfam-plot-metrics metrics.jsonl [-o metrics.png]``: loss and throughput, one PNG.

A resumed run appends to the log and may repeat the steps after its last checkpoint;
the plot keeps the latest record of each step, which is the run that went on.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from bertfam.atomic import atomic_write
from bertfam.errors import UserError, exit_on_user_error
from bertfam.runlog import read_metrics

Series = Tuple[List[int], List[float]]


def series(records: Sequence[dict], key: str) -> Series:
    """(steps, values) of one metric in step order, the last record of each step winning."""
    latest: Dict[int, float] = {}
    for record in records:
        if isinstance(record.get(key), (int, float)):
            latest[int(record["step"])] = float(record[key])
    steps = sorted(latest)
    return steps, [latest[step] for step in steps]


def plot_metrics(records: Sequence[dict], output: Path) -> Dict[str, Series]:
    """Draw loss and sequences/s against step into `output`; returns what was drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on training machines
    import matplotlib.pyplot as plt

    drawn = {
        "loss": series(records, "loss"),
        "sequences_per_second": series(records, "sequences_per_second"),
    }
    if not drawn["loss"][0]:
        raise UserError("the metrics log has no 'loss' records to plot")
    panels = [
        (key, label)
        for key, label in (("loss", "loss"), ("sequences_per_second", "sequences/s"))
        if drawn[key][0]
    ]
    figure, axes = plt.subplots(
        len(panels), 1, sharex=True, figsize=(8, 3 * len(panels)), squeeze=False
    )
    for axis, (key, label) in zip(axes[:, 0], panels):
        axis.plot(*drawn[key], linewidth=1.2)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    figure.tight_layout()
    with atomic_write(output, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
    return drawn


@exit_on_user_error
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="bertfam-plot-metrics", description=__doc__.splitlines()[0]
    )
    parser.add_argument("metrics", type=Path, help="a metrics.jsonl written by a training run")
    parser.add_argument(
        "-o", "--output", type=Path, help="PNG to write (default: metrics.png beside the log)"
    )
    args = parser.parse_args(argv)
    if not args.metrics.is_file():
        raise UserError(f"{args.metrics}: no such metrics log")
    try:
        records = read_metrics(args.metrics)
    except ValueError as error:
        raise UserError(str(error)) from None
    output = args.output or args.metrics.with_name("metrics.png")
    drawn = plot_metrics(records, output)
    print(f"wrote {output} ({len(drawn['loss'][0])} loss points)")


if __name__ == "__main__":
    main()
