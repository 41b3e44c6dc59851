"""pack_pretraining_data_tfrec.py: sequence packing of pre-training records.

The input is made by the real create_pretraining_data.py over the real BERT vocabulary;
the packed records are unpacked here from the layout alone (not with the packer's code)
and compared with the input as multisets: every sequence, token for token, with its
masked positions, ids and next-sentence label, exactly once. Peak
memory is compared between 1x and 10x the input, each packing run in its own process.
"""

import itertools
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import nnls

from bertfam.pretraining.packing import (
    PACK_SLOTS,
    MixtureSolver,
    PackingOptions,
    SequenceChunk,
    length_histogram,
    metadata_path,
    pack_items,
    pack_row,
    packing_strategies,
    read_metadata,
    residual_weights,
    strategy_matrix,
)
from bertfam.testing import shared_file
from bertfam.tinydata import pretraining_corpus

FOLDER = Path(__file__).resolve().parents[1]
PACK = FOLDER / "data_preprocessing" / "pack_pretraining_data_tfrec.py"
CREATE = FOLDER / "data_preprocessing" / "create_pretraining_data.py"
LENGTH, PREDICTIONS = 256, 40  # the corpus' documents are short: most sequences are too


def script_env() -> dict:
    # The script's own default (TF_CPP_MIN_LOG_LEVEL=3) is what users get; conftest's 2
    # would let TensorFlow's import-time registration errors onto stderr.
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def run_pack(*flags: str, check: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, str(PACK), *flags]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=script_env())
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def flags(input_glob, output_dir, *extra: str) -> list:
    return [f"--input-glob={input_glob}", f"--output-dir={output_dir}",
            f"--max-sequence-length={LENGTH}", f"--max-predictions-per-sequence={PREDICTIONS}",
            *extra]  # fmt: skip


