"""run_pretraining.py end to end on BERT records made from sample_text.txt, with a tiny
discriminator (``--electra_config_file``, dropout off): phase 1 then phase 2 as
electra.sh runs them, upstream's files and metric names; kill -9 then
``--restore_checkpoint=latest`` gives the uninterrupted weights; two Horovod workers at
half the batch train as one process; ``--load_weights`` starts from HuggingFace
folders; the bad inputs."""

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from electra_fixtures import TINY, bert_inputs, write_config, write_records
from transformers import ElectraConfig as HFConfig
from transformers import ElectraForMaskedLM, ElectraForPreTraining
from transformers.models.electra.modeling_electra import load_tf_weights_in_electra

from bertfam.testing import (
    assert_preempted,
    assert_same_checkpoint_weights,
    checkpoint_model_weights,
    horovod_mpirun,
    launch_free_env,
)

FOLDER = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(shared_data, tmp_path_factory):
    vocab, text = bert_inputs(shared_data)
    folder = tmp_path_factory.mktemp("electra_data")
    write_records(vocab, text, [folder / f"train-{i}.tfrecord" for i in range(2)], 64, 10, 2)
    write_config(folder / "config.json")
    return {"folder": folder, "vocab": vocab}


def flags(data, results, **overrides):
    values = {
        "model_name": "base",
        "electra_config_file": data["folder"] / "config.json",
        "pretrain_tfrecords": data["folder"] / "train-*.tfrecord",
        "vocab_file": data["vocab"],
        "results_dir": results,
        "max_seq_length": 64,
        "train_batch_size": 4,
        "optimizer": "lamb",
        "learning_rate": "1e-3",
        "num_train_steps": 6,
        "num_warmup_steps": 2,
        "save_checkpoints_steps": 2,
        "generator_hidden_size": 0.5,
        "disc_weight": 50.0,
        "log_freq": 1,
    }
    values.update(overrides)
    switches = [f"--{k}" for k, v in values.items() if v is True]
    return ["run_pretraining.py", *switches] + [
        f"--{k}={v}" for k, v in values.items() if v is not True and v is not None
    ]


def run(args, launcher=()):
    return subprocess.run([*launcher, sys.executable, *map(str, args)], cwd=FOLDER,
                          capture_output=True, text=True, env=launch_free_env(),
                          timeout=600)  # fmt: skip


def dllog(path):
    return [json.loads(line[5:]) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def phase1(data, tmp_path_factory):
    """Phase 1, uninterrupted, in one process: the run the other tests compare with."""
    results = tmp_path_factory.mktemp("phase1")
    first = run(flags(data, results))
    assert first.returncode == 0, first.stderr[-3000:]
    return results


def test_phase_1_then_phase_2_as_electra_sh_runs_them(data, phase1, tmp_path):
    shutil.copytree(phase1, tmp_path, dirs_exist_ok=True)  # phase 2 writes beside it
    model = tmp_path / "models" / "base"
    checkpoints = model / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("ckpt-*.index")) == [
        "ckpt-2.index", "ckpt-4.index", "ckpt-6.index"]  # fmt: skip
    saved = json.loads((checkpoints / "pretrain_config.json").read_text())
    assert saved["model_name"] == "base" and saved["model"]["vocab_size"] == 30528
    records = dllog(model / "logs" / "dllogger.log")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6, []]
    assert set(records[0]["data"]) == {"total_loss", "masked_lm_accuracy", "masked_lm_loss",
                                       "sampled_masked_lm_accuracy", "disc_loss", "disc_accuracy",
                                       "disc_precision", "disc_recall", "train_perf",
                                       "learning_rate"}  # fmt: skip
    assert {"training_sequences_per_second", "final_loss", "e2e_train_time"} <= set(
        records[-1]["data"]
    )
    second = run(flags(data, tmp_path, phase2=True, restore_checkpoint="latest",
                       num_train_steps=4, num_warmup_steps=1))  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Restored" in second.stderr and "ckpt-6 at step 0" in second.stderr
    phase2 = sorted(p.name for p in checkpoints.glob("ckpt-p2-*.index"))
    assert phase2 == ["ckpt-p2-2.index", "ckpt-p2-4.index"]
    # Phase 2 moved on from phase 1's weights, both networks and the shared tables.
    start, end = (checkpoint_model_weights(checkpoints / n) for n in ("ckpt-6", "ckpt-p2-4"))
    assert start.keys() == end.keys()
    for name in ("electra/embeddings/word_embeddings", "generator/encoder/layer_1/output/dense/kernel",
                 "discriminator_predictions/dense_1/kernel"):  # fmt: skip
        assert not np.allclose(start[name], end[name]), name


