"""checkpoint-N folders (`bertfam.torch.checkpoint`): what one holds, what resuming reads
back, rotation by --save_total_limit; and the flag checks that read the layout without torch."""

import random
import subprocess
import sys

import modeling
import numpy as np
import pytest
import torch

from bertfam import tinydata
from bertfam.torch.args import FinetuneConfig
from bertfam.torch.checkpoint import (
    SavedModel,
    checkpoint_folders,
    restore_checkpoint,
    resumable_step,
    save_checkpoint,
    save_pretrained,
)
from bertfam.torch.losses import span_loss


def training_state(tmp_path, save_total_limit=None):
    """A model after one update, with its optimizer, schedule and what a run saves it with."""
    config = tinydata.tiny_bert_config()
    torch.manual_seed(0)
    model = modeling.BertForQuestionAnswering(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / 10)
    start, end = model(torch.randint(1, 50, (2, 8)))
    span_loss(start, end, torch.tensor([1, 2]), torch.tensor([2, 3])).backward()
    optimizer.step()
    scheduler.step()
    saved = SavedModel(
        config, str(tinydata.vocab_file(tmp_path / "vocab.txt")), "BertForQuestionAnswering"
    )
    args = FinetuneConfig(
        model_name_or_path="-", output_dir=str(tmp_path / "out"), save_total_limit=save_total_limit
    )
    return model, optimizer, scheduler, saved, args


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_a_checkpoint_resumes_optimizer_schedule_and_random_state(tmp_path):
    model, optimizer, scheduler, saved, args = training_state(tmp_path)
    folder = save_checkpoint(model, saved, args, 3, optimizer, scheduler)
    after_save = draws()
    assert folder == tmp_path / "out" / "checkpoint-3"
    assert sorted(path.name for path in folder.iterdir()) == [
        "config.json", "optimizer.pt", "pytorch_model.bin", "rng_state.pth",
        "scheduler.pt", "special_tokens_map.json", "tokenizer_config.json",
        "trainer_state.json", "training_args.bin", "vocab.txt",
    ]  # fmt: skip
    assert resumable_step(folder) == 3
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fresh_schedule = torch.optim.lr_scheduler.LambdaLR(fresh, lambda step: 1 - step / 10)
    draws()  # the generators move on; restoring puts them back
    assert restore_checkpoint(folder, fresh, fresh_schedule, torch.device("cpu")) == 3
    assert draws() == after_save
    assert fresh_schedule.last_epoch == scheduler.last_epoch == 1
    for ours, theirs in zip(fresh.state.values(), optimizer.state.values()):
        torch.testing.assert_close(ours["exp_avg"], theirs["exp_avg"], atol=0, rtol=0)
    # A plain model folder is a starting point, not a run to resume.
    assert resumable_step(save_pretrained(model, saved.config, tmp_path / "plain")) is None


def test_a_checkpoint_folder_reads_with_huggingfaces_own_readers(tmp_path):
    """HF v3.0.2 resumes from the folder's name and torch-loads optimizer.pt and
    scheduler.pt; today's Trainer also reads trainer_state.json (TrainerState) and
    rng_state.pth (keys python, numpy, cpu)."""
    from transformers import TrainerState

    model, optimizer, scheduler, saved, args = training_state(tmp_path)
    folder = save_checkpoint(model, saved, args, 12, optimizer, scheduler)
    assert int(str(folder).split("-")[-1].split("/")[0]) == 12  # v3.0.2's Trainer.train
    assert TrainerState.load_from_json(str(folder / "trainer_state.json")).global_step == 12
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fresh.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    assert fresh.state_dict()["state"].keys() == optimizer.state_dict()["state"].keys()
    schedule = torch.optim.lr_scheduler.LambdaLR(fresh, lambda step: 1 - step / 10)
    schedule.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
    assert schedule.last_epoch == 1
    rng = torch.load(folder / "rng_state.pth", weights_only=False)
    assert set(rng) == {"python", "numpy", "cpu"}
    torch.random.set_rng_state(rng["cpu"])  # what the Trainer's _load_rng_state calls


def test_rotation_keeps_the_newest_by_step(tmp_path):
    model, optimizer, scheduler, saved, args = training_state(tmp_path, save_total_limit=2)
    for step in (5, 10, 15):  # "checkpoint-10" sorts before "checkpoint-5" as text
        save_checkpoint(model, saved, args, step, optimizer, scheduler)
    (tmp_path / "out" / "checkpoint-x").mkdir()  # not a checkpoint: listed never, kept
    assert [path.name for path in checkpoint_folders(tmp_path / "out")] == [
        "checkpoint-10",
        "checkpoint-15",
    ]
    assert (tmp_path / "out" / "checkpoint-x").is_dir()


def test_a_failed_save_leaves_no_checkpoint(tmp_path):
    model, optimizer, scheduler, saved, args = training_state(tmp_path)

    class Broken:
        def state_dict(self):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, saved, args, 2, optimizer, Broken())
    assert list((tmp_path / "out").iterdir()) == []


def test_the_flag_checks_load_without_torch():
    """args and model_files (which reads the checkpoint layout) run before torch loads."""
    code = (
        "import sys, bertfam.torch.args, bertfam.torch.model_files; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
