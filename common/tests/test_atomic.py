import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from bertfam import atomic
from bertfam.atomic import atomic_directory, atomic_write, write_json, write_text


def wait_for(path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


def start_writer(tmp_path, body):
    """A child process that runs `body` (which touches `started` midway) and then hangs."""
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)


def test_killed_file_writer_leaves_previous_version(tmp_path):
    target = tmp_path / "predictions.json"
    target.write_text("previous complete version\n")
    writer = start_writer(
        tmp_path,
        """
        import pathlib, time
        from bertfam.atomic import atomic_write
        with atomic_write("predictions.json") as f:
            f.write("new version, first half ")
            f.flush()
            pathlib.Path("started").touch()
            time.sleep(600)
            f.write("second half\\n")
        """,
    )
    try:
        wait_for(tmp_path / "started")
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
    assert writer.returncode == -signal.SIGKILL
    assert target.read_text() == "previous complete version\n"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".predictions.json.")]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")  # the half-written file, hidden


def test_killed_directory_writer_leaves_previous_version(tmp_path):
    target = tmp_path / "checkpoint-100"
    target.mkdir()
    (target / "model.bin").write_bytes(b"old weights")
    writer = start_writer(
        tmp_path,
        """
        import pathlib, time
        from bertfam.atomic import atomic_directory
        with atomic_directory("checkpoint-100") as tmp:
            (tmp / "model.bin").write_bytes(b"new weights")
            pathlib.Path("started").touch()
            time.sleep(600)
            (tmp / "optimizer.bin").write_bytes(b"state")
        """,
    )
    try:
        wait_for(tmp_path / "started")
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
    assert sorted(p.name for p in target.iterdir()) == ["model.bin"]
    assert (target / "model.bin").read_bytes() == b"old weights"


def test_file_write_replaces_and_cleans_up(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "one")
    write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_error_inside_block_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "eval_results.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("partial")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval_results.txt"]


def test_written_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_directory(tmp_path / "d") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~atomic._UMASK
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o777 & ~atomic._UMASK
    assert (tmp_path / "a.json").read_text() == '{\n    "x": 1\n}\n'


def test_atomic_write_refuses_append_mode(tmp_path):
    with (
        pytest.raises(ValueError, match="mode must be 'w' or 'wb'"),
        atomic_write(tmp_path / "x", "a"),
    ):
        pass


@pytest.mark.parametrize("exchange_supported", [True, False])
def test_directory_replacement(tmp_path, monkeypatch, exchange_supported):
    if not exchange_supported:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp / "v").write_text("1")
        (tmp / "only_in_first").write_text("x")
    with atomic_directory(target) as tmp:
        (tmp / "v").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["v"]
    assert (target / "v").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp or old left


def test_error_inside_directory_block_keeps_old(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp / "v").write_text("1")
    with pytest.raises(KeyError), atomic_directory(target) as tmp:
        (tmp / "v").write_text("2")
        raise KeyError("x")
    assert (target / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
