"""The launch-environment parser against real launchers: Open MPI's mpirun and torchrun."""

import json
import subprocess
import sys

import pytest

from bertfam.testing import launch_free_env, mpirun


def _ranks(stdout):
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return sorted(records, key=lambda r: r["rank"])


def test_under_open_mpi_mpirun(tmp_path):
    env = launch_free_env()
    env["MASTER_PORT"] = "23456"
    result = subprocess.run(
        [*mpirun(2, "MASTER_PORT"), sys.executable, "-m", "bertfam.launch"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    ranks = _ranks(result.stdout)
    assert [
        (r["launcher"], r["rank"], r["world_size"], r["local_rank"], r["local_world_size"])
        for r in ranks
    ] == [
        ("openmpi", 0, 2, 0, 2),
        ("openmpi", 1, 2, 1, 2),
    ]
    assert {r["master_port"] for r in ranks} == {23456}


def test_under_torchrun():
    pytest.importorskip("torch")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "bertfam.launch",
        ],
        capture_output=True,
        text=True,
        env=launch_free_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    ranks = _ranks(result.stdout)
    assert [(r["launcher"], r["rank"], r["world_size"], r["local_rank"]) for r in ranks] == [
        ("torchrun", 0, 2, 0),
        ("torchrun", 1, 2, 1),
    ]
    # torchrun --standalone picks a free port and publishes it; both ranks must agree.
    assert len({(r["master_addr"], r["master_port"]) for r in ranks}) == 1
