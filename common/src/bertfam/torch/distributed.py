"""torch.distributed for the PyTorch recipes: one process group from any launcher.

`init_distributed(device_kind, launch)` starts the process group the launcher's
environment describes (`bertfam.launch.detect_launch_env`: torchrun, Open MPI's mpirun,
PMI, or a single process) with the backend the device wants: ``hccl`` on Gaudi (Habana's
module registers it), ``nccl`` on NVIDIA GPUs, ``gloo`` on CPUs. Rendezvous is TCP at
MASTER_ADDR:MASTER_PORT, which torchrun publishes and mpirun users pass with ``-x``.
"""

from __future__ import annotations

import atexit
import logging
from datetime import timedelta

import torch
import torch.distributed as dist

from bertfam.errors import UserError
from bertfam.launch import LaunchEnv

log = logging.getLogger(__name__)

BACKENDS = {"hpu": "hccl", "gpu": "nccl", "cpu": "gloo"}


class DistributedError(UserError):
    """The process group cannot start as asked."""


def init_distributed(device_kind: str, launch: LaunchEnv, timeout_s: float = 600) -> str:
    """Join the launcher's process group and return its backend; a single process needs
    none ("" then). Rank and world size stay where they came from: `launch`."""
    if not launch.is_distributed:
        return ""
    backend = BACKENDS[device_kind]
    if backend == "hccl":
        import habana_frameworks.torch.distributed.hccl  # noqa: F401  (registers "hccl")
    # torch.distributed._shard takes references to the default group when it is imported
    # after the group exists, and torch._dynamo imports it (the first optimizer does, and
    # torch.compile): destroy_process_group then leaves gloo's threads running into the
    # interpreter's exit, where one aborts the process now and then ("terminate called
    # without an active exception") after a run that otherwise succeeded. Imported first,
    # it holds none.
    import torch._dynamo  # noqa: F401

    if device_kind == "gpu":
        torch.cuda.set_device(launch.local_rank % torch.cuda.device_count())
    try:
        dist.init_process_group(
            backend,
            init_method=f"tcp://{launch.master_addr}:{launch.master_port}",
            rank=launch.rank,
            world_size=launch.world_size,
            timeout=timedelta(seconds=timeout_s),
        )
    except (RuntimeError, ValueError) as error:
        raise DistributedError(
            f"rank {launch.rank} of {launch.world_size} could not join the {backend} process "
            f"group at {launch.master_addr}:{launch.master_port} ({error})"
        ) from None
    # Leave the group (and stop gloo's threads) before the interpreter tears down.
    atexit.register(shutdown)
    log.info(
        "rank %d of %d (local rank %d) joined the %s group via %s",
        launch.rank, launch.world_size, launch.local_rank, backend, launch.launcher,
    )  # fmt: skip
    return backend


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def agree_on_signal(received: int, world_size: int, device: torch.device) -> int:
    """The stop signal any process received (SIGTERM before SIGINT; 0 for none), the same
    on every process after the same update (`bertfam.preemption`)."""
    from bertfam.preemption import HANDLED

    if world_size == 1:
        return received
    seen = torch.tensor([float(received == number) for number in HANDLED], device=device)
    dist.all_reduce(seen)
    return next((number for number, count in zip(HANDLED, seen.tolist()) if count > 0), 0)
