"""Wikipedia to hdf5 shards with pretraining/data/create_datasets_from_start.sh, killed
and resumed; and the shards read back as run_pretraining.py's batches, equal to the
batches the TensorFlow recipe reads from the TFRecords of the same examples."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bertfam import tinydata
from bertfam.pretraining import prep
from bertfam.pretraining.create import corpus_arrays
from bertfam.pretraining.hdf5 import read_hdf5_shard, write_hdf5_shard
from bertfam.pretraining.instances import InstanceOptions
from bertfam.testing import kill_when

pytest.importorskip("h5py", reason="h5py writes the shards")
DATA = Path(__file__).resolve().parents[1] / "pretraining" / "data"
FROM_START = DATA / "create_datasets_from_start.sh"
SHARDS = ["--n_training_shards", "6", "--n_test_shards", "2", "--fraction_test_set", "0.2"]


def flow(work, url, vocab, *extra):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BERT_PREP")},
        "BERT_PREP_WIKI_URL": url,
        "VOCAB_FILE": str(vocab),
        "PYTHON": sys.executable,
    }
    command = ["bash", str(FROM_START), "wiki_only", str(work), *SHARDS, *extra]
    return command, env


def outputs(work: Path) -> dict:
    """Every finished file under `work` (hidden temporaries aside): text by its bytes,
    hdf5 shards by their arrays."""
    found = {}
    for path in sorted(work.rglob("*")):
        if path.is_dir() or any(part.startswith(".") for part in path.relative_to(work).parts):
            continue
        name = str(path.relative_to(work))
        if path.suffix == ".hdf5":
            found[name] = {
                k: hashlib.sha1(v.tobytes()).hexdigest() for k, v in read_hdf5_shard(path).items()
            }
        else:
            found[name] = hashlib.sha1(path.read_bytes()).hexdigest()
    return found


def test_corpus_flow_resumes_after_kills_and_ends_with_the_same_files(
    tmp_path, http_server, shared_data
):
    vocab = shared_data / "bert_uncased" / "vocab.txt"
    dump = tinydata.wikipedia_dump(tmp_path / "dump.xml.bz2", vocab, seed=5, articles=300)
    url = http_server.serve("/enwiki-latest-pages-articles.xml.bz2", dump.read_bytes())
    small_parts = ["--articles_per_part", "2", "--n_processes", "2"]

    command, env = flow(tmp_path / "straight", url, vocab, *small_parts)
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    expected = outputs(tmp_path / "straight")
    phase1 = [n for n in expected if "seq_len_128_max_pred_20" in n]
    phase2 = [n for n in expected if "seq_len_512_max_pred_80" in n]
    assert len(phase1) == len(phase2) == 8  # 6 training + 2 test shards each
    assert "formatted/wikicorpus_en/part_00149.txt" in expected

    work = tmp_path / "killed"
    formatted = work / "formatted" / "wikicorpus_en"
    command, env = flow(work, url, vocab, *small_parts)
    assert kill_when(command, lambda: (formatted / "part_00020.txt").exists(), env=env)
    assert not (formatted / "COMPLETE").exists()  # killed inside the formatting stage
    assert kill_when(command, lambda: any((work / name).exists() for name in phase1), env=env)
    assert not all((work / name).exists() for name in phase1)  # inside the phase-1 stage
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    assert outputs(work) == expected


def test_the_shards_read_back_as_the_batches_of_the_tfrecords(tmp_path, shared_data):
    pretraining_records = pytest.importorskip("bertfam.tf.pretraining_records")
    vocab = shared_data / "bert_uncased" / "vocab.txt"
    corpus = tinydata.pretraining_corpus(tmp_path / "corpus.txt", vocab, seed=6)
    options = InstanceOptions(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=2)
    arrays = corpus_arrays([str(corpus)], str(vocab), True, 3, options)
    write_hdf5_shard(arrays, tmp_path / "shard.hdf5")
    pretraining_records.write_example_files(
        arrays, [str(tmp_path / "shard.tfrecord")], show_progress=False
    )

    from bertfam.torch.pretraining_data import PretrainingShard

    loader = torch.utils.data.DataLoader(PretrainingShard(tmp_path / "shard.hdf5"), batch_size=8)
    dataset = pretraining_records.pretraining_dataset(
        [str(tmp_path / "shard.tfrecord")], 8, 64, 10, is_training=False
    )
    batches = 0
    for torch_batch, tf_batch in zip(loader, dataset, strict=True):
        input_ids, segment_ids, input_mask, labels, next_sentence = torch_batch
        tf_batch = {name: value.numpy() for name, value in tf_batch.items()}
        assert tf_batch["input_ids"].dtype == np.int32  # as Google's input_fn gives them
        np.testing.assert_array_equal(input_ids.numpy(), tf_batch["input_ids"])
        np.testing.assert_array_equal(segment_ids.numpy(), tf_batch["segment_ids"])
        np.testing.assert_array_equal(input_mask.numpy(), tf_batch["input_mask"])
        np.testing.assert_array_equal(next_sentence.numpy(), tf_batch["next_sentence_labels"][:, 0])
        expected = np.full(input_ids.shape, -1)
        for row, (positions, ids, weights) in enumerate(
            zip(
                tf_batch["masked_lm_positions"],
                tf_batch["masked_lm_ids"],
                tf_batch["masked_lm_weights"],
            )
        ):
            real = weights > 0
            expected[row, positions[real]] = ids[real]
        np.testing.assert_array_equal(labels.numpy(), expected)
        batches += 1
    assert batches == -(-len(arrays["input_ids"]) // 8) > 3


def test_bookcorpus_is_refused_in_one_line(tmp_path):
    result = subprocess.run(
        ["bash", str(FROM_START), "wiki_books", str(tmp_path / "work")],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {prep.BOOKS_GONE}"]
    assert not (tmp_path / "work").exists()
