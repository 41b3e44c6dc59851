"""Runs a training script and sends it SIGTERM right after update N, as a cluster
preempting it would, but at a known point (a signal from outside races the loop).

    python tests/signal_after_update.py N finetuning/run_glue.py --flags...
    python tests/signal_after_update.py N pretraining/run_pretraining.py --flags...

Under mpirun or torchrun, ``SIGNAL_RANK=1`` signals that rank only (the others must follow).
"""

import os
import runpy
import signal
import sys

from bertfam.torch import finetune, pretraining

after = int(sys.argv.pop(1))
script = sys.argv.pop(1)
rank = os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("RANK", "0"))
signalled = os.environ.get("SIGNAL_RANK", rank) == rank
updates = 0


def signalling(update):
    def update_then_signal(self, *args, **kwargs):
        global updates
        loss = update(self, *args, **kwargs)
        updates += 1
        if updates == after and signalled:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    return update_then_signal


finetune.Trainer.update = signalling(finetune.Trainer.update)
pretraining.Pretrainer.update = signalling(pretraining.Pretrainer.update)
sys.argv[0] = script
runpy.run_path(script, run_name="__main__")
