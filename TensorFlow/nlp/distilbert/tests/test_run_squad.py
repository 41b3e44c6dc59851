"""run_squad.py end to end with the seed README's command lines, on a tiny converted model.

The model is what download/download_pretrained_model.py makes of a HuggingFace
DistilBERT with random weights; the data is a generated SQuAD v1.1 file. The flag names
are the seed's; values are shrunk (batch, sequence length) so a run takes seconds.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from distilbert_fixtures import FOLDER, convert, file_base_url, save_hf_distilbert
from transformers import DistilBertModel as HFDistilBertModel

from bertfam import tinydata as tiny
from bertfam.testing import assert_preempted, assert_same_checkpoint_weights, horovod_mpirun

HF_NAME = "distilbert-base-uncased"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pretrained")
    save_hf_distilbert(HFDistilBertModel, tmp / HF_NAME)
    return convert(file_base_url(tmp), tmp, tmp / HF_NAME)


@pytest.fixture
def squad(tmp_path):
    return tiny.squad_file(tmp_path / "train.json", questions=32)


def seed_flags(model_dir, squad, output_dir, cards=1, **overrides):
    """The seed's flags (1-card or 8-card line), with tiny-data values."""
    values = {
        "vocab_file": model_dir / "vocab.txt",
        "distilbert_config_file": model_dir / "distilbert_config.json",
        "init_checkpoint": model_dir / f"{HF_NAME}.ckpt-1",
        "bf16_config_path": "bf16_config/distilbert.json",
        "do_train": "True",
        "train_file": squad,
        "do_predict": "True",
        "predict_file": squad,
        "do_eval": "True",
        "train_batch_size": 4,
        "learning_rate": "5e-05" if cards == 1 else "2e-04",
        "num_train_epochs": 2,
        "max_seq_length": 48,
        "doc_stride": 16,
        "output_dir": output_dir,
        "use_horovod": "false" if cards == 1 else "true",
        # Not in the seed: its 64-token questions do not fit 48-token windows.
        "max_query_length": 12,
    }
    values.update(overrides)
    return [f"--{key}={value}" for key, value in values.items()]


def run(args, launcher=(), **kwargs):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [*launcher, sys.executable, *args],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        **kwargs,
    )


def losses(output_dir):
    lines = (output_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]


