"""torch.distributed from real launchers (torchrun, Open MPI's mpirun) on CPUs with gloo:
both ranks end with identical weights, equal to one process with twice the batch."""

import subprocess
import sys
from pathlib import Path

import torch

from bertfam.testing import free_port, launch_free_env, mpirun

WORKER = Path(__file__).resolve().parent / "ddp_worker.py"


def single_process(tmp_path):
    result = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path / "single"), "4"],
        capture_output=True,
        text=True,
        env=launch_free_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return torch.load(tmp_path / "single0.pt")


def check_ranks(tmp_path, reference):
    rank0, rank1 = torch.load(tmp_path / "ddp0.pt"), torch.load(tmp_path / "ddp1.pt")
    for name, tensor in rank0["state"].items():
        torch.testing.assert_close(tensor, rank1["state"][name], atol=0, rtol=0, msg=name)
        torch.testing.assert_close(tensor, reference["state"][name], atol=1e-6, rtol=0, msg=name)
    # Each rank's loss is its half of the batch; their mean is the single process's loss.
    for step, expected in enumerate(reference["losses"]):
        assert abs((rank0["losses"][step] + rank1["losses"][step]) / 2 - expected) < 1e-5
    if Path("/proc/self/task").is_dir():
        # The group, left at the end, stops gloo's threads: one still running into the
        # interpreter's exit aborts the process now and then. torch.distributed._shard,
        # imported after the group (the optimizer imports it), used to keep them alive.
        for rank in (0, 1):
            assert (tmp_path / f"ddp{rank}.threads").read_text() == "", rank


def test_torchrun_two_processes_equal_one_with_twice_the_batch(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(WORKER),
            str(tmp_path / "ddp"),
            "2",
        ],
        capture_output=True,
        text=True,
        env=launch_free_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    check_ranks(tmp_path, single_process(tmp_path))


def test_mpirun_two_processes_equal_one_with_twice_the_batch(tmp_path):
    launcher = mpirun(2, "MASTER_ADDR", "MASTER_PORT")
    env = launch_free_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    result = subprocess.run(
        [*launcher, sys.executable, str(WORKER), str(tmp_path / "ddp"), "2"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    check_ranks(tmp_path, single_process(tmp_path))
