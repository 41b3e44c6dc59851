"""How long a training command takes to stop once preempted: the seconds from SIGTERM to
its exit, with its exit status and last line (issue 16 asks for under 30 s, Kubernetes'
default grace period, at real model sizes).

    python tools/preemption_latency.py --metrics OUT/metrics.jsonl --after 3 -- \
        python TensorFlow/nlp/bert/run_squad.py --output_dir=OUT ...

Starts the command, waits until `--metrics` (the run's metrics.jsonl) holds `--after`
records, so the signal lands in steady training and not in start-up or the first
compile, then sends SIGTERM to the command's process as a kubelet does to a pod's, and
times the rest: finishing the update in progress, writing its checkpoint, exiting.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def records(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=Path, required=True, help="the run's metrics.jsonl")
    parser.add_argument("--after", type=int, default=3, help="records logged before the signal")
    parser.add_argument("--timeout", type=float, default=1800, help="for the start, in seconds")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the training command after --")
    with tempfile.TemporaryFile("w+") as stderr:  # a pipe unread until the end would fill
        started = time.monotonic()
        job = subprocess.Popen(command, stderr=stderr, text=True)
        while records(args.metrics) < args.after:
            if job.poll() is not None:
                stderr.seek(0)
                sys.exit(f"the command ended before {args.after} records:\n{stderr.read()}")
            if time.monotonic() - started > args.timeout:
                job.kill()
                sys.exit(f"no {args.after} records in {args.timeout:.0f} s")
            time.sleep(0.05)
        signalled = time.monotonic()
        job.send_signal(signal.SIGTERM)
        job.wait()
        seconds = time.monotonic() - signalled
        stderr.seek(0)
        lines = stderr.read().strip().splitlines()
    print(json.dumps({
        "seconds_to_exit": round(seconds, 2),
        "exit_status": job.returncode,
        "updates_logged_before_the_signal": records(args.metrics),
        "last_line": lines[-1] if lines else "",
    }))  # fmt: skip


if __name__ == "__main__":
    main()
