"""run_squad.py and run_glue.py end to end: real data from a real checkpoint, resume after a
crash, two processes against one, and bad input."""

import json
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from finetuning_fixtures import FOLDER, run, tiny_model_cache

from bertfam import tinydata
from bertfam.glue.readers import read_msr_paraphrase
from bertfam.testing import free_port, launch_free_env, mpirun


def squad_flags(model, train, predict, output, *extra):
    return [
        "--model_type", "bert", "--model_name_or_path", model, "--do_lower_case",
        "--train_file", train, "--predict_file", predict, "--output_dir", output,
        "--max_seq_length", "128", "--doc_stride", "64", "--max_query_length", "32",
        "--per_gpu_train_batch_size", "8", "--learning_rate", "5e-5", "--seed", "7",
        *extra,
    ]  # fmt: skip


def official_evaluate(dataset, predictions):
    result = subprocess.run(
        [sys.executable, "-m", "bertfam.squad.evaluate", str(dataset), str(predictions)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_xquad_from_minilm_scores_as_the_evaluate_command(shared_data, minilm_dir, tmp_path):
    xquad = shared_data / "squad" / "xquad.en.json"
    if not xquad.is_file():
        pytest.skip(f"{xquad} not found")
    # An article of XQuAD to train a handful of steps on, the next three to predict (about
    # 80 questions: the whole file would add minutes to CI for the same check).
    data = json.loads(xquad.read_text())
    version = data.get("version", "1.1")
    train, dev = tmp_path / "train.json", tmp_path / "dev.json"
    train.write_text(json.dumps({"version": version, "data": data["data"][:1]}))
    dev.write_text(json.dumps({"version": version, "data": data["data"][1:4]}))
    questions = sum(len(p["qas"]) for a in data["data"][1:4] for p in a["paragraphs"])
    output = tmp_path / "out"
    result = run(
        "finetuning/run_squad.py",
        *squad_flags(minilm_dir, train, dev, output, "--do_train", "--do_eval"),
        "--max_steps", "4", "--logging_steps", "2", "--per_gpu_eval_batch_size", "64",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed == official_evaluate(dev, output / "predictions_.json")
    nbest = json.loads((output / "nbest_predictions_.json").read_text())
    assert len(nbest) == questions > 50  # every question answered
    hf_keys = dict(
        line.split(" = ") for line in (output / "eval_results.txt").read_text().split("\n") if line
    )
    assert float(hf_keys["exact"]) == pytest.approx(printed["exact_match"])
    assert float(hf_keys["f1"]) == pytest.approx(printed["f1"])


def test_mrpc_from_minilm(shared_data, minilm_dir, tmp_path):
    train_file = shared_data / "mrpc" / "msr_paraphrase_train.txt"
    if not train_file.is_file():
        pytest.skip(f"{train_file} not found")
    rows = [(e.label, e.text_a, e.text_b) for e in read_msr_paraphrase(train_file)]
    data = tinydata.write_mrpc(tmp_path / "MRPC", rows[:32], rows[32:64], [])
    output = tmp_path / "out"
    result = run(
        "finetuning/run_glue.py", "--model_name_or_path", minilm_dir, "--task_name", "MRPC",
        "--do_train", "--do_eval", "--data_dir", data, "--max_seq_length", "128",
        "--per_device_train_batch_size", "8", "--learning_rate", "2e-5", "--max_steps", "4",
        "--output_dir", output, "--logging_steps", "1", "--save_steps", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = dict(
        line.split(" = ") for line in (output / "eval_results_mrpc.txt").read_text().splitlines()
    )
    # Scores recomputed here from the model the run saved, with HuggingFace's own class.
    from transformers import BertForSequenceClassification, BertTokenizer

    model = BertForSequenceClassification.from_pretrained(output).eval()
    tokenizer = BertTokenizer.from_pretrained(output)
    dev = rows[32:64]
    encoded = tokenizer(
        [a for _, a, _ in dev], [b for _, _, b in dev], padding="max_length",
        truncation="longest_first", max_length=128, return_tensors="pt",
    )  # fmt: skip
    with torch.no_grad():
        logits = model(**encoded).logits.numpy()
    labels = np.array([int(label) for label, _, _ in dev])
    assert float(results["eval_acc"]) == pytest.approx((logits.argmax(1) == labels).mean())
    assert float(results["epoch"]) == pytest.approx(4 / (32 // 8))
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


def read_weights(folder):
    return torch.load(folder / "pytorch_model.bin", weights_only=True)


def glue_flags(models, data, output, *extra):
    return [
        "--model_name_or_path", models / "bert-base-uncased", "--task_name", "mrpc",
        "--do_train", "--data_dir", data, "--max_seq_length", "16",
        "--learning_rate", "1e-3", "--output_dir", output, "--logging_steps", "1",
        "--no_cuda", *extra,
    ]  # fmt: skip


@pytest.fixture
def tiny(tmp_path):
    data = tinydata.write_mrpc(
        tmp_path / "MRPC", tinydata.identity_pairs(64, 0), tinydata.identity_pairs(16, 1), []
    )
    return {"data": data, "models": tiny_model_cache(tmp_path / "models")}


def test_resume_after_a_crash_or_sigterm_equals_an_uninterrupted_run(tiny, tmp_path):
    """Killed right after checkpoint-3, resumed from it: the same weights as never stopping
    (dropout on: the RNG state is part of the checkpoint)."""
    common = ["--per_device_train_batch_size", "8", "--max_steps", "6", "--save_steps", "3"]
    straight = run(
        "finetuning/run_glue.py", *glue_flags(tiny["models"], tiny["data"], tmp_path / "a", *common)
    )
    assert straight.returncode == 0, straight.stderr[-3000:]
    crashed = subprocess.run(
        [sys.executable, str(FOLDER / "tests" / "crash_after_checkpoint.py"), "3",
         "finetuning/run_glue.py", *map(str, glue_flags(tiny["models"], tiny["data"], tmp_path / "b", *common))],
        cwd=FOLDER, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    assert not (tmp_path / "b" / "checkpoint-6").exists()
    # HF v3.0.2's way to resume: the checkpoint folder as the model.
    resumed = run(
        "finetuning/run_glue.py",
        *glue_flags(tiny["models"], tiny["data"], tmp_path / "b", *common, "--overwrite_output_dir")[2:],
        "--model_name_or_path", tmp_path / "b" / "checkpoint-3",
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stderr
    ours, reference = read_weights(tmp_path / "b"), read_weights(tmp_path / "a")
    assert ours.keys() == reference.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], reference[name], atol=1e-6, rtol=0, msg=name)

    # Preempted: SIGTERM after update 2 (between checkpoints) -> checkpoint-2 saved, one line
    # saying how to resume, status 143; resuming so ends with the same weights too.
    stopped = subprocess.run(
        [sys.executable, str(FOLDER / "tests" / "signal_after_update.py"), "2",
         "finetuning/run_glue.py", *map(str, glue_flags(tiny["models"], tiny["data"], tmp_path / "c", *common))],
        cwd=FOLDER, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    checkpoint = tmp_path / "c" / "checkpoint-2"
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"run_glue.py: stopped by SIGTERM after update 2; checkpoint {checkpoint}: rerun with "
        f"--model_name_or_path {checkpoint} --overwrite_output_dir to resume"
    )
    resumed = run(
        "finetuning/run_glue.py",
        *glue_flags(tiny["models"], tiny["data"], tmp_path / "c", *common, "--overwrite_output_dir")[2:],
        "--model_name_or_path", checkpoint,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ours = read_weights(tmp_path / "c")
    for name in ours:
        torch.testing.assert_close(ours[name], reference[name], atol=1e-6, rtol=0, msg=name)


def test_two_processes_equal_one_with_twice_the_batch_also_after_a_sigterm_to_one(tmp_path):
    data = tinydata.write_mrpc(tmp_path / "MRPC", tinydata.identity_pairs(64, 0), [], [])
    models = tiny_model_cache(
        tmp_path / "models", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    single = run(
        "finetuning/run_glue.py",
        *glue_flags(models, data, tmp_path / "one", "--per_device_train_batch_size", "16"),
        "--max_steps", "4",
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    mpirun = subprocess.run(
        ["mpirun", "-n", "2", "--oversubscribe", "--allow-run-as-root", "-x", "MASTER_ADDR",
         "-x", "MASTER_PORT", sys.executable, "finetuning/run_glue.py",
         *map(str, glue_flags(models, data, tmp_path / "two", "--per_device_train_batch_size", "8")),
         "--max_steps", "4"],
        cwd=FOLDER, capture_output=True, text=True, timeout=600,
        env=launch_free_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port())),
    )  # fmt: skip
    assert mpirun.returncode == 0, mpirun.stderr[-3000:]
    one, two = read_weights(tmp_path / "one"), read_weights(tmp_path / "two")
    changed = 0
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=2e-5, rtol=1e-4, msg=name)
        initial = read_weights(models / "bert-base-uncased").get(name)
        changed += initial is None or not torch.equal(initial, one[name])
    assert changed > 10  # training moved the weights, so the comparison means something

    # SIGTERM to rank 1 alone after update 2: both processes stop after it with one
    # checkpoint-2 (rank 0 writes it and says so); resumed, the run ends as `one`.
    def two_processes(*command, **env):
        return subprocess.run(
            ["mpirun", "-n", "2", "--oversubscribe", "--allow-run-as-root", "-x", "MASTER_ADDR",
             "-x", "MASTER_PORT", "-x", "SIGNAL_RANK", sys.executable, *map(str, command),
             "--max_steps", "4"],
            cwd=FOLDER, capture_output=True, text=True, timeout=600,
            env=launch_free_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
                                SIGNAL_RANK="1", **env),
        )  # fmt: skip

    flags = glue_flags(models, data, tmp_path / "three", "--per_device_train_batch_size", "8")
    stopped = two_processes("tests/signal_after_update.py", "2", "finetuning/run_glue.py", *flags)
    checkpoint = tmp_path / "three" / "checkpoint-2"
    assert stopped.returncode != 0 and checkpoint.is_dir(), stopped.stderr[-3000:]
    assert f"stopped by SIGTERM after update 2; checkpoint {checkpoint}" in stopped.stderr
    resumed = two_processes(
        "finetuning/run_glue.py", *flags[2:], "--overwrite_output_dir",
        "--model_name_or_path", checkpoint,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    three = read_weights(tmp_path / "three")
    for name in one:
        torch.testing.assert_close(three[name], one[name], atol=2e-5, rtol=1e-4, msg=name)


def test_squad_evaluates_during_training_and_every_checkpoint_and_resumes_after_sigterm(
    tiny, tmp_path
):
    squad = tinydata.squad_file(tmp_path / "squad.json")
    output = tmp_path / "out"
    result = run(
        "finetuning/run_squad.py",
        *squad_flags(tiny["models"] / "bert-base-uncased", squad, squad, output),
        "--do_train", "--do_eval", "--max_steps", "4", "--save_steps", "2",
        "--logging_steps", "2", "--evaluate_during_training", "--eval_all_checkpoints",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    evaluated_at = [r["step"] for r in records if "eval_exact" in r]
    assert evaluated_at == [2, 4, 4]  # each logging step, then the final evaluation
    final = json.loads(result.stdout.strip().splitlines()[-1])
    for step in (2, 4):
        folder = output / f"checkpoint-{step}"
        scored = dict(
            line.split(" = ")
            for line in (folder / "eval_results.txt").read_text().split("\n")
            if line
        )
        assert official_evaluate(squad, folder / "predictions_.json")[
            "exact_match"
        ] == pytest.approx(float(scored["exact"]))
    # checkpoint-4 holds the final weights: the same predictions as the run's own.
    assert (output / "checkpoint-4" / "predictions_.json").read_text() == (
        output / "predictions_.json"
    ).read_text()
    assert final == official_evaluate(squad, output / "predictions_.json")

    # Preempted after update 1: checkpoint-1 and the line saying how to resume; resumed so,
    # the run ends with the weights of the one above (evaluating draws no random numbers).
    preempted = tmp_path / "preempted"
    flags = [*squad_flags(tiny["models"] / "bert-base-uncased", squad, squad, preempted),
             "--do_train", "--max_steps", "4", "--save_steps", "2"]  # fmt: skip
    stopped = subprocess.run(
        [sys.executable, str(FOLDER / "tests" / "signal_after_update.py"), "1",
         "finetuning/run_squad.py", *map(str, flags)],
        cwd=FOLDER, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    checkpoint = preempted / "checkpoint-1"
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"run_squad.py: stopped by SIGTERM after update 1; checkpoint {checkpoint}: rerun with "
        f"--model_name_or_path {checkpoint} --overwrite_output_dir to resume"
    )
    at = flags.index("--model_name_or_path")
    flags[at + 1] = checkpoint
    resumed = run("finetuning/run_squad.py", *flags, "--overwrite_output_dir")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ours, reference = read_weights(preempted), read_weights(output)
    assert ours.keys() == reference.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], reference[name], atol=1e-6, rtol=0, msg=name)


def test_squad_two_processes_equal_one_with_twice_the_batch_after_a_sigterm_to_one(tmp_path):
    """run_squad.py under mpirun, SIGTERM to rank 1 alone after update 1: both processes
    stop with checkpoint-1, and resumed from it they end as one process at twice the batch
    (dropout off, so the two draw no masks one process would not)."""
    models = tiny_model_cache(
        tmp_path / "models", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    model = models / "bert-base-uncased"
    squad = tinydata.squad_file(tmp_path / "squad.json")
    steps = ["--do_train", "--max_steps", "4", "--save_steps", "2"]
    one = run("finetuning/run_squad.py", *squad_flags(model, squad, squad, tmp_path / "one"),
              *steps)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]

    two = tmp_path / "two"
    half = [*squad_flags(model, squad, squad, two), *steps, "--per_gpu_train_batch_size", "4"]

    def two_processes(*command, **env):
        return subprocess.run(
            [*mpirun(2, "MASTER_ADDR", "MASTER_PORT", *env), sys.executable,
             *map(str, command)],
            cwd=FOLDER, capture_output=True, text=True, timeout=600,
            env=launch_free_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), **env),
        )  # fmt: skip

    stopped = two_processes("tests/signal_after_update.py", "1", "finetuning/run_squad.py",
                            *half, SIGNAL_RANK="1")  # fmt: skip
    checkpoint = two / "checkpoint-1"
    assert stopped.returncode != 0 and checkpoint.is_dir(), stopped.stderr[-3000:]
    assert f"stopped by SIGTERM after update 1; checkpoint {checkpoint}" in stopped.stderr
    half[half.index("--model_name_or_path") + 1] = checkpoint
    resumed = two_processes("finetuning/run_squad.py", *half, "--overwrite_output_dir")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ours, reference = read_weights(two), read_weights(tmp_path / "one")
    assert ours.keys() == reference.keys()
    # Not qa_outputs.bias: a bias added to every position's logit cancels in the softmax,
    # so its gradient is rounding noise, which Adam scales up to full steps.
    for name in sorted(set(ours) - {"qa_outputs.bias"}):
        torch.testing.assert_close(ours[name], reference[name], atol=2e-5, rtol=1e-4, msg=name)


# -- bad input ---------------------------------------------------------------------------


def one_line_failure(result, expected):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr[-2000:]


def test_bad_input_is_one_line(tiny, tmp_path):
    models, data = tiny["models"], tiny["data"]
    flags = glue_flags(models, data, tmp_path / "out")
    missing = [*flags[:1], tmp_path / "absent", *flags[2:]]
    one_line_failure(run("finetuning/run_glue.py", *missing), "absent: no such model folder")
    # A config whose shapes disagree with the weights: every parameter named.
    mismatched = tmp_path / "mismatched"
    mismatched.mkdir()
    for name in ("pytorch_model.bin", "vocab.txt"):
        (mismatched / name).write_bytes((models / "bert-base-uncased" / name).read_bytes())
    config = json.loads((models / "bert-base-uncased" / "config.json").read_text())
    (mismatched / "config.json").write_text(json.dumps({**config, "intermediate_size": 48}))
    result = run("finetuning/run_glue.py", *[mismatched if f == flags[1] else f for f in flags])
    one_line_failure(result, "bert.encoder.layer.0.intermediate.dense.weight")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "train.tsv").write_text(tinydata.MRPC_TRAIN_HEADER + "yes\t1\t2\ta\tb\n")
    one_line_failure(
        run("finetuning/run_glue.py", *[broken if f == data else f for f in flags]), "train.tsv"
    )
    bad_squad = tmp_path / "bad.json"
    bad_squad.write_text('{"version": "1.1", "data": [{"title": "x", "paragraphs": [{}]}]}')
    result = run(
        "finetuning/run_squad.py",
        *squad_flags(
            models / "bert-base-uncased", bad_squad, bad_squad, tmp_path / "s", "--do_train"
        ),
    )
    one_line_failure(result, "bad.json")
    # HF's --threads would do nothing here (features are vectorized): refused, not ignored.
    result = run(
        "finetuning/run_squad.py",
        *squad_flags(models / "bert-base-uncased", bad_squad, bad_squad, tmp_path / "s"),
        "--do_train", "--threads", "4",
    )  # fmt: skip
    one_line_failure(result, "unrecognized arguments: --threads 4")
    for extra, expected in (
        (["--use_lazy_mode"], "--use_lazy_mode (--mode lazy) is Habana's lazy graph mode"),
        (["--hmp", "--hmp_opt_level", "O2"], "--hmp_opt_level O2 are Habana HMP's (Gaudi only)"),
        (["--evaluate_during_training"], "--evaluate_during_training scores the dev set"),
        (["--per_gpu_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1"),
        (["--fp16"], "--fp16 (Apex) is not supported"),
        (["--local_rank", "1"], "--local_rank 1 but the launcher's environment says local rank 0"),
    ):
        one_line_failure(run("finetuning/run_glue.py", *flags, *extra), expected)
    assert not (tmp_path / "out").exists()  # nothing written by any of them


def cut_short(path, keep=0.5):
    """The file as a broken download or a full disk leaves it: its first part only."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_damaged_files_are_one_line_naming_them_and_write_nothing(tiny, tmp_path):
    from safetensors.torch import save_file

    models, data = tiny["models"], tiny["data"]
    out = tmp_path / "out"

    def copied_model(name):
        folder = tmp_path / name
        shutil.copytree(models / "bert-base-uncased", folder)
        return folder

    weights = cut_short(copied_model("bin") / "pytorch_model.bin")
    flags = glue_flags(models, data, out)
    result = run("finetuning/run_glue.py", *[weights.parent if f == flags[1] else f for f in flags])
    one_line_failure(result, str(weights))

    folder = copied_model("safetensors")
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    (folder / "pytorch_model.bin").unlink()
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors")
    cut_short(folder / "model.safetensors")
    squad = tinydata.squad_file(tmp_path / "squad.json")
    result = run("finetuning/run_squad.py", *squad_flags(folder, squad, squad, out, "--do_train"))
    one_line_failure(result, str(folder / "model.safetensors"))

    cut = cut_short(tinydata.squad_file(tmp_path / "cut.json"))
    model = models / "bert-base-uncased"
    result = run("finetuning/run_squad.py", *squad_flags(model, cut, cut, out, "--do_train"))
    one_line_failure(result, str(cut))

    glue = tmp_path / "cut_glue" / "MRPC"
    shutil.copytree(data, glue)
    rows = (glue / "train.tsv").read_text().splitlines()
    (glue / "train.tsv").write_text("\n".join(rows[:-1] + [rows[-1].split("\t")[0] + "\t1"]))
    result = run("finetuning/run_glue.py", *[glue if f == data else f for f in flags])
    one_line_failure(result, "train.tsv")
    assert not out.exists()
