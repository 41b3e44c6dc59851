"""For preemption tests: runs a training script and sends it SIGTERM (or the signal
named) right after update N, as a cluster would, but at a known point.

    python -m bertfam.testing.tf_signal_after_update N [TERM|INT|HANG] run_squad.py --flags...

Under mpirun (or horovodrun), ``SIGNAL_RANK=1`` signals that rank only (the others must
follow it). HANG sends no signal: the rank stops taking steps (as one stuck reading a
file), its Horovod thread still running.
Signalling from outside races the training loop, which on a fast machine can finish
first; this makes the point of the signal deterministic.
"""

import os
import runpy
import signal
import sys
import time

from bertfam.tf.training import Trainer

after = int(sys.argv.pop(1))
number = signal.SIGTERM
if sys.argv[1] in ("TERM", "INT", "HANG"):
    name = sys.argv.pop(1)
    number = None if name == "HANG" else getattr(signal, f"SIG{name}")
script = sys.argv.pop(1)
rank = os.environ.get("SIGNAL_RANK")
take_training_step = Trainer.take_training_step


def step_then_signal(self, batches):
    result = take_training_step(self, batches)
    ours = os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("HOROVOD_RANK", "0"))
    if int(self.step) == after and rank in (None, ours):
        if number is None:
            time.sleep(3600)  # the job is ended long before
        else:
            os.kill(os.getpid(), number)
    return result


Trainer.take_training_step = step_then_signal
sys.argv[0] = script
sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python script` would set it
runpy.run_path(script, run_name="__main__")
