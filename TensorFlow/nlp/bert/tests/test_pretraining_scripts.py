"""scripts/run_pretraining_lamb*.sh: NVIDIA's positional arguments, both phases end to end
on tiny records laid out as create_datasets_from_start.sh writes them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from records import create_records

from bertfam import tinydata

FOLDER = Path(__file__).resolve().parents[1]
SCRIPTS = FOLDER / "scripts"
# batch_p1 batch_p2 eval_batch lr_p1 lr_p2 precision use_xla cards warmup_p1 warmup_p2
# train_steps save_checkpoints_steps accumulation_p1 accumulation_p2 bert_model
ARGUMENTS = ["4", "2", "4", "1e-3", "1e-3", "fp32", "false", "1", "1", "1", "10", "100", "1",
             "1", "base"]  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, shared_data):
    vocab = shared_data / "bert_uncased" / "vocab.txt"
    data = tmp_path_factory.mktemp("data")
    corpus = tinydata.pretraining_corpus(data / "corpus.txt", vocab, seed=4, documents=30)
    for length, predictions in ((128, 20), (512, 80)):
        records = data / "tfrecord" / f"seq_len_{length}" / "wikicorpus_en"
        for split, seed in (("training", 1), ("test", 2)):
            (records / split).mkdir(parents=True)
            output = records / split / f"wikicorpus_en_{split}_0.tfrecord"
            create_records(corpus, output, vocab, length, predictions, f"--random_seed={seed}")
    tinydata.bert_config_file(data / "bert_config.json", 30522, max_position_embeddings=512)
    return data


def run_script(name, data_dir, results, *arguments):
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "RESULTS_DIR": str(results),
        "BERT_CONFIG": str(data_dir / "bert_config.json"),
        "PYTHON": sys.executable,
    }
    return subprocess.run(
        ["bash", str(SCRIPTS / name), *arguments],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def eval_results(path):
    return dict(line.split(" = ") for line in path.read_text().splitlines())


def test_both_phases_run_and_phase_2_starts_from_phase_1(data_dir, tmp_path):
    results = tmp_path / "results"
    done = run_script("run_pretraining_lamb.sh", data_dir, results, *ARGUMENTS)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    # Phase 1: 9/10 of 10 updates; phase 2: the other 1/10 times the ratio of the global
    # batches (4 to 2), on the 512/80 records, from phase 1's last checkpoint.
    assert (results / "phase_1" / "model.ckpt-9.index").is_file()
    assert (results / "phase_2" / "model.ckpt-2.index").is_file()
    assert eval_results(results / "phase_1" / "eval_results.txt")["global_step"] == "9"
    assert eval_results(results / "phase_2" / "eval_results.txt")["global_step"] == "2"
    (log,) = results.glob("tf_bert_pretraining_lamb_base_fp32_gbs14_gbs22.*.log")
    text = log.read_text()
    assert f"Loading weights from {results}/phase_1/model.ckpt-9" in text


@pytest.mark.parametrize(
    "index,value,message",
    [
        (5, "fp16", "precision=fp16: use fp32, tf32 or bf16"),
        (6, "true", "use_xla=true: XLA is not supported"),
        (14, "huge", "bert_model=huge: use large or base"),
    ],
)
def test_unsupported_arguments_stop_with_one_line(data_dir, tmp_path, index, value, message):
    arguments = list(ARGUMENTS)
    arguments[index] = value
    done = run_script("run_pretraining_lamb_phase1.sh", data_dir, tmp_path, *arguments)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "phase_1").exists()


def test_phase_2_without_phase_1_says_so(data_dir, tmp_path):
    done = run_script("run_pretraining_lamb_phase2.sh", data_dir, tmp_path, *ARGUMENTS)
    assert done.returncode == 2
    assert "model.ckpt-9, which does not exist: run phase 1 first" in done.stderr
