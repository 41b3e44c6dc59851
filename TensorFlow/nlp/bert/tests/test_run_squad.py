"""run_squad.py end to end, as users run it: upstream flag names, subprocesses, tiny data."""

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bertfam import tinydata as tiny
from bertfam.testing import assert_same_checkpoint_weights

FOLDER = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path):
    vocab = tiny.vocab_file(tmp_path / "vocab.txt")
    size = len(vocab.read_text().splitlines())
    return {
        "vocab": vocab,
        "config": tiny.bert_config_file(tmp_path / "bert_config.json", size),
        "squad": tiny.squad_file(tmp_path / "train.json"),
        "out": tmp_path / "out",
    }


def flags(files, *extra, **overrides):
    values = {
        "vocab_file": files["vocab"],
        "bert_config_file": files["config"],
        "output_dir": files["out"],
        "max_seq_length": 48,
        "doc_stride": 16,
        "max_query_length": 12,
        "train_batch_size": 4,
        "predict_batch_size": 8,
        "learning_rate": 1e-3,
        "save_checkpoints_steps": 2,
        "deterministic_run": "true",
    }
    values.update(overrides)
    return [f"--{key}={value}" for key, value in values.items()] + list(extra)


def run(args, **kwargs):
    return subprocess.run(
        [sys.executable, "run_squad.py", *args],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        **kwargs,
    )