@pytest.fixture(scope="module")
def unpacked(shared_data, tmp_path_factory) -> Path:
    """Two shards of unpacked records, made by the real script (1,538 sequences)."""
    vocab = shared_file(shared_data, "bert_uncased/vocab.txt")
    folder = tmp_path_factory.mktemp("unpacked")
    corpus = pretraining_corpus(folder.parent / "corpus.txt", vocab, seed=1, documents=300)
    outputs = f"{folder}/shard_0.tfrecord,{folder}/shard_1.tfrecord"
    command = [sys.executable, str(CREATE), f"--input_file={corpus}", f"--output_file={outputs}",
               f"--vocab_file={vocab}", f"--max_seq_length={LENGTH}",
               f"--max_predictions_per_seq={PREDICTIONS}", "--dupe_factor=3", "--random_seed=7"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=script_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def input_sequences(folder: Path) -> list:
    """Each unpacked record as (tokens, segments, masked positions, masked ids, label)."""
    from bertfam.tf.pretraining_records import read_example_files

    arrays = read_example_files(sorted(map(str, folder.glob("*.tfrecord"))), LENGTH, PREDICTIONS)
    sequences = []
    for row in range(len(arrays["input_ids"])):
        tokens = int(arrays["input_mask"][row].sum())
        masked = int(arrays["masked_lm_weights"][row].sum())
        sequences.append((
            tuple(arrays["input_ids"][row, :tokens]),
            tuple(arrays["segment_ids"][row, :tokens]),
            tuple(arrays["masked_lm_positions"][row, :masked]),
            tuple(arrays["masked_lm_ids"][row, :masked]),
            int(arrays["next_sentence_labels"][row, 0]),
        ))  # fmt: skip
    return sequences


def unpack(packed: dict) -> list:
    """Every packed row back into its sequences, checking Habana's layout on the way:
    input_mask numbers the sequences 1, 2, 3 one after another from position 0;
    positions restart at 0; masked_lm_weights carry the sequence's number and the
    positions are shifted by where it starts; next_sentence_positions is its first token."""
    sequences = []
    for row in range(len(packed["input_ids"])):
        mask, weights = packed["input_mask"][row], packed["masked_lm_weights"][row]
        count, offset = int(mask.max()), 0
        assert 1 <= count <= PACK_SLOTS
        for number in range(1, count + 1):
            where = np.flatnonzero(mask == number)
            length = len(where)
            assert length and list(where) == list(range(offset, offset + length))
            assert list(packed["positions"][row, where]) == list(range(length))
            assert packed["next_sentence_positions"][row, number - 1] == offset
            assert packed["next_sentence_weights"][row, number - 1] == 1.0
            masked = np.flatnonzero(weights == number)
            shifted = packed["masked_lm_positions"][row, masked] - offset
            assert ((shifted >= 0) & (shifted < length)).all()
            sequences.append((
                tuple(packed["input_ids"][row, where]),
                tuple(packed["segment_ids"][row, where]),
                tuple(shifted),
                tuple(packed["masked_lm_ids"][row, masked]),
                int(packed["next_sentence_labels"][row, number - 1]),
            ))  # fmt: skip
            offset += length
        # Nothing after the last sequence, no empty slot that looks used.
        for name in ("input_ids", "input_mask", "segment_ids", "positions"):
            assert not packed[name][row, offset:].any(), name
        for name in ("next_sentence_positions", "next_sentence_labels", "next_sentence_weights"):
            assert not packed[name][row, count:].any(), name
        real = weights > 0
        assert not real[real.sum() :].any(), "predictions must come first"
        assert not packed["masked_lm_ids"][row, ~real].any()
        assert not packed["masked_lm_positions"][row, ~real].any()
    return sequences


def habanas_packed_spec(length: int, predictions: int) -> dict:
    """The features Habana's run_pretraining.py parses from a packed record (its
    input_fn_builder with packed data), written out here: the three packing slots widen
    the masked-LM arrays and carry up to three next-sentence positions and labels."""
    import tensorflow as tf

    def ints(width):
        return tf.io.FixedLenFeature([width], tf.int64)

    def floats(width):
        return tf.io.FixedLenFeature([width], tf.float32)

    return {
        "input_ids": ints(length), "input_mask": ints(length), "segment_ids": ints(length),
        "positions": ints(length),
        "masked_lm_positions": ints(predictions + 3), "masked_lm_ids": ints(predictions + 3),
        "masked_lm_weights": floats(predictions + 3),
        "next_sentence_positions": ints(3), "next_sentence_labels": ints(3),
        "next_sentence_weights": floats(3),
    }  # fmt: skip


def read_packed(folder: Path) -> dict:
    """Every packed record, parsed with Habana's spec (not our reader's), in file order."""
    import tensorflow as tf

    spec = habanas_packed_spec(LENGTH, PREDICTIONS)
    parts = {name: [] for name in spec}
    for path in sorted(folder.iterdir()):
        for record in tf.data.TFRecordDataset(str(path)).batch(256):
            parsed = tf.io.parse_example(record, spec)
            for name in spec:
                parts[name].append(parsed[name].numpy())
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


@pytest.fixture(scope="module")
def packed(unpacked, tmp_path_factory) -> Path:
    """The shards packed by the script in chunks of 700 sequences (so several chunks, the
    last one short); --duplication-factor only describes the input."""
    output = tmp_path_factory.mktemp("packed") / "training"
    run_pack(*flags(f"{unpacked}/*.tfrecord", output, "--duplication-factor=2",
                    "--max-sequences-per-pack=3", "--sequences-per-chunk=700"))  # fmt: skip
    return output


def test_every_sequence_is_packed_once(unpacked, packed):
    expected = input_sequences(unpacked)
    assert len(expected) > 1000
    found = unpack(read_packed(packed))
    assert Counter(found) == Counter(expected)


def test_metadata_and_files_are_habanas(unpacked, packed):
    rows = len(read_packed(packed)["input_ids"])
    metadata = read_metadata(packed)
    assert metadata_path(packed) == packed.parent / "training_metadata.json"
    sequences = len(input_sequences(unpacked))
    assert metadata["avg_seq_per_sample"] == pytest.approx(sequences / rows, rel=1e-12)
    assert metadata["original_number_of_samples"] == sequences
    assert metadata["new_number_of_samples"] == rows
    assert metadata["sequences_dropped"] == 0
    assert metadata["duplication_factor"] == 2  # recorded, as given
    # One output file per input file, rows dealt round-robin; nothing else in the folder.
    names = sorted(path.name for path in packed.iterdir())
    assert names == ["packed_part_0.tfrecord", "packed_part_1.tfrecord"]
    assert [path.name for path in packed.parent.iterdir() if path.name.startswith(".")] == []


def test_packing_is_efficient_and_rows_fit(packed):
    rows_read = read_packed(packed)
    mask = rows_read["input_mask"]
    rows, tokens = len(mask), int((mask > 0).sum())
    metadata = read_metadata(packed)
    sequences = metadata["original_number_of_samples"]
    assert rows < 0.6 * sequences  # short sequences: about two a row
    assert metadata["packing_efficiency"] == pytest.approx(tokens / (rows * LENGTH))
    unpacked_efficiency = tokens / (sequences * LENGTH)
    assert unpacked_efficiency < 0.55 and metadata["packing_efficiency"] > 0.9
    # Never longer than L: the last real token of each row is inside the row.
    last = np.array([np.flatnonzero(row).max() for row in mask])
    assert (last < LENGTH).all() and (mask.max(axis=1) <= PACK_SLOTS).all()
    assert (rows_read["masked_lm_weights"] > 0).sum(axis=1).max() <= PREDICTIONS + PACK_SLOTS


def test_at_most_two_sequences_a_row_in_the_readers_widths(unpacked, tmp_path):
    from bertfam.tf.packed_records import pack_record_files

    files = sorted(map(str, unpacked.glob("*.tfrecord")))
    options = PackingOptions(LENGTH, PREDICTIONS, max_sequences_per_pack=2)
    output = tmp_path / "deep" / "er" / "pairs"
    stats = pack_record_files(files, str(output), options, 500, show_progress=False)
    packed = read_packed(output)  # parsed with widths P + 3 and 3
    assert packed["input_mask"].max() == 2
    assert Counter(unpack(packed)) == Counter(input_sequences(unpacked))
    assert stats.rows == len(packed["input_ids"])


# --- bounded memory --------------------------------------------------------------------

# Peak RSS wobbles by a few MB from run to run (allocator arenas, TensorFlow's threads);
# a +25% margin on a ~500 MB TensorFlow process would need gigabytes of input before the
# test could fail, so the margin is absolute, with the input sized well above it.
MEMORY_MARGIN_MB = 24
CHUNK = 2000


def peak_rss_mb(*flags: str) -> float:
    """Run the script in a child of a fresh interpreter; that interpreter's children's
    ru_maxrss is the script's own peak."""
    wrapper = ("import resource, subprocess, sys\n"
               "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)")  # fmt: skip
    command = [sys.executable, "-c", wrapper, sys.executable, str(PACK), *flags]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=script_env())
    peak_kb, status = result.stdout.split()
    assert status == "0", result.stderr[-3000:]
    return int(peak_kb) / 1024