def assert_scored_like_the_evaluate_command(result, squad, output_dir):
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    evaluated = subprocess.run(
        [sys.executable, "-m", "bertfam.squad.evaluate", squad, output_dir / "predictions.json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed == json.loads(evaluated.stdout)
    # Upstream's WARNING lines, as fractions.
    assert f"Exact matches {printed['exact_match'] / 100.0}" in result.stderr
    assert f"Final accuracy {printed['f1'] / 100.0}" in result.stderr


def test_seed_one_card_line(model_dir, squad, tmp_path):
    out = tmp_path / "squad_distilbert"
    result = run(["run_squad.py", *seed_flags(model_dir, squad, out)])
    assert result.returncode == 0, result.stderr[-3000:]
    produced = {path.name for path in out.iterdir()}
    assert {"predictions.json", "nbest_predictions.json", "eval_results.txt"} <= produced
    assert {"checkpoint", "model.ckpt-16.index", "metrics.jsonl", "metrics.png"} <= produced
    assert len(losses(out)) == 16  # int(32 examples / batch 4 * 2 epochs)
    # Warm-started from the converted checkpoint: every DistilBERT weight, the head fresh.
    assert result.stderr.count("*INIT_FROM_CKPT*") == 4 + 2 * 16
    assert "cls/squad/output_weights: not in the checkpoint" in result.stderr
    assert_scored_like_the_evaluate_command(result, squad, out)


def test_seed_defaults_are_habanas():
    import run_squad
    from absl import flags

    flags.FLAGS(["run_squad.py", "--vocab_file=v", "--distilbert_config_file=c", "--output_dir=o"])
    try:
        config = run_squad.SCRIPT.config_from_flags()
    finally:
        flags.FLAGS.unparse_flags()
    assert config.num_train_epochs == 2.0
    assert (config.weight_decay_rate, config.beta_1, config.beta_2) == (0.0, 0.8, 0.95)


def test_seed_multi_card_line_under_mpirun_matches_one_process_also_after_a_sigterm_to_one(
    model_dir, squad, tmp_path, monkeypatch
):
    """The 8-card line on 2 workers at batch 2 trains as one process at batch 4, also when
    SIGTERM reaches rank 1 alone after update 7 and the same command resumes."""
    two, one = tmp_path / "two", tmp_path / "one"
    common = dict(deterministic_run="true", bf16_config_path="", do_eval="False")
    flags_two = seed_flags(model_dir, squad, two, cards=8, train_batch_size=2, **common)
    monkeypatch.setenv("SIGNAL_RANK", "1")
    stopped = run(["-m", "bertfam.testing.tf_signal_after_update", "7", "run_squad.py", *flags_two],
                  launcher=horovod_mpirun() + ["-x", "SIGNAL_RANK"])  # fmt: skip
    monkeypatch.delenv("SIGNAL_RANK")
    assert stopped.returncode != 0, stopped.stderr[-3000:]  # mpirun reports 143 its own way
    assert f"stopped by SIGTERM after update 7; checkpoint {two}/model.ckpt-7" in stopped.stderr
    distributed = run(["run_squad.py", *flags_two], launcher=horovod_mpirun())
    assert distributed.returncode == 0, distributed.stderr[-3000:]
    assert "Resuming from" in distributed.stderr
    flags_one = seed_flags(model_dir, squad, one, cards=8, use_horovod="false", **common)
    single = run(["run_squad.py", *flags_one])
    assert single.returncode == 0, single.stderr[-3000:]

    assert len(losses(two)) == 16
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-5)
    assert_same_checkpoint_weights(
        two / "model.ckpt-16", one / "model.ckpt-16", atol=1e-5, at_least=30
    )
    # Rank 0 alone writes, and predicts as one process does.
    assert json.loads((two / "predictions.json").read_text()) == json.loads(
        (one / "predictions.json").read_text()
    )


def test_resume_after_kill_then_sigterm_equals_an_uninterrupted_run(model_dir, squad, tmp_path):
    def flags(output_dir):
        return seed_flags(model_dir, squad, output_dir, deterministic_run="true",
                          do_predict="False", do_eval="False", bf16_config_path="",
                          num_train_steps=8, save_checkpoints_steps=2)  # fmt: skip

    straight, out = tmp_path / "straight", tmp_path / "out"
    assert run(["run_squad.py", *flags(straight)]).returncode == 0
    crashed = run(
        ["-m", "bertfam.testing.tf_crash_after_checkpoint", "4", "run_squad.py", *flags(out)]
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    # The resumed run is preempted after update 5 (between checkpoints), then goes on.
    preempted = run(
        ["-m", "bertfam.testing.tf_signal_after_update", "5", "run_squad.py", *flags(out)]
    )
    assert_preempted(preempted, "run_squad.py", 5, out / "model.ckpt-5")
    assert "Resuming from" in preempted.stderr
    resumed = run(["run_squad.py", *flags(out)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_checkpoint_weights(
        out / "model.ckpt-8", straight / "model.ckpt-8", atol=1e-6, at_least=30
    )


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing config", "no such file"),
        ("vocab size", "has 64 tokens but"),
        ("a BERT checkpoint", "the checkpoint lacks 36 model variables: distilbert/"),
    ],
)
def test_bad_input_is_one_line_and_nothing_written(model_dir, squad, tmp_path, case, message):
    out = tmp_path / "out"
    overrides = {
        "missing config": dict(distilbert_config_file=tmp_path / "none.json"),
        "vocab size": dict(
            distilbert_config_file=tiny.bert_config_file(tmp_path / "wrong.json", 1000)
        ),
        "a BERT checkpoint": dict(init_checkpoint=bert_checkpoint(tmp_path)),
    }[case]
    result = run(["run_squad.py", *seed_flags(model_dir, squad, out, **overrides)])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    if case == "a BERT checkpoint":
        # Found once TensorFlow reads the checkpoint, after its start-up log: the error is
        # still one line, the last, with no traceback.
        assert "Traceback" not in result.stderr
        lines = lines[-1:]
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert not out.exists() or not any(out.iterdir())


def bert_checkpoint(tmp_path):
    import tensorflow as tf

    from bertfam.tf.checkpoint import save_name_based_checkpoint

    weights = {"bert/embeddings/word_embeddings": tf.zeros([64, 32]).numpy()}
    return save_name_based_checkpoint(tmp_path / "bert_model.ckpt", weights)
