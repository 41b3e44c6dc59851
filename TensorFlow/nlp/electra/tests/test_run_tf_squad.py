"""run_tf_squad.py with NVIDIA's TF2 ELECTRA command line, on a tiny discriminator and a
few XQuAD questions: train, predict and score through --eval_script (the printed EM/F1 are
the script's), the per-epoch checkpoint that --init_checkpoint reads back, resuming
after SIGTERM, upstream's cache names, SQuAD v2.0 with the span head, layer-wise rate decay, and bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import run_tf_squad
from electra_fixtures import TINY, tiny_squad
from layerwise_decay import depth, rate_multipliers

from bertfam.testing import (
    assert_preempted,
    assert_same_checkpoint_weights,
    horovod_mpirun,
    shared_file,
)

FOLDER = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workdir(shared_data, tmp_path_factory):
    """A working folder as the wrapper expects one: vocab/vocab.txt, a tiny random
    discriminator saved by HuggingFace (models/tiny-discriminator) and SQuAD data."""
    import torch
    from transformers import ElectraConfig, ElectraForPreTraining

    vocab = shared_file(shared_data, "bert_uncased/vocab.txt")
    xquad = shared_file(shared_data, "squad/xquad.en.json")
    folder = tmp_path_factory.mktemp("electra_squad")
    (folder / "vocab").mkdir()
    shutil.copy(vocab, folder / "vocab" / "vocab.txt")
    torch.manual_seed(0)
    ElectraForPreTraining(ElectraConfig(**TINY)).save_pretrained(folder / "models" / "tiny-disc")
    tiny_squad(xquad, folder / "squad" / "v1.1", "1.1")
    tiny_squad(xquad, folder / "squad" / "v2.0", "2.0", impossible=True)
    return folder


def squad_flags(workdir, version="1.1", *extra):
    return ["--electra_model=models/tiny-disc", f"--data_dir=squad/v{version}",
            "--vocab_file=vocab/vocab.txt", "--do_lower_case", "--max_seq_length=128",
            "--doc_stride=64", "--max_query_length=32", "--train_batch_size=4",
            "--predict_batch_size=8", "--log_freq=1", "--disable-progress-bar", *extra]  # fmt: skip


def run(workdir, monkeypatch, capsys, flags):
    monkeypatch.chdir(workdir)
    run_tf_squad.main(flags)
    return capsys.readouterr().out


def evaluate_command(workdir, version, predictions):
    """What the evaluation script prints for these predictions, run as the user would."""
    script = workdir / "squad" / f"v{version}" / f"evaluate-v{version}.py"
    dev = workdir / "squad" / f"v{version}" / f"dev-v{version}.json"
    done = subprocess.run([sys.executable, str(script), str(dev), str(predictions)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout)


def summary(out, name):
    line = next(line for line in out.splitlines() if line.startswith(f"**{name} SUMMARY**"))
    return line


def test_train_predict_evaluate_and_reload_the_epoch_checkpoint(workdir, monkeypatch, capsys):
    flags = squad_flags(workdir, "1.1", "--do_train", "--num_train_epochs=2", "--beam_size=5",
                        "--do_predict", "--do_eval", "--output_dir=trained",
                        "--eval_script=squad/v1.1/evaluate-v1.1.py")  # fmt: skip
    out = run(workdir, monkeypatch, capsys, flags)
    trained = workdir / "trained"
    official = evaluate_command(workdir, "1.1", trained / "predictions.json")
    eval_line = summary(out, "EVAL")
    assert eval_line.startswith("**EVAL SUMMARY** - Epoch: 001,  EM: ")
    assert f"EM: {official['exact_match']:6.3f}, F1: {official['f1']:6.3f}," in eval_line
    assert f"EM: {official['exact_match']:6.3f}, F1: {official['f1']:6.3f}," in summary(
        out, "RESULTS"
    )
    assert summary(out, "LATENCY").startswith("**LATENCY SUMMARY** - Epoch: 001,  Ave: ")
    # Two epochs of 4 updates (17 windows // 4); upstream's step line.
    steps = [line for line in out.splitlines() if line.startswith("Epoch: ")]
    assert steps[0].startswith("Epoch: 000, Step:     0, Loss:") and "opt_step:1" in steps[0]
    assert "Epoch: 001, Step:     3," in steps[7] and "opt_step:8" in steps[7]
    nbest = json.loads((trained / "nbest_predictions.json").read_text())
    assert set(nbest) == set(json.loads((trained / "predictions.json").read_text()))
    assert all(abs(sum(e["probability"] for e in entries) - 1) < 1e-6 for entries in nbest.values())
    # NVIDIA's squad_utils.py writes each entry as text, probability, start_logit, end_logit.
    upstream_keys = ["text", "probability", "start_logit", "end_logit"]
    assert all(list(e) == upstream_keys for entries in nbest.values() for e in entries)
    assert sorted(p.name for p in (workdir / "squad" / "v1.1").glob("TF2_*")) == [
        "TF2_dev-v1.1.json_tiny-disc_128_64_32",
        "TF2_train-v1.1.json_tiny-disc_128_64_32",
    ]
    records = [json.loads(line[5:]) for line in (workdir / "results" / "dllogger.json").open()]
    assert {"exact_match", "F1"} <= set(records[-1]["data"])
    assert records[-1]["data"]["exact_match"] == official["exact_match"]

    # The last epoch's checkpoint, read back without training: the same answers.
    checkpoint = "checkpoints/electra_base_qa_v2_False_epoch_2_ckpt"
    assert Path(workdir, f"{checkpoint}.index").is_file()
    flags = squad_flags(workdir, "1.1", f"--init_checkpoint={checkpoint}", "--beam_size=5",
                        "--do_predict", "--output_dir=reloaded")  # fmt: skip
    run(workdir, monkeypatch, capsys, flags)
    for name in ("predictions.json", "nbest_predictions.json"):
        assert (workdir / "reloaded" / name).read_text() == (trained / name).read_text()


def test_sigterm_then_the_same_command_ends_with_the_uninterrupted_epoch_checkpoints(
    workdir, tmp_path
):
    """Preempted after update 5 of 8 (epoch 2): the resume checkpoint holds update 5, the
    rerun goes on from it, ends with the uninterrupted run's epoch checkpoints and then
    removes the resume checkpoints (a finished command reruns from the start). The same
    with two Horovod workers, rank 1 alone signalled."""
    flags = squad_flags(workdir, "1.1", "--do_train", "--num_train_epochs=2")
    folders = {}
    for name in ("straight", "preempted", "two"):
        folders[name] = tmp_path / name
        for part in ("vocab", "models", "squad"):
            shutil.copytree(workdir / part, folders[name] / part)

    def script(folder, *helper, launcher=(), extra=(), env=None):
        command = [*launcher, sys.executable, *helper, str(FOLDER / "run_tf_squad.py"), *flags]
        return subprocess.run([*command, *extra], cwd=folder, capture_output=True, text=True,
                              env=env, timeout=600)  # fmt: skip

    straight = script(folders["straight"])
    assert straight.returncode == 0, straight.stderr[-3000:]
    stopped = script(folders["preempted"], "-m", "bertfam.testing.tf_signal_after_update", "5")
    resume = Path("checkpoints", "electra_base_qa_v2_False_resume")
    assert_preempted(stopped, "run_tf_squad.py", 5, resume / "ckpt-5")
    resumed = script(folders["preempted"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {resume / 'ckpt-5'} (step 5 of 9)" in resumed.stderr
    for epoch in (1, 2):
        checkpoint = Path("checkpoints", f"electra_base_qa_v2_False_epoch_{epoch}_ckpt")
        assert_same_checkpoint_weights(folders["preempted"] / checkpoint,
                                       folders["straight"] / checkpoint, atol=1e-6)  # fmt: skip
    assert not (folders["preempted"] / resume).exists()

    # Two Horovod workers at half the batch, SIGTERM to rank 1 alone after update 5: both
    # stop there with one resume checkpoint; resumed, they end as the one process above.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    half = ["--train_batch_size=2"]
    stopped = script(folders["two"], "-m", "bertfam.testing.tf_signal_after_update", "5", extra=half,
                     launcher=horovod_mpirun(), env={**env, "SIGNAL_RANK": "1"})  # fmt: skip
    assert stopped.returncode != 0  # mpirun reports the ranks' 143 its own way
    assert f"stopped by SIGTERM after update 5; checkpoint {resume / 'ckpt-5'}" in stopped.stderr
    resumed = script(folders["two"], launcher=horovod_mpirun(), extra=half, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for epoch in (1, 2):
        checkpoint = Path("checkpoints", f"electra_base_qa_v2_False_epoch_{epoch}_ckpt")
        assert_same_checkpoint_weights(folders["two"] / checkpoint,
                                       folders["straight"] / checkpoint, atol=1e-5)  # fmt: skip


def test_squad_v2_with_the_span_head(workdir, monkeypatch, capsys):
    flags = squad_flags(workdir, "2.0", "--do_train", "--num_train_epochs=1", "--joint_head=false",
                        "--version_2_with_negative", "--null_score_diff_threshold=-5.6",
                        "--do_predict", "--do_eval", "--output_dir=v2", "--skip_checkpoint",
                        "--skip_cache", "--eval_script=squad/v2.0/evaluate-v2.0.py")  # fmt: skip
    out = run(workdir, monkeypatch, capsys, flags)
    answers = json.loads((workdir / "v2" / "predictions.json").read_text())
    null_odds = json.loads((workdir / "v2" / "null_odds.json").read_text())
    assert set(answers) == set(null_odds) and "impossible" in answers
    # The threshold decides: "" exactly where the null score beats the best span by > -5.6.
    nbest = json.loads((workdir / "v2" / "nbest_predictions.json").read_text())
    for qid, odds in null_odds.items():
        assert (answers[qid] == "") == (odds > -5.6), qid
        assert answers[qid] in {e["text"] for e in nbest[qid]}
    official = evaluate_command(workdir, "2.0", workdir / "v2" / "predictions.json")
    assert f"EM: {official['exact']:6.3f}, F1: {official['f1']:6.3f}," in summary(out, "EVAL")
    assert not list((workdir / "squad" / "v2.0").glob("TF2_*"))  # --skip_cache


def test_layerwise_decay_from_the_head_down():
    names = ["electra/embeddings/word_embeddings", "electra/embeddings_project/kernel",
             "electra/encoder/layer_0/output/dense/kernel",
             "electra/encoder/layer_11/attention/self/query/bias",
             "start_logits/start_logit_pooler_dense/kernel", "cls/squad/output_weights"]  # fmt: skip
    assert [depth(name, 12) for name in names] == [0, 0, 1, 12, 14, 14]
    multipliers = rate_multipliers(names, 12, 0.8)
    assert multipliers["electra/embeddings/word_embeddings"] == pytest.approx(0.8**14)
    assert multipliers["electra/encoder/layer_0/output/dense/kernel"] == pytest.approx(0.8**13)
    assert multipliers["electra/encoder/layer_11/attention/self/query/bias"] == pytest.approx(
        0.8**2
    )
    assert multipliers["start_logits/start_logit_pooler_dense/kernel"] == 1.0
    assert rate_multipliers(names, 12, 0.0) == {}
    with pytest.raises(ValueError, match="generator/encoder"):
        depth("generator/encoder/layer_0/output/dense/kernel", 12)


@pytest.mark.parametrize(
    "extra, message",
    [(["--do_predict"], "--init_checkpoint is required without --do_train"),
     (["--do_train", "--do_eval"], "--do_eval scores the predictions: give --do_predict"),
     ([], "nothing to do"),
     (["--do_train", "--train_file=train.json"], "--train_file: upstream ignores it"),
     (["--do_train", "--fp16_all_reduce"], "--fp16_all_reduce: fp16 all-reduce"),
     (["--do_train", "--bfloat16=true"], "--bfloat16: unused upstream"),
     (["--do_train", "--local_rank=1"], "--local_rank (LOCAL_RANK): a torch.distributed launcher"),
     (["--do_predict", "--do_eval", "--do_train", "--eval_script=nothere.py"],
      "--eval_script=nothere.py: no such file"),
     (["--do_predict", "--init_checkpoint=checkpoints/none"],
      "--init_checkpoint=checkpoints/none: no such checkpoint"),
     (["--do_train", "--data_dir=vocab"], "--train_file=vocab/train-v1.1.json: no such file"),
     (["--do_train", "--electra_model=google/electra-nothere"],
      "model 'google/electra-nothere' is not here")],
)  # fmt: skip
def test_bad_input_is_one_line_before_anything_is_written(
    workdir, monkeypatch, capsys, extra, message
):
    monkeypatch.chdir(workdir)
    before = sorted(p.name for p in workdir.iterdir())
    with pytest.raises(SystemExit) as exited:
        run_tf_squad.main(squad_flags(workdir, "1.1", "--output_dir=refused", *extra))
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("run_tf_squad.py: error: ")
    assert message in error[0]
    assert sorted(p.name for p in workdir.iterdir()) == before
