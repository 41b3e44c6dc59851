"""Data-parallel training under `mpirun -np 2` with Horovod, on the CPU.

Two workers with batch B must train exactly like one process with batch 2B: the same
losses, the same final weights, and the same weights on both workers.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from records import create_records

from bertfam import tinydata as tiny
from bertfam.testing import assert_same_checkpoint_weights, horovod_mpirun, kill_rank_mid_run

FOLDER = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def run_flags(tmp_path):
    vocab = tiny.vocab_file(tmp_path / "vocab.txt")
    config = tiny.bert_config_file(
        tmp_path / "bert_config.json", len(vocab.read_text().splitlines())
    )
    squad = tiny.squad_file(tmp_path / "train.json", questions=32)
    return [
        f"--vocab_file={vocab}",
        f"--bert_config_file={config}",
        "--do_train=True",
        f"--train_file={squad}",
        "--max_seq_length=48",
        "--doc_stride=16",
        "--max_query_length=12",
        "--learning_rate=1e-3",
        "--num_train_steps=6",
        "--save_checkpoints_steps=3",
        "--deterministic_run=true",
    ]


def environment():
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # mpirun's helpers sit beside it
    return env


def losses(output_dir):
    return [
        json.loads(line)["loss"] for line in (output_dir / "metrics.jsonl").read_text().splitlines()
    ]


def test_two_workers_train_like_one_process_with_twice_the_batch(run_flags, tmp_path):
    """run_squad.py under mpirun (through horovod_ranks.py, which also saves each rank's
    weights): the losses and weights of one process with the global batch, both ranks
    ending with the same weights, rank 0 alone writing."""
    launcher = horovod_mpirun()
    two, one, prefix = tmp_path / "two", tmp_path / "one", tmp_path / "rank"
    distributed = subprocess.run(
        launcher
        + [sys.executable, str(FOLDER / "tests" / "horovod_ranks.py"), str(prefix)]
        + run_flags
        + ["--train_batch_size=2", "--use_horovod=true", f"--output_dir={two}"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        env=environment(),
        timeout=600,
    )
    assert distributed.returncode == 0, distributed.stderr[-3000:]
    single = subprocess.run(
        [sys.executable, "run_squad.py"]
        + run_flags
        + ["--train_batch_size=4", f"--output_dir={one}"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]

    assert len(losses(two)) == 6
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-5)
    assert_same_checkpoint_weights(two / "model.ckpt-6", one / "model.ckpt-6", atol=1e-5)
    # Rank 0 alone writes: one metrics log, one set of checkpoints.
    assert sorted(p.name for p in two.glob("model.ckpt-*.index")) == ["model.ckpt-6.index"]
    rank0, rank1 = np.load(f"{prefix}0.npz"), np.load(f"{prefix}1.npz")
    assert set(rank0.files) == set(rank1.files) and len(rank0.files) > 20
    for name in rank0.files:
        np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=name)

    # SIGTERM to rank 1 alone after update 2: both ranks stop after it, rank 0 saves it and
    # says so; rerunning under mpirun ends with the uninterrupted weights.
    preempted = tmp_path / "preempted"
    script = ["run_squad.py", *run_flags, "--train_batch_size=2", "--use_horovod=true",
              f"--output_dir={preempted}"]  # fmt: skip
    signalled = [sys.executable, "-m", "bertfam.testing.tf_signal_after_update", "2", *script]
    stopped = subprocess.run(launcher + signalled, cwd=FOLDER, capture_output=True, text=True,
                             env={**environment(), "SIGNAL_RANK": "1"}, timeout=600)  # fmt: skip
    assert stopped.returncode != 0
    assert (
        f"stopped by SIGTERM after update 2; checkpoint {preempted}/model.ckpt-2: rerun"
        in stopped.stderr
    ), stopped.stderr[-3000:]
    assert sorted(p.name for p in preempted.glob("model.ckpt-*.index")) == ["model.ckpt-2.index"]
    resumed = subprocess.run(launcher + [sys.executable, *script], cwd=FOLDER,
                             capture_output=True, text=True, env=environment(), timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_checkpoint_weights(preempted / "model.ckpt-6", one / "model.ckpt-6", atol=1e-5)


def test_use_horovod_without_horovod_is_one_line(run_flags, tmp_path):
    # Hide an installed Horovod behind a package that fails to import, as a missing one does.
    hidden = tmp_path / "hidden" / "horovod"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('No module named horovod')\n")
    env = dict(os.environ, PYTHONPATH=str(hidden.parent))
    result = subprocess.run(
        [
            sys.executable,
            "run_squad.py",
            *run_flags,
            "--use_horovod=true",
            f"--output_dir={tmp_path / 'out'}",
        ],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "--use_horovod=true needs Horovod, which is not installed" in lines[0]
    )
    assert "tools/install_horovod.sh" in lines[0]
    assert not (tmp_path / "out").exists()


def pretraining_flags(tmp_path, shared_data, documents=40):
    """Records from create_pretraining_data.py (64 tokens, 10 predictions) and the
    run_pretraining.py flags every multi-worker test shares."""
    vocab = shared_data / "bert_uncased" / "vocab.txt"
    corpus = tiny.pretraining_corpus(tmp_path / "corpus.txt", vocab, seed=3, documents=documents)
    (tmp_path / "train").mkdir()
    create_records(corpus, [tmp_path / "train" / "a.tfrecord", tmp_path / "train" / "b.tfrecord"],
                   vocab, 64, 10)  # fmt: skip
    config = tiny.bert_config_file(tmp_path / "bert_config.json", 30522, max_position_embeddings=64)
    return [
        f"--bert_config_file={config}", f"--input_files_dir={tmp_path / 'train'}",
        "--do_train=true", "--max_seq_length=64", "--max_predictions_per_seq=10",
        "--num_warmup_steps=1", "--save_checkpoints_steps=2", "--deterministic_run=true",
        "--noamp", "--nouse_xla", f"--dllog_path={tmp_path / 'dllog.json'}",
    ]  # fmt: skip


def two_nodes(command, extra=None, **popen):
    """`command` as two Horovod ranks on two simulated nodes, each rank with local rank 0
    (Gloo, as horovodrun starts them, with made-up host names), `extra` added to their
    environment; returns their results."""
    from horovod.runner.common.util.hosts import get_host_assignments, parse_hosts
    from horovod.runner.http.http_server import RendezvousServer

    server = RendezvousServer(verbose=0)
    port = server.start()
    plan = get_host_assignments(parse_hosts("node-a:1,node-b:1"), 2)
    server.init(plan)
    processes = []
    try:
        for slot in plan:
            env = dict(
                environment(),
                HOROVOD_HOSTNAME=slot.hostname, HOROVOD_RANK=str(slot.rank),
                HOROVOD_SIZE=str(slot.size), HOROVOD_LOCAL_RANK=str(slot.local_rank),
                HOROVOD_LOCAL_SIZE=str(slot.local_size), HOROVOD_CROSS_RANK=str(slot.cross_rank),
                HOROVOD_CROSS_SIZE=str(slot.cross_size), HOROVOD_GLOO_RENDEZVOUS_ADDR="127.0.0.1",
                HOROVOD_GLOO_RENDEZVOUS_PORT=str(port), HOROVOD_CONTROLLER="gloo",
                HOROVOD_CPU_OPERATIONS="gloo", HOROVOD_GLOO_IFACE="lo", **(extra or {}),
            )  # fmt: skip
            processes.append(
                subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, **popen)
            )
        return [(p.wait(timeout=600), p.stderr.read()) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        server.stop()


def test_two_nodes_sharing_one_output_dir_save_and_resume_cleanly(tmp_path, shared_data):
    """The seed's known issue: ranks on two nodes, each the first on its node, writing into
    one shared output directory. Only rank 0 writes; the run saves, resumes from its
    checkpoint with more steps (SIGTERM on node-b's rank after update 5 stopping both,
    then resuming again), and ends with the weights one process gets doing the same."""
    pytest.importorskip("horovod.tensorflow", reason="Horovod runs the simulated nodes")
    common = pretraining_flags(tmp_path, shared_data)
    shared = tmp_path / "shared"
    script = [sys.executable, "run_pretraining.py", *common, "--horovod",
              "--train_batch_size=2", "--learning_rate=1e-3", f"--output_dir={shared}"]  # fmt: skip
    first = two_nodes(script + ["--num_train_steps=4"], cwd=FOLDER)
    assert [code for code, _ in first] == [0, 0], first[0][1][-2000:] + first[1][1][-2000:]
    assert all("local rank 0" in err for _, err in first)  # both first on their "node"
    assert sorted(p.name for p in shared.glob("model.ckpt-*.index")) == [
        "model.ckpt-2.index",
        "model.ckpt-4.index",
    ]
    assert not list(shared.glob("worker_*")) and not list(shared.glob(".*tmp*"))
    signalled = [sys.executable, "-m", "bertfam.testing.tf_signal_after_update", "5", *script[1:]]
    stopped = two_nodes(signalled + ["--num_train_steps=6"], cwd=FOLDER, extra={"SIGNAL_RANK": "1"})
    assert [code for code, _ in stopped] == [143, 143], stopped[1][1][-2000:]
    assert "Resuming from" in stopped[0][1]
    assert stopped[0][1].strip().splitlines()[-1] == (
        f"run_pretraining.py: stopped by SIGTERM after update 5; checkpoint {shared}/"
        "model.ckpt-5: rerun the same command to resume"
    )
    resumed = two_nodes(script + ["--num_train_steps=6"], cwd=FOLDER)
    assert [code for code, _ in resumed] == [0, 0], resumed[0][1][-2000:]
    assert "Resuming from" in resumed[0][1]
    steps = [
        json.loads(line)["step"] for line in (shared / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5, 6]
    # One process at the global batch, run the same two ways (4 updates, then to 6): the
    # same losses at every update and the same weights (upstream's learning rate for two
    # workers: the peak times the number of workers).
    for steps in (4, 6):
        single = subprocess.run(
            [sys.executable, "run_pretraining.py", *common, f"--num_train_steps={steps}",
             "--train_batch_size=4", "--learning_rate=2e-3", f"--output_dir={tmp_path / 'one'}"],
            cwd=FOLDER, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert single.returncode == 0, single.stderr[-3000:]
    np.testing.assert_allclose(losses(shared), losses(tmp_path / "one"), rtol=1e-5)
    assert_same_checkpoint_weights(
        shared / "model.ckpt-6", tmp_path / "one" / "model.ckpt-6", atol=1e-5
    )


def test_a_dead_rank_ends_the_job_with_an_error_instead_of_hanging(tmp_path, shared_data):
    launcher = horovod_mpirun()
    common = pretraining_flags(tmp_path, shared_data, documents=20)
    metrics = tmp_path / "out" / "metrics.jsonl"
    dead = kill_rank_mid_run(
        launcher + [sys.executable, "run_pretraining.py", *common, "--horovod",
                    "--train_batch_size=2", "--num_train_steps=100000",
                    f"--output_dir={metrics.parent}"],
        rank=1, script="run_pretraining.py",
        started=lambda: metrics.is_file() and metrics.stat().st_size > 0,
        cwd=FOLDER, env=environment(),
    )  # fmt: skip
    assert dead.returncode != 0 and dead.seconds < 60, dead.output[-3000:]
    assert "process rank 1 " in dead.output, dead.output[-3000:]  # mpirun names the lost rank


@pytest.mark.parametrize("given,expected", [(None, "600"), ("45", "45")])
def test_horovod_stall_shutdown_is_on_unless_the_environment_sets_it(given, expected):
    """Horovod leaves its stall shutdown off (0); the workers start with 600 s."""
    pytest.importorskip("horovod.tensorflow", reason="Horovod is not installed (see README)")
    env = {k: v for k, v in environment().items() if k != "HOROVOD_STALL_SHUTDOWN_TIME_SECONDS"}
    if given is not None:
        env["HOROVOD_STALL_SHUTDOWN_TIME_SECONDS"] = given
    read = subprocess.run(
        [sys.executable, "-c", "import os; from bertfam.tf.distributed import init_workers; "
         "init_workers(True); print(os.environ['HOROVOD_STALL_SHUTDOWN_TIME_SECONDS'])"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr[-2000:]
    assert read.stdout.split()[-1] == expected


def test_a_hung_rank_ends_the_job_after_the_stall_timeout(tmp_path, shared_data):
    """Rank 1 stops taking steps after update 2 but stays alive (stuck reading a file):
    Horovod's stall check, which `init_workers` turns on (600 s unless the environment says
    otherwise; 10 s here), ends the job instead of rank 0 waiting in its allreduce."""
    launcher = horovod_mpirun()
    common = pretraining_flags(tmp_path, shared_data, documents=20)
    stall = {"HOROVOD_STALL_CHECK_TIME_SECONDS": "2", "HOROVOD_STALL_SHUTDOWN_TIME_SECONDS": "10"}
    started = time.monotonic()
    hung = subprocess.run(
        launcher + [sys.executable, "-m", "bertfam.testing.tf_signal_after_update", "2", "HANG",
                    "run_pretraining.py", *common, "--horovod", "--train_batch_size=2",
                    "--num_train_steps=100000", f"--output_dir={tmp_path / 'out'}"],
        cwd=FOLDER, capture_output=True, text=True, timeout=300,
        env={**environment(), **stall, "SIGNAL_RANK": "1"},
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert hung.returncode != 0 and seconds < 120, hung.stderr[-3000:]
    assert (tmp_path / "out" / "model.ckpt-2.index").is_file()  # it trained up to the hang
    assert re.search(r"^1!: \[", hung.stderr, re.M), hung.stderr[-3000:]  # rank 1 named