def test_kill_then_restore_latest_past_a_damaged_checkpoint_gives_the_uninterrupted_weights(
    data, phase1, tmp_path
):
    straight, crashed = phase1, tmp_path / "crashed"
    killed = run(["-m", "bertfam.testing.tf_crash_after_checkpoint", "4", *flags(data, crashed)])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    # The kill also cut the newest checkpoint short: latest passes over it, saying so.
    folder = crashed / "models" / "base" / "checkpoints"
    newest = folder / "ckpt-4.data-00000-of-00001"
    newest.write_bytes(newest.read_bytes()[:100])
    # The resumed run is preempted after update 3 (between checkpoints), then goes on.
    resume = flags(data, crashed, restore_checkpoint="latest")
    preempted = run(["-m", "bertfam.testing.tf_signal_after_update", "3", *resume])
    assert_preempted(preempted, "run_pretraining.py", 3, folder / "ckpt-3",
                     "rerun with --restore_checkpoint=latest to resume")  # fmt: skip
    assert f"resuming from the previous one, {folder}/ckpt-2" in preempted.stderr
    assert "ckpt-2 at step 2" in preempted.stderr
    resumed = run(resume)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "ckpt-3 at step 3" in resumed.stderr
    checkpoints = Path("models", "base", "checkpoints", "ckpt-6")
    assert_same_checkpoint_weights(crashed / checkpoints, straight / checkpoints, atol=1e-6)


def test_two_workers_at_half_the_batch_train_as_one_process_also_after_a_sigterm_to_one(
    data, phase1, tmp_path, monkeypatch
):
    """SIGTERM reaches rank 1 alone after update 3: both workers stop there, rank 0 writes
    the one checkpoint, and the resumed pair ends where one process at twice the batch does."""
    one, two = phase1, tmp_path / "two"
    monkeypatch.setenv("SIGNAL_RANK", "1")
    stopped = run(["-m", "bertfam.testing.tf_signal_after_update", "3", *flags(data, two, train_batch_size=2)],
                  launcher=horovod_mpirun() + ["-x", "SIGNAL_RANK"])  # fmt: skip
    monkeypatch.delenv("SIGNAL_RANK")
    folder = two / "models" / "base" / "checkpoints"
    assert stopped.returncode != 0, stopped.stderr[-3000:]  # mpirun reports 143 its own way
    assert f"stopped by SIGTERM after update 3; checkpoint {folder}/ckpt-3" in stopped.stderr
    resumed = flags(data, two, train_batch_size=2, restore_checkpoint="latest")
    distributed = run(resumed, launcher=horovod_mpirun())
    assert distributed.returncode == 0, distributed.stderr[-3000:]
    checkpoints = Path("models", "base", "checkpoints", "ckpt-6")
    assert_same_checkpoint_weights(two / checkpoints, one / checkpoints, atol=2e-5)


def test_load_weights_starts_from_huggingface_folders(data, tmp_path):
    weights = tmp_path / "weights"
    torch.manual_seed(0)
    discriminator = ElectraForPreTraining(HFConfig(**{**TINY, "vocab_size": 30528}))
    generator_shape = dict(TINY, vocab_size=30528, hidden_size=64, num_attention_heads=1,
                           intermediate_size=256)  # fmt: skip
    generator = ElectraForMaskedLM(HFConfig(**generator_shape))
    discriminator.save_pretrained(weights / "discriminator")
    generator.save_pretrained(weights / "generator")
    # One update at warm-up's rate 0: the checkpoint holds the loaded weights.
    result = run(flags(data, tmp_path, load_weights=True, weights_dir=weights,
                       num_train_steps=1, num_warmup_steps=1))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    saved = checkpoint_model_weights(tmp_path / "models" / "base" / "checkpoints" / "ckpt-1")
    np.testing.assert_allclose(
        saved["discriminator_predictions/dense_1/kernel"],
        discriminator.discriminator_predictions.dense_prediction.weight.detach().numpy().T,
    )
    np.testing.assert_allclose(
        saved["generator/encoder/layer_0/intermediate/dense/kernel"],
        generator.electra.encoder.layer[0].intermediate.dense.weight.detach().numpy().T,
    )
    np.testing.assert_allclose(
        saved["electra/embeddings/word_embeddings"],
        discriminator.electra.embeddings.word_embeddings.weight.detach().numpy(),
    )


