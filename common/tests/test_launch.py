import pytest

from bertfam.launch import (
    DEFAULT_MASTER_ADDR,
    DEFAULT_MASTER_PORT,
    LaunchEnvError,
    detect_launch_env,
)


def test_no_launcher_is_a_single_process():
    env = detect_launch_env({})
    assert (env.launcher, env.rank, env.world_size, env.local_rank, env.local_world_size) == (
        "single",
        0,
        1,
        0,
        1,
    )
    assert (env.master_addr, env.master_port) == (DEFAULT_MASTER_ADDR, DEFAULT_MASTER_PORT)
    assert env.is_main_process and not env.is_distributed


def test_open_mpi():
    env = detect_launch_env(
        {
            "OMPI_COMM_WORLD_RANK": "5",
            "OMPI_COMM_WORLD_SIZE": "8",
            "OMPI_COMM_WORLD_LOCAL_RANK": "1",
            "OMPI_COMM_WORLD_LOCAL_SIZE": "4",
            "MASTER_ADDR": "10.0.0.7",
            "MASTER_PORT": "12345",
        }
    )
    assert (env.launcher, env.rank, env.world_size, env.local_rank, env.local_world_size) == (
        "openmpi",
        5,
        8,
        1,
        4,
    )
    assert (env.master_addr, env.master_port) == ("10.0.0.7", 12345)
    assert env.is_distributed and not env.is_main_process


def test_pmi_with_hydra_local_rank():
    env = detect_launch_env(
        {"PMI_RANK": "3", "PMI_SIZE": "4", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2"}
    )
    assert (env.launcher, env.rank, env.world_size, env.local_rank, env.local_world_size) == (
        "pmi",
        3,
        4,
        1,
        2,
    )


def test_pmi_without_local_view_assumes_one_node():
    env = detect_launch_env({"PMI_RANK": "2", "PMI_SIZE": "3"})
    assert (env.local_rank, env.local_world_size) == (2, 3)


def test_torchrun():
    env = detect_launch_env(
        {
            "RANK": "1",
            "WORLD_SIZE": "2",
            "LOCAL_RANK": "1",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29501",
        }
    )
    assert (env.launcher, env.rank, env.world_size, env.local_rank) == ("torchrun", 1, 2, 1)
    assert (env.master_addr, env.master_port) == ("127.0.0.1", 29501)


def test_torchrun_variables_win_over_mpi():
    env = detect_launch_env(
        {"RANK": "0", "WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}
    )
    assert (env.launcher, env.world_size) == ("torchrun", 1)


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"RANK": "0"}, "RANK is set but WORLD_SIZE is not"),
        (
            {"OMPI_COMM_WORLD_SIZE": "2"},
            "OMPI_COMM_WORLD_SIZE is set but OMPI_COMM_WORLD_RANK is not",
        ),
        ({"PMI_RANK": "x", "PMI_SIZE": "2"}, "PMI_RANK='x' is not an integer"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2 from torchrun is outside 0..1"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE=0 from torchrun: a world size must be >= 1"),
        (
            {
                "OMPI_COMM_WORLD_RANK": "0",
                "OMPI_COMM_WORLD_SIZE": "2",
                "OMPI_COMM_WORLD_LOCAL_RANK": "3",
            },
            "OMPI_COMM_WORLD_LOCAL_RANK=3 from openmpi is outside 0..1",
        ),
        ({"MASTER_PORT": "70000"}, "MASTER_PORT=70000 is not a TCP port"),
        ({"MASTER_PORT": "http"}, "MASTER_PORT='http' is not an integer"),
    ],
)
def test_bad_launch_variables_are_one_clear_error(environ, message):
    with pytest.raises(LaunchEnvError, match="^" + message.replace(".", r"\.").replace("(", r"\(")):
        detect_launch_env(environ)


def test_reads_os_environ_by_default(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "PMI_RANK", "PMI_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert detect_launch_env().rank == 1
