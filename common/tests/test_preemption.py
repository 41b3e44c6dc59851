"""bertfam.preemption: signals recorded, not fatal, inside the loop; handlers restored
after; the stop line and the shell's exit status."""

import os
import signal

import pytest

from bertfam.preemption import StopSignals, stop_run


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_a_signal_inside_is_recorded_and_the_handlers_come_back(number):
    before = signal.getsignal(number)
    with StopSignals() as stop:
        assert stop.received == 0
        os.kill(os.getpid(), number)  # would end the test process outside
        assert stop.received == number
        os.kill(os.getpid(), signal.SIGINT if number == signal.SIGTERM else signal.SIGTERM)
        assert stop.received == number  # the first one counts
    assert signal.getsignal(number) is before


def test_stop_line_and_status(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["run_squad.py"])
    with pytest.raises(SystemExit) as stopped:
        stop_run(signal.SIGTERM, 3, "out/model.ckpt-3")
    assert stopped.value.code == 143
    assert capsys.readouterr().err == (
        "run_squad.py: stopped by SIGTERM after update 3; checkpoint out/model.ckpt-3: "
        "rerun the same command to resume\n"
    )
    with pytest.raises(SystemExit) as stopped:
        stop_run(signal.SIGINT, 5, None, resume_hint="unused")
    assert stopped.value.code == 130
    assert "stopped by SIGINT after update 5; no checkpoint written" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        stop_run(signal.SIGUSR1, 2, "out/model.ckpt-2")
    assert stopped.value.code == 138
    assert (
        "stopped by SIGUSR1 after update 2; checkpoint out/model.ckpt-2" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as stopped:
        stop_run(signal.SIGTERM, 5, "x", quiet=True)  # the workers beside rank 0
    assert stopped.value.code == 143 and capsys.readouterr().err == ""