def test_train_predict_evaluate(files):
    result = run(
        flags(
            files,
            "--do_train=True",
            "--do_predict=True",
            "--do_eval=True",
            train_file=files["squad"],
            predict_file=files["squad"],
            num_train_epochs=2.0,
        ),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = files["out"]
    produced = {p.name for p in out.iterdir()}
    assert {
        "predictions.json",
        "nbest_predictions.json",
        "eval_results.txt",
        "checkpoint",
    } <= produced
    assert {"model.ckpt-12.index", "metrics.jsonl", "metrics.png", "tensorboard"} <= produced
    # 24 examples / batch 4 * 2 epochs = 12 updates, one metrics line each
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[:12] == list(range(1, 13))
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    evaluated = subprocess.run(
        [
            sys.executable,
            "-m",
            "bertfam.squad.evaluate",
            str(files["squad"]),
            str(out / "predictions.json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed == json.loads(evaluated.stdout)
    assert (out / "eval_results.txt").read_text() == (
        f"exact_match = {printed['exact_match']}\nf1 = {printed['f1']}\n"
    )
    assert_google_run_squad_computes_ours(out / "model.ckpt-12", files)


def assert_google_run_squad_computes_ours(prefix, files):
    """Google's run_squad.py graph (bert-tensorflow), initialised from the checkpoint by
    Google's code, gives our start and end logits: every variable but the pooler it builds
    and never trains (our span model has none) comes from our checkpoint."""
    import modeling
    import numpy as np
    from google_bert import google_outputs

    from bertfam.bert_config import BertConfig
    from bertfam.testing import checkpoint_model_weights
    from bertfam.tf.checkpoint import variables_by_name

    config = BertConfig.from_json_file(files["config"])
    rng = np.random.default_rng(0)
    batch = {
        "input_ids": rng.integers(5, config.vocab_size, (3, 48)),
        "input_mask": (np.arange(48) < np.array([[48], [30], [12]])).astype(np.int64),
        "segment_ids": (np.arange(48) >= 16).astype(np.int64)[None].repeat(3, 0),
    }
    theirs, missed = google_outputs("squad", prefix, files["config"], batch)
    assert missed == ["bert/pooler/dense/bias:0", "bert/pooler/dense/kernel:0"]
    model = modeling.BertForQuestionAnswering(config)
    weights = checkpoint_model_weights(prefix)
    for name, variable in variables_by_name(model).items():
        variable.assign(weights[name])
    start, end = model(batch["input_ids"], batch["input_mask"], batch["segment_ids"])
    np.testing.assert_allclose(theirs["start_logits"], start.numpy(), atol=1e-5)
    np.testing.assert_allclose(theirs["end_logits"], end.numpy(), atol=1e-5)


def test_resume_after_kill_or_sigterm_equals_an_uninterrupted_run(files, tmp_path):
    args = flags(files, "--do_train=True", train_file=files["squad"], num_train_steps=8)
    straight = run(args[:2] + [f"--output_dir={tmp_path / 'straight'}"] + args[3:], timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]

    crashed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bertfam.testing.tf_crash_after_checkpoint",
            "4",
            "run_squad.py",
            *args,
        ],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    assert not (files["out"] / "model.ckpt-8.index").exists()

    # Resumed, then preempted: SIGTERM after update 5 (between checkpoints) -> that update
    # saved, one line, status 143; the same command then ends where the uninterrupted run did.
    out = files["out"]
    stopped = subprocess.run(
        [sys.executable, "-m", "bertfam.testing.tf_signal_after_update", "5", "run_squad.py", *args],
        cwd=FOLDER, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "Resuming from" in stopped.stderr
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"run_squad.py: stopped by SIGTERM after update 5; checkpoint {out}/model.ckpt-5: "
        "rerun the same command to resume"
    )
    resumed = run(args, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    resumed_steps = [r["step"] for r in records][-(8 - 4) :]
    assert resumed_steps == [5, 6, 7, 8]  # carried on after each stop, never started over
    assert_same_checkpoint_weights(
        out / "model.ckpt-8", tmp_path / "straight" / "model.ckpt-8", atol=1e-6
    )


def test_profile_writes_a_tensorboard_trace(files):
    result = run(
        flags(
            files, "--do_train=True", train_file=files["squad"], num_train_steps=4, profile="1,3"
        ),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    traces = list((files["out"] / "profile").rglob("*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0


def test_predict_from_a_trained_output_dir_and_from_a_google_checkpoint(files, tmp_path):
    trained = run(
        flags(files, "--do_train=True", train_file=files["squad"], num_train_steps=2), timeout=600
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    again = run(flags(files, "--do_predict=True", predict_file=files["squad"]), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "model.ckpt-2" in again.stderr  # predicted with the run's own checkpoint
    # Our checkpoint also works as --init_checkpoint for a new run, as Google's do.
    chained = run(
        flags(
            files,
            "--do_predict=True",
            predict_file=files["squad"],
            output_dir=tmp_path / "next",
            init_checkpoint=files["out"] / "model.ckpt-2",
        ),
        timeout=600,
    )
    assert chained.returncode == 0, chained.stderr[-3000:]
    assert json.loads((tmp_path / "next" / "predictions.json").read_text()) == json.loads(
        (files["out"] / "predictions.json").read_text()
    )


# TensorFlow's C++ log lines, and the run's own absl INFO lines (devices chosen).
TF_LOG = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |I\d{4} \d\d:\d\d:)")


def bad_cases(files, tmp_path):
    train = f"--train_file={files['squad']}"
    malformed = tmp_path / "malformed.json"
    malformed.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "title": "T",
                        "paragraphs": [
                            {
                                "context": "abc",
                                "qas": [
                                    {
                                        "id": "x",
                                        "question": "q",
                                        "answers": [{"text": "zz", "answer_start": 0}],
                                    }
                                ],
                            }
                        ],
                    }
                ]
            }
        )
    )
    wrong_vocab = tiny.bert_config_file(tmp_path / "wrong.json", 1000)
    return {
        "missing vocab": (
            flags(files, "--do_train=True", train, vocab_file=tmp_path / "none.txt"),
            "vocab file",
        ),
        "missing config": (
            flags(files, "--do_train=True", train, bert_config_file=tmp_path / "none.json"),
            "no such file",
        ),
        "missing checkpoint": (
            flags(files, "--do_train=True", train, init_checkpoint=tmp_path / "bert_model.ckpt"),
            "--init_checkpoint",
        ),
        "vocab size": (
            flags(files, "--do_train=True", train, bert_config_file=wrong_vocab),
            "has 64 tokens but",
        ),
        "malformed squad": (
            flags(files, "--do_train=True", f"--train_file={malformed}"),
            "'answer_start' 0 does not point at the answer text 'zz'",
        ),
        "bad profile range": (
            flags(files, "--do_train=True", train, profile="3"),
            "--profile='3': expected START,END",
        ),
        "eval without predict": (
            flags(files, "--do_train=True", train, "--do_eval=True"),
            "--do_eval scores the predictions, so it needs --do_predict=true",
        ),
        "habana bf16 mode on cpu": (
            flags(files, "--do_train=True", train, bf16_config_path="full"),
            "TF_BF16_CONVERSION=full is a mode of Habana's converter",
        ),
        "bad bf16 json": (
            flags(files, "--do_train=True", train, bf16_config_path=files["vocab"]),
            "bf16 config",
        ),
        "tpu": (
            flags(files, "--do_train=True", train, "--use_tpu=true"),
            "--use_tpu=true: TPUs are not supported",
        ),
        "truncated checkpoint": (
            flags(files, "--do_train=True", train, init_checkpoint=truncated_checkpoint(tmp_path)),
            "the .data file is truncated or damaged",
        ),
    }


def truncated_checkpoint(tmp_path):
    """A Google-layout checkpoint whose .data file was cut short, as by a broken download."""
    import numpy as np

    from bertfam.tf.checkpoint import save_name_based_checkpoint

    prefix = tmp_path / "cut" / "bert_model.ckpt"
    save_name_based_checkpoint(prefix, {"bert/pooler/dense/kernel": np.ones((64, 64), "float32")})
    data = Path(f"{prefix}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:1000])
    return prefix


@pytest.mark.parametrize(
    "case",
    [
        "missing vocab",
        "missing config",
        "missing checkpoint",
        "vocab size",
        "malformed squad",
        "bad profile range",
        "habana bf16 mode on cpu",
        "eval without predict",
        "bad bf16 json",
        "tpu",
        "truncated checkpoint",
    ],
)
def test_bad_input_is_one_line_and_nothing_written(files, tmp_path, case):
    """(--use_horovod=true without Horovod is in test_horovod.py.)"""
    args, message = bad_cases(files, tmp_path)[case]
    result = run(args, timeout=120)
    assert result.returncode != 0
    # Log lines aside (TensorFlow's C++ import noise, INFO), the error is one line.
    lines = [line for line in result.stderr.strip().splitlines() if not TF_LOG.match(line)]
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert not files["out"].exists()


def test_real_xquad_prediction_scores_like_the_evaluate_command(shared_data, tmp_path):
    """All 1190 XQuAD questions through a small BERT with the real uncased vocab."""
    xquad = shared_data / "squad" / "xquad.en.json"
    config = tiny.bert_config_file(
        tmp_path / "bert_config.json", 30522, max_position_embeddings=512
    )
    files = {
        "vocab": shared_data / "bert_uncased" / "vocab.txt",
        "config": config,
        "out": tmp_path / "out",
    }
    windows = dict(max_seq_length=384, doc_stride=128, max_query_length=64)
    trained = run(
        flags(files, "--do_train=True", train_file=xquad, num_train_steps=2, **windows), timeout=600
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    predicted = run(
        flags(
            files,
            "--do_predict=True",
            "--do_eval=True",
            predict_file=xquad,
            predict_batch_size=64,
            **windows,
        ),
        timeout=600,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    predictions = files["out"] / "predictions.json"
    assert len(json.loads(predictions.read_text())) == 1190
    printed = json.loads(predicted.stdout.strip().splitlines()[-1])
    evaluated = subprocess.run(
        [sys.executable, "-m", "bertfam.squad.evaluate", str(xquad), str(predictions)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed == json.loads(evaluated.stdout)