def shards(unpacked: Path, folder: Path, copies: int) -> int:
    """`copies` links to each input shard (the same files passed repeatedly); returns
    how many sequences they hold."""
    folder.mkdir()
    for copy, shard in itertools.product(range(copies), sorted(unpacked.glob("*.tfrecord"))):
        (folder / f"{copy:03d}_{shard.name}").symlink_to(shard)
    return copies * len(input_sequences(unpacked))


def test_peak_memory_does_not_grow_with_the_input(unpacked, tmp_path):
    once = shards(unpacked, tmp_path / "once", 4)
    tenfold = shards(unpacked, tmp_path / "tenfold", 40)
    # What holding the whole input would cost, at the packer's own compact bytes per
    # sequence: the test can fail only if that is well above the margin.
    probe = SequenceChunk(1, PackingOptions(LENGTH, PREDICTIONS))
    per_sequence = probe.bytes_per_sequence()
    full_load_extra_mb = (tenfold - once) * per_sequence / 2**20
    assert full_load_extra_mb > 3 * MEMORY_MARGIN_MB

    chunk = f"--sequences-per-chunk={CHUNK}"
    peak_once = peak_rss_mb(*flags(tmp_path / "once", tmp_path / "out_once", chunk))
    peak_tenfold = peak_rss_mb(*flags(tmp_path / "tenfold", tmp_path / "out_tenfold", chunk))
    assert read_metadata(tmp_path / "out_tenfold")["original_number_of_samples"] == tenfold
    assert peak_tenfold - peak_once < MEMORY_MARGIN_MB, (peak_once, peak_tenfold)


