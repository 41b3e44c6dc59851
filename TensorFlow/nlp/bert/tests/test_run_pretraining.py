"""run_pretraining.py with the upstream command line, on records from create_pretraining_data.py
and a tiny BERT over the real vocabulary: train, checkpoint, evaluate (against Google's
metric definitions computed here from the saved weights), resume after a kill, warm-start
phase 2, and the bad inputs."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from records import create_records

from bertfam import tinydata
from bertfam.testing import (
    assert_preempted,
    assert_same_checkpoint_weights,
    checkpoint_model_weights,
)

FOLDER = Path(__file__).resolve().parents[1]
LENGTH, PREDICTIONS = 64, 10
EVAL_KEYS = [
    "global_step",
    "loss",
    "masked_lm_accuracy",
    "masked_lm_loss",
    "next_sentence_accuracy",
    "next_sentence_loss",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory, shared_data):
    """Training and evaluation records (64 tokens, 10 predictions) and a tiny config."""
    vocab = shared_data / "bert_uncased" / "vocab.txt"
    folder = tmp_path_factory.mktemp("pretraining")
    corpus = tinydata.pretraining_corpus(folder / "corpus.txt", vocab, seed=2, documents=60)
    (folder / "train").mkdir()
    (folder / "eval").mkdir()
    train = [folder / "train" / "part-0.tfrecord", folder / "train" / "part-1.tfrecord"]
    create_records(corpus, train, vocab, LENGTH, PREDICTIONS, "--random_seed=1")
    eval_file = folder / "eval" / "part-0.tfrecord"
    create_records(corpus, eval_file, vocab, LENGTH, PREDICTIONS, "--random_seed=2")
    config = tinydata.bert_config_file(
        folder / "bert_config.json", 30522, max_position_embeddings=LENGTH
    )
    config_128 = tinydata.bert_config_file(folder / "bert_config_128.json", 30522)
    return {"folder": folder, "config": config, "config_128": config_128, "vocab": vocab}


def flags(data, output_dir, *extra, **overrides):
    values = {
        "bert_config_file": data["config"],
        "input_files_dir": data["folder"] / "train",
        "eval_files_dir": data["folder"] / "eval",
        "output_dir": output_dir,
        "do_train": "true",
        "train_batch_size": 4,
        "max_seq_length": LENGTH,
        "max_predictions_per_seq": PREDICTIONS,
        "num_train_steps": 6,
        "num_warmup_steps": 2,
        "learning_rate": 1e-3,
        "optimizer_type": "lamb",
        "save_checkpoints_steps": 2,
        "dllog_path": Path(output_dir).parent / f"{Path(output_dir).name}_dllog.json",
        "display_loss_steps": 2,
        "max_eval_steps": 4,
        "eval_batch_size": 8,
        "deterministic_run": "true",
        "amp": "false",  # the upstream README's --noamp --nouse_xla
        "use_xla": "false",
    }
    values.update(overrides)
    given = [f"--{key}={value}" for key, value in values.items() if value is not None]
    return given + list(extra)


def run(args, **kwargs):
    return subprocess.run(
        [sys.executable, "run_pretraining.py", *args],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


def googles_metrics(data, prefix):
    """Google's metric_fn, in NumPy, over the evaluation records and the saved weights."""
    batch = eval_batch(data, 4 * 8)  # --max_eval_steps=4 of --eval_batch_size=8
    mlm, nsp = our_outputs(data, prefix, batch)

    def cross_entropy(logits, labels):
        return -np.take_along_axis(log_softmax(logits), labels[..., None], -1)[..., 0]

    weights = batch["masked_lm_weights"]
    labels = batch["next_sentence_labels"][:, 0]
    return {
        "masked_lm_accuracy": ((mlm.argmax(-1) == batch["masked_lm_ids"]) * weights).sum()
        / weights.sum(),
        "masked_lm_loss": (cross_entropy(mlm, batch["masked_lm_ids"]) * weights).sum()
        / weights.sum(),
        "next_sentence_accuracy": (nsp.argmax(-1) == labels).mean(),
        "next_sentence_loss": cross_entropy(nsp, labels).mean(),
    }


