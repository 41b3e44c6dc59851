"""For preemption tests: runs a training script and sends it SIGTERM (or the signal
named) right after update N, as a cluster would, but at a known point.

    python -m bertfam.tf.signal_after_update N [TERM|INT] run_squad.py --flags...

Under mpirun (or horovodrun), ``SIGNAL_RANK=1`` signals that rank only (the others must
follow it).
Signalling from outside races the training loop, which on a fast machine can finish
first; this makes the point of the signal deterministic.
"""

import os
import runpy
import signal
import sys

from bertfam.tf.training import Trainer

after = int(sys.argv.pop(1))
number = signal.SIGTERM
if sys.argv[1] in ("TERM", "INT"):
    number = getattr(signal, f"SIG{sys.argv.pop(1)}")
script = sys.argv.pop(1)
rank = os.environ.get("SIGNAL_RANK")
take_training_step = Trainer.take_training_step


def step_then_signal(self, batches):
    result = take_training_step(self, batches)
    ours = os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("HOROVOD_RANK", "0"))
    if int(self.step) == after and rank in (None, ours):
        os.kill(os.getpid(), number)
    return result


Trainer.take_training_step = step_then_signal
sys.argv[0] = script
sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python script` would set it
runpy.run_path(script, run_name="__main__")
