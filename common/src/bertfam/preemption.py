"""Stopping a training run cleanly when the cluster asks it to.

Kubernetes and Slurm preempt a job by sending SIGTERM and, a grace period later (30
seconds by default), SIGKILL; Ctrl-C sends SIGINT. While a training loop runs inside
`StopSignals`, those signals are recorded instead of killing the process: the loop
finishes the update it is in, agrees with the other workers that the run stops (one of
them seeing the signal is enough), saves a checkpoint, says where in one line and exits
with the shell's status for the signal (143 for SIGTERM, 130 for SIGINT). Rerunning the
same command resumes from that checkpoint.

SIGUSR1 stops a run the same way (status 138), for launchers that must not be sent
SIGTERM: Open MPI's mpirun forwards SIGTERM to the ranks but kills them within a second,
too soon to write a checkpoint, whereas it forwards SIGUSR1 and waits for them. A pod
whose command is mpirun therefore turns SIGTERM into SIGUSR1 (the k8s templates do), and
Slurm's ``--signal=USR1@<seconds>`` asks for the same ahead of a time limit.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Dict, Optional

# In the order workers agree on when they received different ones: SIGTERM first.
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
EXIT_STATUS: Dict[int, int] = {number: 128 + number for number in HANDLED}


class StopSignals:
    """Within ``with StopSignals() as stop:``, SIGTERM, SIGINT and SIGUSR1 set ``stop.received``
    (the signal's number; 0 before any) and the process goes on; the handlers before
    are restored on leaving. Outside the main thread (where Python cannot catch signals)
    it records nothing and changes nothing."""

    def __init__(self):
        self.received = 0
        self._previous: Dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in HANDLED:
                self._previous[number] = signal.signal(number, self._record)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _record(self, number: int, frame) -> None:
        if not self.received:  # a second signal while stopping changes nothing
            self.received = number


def stop_run(
    number: int,
    step: int,
    checkpoint: Optional[str],
    quiet: bool = False,
    resume_hint: str = "rerun the same command to resume",
) -> None:
    """One line on stderr (unless `quiet`: the workers other than rank 0) saying why the
    run stopped and where it can resume, then exit with the signal's shell status."""
    if quiet:
        sys.exit(EXIT_STATUS[number])
    name = signal.Signals(number).name
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    prefix = f"{prog}: " if prog else ""
    if checkpoint:
        where = f"checkpoint {checkpoint}: {resume_hint}"
    else:
        where = "no checkpoint written (this run saves none mid-way)"
    print(f"{prefix}stopped by {name} after update {step}; {where}", file=sys.stderr, flush=True)
    sys.exit(EXIT_STATUS[number])
