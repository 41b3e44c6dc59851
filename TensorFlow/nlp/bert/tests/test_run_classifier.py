"""run_classifier.py end to end, as users run it: upstream flag names, subprocesses, tiny data.

The scores the script writes are checked against scores computed here, independently,
from the checkpoint it leaves: its weights are loaded by hand into `modeling`'s
classifier and the accuracy, the mean cross-entropy and the test probabilities are
recomputed with NumPy.

Resuming after a kill and training on two Horovod workers go through the same shared
loop and data path (`bertfam.tf.flow.train`) as run_squad.py, whose tests
(test_run_squad.py, test_horovod.py) cover them once for both scripts; preemption is
tested here too, in one process and with two Horovod workers (the signal to one).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from google_bert import google_outputs

from bertfam import tinydata as tiny
from bertfam.glue.features import convert_examples_to_features
from bertfam.glue.readers import MrpcProcessor, read_msr_paraphrase
from bertfam.testing import (
    assert_preempted,
    assert_same_checkpoint_weights,
    checkpoint_model_weights,
    horovod_mpirun,
)
from bertfam.tokenization.wordpiece import WordPieceTokenizer

FOLDER = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path):
    vocab = tiny.vocab_file(tmp_path / "vocab.txt")
    size = len(vocab.read_text().splitlines())
    data = tiny.write_mrpc(
        tmp_path / "MRPC",
        tiny.identity_pairs(64, seed=0),
        tiny.identity_pairs(24, seed=1),
        tiny.identity_pairs(10, seed=2),
    )
    return {
        "vocab": vocab,
        "config": tiny.bert_config_file(tmp_path / "bert_config.json", size),
        "data": data,
        "out": tmp_path / "out",
    }


def flags(files, *extra, **overrides):
    values = {
        "task_name": "MRPC",
        "data_dir": files["data"],
        "vocab_file": files["vocab"],
        "bert_config_file": files["config"],
        "output_dir": files["out"],
        "max_seq_length": 8,
        "train_batch_size": 8,
        "eval_batch_size": 5,
        "predict_batch_size": 4,
        "learning_rate": 1e-3,
        "deterministic_run": "true",
    }
    values.update(overrides)
    return [f"--{key}={value}" for key, value in values.items()] + list(extra)


def run(args, **kwargs):
    return subprocess.run(
        [sys.executable, "run_classifier.py", *args],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        **kwargs,
    )


# -- an independent evaluation of a checkpoint ------------------------------------------


def logits_from_checkpoint(prefix, config_file, vocab_file, data_dir, split, max_seq_length):
    import modeling

    from bertfam.bert_config import BertConfig
    from bertfam.tf.checkpoint import variables_by_name

    processor = MrpcProcessor()
    examples = getattr(processor, f"get_{split}_examples")(data_dir)
    features = convert_examples_to_features(
        examples, processor.get_labels(), max_seq_length, WordPieceTokenizer(vocab_file)
    )
    model = modeling.BertForSequenceClassification(BertConfig.from_json_file(config_file), 2)
    weights = checkpoint_model_weights(prefix)
    variables = variables_by_name(model)
    assert variables.keys() == weights.keys()
    for name, variable in variables.items():
        variable.assign(weights[name])
    logits = model(features.input_ids, features.input_mask, features.segment_ids, training=False)
    return np.asarray(logits, dtype=np.float64), features.label_ids


def dev_batch(config_file, vocab_file, data_dir, max_seq_length):
    processor = MrpcProcessor()
    features = convert_examples_to_features(
        processor.get_dev_examples(data_dir), processor.get_labels(), max_seq_length,
        WordPieceTokenizer(vocab_file),
    )  # fmt: skip
    names = ("input_ids", "input_mask", "segment_ids")
    return {name: np.asarray(getattr(features, name), np.int64) for name in names}


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def read_eval_results(path):
    text = path.read_text()
    pairs = [line.split(" = ") for line in text.splitlines()]
    return {key: value for key, value in pairs}, text


def check_eval_results(out, step, logits, labels):
    results, text = read_eval_results(out / "eval_results.txt")
    assert [line.split(" = ")[0] for line in text.splitlines()] == [
        "accuracy",
        "global_step",
        "loss",
    ]
    assert results["global_step"] == str(step)
    expected_accuracy = np.mean(np.argmax(logits, axis=-1) == labels)
    assert float(results["accuracy"]) == pytest.approx(expected_accuracy, abs=1e-12)
    expected_loss = -np.mean(log_softmax(logits)[np.arange(len(labels)), labels])
    assert float(results["loss"]) == pytest.approx(expected_loss, rel=1e-5)
    return results, text


# -- tests -----------------------------------------------------------------------------


def test_train_evaluate_predict(files):
    args = flags(
        files,
        "--do_train=true",
        "--do_eval=true",
        "--do_predict=true",
        num_train_epochs=2.0,
        save_checkpoints_steps=10,
    )
    result = run(args, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = files["out"]
    produced = {p.name for p in out.iterdir()}
    # 64 examples / batch 8 * 2 epochs = 16 updates: checkpoints at 10 and at the end.
    assert {
        "eval_results.txt",
        "test_results.tsv",
        "checkpoint",
        "model.ckpt-10.index",
        "model.ckpt-16.index",
        "metrics.jsonl",
        "metrics.png",
        "tensorboard",
    } <= produced
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 17))
    assert [r["step"] for r in records if "eval_accuracy" in r] == [16]

    common = (files["config"], files["vocab"], files["data"])
    logits, labels = logits_from_checkpoint(out / "model.ckpt-16", *common, "dev", 8)
    results, text = check_eval_results(out, 16, logits, labels)
    # Google's run_classifier.py graph (bert-tensorflow), initialised from the checkpoint by
    # Google's code, takes every variable from it and computes the same logits.
    theirs, missed = google_outputs(
        "classifier", out / "model.ckpt-16", files["config"], dev_batch(*common, 8)
    )
    assert missed == []
    np.testing.assert_allclose(theirs["logits"], logits, atol=1e-5)
    assert text in result.stdout  # printed as well as written

    rows = [line.split("\t") for line in (out / "test_results.tsv").read_text().splitlines()]
    probabilities = np.array(rows, dtype=np.float64)
    assert probabilities.shape == (10, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    test_logits, _ = logits_from_checkpoint(out / "model.ckpt-16", *common, "test", 8)
    np.testing.assert_allclose(probabilities, np.exp(log_softmax(test_logits)), atol=1e-5)

    # Without --do_train, evaluation uses the run's latest checkpoint and its step.
    (out / "eval_results.txt").unlink()
    again = run(flags(files, "--do_eval=true", task_name="mrpc"), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "model.ckpt-16" in again.stderr
    assert read_eval_results(out / "eval_results.txt")[0] == results


def test_sigterm_saves_the_update_and_the_rerun_ends_as_an_uninterrupted_run(files, tmp_path):
    args = flags(files, "--do_train=true", num_train_steps=8)
    straight = run(args + [f"--output_dir={tmp_path / 'straight'}"], timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]
    preempted = subprocess.run(
        [sys.executable, "-m", "bertfam.testing.tf_signal_after_update", "3", "run_classifier.py", *args],
        cwd=FOLDER, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert_preempted(preempted, "run_classifier.py", 3, files["out"] / "model.ckpt-3")
    resumed = run(args, timeout=600)
    assert resumed.returncode == 0 and "Resuming from" in resumed.stderr, resumed.stderr[-3000:]
    assert_same_checkpoint_weights(
        files["out"] / "model.ckpt-8", tmp_path / "straight" / "model.ckpt-8", atol=1e-6
    )

    # Two Horovod workers at half the batch, SIGTERM to rank 1 alone after update 3: both
    # stop there with one checkpoint; resumed, they end as the one process above.
    two = tmp_path / "two"
    script = ["run_classifier.py", *args, "--train_batch_size=4", "--use_horovod=true",
              f"--output_dir={two}"]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    stopped = subprocess.run(
        horovod_mpirun() + [sys.executable, "-m", "bertfam.testing.tf_signal_after_update", "3", *script],
        cwd=FOLDER, capture_output=True, text=True, env={**env, "SIGNAL_RANK": "1"}, timeout=600,
    )  # fmt: skip
    assert stopped.returncode != 0  # mpirun reports the ranks' 143 its own way
    assert f"stopped by SIGTERM after update 3; checkpoint {two}/model.ckpt-3" in stopped.stderr
    resumed = subprocess.run(horovod_mpirun() + [sys.executable, *script], cwd=FOLDER,
                             capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_checkpoint_weights(two / "model.ckpt-8", tmp_path / "straight" / "model.ckpt-8",
                                   atol=1e-5)  # fmt: skip


def test_learns_a_separable_task(files, tmp_path):
    """Label 1 iff the two sentences are the same: well above chance after 600 updates."""
    data = tiny.write_mrpc(
        tmp_path / "identity",
        tiny.identity_pairs(256, seed=10),
        tiny.identity_pairs(64, seed=11),
        tiny.identity_pairs(4, seed=12),
    )
    args = flags(
        files,
        "--do_train=true",
        "--do_eval=true",
        data_dir=data,
        train_batch_size=32,
        eval_batch_size=32,
        num_train_steps=600,
        save_summary_steps=100,
    )
    result = run(args, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results, _ = read_eval_results(files["out"] / "eval_results.txt")
    assert float(results["accuracy"]) >= 0.85, results
    assert float(results["loss"]) < 0.5, results  # chance is ln 2 = 0.69


def test_real_mrpc_with_minilm(shared_data, minilm_dir, tmp_path):
    train = read_msr_paraphrase(shared_data / "mrpc" / "msr_paraphrase_train.txt")[:64]
    test = read_msr_paraphrase(shared_data / "mrpc" / "msr_paraphrase_test.txt")[:32]

    def rows(examples):
        return [(e.label, e.text_a, e.text_b) for e in examples]

    data = tiny.write_mrpc(tmp_path / "MRPC", rows(train), rows(test), rows(test))
    out = tmp_path / "out"
    args = [
        "--task_name=MRPC",
        "--do_train=true",
        "--do_eval=true",
        "--do_predict=true",
        f"--data_dir={data}",
        f"--vocab_file={minilm_dir / 'vocab.txt'}",
        f"--bert_config_file={minilm_dir / 'config.json'}",
        f"--init_checkpoint={minilm_dir}",
        "--max_seq_length=64",
        "--train_batch_size=8",
        "--eval_batch_size=16",
        "--learning_rate=2e-5",
        "--num_train_steps=3",
        f"--output_dir={out}",
    ]
    result = run(args, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bert/encoder/layer_5/output/dense/kernel" in result.stderr  # *INIT_FROM_CKPT*
    common = (minilm_dir / "config.json", minilm_dir / "vocab.txt", data)
    logits, labels = logits_from_checkpoint(out / "model.ckpt-3", *common, "dev", 64)
    check_eval_results(out, 3, logits, labels)
    assert len((out / "test_results.tsv").read_text().splitlines()) == 32


def test_bf16_config_runs_end_to_end(files):
    """The upstream bf16 JSON reaches the model (op-by-op casts on the CPU): it trains and
    evaluates, and the logits stay float32."""
    args = flags(
        files,
        "--do_train=true",
        "--do_eval=true",
        bf16_config_path=FOLDER / "bf16_config" / "bert.json",
        num_train_steps=4,
    )
    result = run(args, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results, _ = read_eval_results(files["out"] / "eval_results.txt")
    assert results["global_step"] == "4"
    assert 0.0 < float(results["loss"]) < 2.0


def bad_cases(files, tmp_path):
    train = "--do_train=true"
    no_dev = tiny.write_mrpc(tmp_path / "no_dev", tiny.identity_pairs(8, 0), [], [])
    (no_dev / "dev.tsv").unlink()
    bad_label = tiny.write_mrpc(tmp_path / "bad_label", tiny.identity_pairs(8, 0), [], [])
    (bad_label / "train.tsv").write_text(
        tiny.MRPC_TRAIN_HEADER + "1\t1\t2\ta\tb\nyes\t3\t4\tc\td\n"
    )
    wrong_vocab = tiny.bert_config_file(tmp_path / "wrong.json", 1000)
    short = tiny.bert_config_file(
        tmp_path / "short.json",
        len(files["vocab"].read_text().splitlines()),
        max_position_embeddings=16,
    )
    bf16 = tmp_path / "bf16.json"
    bf16.write_text('{"allowlist": ["MatMul"], "bogus": 1}')
    hidden = tmp_path / "hidden" / "horovod"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('No module named horovod')\n")
    return {
        "no mode": (
            flags(files),
            "at least one of --do_train, --do_eval or --do_predict must be true",
        ),
        "unknown task": (
            flags(files, train, task_name="SST2"),
            "unknown GLUE task 'SST2': known tasks are cola, mnli, mrpc, xnli",
        ),
        "missing data_dir": (
            flags(files, train, data_dir=tmp_path / "nowhere"),
            f"--data_dir={tmp_path / 'nowhere'}: no such directory",
        ),
        "missing dev.tsv": (
            flags(files, train, "--do_eval=true", data_dir=no_dev),
            f"{no_dev / 'dev.tsv'}: no such file",
        ),
        "bad label": (
            flags(files, train, data_dir=bad_label),
            f"{bad_label / 'train.tsv'}, line 3: column 0 (Quality) is 'yes', expected one of 0, 1",
        ),
        "missing vocab": (flags(files, train, vocab_file=tmp_path / "none.txt"), "vocab file"),
        "missing config": (
            flags(files, train, bert_config_file=tmp_path / "none.json"),
            "no such file",
        ),
        "missing checkpoint": (
            flags(files, train, init_checkpoint=tmp_path / "bert_model.ckpt"),
            "--init_checkpoint",
        ),
        "vocab size": (flags(files, train, bert_config_file=wrong_vocab), "has 64 tokens but"),
        "max_seq_length": (
            flags(files, train, bert_config_file=short, max_seq_length=32),
            "--max_seq_length=32 is longer than the model's max_position_embeddings (16)",
        ),
        "eval without weights": (
            flags(files, "--do_eval=true"),
            "without --do_train need trained weights",
        ),
        "bad bf16 json": (flags(files, train, bf16_config_path=bf16), "bf16 config"),
        "horovod missing": (
            flags(files, train, "--use_horovod=true"),
            "--use_horovod=true needs Horovod, which is not installed",
        ),
    }


BAD_CASES = [
    "no mode",
    "unknown task",
    "missing data_dir",
    "missing dev.tsv",
    "bad label",
    "missing vocab",
    "missing config",
    "missing checkpoint",
    "vocab size",
    "max_seq_length",
    "eval without weights",
    "bad bf16 json",
    "horovod missing",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_and_nothing_written(files, tmp_path, case):
    args, message = bad_cases(files, tmp_path)[case]
    env = dict(os.environ)
    if case == "horovod missing":  # hide an installed Horovod, as a missing one fails
        env["PYTHONPATH"] = str(tmp_path / "hidden")
    result = run(args, timeout=120, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("run_classifier.py: error: ") and message in lines[0], lines[0]
    assert not files["out"].exists()


def test_required_flags_as_upstream(files):
    args = [a for a in flags(files, "--do_train=true") if not a.startswith("--data_dir=")]
    result = run(args, timeout=120)
    assert result.returncode != 0
    assert "--data_dir" in result.stderr
    assert not files["out"].exists()
