"""scripts/electra.sh as the seed runs it (``bash scripts/electra.sh <device> ...``):
both phases end to end with upstream's positional arguments on tiny data, its log files,
and its refusals."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from electra_fixtures import bert_inputs, tiny_squad, write_config, write_records

from bertfam.testing import launch_free_env, shared_file

FOLDER = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def codedir(shared_data, tmp_path_factory):
    """A working folder as the seed sets one up: results/, vocab/vocab.txt, both phases'
    records (BERT's layout, 128 and 512 tokens) and a tiny discriminator config."""
    vocab, text = bert_inputs(shared_data)
    folder = tmp_path_factory.mktemp("electra_code")
    (folder / "results").mkdir()
    (folder / "vocab").mkdir()
    shutil.copy(vocab, folder / "vocab" / "vocab.txt")
    for length in (128, 512):
        (folder / f"seq_len_{length}").mkdir()
        path = folder / f"seq_len_{length}" / "books_wiki_0.tfrecord"
        write_records(vocab, text, [path], length, 20, 1)
    write_config(folder / "config.json")
    return folder


def electra_sh(codedir, *arguments):
    env = launch_free_env(ELECTRA_CONFIG_FILE=str(codedir / "config.json"))
    return subprocess.run(["bash", str(FOLDER / "scripts" / "electra.sh"), *map(str, arguments)],
                          cwd=codedir, capture_output=True, text=True, env=env,
                          timeout=900)  # fmt: skip


@pytest.fixture(scope="module")
def pretrained(codedir):
    """scripts/electra.sh's two phases, as the seed runs them, on the tiny data."""
    # device precision bs_p1 lr_p1 num_hpu xla warmup_p1 steps_p1 save resume optimizer
    # accumulate accum_p1 seed job bs_p2 lr_p2 warmup_p2 steps_p2 accum_p2 model p1 p2 codedir
    return electra_sh(codedir, "cpu", "fp32", 2, "1e-3", 0, "noxla", 1, 4, 2, "false", "lamb",
                      "true", 2, 100, "job", 1, "1e-3", 1, 2, 2, "base",
                      f"{codedir}/seq_len_128/books_wiki*", f"{codedir}/seq_len_512/books_wiki*",
                      codedir)  # fmt: skip


def test_both_phases_run_as_the_seed_line(codedir, pretrained):
    result = pretrained
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checkpoints = codedir / "results" / "models" / "base" / "checkpoints"
    names = sorted(p.name for p in checkpoints.glob("*.index"))
    assert names == ["ckpt-2.index", "ckpt-4.index", "ckpt-p2-2.index"]
    config = json.loads((checkpoints / "pretrain_config.json").read_text())
    assert config["phase2"] and config["max_seq_length"] == 512 and config["skip_adaptive"]
    assert config["generator_hidden_size"] == 0.3333333 and config["lr_power"] == 0.5
    logs = sorted(p.name for p in (codedir / "results").glob("job.*.log"))
    assert [re.sub(r"\d{12}", "<date>", name) for name in logs] == [
        "job.electra_pretraining_phase1_fp32.<date>.log",
        "job.electra_pretraining_phase2_fp32.<date>.log",
    ]
    phase2 = (codedir / "results" / logs[1]).read_text()
    assert "--restore_checkpoint=latest --phase2" in phase2 and "ckpt-4 at step 0" in phase2


@pytest.mark.parametrize(
    "arguments, message",
    [(("cpu", "bf16"), "Unknown <precision> argument: bf16"),
     (("cpu", "fp16"), "Unknown <precision> argument: fp16")],
)  # fmt: skip
def test_refusals(codedir, arguments, message):
    result = electra_sh(codedir, *arguments, 2, "1e-3", 0, "noxla", 1, 2, 2, "false", "lamb",
                        "true", 1, 100, "refused", 1, "1e-3", 1, 1, 1, "base",
                        f"{codedir}/seq_len_128/*", f"{codedir}/seq_len_512/*", codedir)  # fmt: skip
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_a_missing_results_folder_is_refused(tmp_path):
    result = subprocess.run(["bash", str(FOLDER / "scripts" / "electra.sh"), "cpu"], cwd=tmp_path,
                            capture_output=True, text=True, env=launch_free_env())  # fmt: skip
    assert result.returncode == 1 and "Error! ./results directory missing." in result.stderr


@pytest.fixture(scope="module")
def squad_dir(codedir, shared_data):
    """SQuAD v1.1 files of a few XQuAD questions with the shipped evaluate-v1.1.py."""
    return tiny_squad(shared_file(shared_data, "squad/xquad.en.json"), codedir / "squad", "1.1")


def script(codedir, name, *arguments, **env):
    return subprocess.run(["bash", str(FOLDER / "scripts" / name), *map(str, arguments)],
                          cwd=codedir, capture_output=True, text=True,
                          env=launch_free_env(**env), timeout=900)  # fmt: skip


def test_pretrain_postprocess_fine_tune_as_the_seed_runs_them(codedir, pretrained, squad_dir):
    # electra.sh (the fixture) -> postprocess_pretrained_ckpt.py -> electra_squad.sh
    assert pretrained.returncode == 0
    checkpoint = codedir / "results" / "models" / "base" / "checkpoints" / "ckpt-p2-2"
    weights = codedir / "weights"
    post = subprocess.run([sys.executable, str(FOLDER / "postprocess_pretrained_ckpt.py"),
                           f"--pretrained_checkpoint={checkpoint}", f"--output_dir={weights}"],
                          cwd=codedir, capture_output=True, text=True)  # fmt: skip
    assert post.returncode == 0, post.stderr[-2000:]
    # device precision model epochs batch infer_batch lr num_hpu seed version squad_dir
    # out init mode env cache max_steps
    result = script(codedir, "electra_squad.sh", "cpu", "fp32", weights / "discriminator", 1, 2,
                    16, "4e-4", 0, 42, "1.1", squad_dir, "finetuned/", "init_checkpoint_loc",
                    "train_eval", "interactive", squad_dir, 2)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = codedir / "finetuned"
    official = subprocess.run([sys.executable, str(squad_dir / "evaluate-v1.1.py"),
                               str(squad_dir / "dev-v1.1.json"), str(out / "predictions.json")],
                              capture_output=True, text=True, check=True)  # fmt: skip
    scores = json.loads(official.stdout)
    printed = f"EM: {scores['exact_match']:6.3f}, F1: {scores['f1']:6.3f},"
    log = (out / "logfile.txt").read_text()
    assert f"**EVAL SUMMARY** - Epoch: 000,  {printed}" in log
    assert f"**RESULTS SUMMARY** - {printed}" in log
    assert "--joint_head True --null_score_diff_threshold -5.6" in log.splitlines()[0]
    assert "Epoch: 000, Step:     1," in log and "Epoch: 000, Step:     2," not in log  # max_steps


def test_every_checkpoint_is_fine_tuned_on_squad(codedir, pretrained, squad_dir):
    assert pretrained.returncode == 0
    run_dir = codedir / "results" / "models" / "base" / "checkpoints"
    one = codedir / "one_checkpoint"
    one.mkdir()
    for path in [*run_dir.glob("ckpt-p2-2.*"), run_dir / "pretrain_config.json"]:
        shutil.copy(path, one)
    # device precision epochs batch infer_batch lr num_hpu seed version squad_dir
    result = script(codedir, "finetune_ckpts_on_squad.sh", "cpu", "fp32", 1, 8, 16, "4e-4", 0,
                    42, "1.1", squad_dir, checkpoints=str(one))  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (one / "postprocessed" / "ckpt-p2-2" / "discriminator" / "model.safetensors").is_file()
    out = codedir / "results" / "squad" / "ckpt-p2-2"
    assert json.loads((out / "predictions.json").read_text())
    assert (
        f"--electra_model={one}/postprocessed/ckpt-p2-2/discriminator"
        in (out / "logfile.txt").read_text()
    )


def test_a_squad_folder_without_the_evaluation_script_is_refused(codedir, squad_dir, tmp_path):
    lacking = tmp_path / "squad"
    shutil.copytree(squad_dir, lacking, ignore=shutil.ignore_patterns("evaluate-*"))
    result = script(codedir, "electra_squad.sh", "cpu", "fp32", "google/electra-base-discriminator",
                    1, 2, 16, "4e-4", 0, 42, "1.1", lacking, tmp_path / "out/")  # fmt: skip
    assert result.returncode == 1 and not (tmp_path / "out").exists()
    assert result.stderr.strip().splitlines() == [
        f"Error! {lacking}/evaluate-v1.1.py missing (the SQuAD folder, argument 11; "
        f"evaluate-v*.py ships in {FOLDER}/data/download/squad/v1.1)"
    ]