# --- bad input -------------------------------------------------------------------------


def assert_refused(result, *fragments: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_a_glob_that_matches_nothing_is_refused(tmp_path):
    output = tmp_path / "packed"
    result = run_pack(*flags(tmp_path / "nothing*.tfrecord", output), check=False)
    assert_refused(result, "--input-glob", "matches no file")
    assert not output.exists() and not metadata_path(output).exists()


def test_a_folder_with_files_is_refused(unpacked, tmp_path):
    output = tmp_path / "packed"
    output.mkdir()
    (output / "old.tfrecord").write_bytes(b"")
    result = run_pack(*flags(f"{unpacked}/*.tfrecord", output), check=False)
    assert_refused(result, "--output-dir", "is not empty")
    assert [p.name for p in output.iterdir()] == ["old.tfrecord"]


def test_a_later_file_of_other_length_stops_the_run_and_nothing_is_written(unpacked, tmp_path):
    from bertfam.tf.pretraining_records import read_example_files, write_example_files

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for shard in sorted(unpacked.glob("*.tfrecord")):
        (inputs / f"a_{shard.name}").symlink_to(shard)
    # Records of 128 tokens after 1,538 good ones: chunks of 500 are packed and written
    # into the staging folder before the bad file is read.
    short = read_example_files([str(next(unpacked.glob("*.tfrecord")))], LENGTH, PREDICTIONS)
    short = {name: array[:, :128] if array.shape[1] == LENGTH else array
             for name, array in short.items()}  # fmt: skip
    bad = inputs / "z_short.tfrecord"
    write_example_files(short, [str(bad)], show_progress=False)
    output = tmp_path / "new" / "packed"
    result = run_pack(*flags(f"{inputs}/*", output, "--sequences-per-chunk=500"), check=False)
    assert_refused(result, str(bad), "record 0", "128 input_ids", "--max-sequence-length is 256")
    assert not (tmp_path / "new").exists()  # nor the parent it made


def test_masked_lm_of_other_length_is_refused_and_the_folder_left_empty(unpacked, tmp_path):
    output = tmp_path / "packed"
    output.mkdir()
    result = run_pack(*flags(f"{unpacked}/*.tfrecord", output), "--max-predictions-per-sequence=20",
                      check=False)  # fmt: skip
    assert_refused(result, "40 masked_lm_positions", "--max-predictions-per-sequence is 20")
    assert list(output.iterdir()) == [] and not metadata_path(output).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["packed"]  # no staging folder left


def test_max_files_reads_at_most_that_many(tmp_path):
    from data_preprocessing.pack_pretraining_data_tfrec import input_files

    for index in range(5):
        (tmp_path / f"part_{index}.tfrecord").write_bytes(b"")
    chosen = input_files(f"{tmp_path}/*.tfrecord", 3)
    assert len(chosen) == 3 and chosen == sorted(chosen) and len(set(chosen)) == 3
    assert chosen == input_files(f"{tmp_path}/*.tfrecord", 3)  # the same files every run
    everything = sorted(str(path) for path in tmp_path.iterdir())
    assert input_files(str(tmp_path), 100) == everything  # a folder, as Habana's takes


# --- the algorithm on its own ------------------------------------------------------------


@pytest.mark.parametrize("length,depth", [(12, 2), (12, 3), (30, 3)])
def test_strategies_are_every_multiset_summing_to_the_length(length, depth):
    expected = {
        parts
        for count in range(1, depth + 1)
        for parts in itertools.combinations_with_replacement(range(1, length + 1), count)
        if sum(parts) == length
    }
    found = [tuple(int(p) for p in row if p) for row in packing_strategies(length, depth)]
    assert len(found) == len(set(found)) and set(found) == expected


def test_the_solver_finds_the_full_least_squares_optimum():
    options = PackingOptions(64, 10)
    solver = MixtureSolver(options)
    full = strategy_matrix(solver.strategies, 64) * residual_weights(64)[:, None]
    rng = np.random.default_rng(0)
    for _ in range(4):  # each solve starts from the previous one's strategies
        lengths = np.minimum(64, rng.geometric(1 / 20, size=3000))
        histogram = length_histogram(lengths, 64)
        target = histogram * residual_weights(64)
        mixture = solver.solve(histogram)
        best = nnls(full, target)[1]
        assert (mixture >= 0).all()
        assert np.linalg.norm(full @ mixture - target) == pytest.approx(best, rel=1e-6)


@pytest.mark.parametrize("depth,copies", [(3, 1), (2, 1), (3, 3)])
def test_every_item_is_placed_once_within_every_limit(depth, copies):
    # `copies` repeats the lengths: many sequences of each length.
    # 4 predictions at most, so 7 slots a row: the plan's rows of two or three sequences
    # of 12 tokens or more overflow them, and must give sequences back.
    options = PackingOptions(40, 4, max_sequences_per_pack=depth)
    rng = np.random.default_rng(depth)
    lengths = np.tile(rng.integers(2, 41, size=500), copies)
    predictions = np.minimum(4, np.maximum(1, lengths // 3))
    packing = pack_items(lengths, predictions, MixtureSolver(options), options, rng)
    items = sorted(item for row in packing.rows for item in row)
    assert items == list(range(len(lengths)))
    assert max(len(row) for row in packing.rows) <= depth
    assert max(lengths[row].sum() for row in packing.rows) <= 40
    assert max(predictions[row].sum() for row in packing.rows) <= 4 + PACK_SLOTS
    assert len(packing.rows) < 0.8 * len(lengths)


def test_a_packed_row_in_habanas_layout():
    options = PackingOptions(12, 3)
    chunk = SequenceChunk(2, options)
    batch = {
        "input_ids": np.array([[101, 7, 102, 8, 102, 0, 0, 0, 0, 0, 0, 0],
                               [101, 9, 9, 102, 5, 102, 0, 0, 0, 0, 0, 0]]),
        "input_mask": np.array([[1] * 5 + [0] * 7, [1] * 6 + [0] * 6]),
        "segment_ids": np.array([[0, 0, 0, 1, 1] + [0] * 7, [0, 0, 0, 0, 1, 1] + [0] * 6]),
        "masked_lm_positions": np.array([[1, 3, 0], [2, 0, 0]]),
        "masked_lm_ids": np.array([[55, 66, 0], [77, 0, 0]]),
        "masked_lm_weights": np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
        "next_sentence_labels": np.array([[1], [0]]),
    }  # fmt: skip
    assert chunk.add(batch, 0) == 2
    row = pack_row(chunk, [1, 0], options)
    expected = {
        "input_ids": [101, 9, 9, 102, 5, 102, 101, 7, 102, 8, 102, 0],
        "input_mask": [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 0],
        "segment_ids": [0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0],
        "positions": [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 0],
        "masked_lm_positions": [2, 7, 9, 0, 0, 0],
        "masked_lm_ids": [77, 55, 66, 0, 0, 0],
        "masked_lm_weights": [1.0, 2.0, 2.0, 0.0, 0.0, 0.0],
        "next_sentence_positions": [0, 6, 0],
        "next_sentence_labels": [0, 1, 0],
        "next_sentence_weights": [1.0, 1.0, 0.0],
    }
    assert {name: row[name].tolist() for name in expected} == expected
