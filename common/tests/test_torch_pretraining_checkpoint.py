"""Resuming PyTorch pre-training: the newest checkpoint that reads, a damaged newer one
passed over in one line (never a silent fresh start)."""

import logging

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

from bertfam.checkpoints import CheckpointError  # noqa: E402
from bertfam.torch.pretraining_checkpoint import (  # noqa: E402
    newest_readable_checkpoint,
    save_checkpoint,
)


def test_a_damaged_newest_checkpoint_is_passed_over_in_one_line(tmp_path, caplog):
    for step in (2, 4):
        save_checkpoint(tmp_path, step, {"model": {"w": torch.full((3,), float(step))}})
    newest = tmp_path / "ckpt_4.pt"
    newest.write_bytes(newest.read_bytes()[:50])  # a copy cut short
    with caplog.at_level(logging.WARNING):
        path, contents = newest_readable_checkpoint(tmp_path)
    assert path == tmp_path / "ckpt_2.pt" and contents["model"]["w"].tolist() == [2.0] * 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"{newest}: cannot read it")
    assert warnings[0].endswith(f"resuming from the previous one, {tmp_path / 'ckpt_2.pt'}")

    with pytest.raises(CheckpointError, match="no ckpt_3.pt to resume from"):
        newest_readable_checkpoint(tmp_path, step=3)
    (tmp_path / "ckpt_2.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="no readable checkpoint to resume from"):
        newest_readable_checkpoint(tmp_path)
    assert newest_readable_checkpoint(tmp_path / "empty") is None