def read_results(path):
    pairs = [line.split(" = ") for line in path.read_text().splitlines()]
    return {key: float(value) for key, value in pairs}


@pytest.fixture(scope="module")
def phase_1(data, tmp_path_factory):
    """The output directory of one 6-update training run with evaluation."""
    output = tmp_path_factory.mktemp("runs") / "phase_1"
    result = run(flags(data, output, do_eval="true"))
    assert result.returncode == 0, result.stderr[-3000:]
    return output


def our_outputs(data, prefix, batch):
    """Our model's masked-LM and next-sentence logits for `batch`, from a checkpoint."""
    import modeling
    import tensorflow as tf

    from bertfam.bert_config import BertConfig
    from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint, variables_by_name

    model = modeling.BertForPreTraining(BertConfig.from_json_file(data["config"]))
    weights, source = read_init_checkpoint(str(prefix))
    assign_weights(variables_by_name(model), weights, source)
    mlm, nsp = model(
        *(tf.constant(batch[n], tf.int32) for n in ("input_ids", "input_mask", "segment_ids")),
        tf.constant(batch["masked_lm_positions"], tf.int32),
    )
    return mlm.numpy().astype(np.float64), nsp.numpy().astype(np.float64)


def eval_batch(data, count=32):
    from bertfam.tf.pretraining_records import read_example_files

    records = read_example_files([data["folder"] / "eval" / "part-0.tfrecord"], LENGTH, PREDICTIONS)
    count = min(len(records["input_ids"]), count)
    return {name: value[:count] for name, value in records.items()}


