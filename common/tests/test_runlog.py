import io
import json
import subprocess
import sys

import numpy as np
import pytest

from bertfam.plot_metrics import main as plot_main
from bertfam.plot_metrics import plot_metrics, series
from bertfam.runlog import METRICS_FILE, TENSORBOARD_DIR, RunLog, Throughput, progress, read_metrics
from bertfam.tensorboard_events import crc32c


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_metrics_jsonl_records(tmp_path):
    clock = FakeClock()
    with RunLog(tmp_path, tensorboard=False, clock=clock) as run:
        clock.now += 1.5
        run.log(10, loss=np.float32(2.5), learning_rate=1e-4, sequences_per_second=32.0)
        clock.now += 1.0
        run.log(20, loss=2.0, learning_rate=None, exact_match=81.2)
    lines = (tmp_path / METRICS_FILE).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "step": 10,
            "elapsed": 1.5,
            "loss": 2.5,
            "learning_rate": 1e-4,
            "sequences_per_second": 32.0,
        },
        {"step": 20, "elapsed": 2.5, "loss": 2.0, "exact_match": 81.2},
    ]


def test_resumed_run_appends(tmp_path):
    with RunLog(tmp_path, tensorboard=False) as run:
        run.log(1, loss=3.0)
    with RunLog(tmp_path, tensorboard=False) as run:
        run.log(2, loss=2.0)
    assert [r["step"] for r in read_metrics(tmp_path / METRICS_FILE)] == [1, 2]


def test_only_the_main_process_writes(tmp_path):
    with RunLog(tmp_path / "out", enabled=False) as run:
        record = run.log(5, loss=1.0)
    assert record["loss"] == 1.0
    assert not (tmp_path / "out").exists()


def test_tensorboard_scalars_read_back_by_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with RunLog(tmp_path) as run:
        for step, loss in [(1, 3.0), (2, 2.5), (3, 2.25)]:
            run.log(step, loss=loss, learning_rate=step * 1e-5)
    events = EventAccumulator(str(tmp_path / TENSORBOARD_DIR))
    events.Reload()
    assert {"loss", "learning_rate", "elapsed"} <= set(events.Tags()["scalars"])
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 3.0), (2, 2.5), (3, 2.25)]
    assert [e.value for e in events.Scalars("learning_rate")] == pytest.approx([1e-5, 2e-5, 3e-5])


def test_read_metrics_skips_a_torn_last_line_only(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1, "loss": 2}\n{"step": 2, "lo')
    assert read_metrics(path) == [{"step": 1, "loss": 2}]
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"m\.jsonl:2: not a JSON object"):
        read_metrics(path)


def test_throughput():
    clock = FakeClock()
    meter = Throughput(clock)
    clock.now += 2.0
    assert meter.tick(64) == 32.0
    clock.now += 0.5
    assert meter.tick(64) == 128.0


def test_progress_bar_counts_and_can_be_silenced(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert list(progress(range(7), desc="features", unit="ex")) == list(range(7))
    assert "features" in stream.getvalue() and "7/7" in stream.getvalue()
    stream.truncate(0)
    stream.seek(0)
    assert sum(progress(range(3), enabled=False)) == 3
    assert stream.getvalue() == ""


def test_series_keeps_latest_record_per_step():
    records = [
        {"step": 1, "loss": 4.0},
        {"step": 2, "loss": 3.0},
        {"step": 3, "loss": 9.9},
        # resumed from the step-2 checkpoint: step 3 again
        {"step": 3, "loss": 2.0},
        {"step": 4, "loss": 1.0, "sequences_per_second": 10.0},
    ]
    assert series(records, "loss") == ([1, 2, 3, 4], [4.0, 3.0, 2.0, 1.0])
    assert series(records, "sequences_per_second") == ([4], [10.0])


def test_plot_writes_a_png_of_what_was_logged(tmp_path):
    import matplotlib.image

    records = [{"step": s, "loss": 5.0 / s, "sequences_per_second": 30.0 + s} for s in range(1, 11)]
    drawn = plot_metrics(records, tmp_path / "plot.png")
    assert drawn["loss"] == (list(range(1, 11)), [5.0 / s for s in range(1, 11)])
    image = matplotlib.image.imread(tmp_path / "plot.png")
    assert image.shape[:2] == (600, 800)  # two panels of 8x3 inches at 100 dpi
    assert image.std() > 0  # not blank


def test_plot_command_line(tmp_path):
    with RunLog(tmp_path, tensorboard=False) as run:
        for step in range(1, 4):
            run.log(step, loss=1.0 / step)
    result = subprocess.run(
        [sys.executable, "-m", "bertfam.plot_metrics", str(tmp_path / METRICS_FILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "3 loss points" in result.stdout


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such metrics log"),
        ('{"step": 1, "accuracy": 0.5}\n', "has no 'loss' records"),
        ('{"step": 1}\ngarbage\n{"step": 2}\n', "metrics.jsonl:2: not a JSON object"),
    ],
)
def test_plot_bad_input_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "metrics.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        plot_main([str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "metrics.png").exists()


def test_crc32c_is_castagnolis():
    # The check value of CRC-32C (RFC 3720, B.4) and TFRecord's mask of the empty string.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"\x00" * 32) == 0x8A9136AA


def test_writing_tensorboard_imports_no_framework(tmp_path):
    """A TensorFlow run must not pay for importing torch (tensorboardX did, whenever torch
    was installed), nor a PyTorch run for TensorFlow."""
    code = (
        "import sys; from bertfam.runlog import RunLog\n"
        f"with RunLog({str(tmp_path)!r}) as run: run.log(1, loss=1.0)\n"
        "print(sorted({'torch', 'tensorflow', 'tensorboardX'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]
    assert len(list((tmp_path / TENSORBOARD_DIR).glob("events.out.tfevents.*"))) == 1
