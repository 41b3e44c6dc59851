"""pretraining/data/create_pretraining_data.py: NVIDIA's hdf5 shards, holding the same
examples as the TFRecords the TensorFlow folder writes from the same code (whose records
are tested against Google's own script there)."""

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bertfam.pretraining.features import instance_arrays
from bertfam.pretraining.hdf5 import HDF5_DTYPES, masked_lm_labels, read_hdf5_shard
from bertfam.pretraining.instances import InstanceOptions, create_training_instances, read_documents
from bertfam.tinydata import pretraining_corpus as write_corpus
from bertfam.tokenization.wordpiece import WordPieceTokenizer

h5py = pytest.importorskip("h5py", reason="h5py writes the shards")

SCRIPT = Path(__file__).resolve().parents[1] / "pretraining" / "data" / "create_pretraining_data.py"


def run(*flags):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, timeout=300
    )


def test_shards_hold_the_examples_the_tfrecords_hold(tmp_path, minilm_dir):
    pretraining_records = pytest.importorskip("bertfam.tf.pretraining_records")
    vocab = minilm_dir / "vocab.txt"
    corpus = write_corpus(tmp_path / "corpus.txt", vocab, seed=4)
    shards = [tmp_path / "wiki_training_0.hdf5", tmp_path / "wiki_training_1.hdf5"]
    result = run(
        f"--input_file={corpus}",
        f"--output_file={shards[0]},{shards[1]}",
        f"--vocab_file={vocab}",
        "--do_lower_case",
        "--max_seq_length=64",
        "--max_predictions_per_seq=10",
        "--random_seed=8",
        "--dupe_factor=2",
    )
    assert result.returncode == 0, result.stderr[-2000:]

    # The same instances through the TFRecord writer the TensorFlow script uses.
    tokenizer = WordPieceTokenizer(vocab)
    options = InstanceOptions(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=2)
    documents = read_documents([corpus], tokenizer)
    instances = create_training_instances(
        documents, list(tokenizer.vocab), options, random.Random(8)
    )
    records = [str(tmp_path / f"records-{n}.tfrecord") for n in range(2)]
    arrays = instance_arrays(instances, tokenizer, 64, 10)
    pretraining_records.write_example_files(arrays, records, show_progress=False)

    for shard, record in zip(shards, records):
        hdf5 = read_hdf5_shard(shard)
        tfrecord = pretraining_records.read_example_files([record], 64, 10)
        assert len(hdf5["input_ids"]) == len(tfrecord["input_ids"]) > 20
        for name in HDF5_DTYPES:
            np.testing.assert_array_equal(hdf5[name].reshape(tfrecord[name].shape), tfrecord[name])
        # Where masked_lm_weights is 0 the position is 0 too: the zeros end the real ones.
        assert np.all((tfrecord["masked_lm_weights"] == 0) == (hdf5["masked_lm_positions"] == 0))


def test_shard_layout_is_nvidias(tmp_path, minilm_dir):
    vocab = minilm_dir / "vocab.txt"
    corpus = write_corpus(tmp_path / "corpus.txt", vocab, seed=5, documents=8)
    shard = tmp_path / "books_test_0.hdf5"
    result = run(f"--input_file={corpus}", f"--output_file={shard}", f"--vocab_file={vocab}",
                 "--do_lower_case", "--max_seq_length=128", "--max_predictions_per_seq=20",
                 "--dupe_factor=1")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    # NVIDIA's create_pretraining_data.py (write_instance_to_example_file), written out here
    # rather than read from our table: its datasets, their dtypes, gzip.
    nvidia = {
        "input_ids": "int32", "input_mask": "int8", "segment_ids": "int8",
        "masked_lm_positions": "int32", "masked_lm_ids": "int32", "next_sentence_labels": "int8",
    }  # fmt: skip
    with h5py.File(shard, "r") as data:
        assert sorted(data) == sorted(nvidia)
        rows = len(data["input_ids"])
        for name, dtype in nvidia.items():
            assert data[name].dtype == np.dtype(dtype) and data[name].compression == "gzip"
        assert data["input_ids"].shape == (rows, 128) and data["masked_lm_ids"].shape == (rows, 20)
        assert data["next_sentence_labels"].shape == (rows,)
    assert not list(tmp_path.glob(".*.tmp"))


def test_loader_labels_are_minus_one_but_at_the_masked_positions():
    positions = np.array([[3, 5, 0, 0], [1, 2, 4, 7]])
    ids = np.array([[11, 12, 0, 0], [21, 22, 23, 24]])
    labels = masked_lm_labels(positions, ids, seq_length=8)
    expected = np.full((2, 8), -1)
    expected[0, [3, 5]] = [11, 12]
    expected[1, [1, 2, 4, 7]] = [21, 22, 23, 24]
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--max_seq_length=16", "--max_predictions_per_seq=20"], "13 maskable tokens"),
        (["--output_file=/nonexistent/dir/x.hdf5"], "does not exist"),
        (["--input_file=/nonexistent/*.txt"], "matches no file"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, minilm_dir, flags, message):
    vocab = minilm_dir / "vocab.txt"
    corpus = write_corpus(tmp_path / "corpus.txt", vocab, seed=1, documents=3)
    output = tmp_path / "out.hdf5"
    defaults = [f"--input_file={corpus}", f"--output_file={output}", f"--vocab_file={vocab}"]
    given = {flag.split("=")[0] for flag in flags}
    result = run(*[f for f in defaults if f.split("=")[0] not in given], *flags)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not output.exists()