def log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_train_checkpoint_and_evaluate_as_upstream(data, phase_1):
    output = phase_1
    names = sorted(p.name for p in output.iterdir() if p.name.startswith("model.ckpt"))
    assert names == [
        f"model.ckpt-{s}.{e}" for s in (4, 6) for e in ("data-00000-of-00001", "index")
    ]
    results = read_results(output / "eval_results.txt")
    assert list(results) == EVAL_KEYS and results["global_step"] == 6
    for name, value in googles_metrics(data, output / "model.ckpt-6").items():
        assert results[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    dllog = [
        json.loads(line[len("DLLL ") :])
        for line in (phase_1.parent / "phase_1_dllog.json").read_text().splitlines()
    ]
    assert [record["step"] for record in dllog[:3]] == [2, 4, 6]
    assert set(dllog[0]["data"]) == {
        "throughput_train", "mlm_loss", "nsp_loss", "total_loss", "avg_loss_step",
        "learning_rate",
    }  # fmt: skip
    # LAMB's schedule: linear warm-up over 2 updates, then decay with power 0.5 to 0 at 6.
    assert dllog[0]["data"]["learning_rate"] == pytest.approx(1e-3 * 1 / 2)
    assert dllog[1]["data"]["learning_rate"] == pytest.approx(1e-3 * (1 - 3 / 6) ** 0.5)
    assert (output / "metrics.png").is_file()


def test_resume_after_kill_then_sigterm_equals_an_uninterrupted_run(data, tmp_path):
    straight = run(flags(data, tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    args = flags(data, tmp_path / "out")

    def interrupted(helper, step):
        return subprocess.run(
            [sys.executable, "-m", f"bertfam.testing.tf_{helper}", str(step), "run_pretraining.py", *args],
            cwd=FOLDER, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    crashed = interrupted("crash_after_checkpoint", 2)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    # The resumed run is preempted after update 3 (between checkpoints), then goes on.
    preempted = interrupted("signal_after_update", 3)
    assert_preempted(preempted, "run_pretraining.py", 3, tmp_path / "out" / "model.ckpt-3")
    assert "Resuming from" in preempted.stderr
    resumed = run(args)
    assert resumed.returncode == 0 and "Resuming from" in resumed.stderr, resumed.stderr[-3000:]
    assert_same_checkpoint_weights(
        tmp_path / "out" / "model.ckpt-6", tmp_path / "straight" / "model.ckpt-6", atol=1e-6
    )


def test_phase_2_warm_starts_from_phase_1(data, phase_1, tmp_path):
    second = run(
        flags(
            data,
            tmp_path / "phase_2",
            num_train_steps=1,
            num_warmup_steps=0,
            init_checkpoint=phase_1 / "model.ckpt-6",
        )  # fmt: skip
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resuming from" not in second.stderr  # a new run, from phase 1's weights
    before = checkpoint_model_weights(phase_1 / "model.ckpt-6")
    after = checkpoint_model_weights(tmp_path / "phase_2" / "model.ckpt-1")
    # One LAMB update from phase 1's weights: close to them, not a fresh initialisation.
    name = next(key for key in before if "word_embeddings" in key)
    assert np.abs(after[name] - before[name]).max() < 0.01
    assert not np.array_equal(after[name], before[name])


def test_checkpoints_load_in_googles_run_pretraining(data, phase_1):
    """Google's graph, initialised from our checkpoint by Google's code, computes our outputs."""
    from google_bert import pretraining_outputs

    batch = eval_batch(data, 8)
    keys = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids")
    keys += ("masked_lm_weights", "next_sentence_labels")
    theirs, missed = pretraining_outputs(
        phase_1 / "model.ckpt-6", data["config"], {k: batch[k] for k in keys}
    )
    assert missed == []  # every variable of Google's graph came from our checkpoint
    mlm, nsp = our_outputs(data, phase_1 / "model.ckpt-6", batch)
    np.testing.assert_allclose(
        theirs["mlm_log_probs"], log_softmax(mlm).reshape(-1, mlm.shape[-1]), atol=1e-5
    )
    np.testing.assert_allclose(theirs["nsp_log_probs"], log_softmax(nsp), atol=1e-5)


def test_checkpoints_load_in_huggingface(data, phase_1):
    """HuggingFace's load_tf_weights_in_bert reads our checkpoint (optimizer slots and
    global_step skipped by name) into BertForPreTraining, which then computes our logits."""
    import torch
    from transformers import BertConfig, BertForPreTraining
    from transformers.models.bert.modeling_bert import load_tf_weights_in_bert

    config = BertConfig.from_json_file(str(data["config"]))
    model = BertForPreTraining(config).eval()
    load_tf_weights_in_bert(model, config, str(phase_1 / "model.ckpt-6"))
    batch = eval_batch(data, 8)
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
            attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
        )
    positions = torch.tensor(batch["masked_lm_positions"], dtype=torch.long)
    theirs_mlm = torch.take_along_dim(out.prediction_logits, positions[..., None], dim=1)
    mlm, nsp = our_outputs(data, phase_1 / "model.ckpt-6", batch)
    np.testing.assert_allclose(theirs_mlm.numpy(), mlm, atol=1e-4)
    np.testing.assert_allclose(out.seq_relationship_logits.numpy(), nsp, atol=1e-5)


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(max_seq_length=32), "input_ids of length 64 but --max_seq_length=32"),
        (dict(max_predictions_per_seq=20), "masked_lm_positions of length 10"),
        (dict(do_eval="true", eval_files_dir=None), "--do_eval needs --eval_files_dir"),
        (dict(input_files_dir="EMPTY"), "has no record files"),
        (dict(amp="true"), "--amp=true is not supported"),
        (dict(optimizer_type="sgd"), "--optimizer_type=sgd"),
        (dict(resume="true"), "--resume continues --init_checkpoint"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(data, tmp_path, change, message):
    if change.get("input_files_dir") == "EMPTY":
        (tmp_path / "empty").mkdir()
        change = dict(input_files_dir=tmp_path / "empty")
    output = tmp_path / "out"
    result = run(flags(data, output, **change))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and message in lines[-1], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not output.exists()


def test_a_checkpoint_of_another_size_is_refused_before_writing(data, tmp_path):
    other = tinydata.bert_config_file(
        tmp_path / "other.json", 30522, max_position_embeddings=LENGTH, hidden_size=24
    )
    first = run(flags(data, tmp_path / "other", num_train_steps=1, bert_config_file=other))
    assert first.returncode == 0, first.stderr[-3000:]
    result = run(flags(data, tmp_path / "out", init_checkpoint=tmp_path / "other" / "model.ckpt-1"))
    assert result.returncode == 2 and "shape" in result.stderr.strip().splitlines()[-1]
    assert not list((tmp_path / "out").glob("model.ckpt*"))


@pytest.fixture(scope="module")
def packed(data):
    """Short-sequence records (--short_seq_prob=1) packed by pack_pretraining_data_tfrec.py."""
    short = data["folder"] / "short.tfrecord"
    create_records(
        data["folder"] / "corpus.txt", short, data["vocab"], 128, 20, "--short_seq_prob=1"
    )
    output = data["folder"] / "packed" / "train"
    subprocess.run(
        [sys.executable, str(FOLDER / "data_preprocessing" / "pack_pretraining_data_tfrec.py"),
         f"--input-glob={short}", f"--output-dir={output}",
         "--max-sequence-length=128", "--max-predictions-per-sequence=20"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return output


def test_packed_records_train_with_fewer_micro_batches(data, packed, tmp_path):
    average = json.loads((packed.parent / "train_metadata.json").read_text())
    assert average["avg_seq_per_sample"] > 1.3
    output = tmp_path / "out"
    result = run(
        flags(
            data,
            output,
            input_files_dir=packed,
            num_accumulation_steps=4,
            num_train_steps=2,
            max_seq_length=128,
            max_predictions_per_seq=20,
            bert_config_file=data["config_128"],
        )  # fmt: skip
    )
    assert result.returncode == 0, result.stderr[-3000:]
    steps = round(4 / average["avg_seq_per_sample"])
    assert "micro-batches an update" in result.stderr and f": {steps} micro" in result.stderr
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert all(np.isfinite(r["loss"]) and 0 < r["nsp_loss"] < 5 for r in records)


def test_packing_metadata_without_the_average_is_refused(data, packed, tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for path in packed.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (tmp_path / "train_metadata.json").write_text('{"packing_efficiency": 0.9}')
    result = run(
        flags(data, tmp_path / "out", input_files_dir=folder, max_seq_length=128,
              max_predictions_per_seq=20, bert_config_file=data["config_128"])
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "no avg_seq_per_sample" in lines[-1]
    assert not (tmp_path / "out").exists()


def test_resume_flag_continues_the_step_and_optimizer_of_init_checkpoint(data, tmp_path):
    first = run(flags(data, tmp_path / "first", num_train_steps=4))
    assert first.returncode == 0, first.stderr[-3000:]
    # Upstream's --resume: a new output dir, continued from another run's checkpoint 2.
    again = run(
        flags(
            data,
            tmp_path / "continued",
            num_train_steps=4,
            resume="true",
            init_checkpoint=tmp_path / "first" / "model.ckpt-2",
        )  # fmt: skip
    )
    assert again.returncode == 0 and "Continuing from" in again.stderr, again.stderr[-3000:]
    names = sorted(p.name for p in (tmp_path / "continued").glob("model.ckpt-*.index"))
    assert names == ["model.ckpt-4.index"]  # updates 3 and 4 only
    assert_same_checkpoint_weights(
        tmp_path / "continued" / "model.ckpt-4", tmp_path / "first" / "model.ckpt-4", atol=1e-6
    )


def test_four_micro_batches_of_2_equal_one_batch_of_8(data, tmp_path):
    """--num_accumulation_steps: the same losses and weights as the whole batch at once,
    Google's masked-LM loss included (each micro-batch divides by its share of the
    update's count of predictions)."""
    accumulated = run(
        flags(data, tmp_path / "accumulated", train_batch_size=2, num_accumulation_steps=4,
              num_train_steps=2)
    )  # fmt: skip
    assert accumulated.returncode == 0, accumulated.stderr[-3000:]
    whole = run(flags(data, tmp_path / "whole", train_batch_size=8, num_train_steps=2))
    assert whole.returncode == 0, whole.stderr[-3000:]

    def losses(folder):
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        return [(r["loss"], r["mlm_loss"], r["nsp_loss"]) for r in map(json.loads, lines)]

    np.testing.assert_allclose(
        losses(tmp_path / "accumulated"), losses(tmp_path / "whole"), rtol=1e-5
    )
    assert_same_checkpoint_weights(
        tmp_path / "accumulated" / "model.ckpt-2", tmp_path / "whole" / "model.ckpt-2", atol=1e-6
    )
