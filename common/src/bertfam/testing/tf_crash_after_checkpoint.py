"""For resume tests: runs a training script and SIGKILLs it the moment checkpoint N is on disk.

    python -m bertfam.testing.tf_crash_after_checkpoint N run_squad.py --flags...

A crash at a known point makes the resume test deterministic: killing from outside races
the training loop, which on a fast machine finishes before the signal arrives.
"""

import os
import runpy
import signal
import sys

from bertfam.tf.training_checkpoints import TrainingCheckpoints

crash_after = int(sys.argv.pop(1))
script = sys.argv.pop(1)
save = TrainingCheckpoints.save


def save_then_crash(self, step: int) -> str:
    path = save(self, step)
    if step == crash_after:
        os.kill(os.getpid(), signal.SIGKILL)
    return path


TrainingCheckpoints.save = save_then_crash
sys.argv[0] = script
sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python script` would set it
runpy.run_path(script, run_name="__main__")
