"""A Wikipedia dump to packed pre-training TFRecords, the way a user runs it:
data_preprocessing/create_datasets_from_start.sh (download from 127.0.0.1, extract,
split, shard, phase 1 and 2 records), then pack_pretraining_data_tfrec.py. Every shard's
records are Google's for that shard's text. (Killing and resuming the same flow is
tested in the PyTorch folder, which writes hdf5 from the same stages.)"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bertfam import tinydata

google_cpd = pytest.importorskip("bert.create_pretraining_data", reason="bert-tensorflow")
google_tokenization = pytest.importorskip("bert.tokenization", reason="bert-tensorflow")

FOLDER = Path(__file__).resolve().parents[1] / "data_preprocessing"


@pytest.fixture(scope="module", autouse=True)
def google_flags_parsed():
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def google_records(text: Path, vocab: Path, output: Path, length: int, predictions: int):
    """Google's create_pretraining_data.py on one shard, with bertPrep's settings."""
    tokenizer = google_tokenization.FullTokenizer(str(vocab), do_lower_case=True)
    instances = google_cpd.create_training_instances(
        [str(text)], tokenizer, length, 5, 0.1, 0.15, predictions, random.Random(12345)
    )
    google_cpd.write_instance_to_example_files(
        instances, tokenizer, length, predictions, [str(output)]
    )
    return output.read_bytes()


def test_wikipedia_to_packed_records(tmp_path, http_server, shared_data):
    vocab = shared_data / "bert_uncased" / "vocab.txt"
    dump = tinydata.wikipedia_dump(tmp_path / "dump.xml.bz2", vocab, seed=8, articles=120)
    url = http_server.serve("/enwiki-latest-pages-articles.xml.bz2", dump.read_bytes())
    work = tmp_path / "work"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BERT_PREP")},
        "BERT_PREP_WIKI_URL": url,
        "VOCAB_FILE": str(vocab),
        "PYTHON": sys.executable,
    }
    shards = ["--n_training_shards", "3", "--n_test_shards", "1", "--n_processes", "2"]
    command = ["bash", str(FOLDER / "create_datasets_from_start.sh"), "wiki_only", str(work)]
    subprocess.run([*command, *shards], env=env, check=True, capture_output=True, timeout=600)

    text = work / "sharded_training_shards_3_test_shards_1_fraction_0.1" / "wikicorpus_en"
    for length, predictions in ((128, 20), (512, 80)):
        records = work / "tfrecord" / f"seq_len_{length}" / "wikicorpus_en"
        for split, index in [("training", 0), ("training", 1), ("training", 2), ("test", 0)]:
            name = f"wikicorpus_en_{split}_{index}"
            ours = (records / split / f"{name}.tfrecord").read_bytes()
            theirs = google_records(
                text / f"{name}.txt", vocab, tmp_path / "google.tfrecord", length, predictions
            )
            assert ours == theirs, f"{name} at {length}"

    packed = work / "packed" / "seq_len_512" / "training"
    result = subprocess.run(
        [sys.executable, str(FOLDER / "pack_pretraining_data_tfrec.py"),
         f"--input-glob={work}/tfrecord/seq_len_512/wikicorpus_en/training/*.tfrecord",
         f"--output-dir={packed}", "--max-sequence-length=512",
         "--max-predictions-per-sequence=80", "--max-sequences-per-pack=3"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    metadata = json.loads((packed.parent / "training_metadata.json").read_text())
    assert metadata["avg_seq_per_sample"] > 1.0  # short Wikipedia articles pack together
    assert list(packed.glob("*.tfrecord"))