def test_hmp_trains_in_bf16(data, tmp_path):
    result = run(flags(data, tmp_path, hmp=True, num_train_steps=2))
    assert result.returncode == 0, result.stderr[-3000:]
    model = tmp_path / "models" / "base"
    saved = json.loads((model / "checkpoints" / "pretrain_config.json").read_text())
    assert saved["bf16_config_path"].endswith("bf16_config/electra.json")
    losses = [r["data"]["total_loss"] for r in dllog(model / "logs" / "dllogger.log")[:-1]]
    assert len(losses) == 2 and all(np.isfinite(losses)) and losses[0] > 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(model_size="small", electra_config_file=None), "--model_size=small: base or large"),
        (dict(phase2=True), "--phase2 continues phase 1: give --restore_checkpoint"),
        (dict(load_weights=True, restore_checkpoint="latest"),
         "--load_weights and --restore_checkpoint: give one of them"),
        (dict(pretrain_tfrecords="/nowhere/*.tfrecord"),
         "--pretrain_tfrecords: '/nowhere/*.tfrecord' matches no file"),
        (dict(fp16_compression=True), "--fp16_compression: fp16 all-reduce compression"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_nothing_written(data, tmp_path, overrides, message):
    result = run(flags(data, tmp_path / "results", **overrides))
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_an_earlier_runs_checkpoints_are_never_overwritten(data, phase1, tmp_path):
    shutil.copytree(phase1, tmp_path, dirs_exist_ok=True)
    checkpoints = tmp_path / "models" / "base" / "checkpoints"
    before = {p.name: p.stat().st_mtime_ns for p in checkpoints.iterdir()}
    again = run(flags(data, tmp_path))
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds ckpt-6 of an earlier run: continue it with " \
        "--restore_checkpoint=latest" in lines[0], again.stderr[-2000:]  # fmt: skip
    assert {p.name: p.stat().st_mtime_ns for p in checkpoints.iterdir()} == before


def test_checkpoints_and_postprocessed_folders_load_into_huggingface_and_compute_the_same(
    phase1, tmp_path
):
    import modeling
    import tensorflow as tf

    from bertfam.electra_config import ElectraConfig
    from bertfam.testing import as_tf, hf_outputs, parity_inputs
    from bertfam.tf.checkpoint import assign_weights, read_tf_checkpoint, variables_by_name

    checkpoint = phase1 / "models" / "base" / "checkpoints" / "ckpt-6"
    result = subprocess.run(
        [sys.executable, "postprocess_pretrained_ckpt.py", f"--pretrained_checkpoint={checkpoint}",
         f"--output_dir={tmp_path}"], cwd=FOLDER, capture_output=True, text=True,
        env=launch_free_env(), timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ours = modeling.ElectraPretrainingModel(
        ElectraConfig.from_dict(dict(TINY, vocab_size=30528)), generator_hidden_size=0.5
    )
    variables = variables_by_name(ours)
    saved = read_tf_checkpoint(checkpoint)
    assign_weights(variables, {n: saved[n] for n in variables}, str(checkpoint))
    ids, mask, segments = parity_inputs(30528)
    every_position = np.tile(np.arange(ids.shape[1]), (ids.shape[0], 1))
    for part, hf_class in (("discriminator", ElectraForPreTraining),
                           ("generator", ElectraForMaskedLM)):  # fmt: skip
        hf, info = hf_class.from_pretrained(tmp_path / part, output_loading_info=True)
        assert info["missing_keys"] == [] and info["unexpected_keys"] == [], (part, info)
        reference = hf_outputs(hf.eval(), ids, mask, segments).logits.numpy()
        if part == "discriminator":
            logits = ours.discriminator(*as_tf(ids, mask, segments))
        else:
            logits = ours.generator(*as_tf(ids, mask, segments, every_position))
        np.testing.assert_allclose(tf.convert_to_tensor(logits).numpy(), reference, atol=1e-5)
        # HuggingFace's reader of Google's ELECTRA checkpoints takes the run's ckpt-6 as it
        # is (names it does not know it skips, so a weight it missed would stay random).
        converted = hf_class(hf.config)
        load_tf_weights_in_electra(converted, hf.config, str(checkpoint), part)
        upstream = hf_outputs(converted.eval(), ids, mask, segments).logits.numpy()
        np.testing.assert_allclose(upstream, reference, atol=1e-5)
