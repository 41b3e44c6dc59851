"""Runs a training script and SIGKILLs it the moment checkpoint N is on disk.

    python tests/crash_after_checkpoint.py N finetuning/run_glue.py --flags...
    python tests/crash_after_checkpoint.py N pretraining/run_pretraining.py --flags...

(fine-tuning's checkpoint-N/, pre-training's ckpt_N.pt).

A crash at a known point makes the resume test deterministic: a kill from outside races
the training loop, which on a fast machine finishes before the signal lands.
"""

import os
import runpy
import signal
import sys

from bertfam.torch import finetune, pretraining

crash_after = int(sys.argv.pop(1))
script = sys.argv.pop(1)
save_checkpoint = finetune.Trainer.save_checkpoint


def save_then_crash(self, step, *args, **kwargs):
    folder = save_checkpoint(self, step, *args, **kwargs)
    if step == crash_after:
        os.kill(os.getpid(), signal.SIGKILL)
    return folder


save_pretraining = pretraining.Pretrainer.save


def save_pretraining_then_crash(self):
    save_pretraining(self)
    if self.step + self.config.step_offset == crash_after:
        os.kill(os.getpid(), signal.SIGKILL)


finetune.Trainer.save_checkpoint = save_then_crash
pretraining.Pretrainer.save = save_pretraining_then_crash
sys.argv[0] = script
runpy.run_path(script, run_name="__main__")
