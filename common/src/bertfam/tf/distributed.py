"""Data-parallel TensorFlow training over `mpirun` workers with Horovod, or one process.

``mpirun -np N python run_squad.py --use_horovod=true ...``: every worker builds the same
model, rank 0's initial weights are broadcast to all, each worker reads its own shard of
the data, gradients are averaged across workers before every update, and rank 0 alone
writes checkpoints and outputs. Horovod is optional: asking for it without it installed
is one clear error that says how to install it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import tensorflow as tf

from bertfam.errors import UserError
from bertfam.tf import HOROVOD_INSTALL_HINT

log = logging.getLogger(__name__)

STALL_SHUTDOWN_S = 600


class HorovodUnavailableError(UserError):
    """--use_horovod=true on a machine without Horovod for TensorFlow."""


@dataclass(frozen=True)
class Workers:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    allreduce: Optional[Callable[[tf.Tensor], tf.Tensor]] = None
    broadcast: Optional[Callable[[Iterable[tf.Variable]], None]] = None

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    def broadcast_from_rank0(self, variables: Iterable[tf.Variable]) -> None:
        if self.broadcast is not None:
            self.broadcast(list(variables))


def import_horovod():
    try:
        import horovod.tensorflow as hvd
    except ImportError as error:
        raise HorovodUnavailableError(
            f"--use_horovod=true needs Horovod for TensorFlow ({error}). Install it with: "
            f"{HOROVOD_INSTALL_HINT}"
        ) from None
    return hvd


def init_workers(use_horovod: bool, hierarchical_allreduce: bool = False) -> Workers:
    if not use_horovod:
        return Workers()
    if hierarchical_allreduce:
        # Horovod reads it at init; upstream's --horovod_hierarchical_allreduce sets it too.
        os.environ["HOROVOD_HIERARCHICAL_ALLREDUCE"] = "1"
    # A rank hung outside Horovod (stuck reading a file, say) otherwise holds every other
    # rank in its next allreduce for ever: Horovod's stall check ends the job instead
    # after 600 s, as PyTorch's collectives give up (a dead rank ends it through mpirun).
    os.environ.setdefault("HOROVOD_STALL_SHUTDOWN_TIME_SECONDS", str(STALL_SHUTDOWN_S))
    hvd = import_horovod()
    hvd.init()

    def allreduce(gradient: tf.Tensor) -> tf.Tensor:
        return hvd.allreduce(gradient, op=hvd.Average)

    def broadcast(variables) -> None:
        hvd.broadcast_variables(variables, root_rank=0)

    workers = Workers(hvd.rank(), hvd.size(), hvd.local_rank(), allreduce, broadcast)
    log.info(
        "Horovod worker %d of %d (local rank %d)", workers.rank, workers.size, workers.local_rank
    )
    return workers
