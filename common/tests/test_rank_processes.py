"""bertfam.testing.rank_processes: the dead-rank tests kill a rank of their own job only,
never a process of the same rank and script that another test's job runs beside it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from bertfam.testing import rank_processes

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)", "fake_rank.py"]


def test_only_the_launchers_own_rank_is_found():
    env = dict(os.environ, OMPI_COMM_WORLD_RANK="1")
    launcher = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess; subprocess.run({SLEEPER!r})"], env=env
    )
    beside = subprocess.Popen(SLEEPER, env=env)  # the same rank and script, another job
    try:
        deadline = time.monotonic() + 30
        while not (found := rank_processes(1, "fake_rank.py", launcher.pid)):
            assert time.monotonic() < deadline, "the launcher's rank never showed up"
            time.sleep(0.1)
        assert len(found) == 1 and beside.pid not in found and launcher.pid not in found
        assert rank_processes(0, "fake_rank.py", launcher.pid) == []
        assert rank_processes(1, "other.py", launcher.pid) == []
    finally:
        for pid in rank_processes(1, "fake_rank.py", launcher.pid):
            os.kill(pid, signal.SIGKILL)
        for process in (launcher, beside):
            process.kill()
            process.wait()
