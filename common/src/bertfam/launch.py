"""Who am I in a multi-process run: rank, local rank, world size and rendezvous address.

Read once at the entry point from the variables the launcher sets, so that code below
receives plain values. Launchers we understand, in the order we look for them:

- torchrun / torch.distributed.launch: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
  MASTER_ADDR, MASTER_PORT (explicit, so it wins when a user also runs under mpirun).
- Open MPI's mpirun: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE.
- MPICH / Intel MPI (Hydra) and other PMI launchers: PMI_RANK, PMI_SIZE, and
  MPI_LOCALRANKID / MPI_LOCALNRANKS for the node-local view.
- Nothing: a single process.

MPI launchers do not publish a rendezvous address. As upstream does, MASTER_ADDR and
MASTER_PORT are taken from the environment when set (``mpirun -x MASTER_ADDR=...``
for several nodes) and default to this host otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

from bertfam.errors import UserError

DEFAULT_MASTER_ADDR = "localhost"
DEFAULT_MASTER_PORT = 29500


class LaunchEnvError(UserError):
    """The launcher's variables are missing, malformed or contradict each other."""


@dataclass(frozen=True)
class LaunchEnv:
    launcher: str  # "torchrun", "openmpi", "pmi" or "single"
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    master_addr: str
    master_port: int

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main_process(self) -> bool:
        """Rank 0 writes checkpoints, outputs and logs."""
        return self.rank == 0


# Each launcher: (name, rank, world size, local rank, local world size). A variable name
# of None means the launcher does not set it.
_LAUNCHERS = (
    ("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"),
    (
        "openmpi",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "OMPI_COMM_WORLD_LOCAL_SIZE",
    ),
    ("pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"),
)


def detect_launch_env(environ: Optional[Mapping[str, str]] = None) -> LaunchEnv:
    """Read the launch environment; `environ` defaults to `os.environ`."""
    env = os.environ if environ is None else environ
    master_addr = env.get("MASTER_ADDR") or DEFAULT_MASTER_ADDR
    master_port = _read_int(env, "MASTER_PORT", default=DEFAULT_MASTER_PORT)
    if not 0 < master_port < 65536:
        raise LaunchEnvError(f"MASTER_PORT={master_port} is not a TCP port (1-65535)")

    for name, rank_var, size_var, local_rank_var, local_size_var in _LAUNCHERS:
        if rank_var not in env and size_var not in env:
            continue
        if rank_var not in env or size_var not in env:
            present, absent = (rank_var, size_var) if rank_var in env else (size_var, rank_var)
            raise LaunchEnvError(f"{present} is set but {absent} is not; set both or neither")
        rank = _read_int(env, rank_var)
        world_size = _read_int(env, size_var)
        # Hydra sets MPI_LOCALRANKID; a bare PMI launcher may not. Without a node-local
        # view we assume one node, which is what a single-host mpirun is.
        local_rank = _read_int(env, local_rank_var, default=rank)
        local_world_size = _read_int(env, local_size_var, default=world_size)
        _check_ranks(name, rank, world_size, rank_var, size_var)
        _check_ranks(name, local_rank, local_world_size, local_rank_var, local_size_var)
        return LaunchEnv(
            name, rank, world_size, local_rank, local_world_size, master_addr, master_port
        )

    return LaunchEnv("single", 0, 1, 0, 1, master_addr, master_port)


def _read_int(env: Mapping[str, str], name: str, default: Optional[int] = None) -> int:
    value = env.get(name)
    if value is None or value == "":
        if default is None:
            raise LaunchEnvError(f"{name} is not set")
        return default
    try:
        return int(value)
    except ValueError:
        raise LaunchEnvError(f"{name}={value!r} is not an integer") from None


def _check_ranks(launcher: str, rank: int, size: int, rank_var: str, size_var: str) -> None:
    if size < 1:
        raise LaunchEnvError(f"{size_var}={size} from {launcher}: a world size must be >= 1")
    if not 0 <= rank < size:
        raise LaunchEnvError(
            f"{rank_var}={rank} from {launcher} is outside 0..{size - 1} ({size_var}={size})"
        )


def main() -> None:
    """``mpirun -np 2 python -m bertfam.launch``: print what each process sees, as JSON."""
    import json
    import sys

    from bertfam.errors import report_and_exit

    try:
        # One write per line: the ranks share stdout, and print() writes the text and the
        # newline separately, so two ranks' lines could interleave.
        sys.stdout.write(json.dumps(detect_launch_env().__dict__) + "\n")
        sys.stdout.flush()
    except LaunchEnvError as error:
        report_and_exit(error, prog="bertfam.launch")


if __name__ == "__main__":
    main()
