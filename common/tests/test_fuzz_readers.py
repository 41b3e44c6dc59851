"""Fuzzing the readers of user files: thousands of mutated SQuAD JSON files, GLUE TSV
files, pre-training TFRecords and hdf5 shards. Each must either be read or be refused with the
project's one-line error (`UserError`); any other exception is a crash a user would meet
as a traceback. Mutations are seeded, so a failure names a case that reproduces."""

import functools
import json
import random
import struct
from collections import Counter

import numpy as np
import pytest

from bertfam.errors import UserError
from bertfam.glue.readers import GLUE_PROCESSORS, get_processor
from bertfam.squad.data import read_squad_examples
from bertfam.squad.evaluate import evaluate_v1, evaluate_v2, read_dataset, read_predictions

CASES = 1200  # per format; the three together run in well under a minute

SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "Tiny",
            "paragraphs": [
                {
                    "context": "Carolina won in 1895. The Panthers lost in 1896.",
                    "qas": [
                        {"id": "q1", "question": "Who won?", "is_impossible": False,
                         "answers": [{"text": "Carolina", "answer_start": 0}]},
                        {"id": "q2", "question": "When did they lose?", "is_impossible": True,
                         "answers": []},
                    ],
                }
            ],
        }
    ],
}  # fmt: skip
ODD_VALUES = [None, True, 0, -1, 10**12, 1.5, "", "x", "\ud800", [], {}, [1], {"a": 1}]


def mutate_json(rng: random.Random, value):
    """One structural change somewhere in a JSON value: a key dropped, a value swapped for
    one of another type, a list emptied or doubled."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        choice = rng.random()
        if choice < 0.25:
            return {k: v for k, v in value.items() if k != key}
        if choice < 0.5:
            return {**value, key: rng.choice(ODD_VALUES)}
        return {**value, key: mutate_json(rng, value[key])}
    if isinstance(value, list) and value and rng.random() < 0.7:
        index = rng.randrange(len(value))
        choice = rng.random()
        if choice < 0.2:
            return []
        if choice < 0.4:
            return value + value
        return value[:index] + [mutate_json(rng, value[index])] + value[index + 1 :]
    return rng.choice(ODD_VALUES)


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Cut short, bytes flipped or inserted: what a broken download or disk leaves."""
    choice = rng.random()
    if choice < 0.3:
        return data[: rng.randrange(len(data) + 1)]
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        index = rng.randrange(len(data) or 1)
        if choice < 0.7 and data:
            data[index] = rng.randrange(256)
        else:
            data[index:index] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
    return bytes(data)


def expect_read_or_refused(read, case: str, failures: list, outcomes: Counter) -> None:
    try:
        read()
        outcomes["read"] += 1
    except UserError:
        outcomes["refused"] += 1
    except Exception as error:  # noqa: BLE001 - the point: anything else is a crash
        failures.append(f"{case}: {type(error).__name__}: {error}")


def assert_no_crash(failures: list, outcomes: Counter) -> None:
    assert not failures, "\n".join(failures[:10])
    # The mutations reach both paths: some files still read, others refused.
    assert outcomes["read"] > 0 and outcomes["refused"] > 0, outcomes


def test_mutated_squad_files_are_read_or_refused_in_one_line(tmp_path):
    rng, failures, outcomes = random.Random(1), [], Counter()
    path, predictions = tmp_path / "squad.json", tmp_path / "predictions.json"
    predictions.write_text(json.dumps({"q1": "Carolina", "q2": ""}))
    for case in range(CASES):
        text = json.dumps(mutate_json(rng, SQUAD) if case % 3 else SQUAD)
        data = text.encode() if case % 3 != 2 else mutate_bytes(rng, text.encode())
        path.write_bytes(data)
        training, v2 = bool(case & 4), bool(case & 8)

        def read(training=training, v2=v2):
            read_squad_examples(path, is_training=training, version_2_with_negative=v2)

        def score():
            version, articles = read_dataset(str(path))
            answers = read_predictions(str(predictions))
            (evaluate_v2 if version == "v2.0" else evaluate_v1)(articles, answers)

        expect_read_or_refused(read, f"squad case {case}", failures, outcomes)
        expect_read_or_refused(score, f"squad evaluation case {case}", failures, outcomes)
    assert_no_crash(failures, outcomes)


GLUE_TASKS = {
    "mrpc": "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    "1\t1\t2\tThe cat sat.\tA cat was sitting.\n0\t3\t4\tIt rained.\tThe sun shone.\n",
    "cola": "gj04\t1\t\tThe cat sat.\nbc01\t0\t*\tSat cat the.\n",
    "sst-2": "sentence\tlabel\nit is good\t1\nit is bad\t0\n",
    "sts-b": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    "0\tmain\tf\t2012\t1\tnone\tnone\tA cat.\tThe cat.\t4.2\n",
    "rte": "index\tsentence1\tsentence2\tlabel\n0\tIt rained.\tIt was wet.\tentailment\n",
}


def mutate_tsv(rng: random.Random, text: str) -> bytes:
    lines = text.splitlines()
    choice = rng.random()
    if choice < 0.3:  # a row with a column dropped, added, or a field replaced
        index = rng.randrange(len(lines))
        fields = lines[index].split("\t")
        field = rng.randrange(len(fields))
        edit = rng.choice(("drop", "add", "replace"))
        if edit == "drop":
            del fields[field]
        elif edit == "add":
            fields.insert(field, "extra")
        else:
            fields[field] = rng.choice(["", "2", "-1", "nan", "1e400", "x", '"', "\x00"])
        lines[index] = "\t".join(fields)
        return "\n".join(lines).encode()
    if choice < 0.4:
        return rng.choice([b"", b"\n", b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16")])
    return mutate_bytes(rng, text.encode())


def test_mutated_glue_files_are_read_or_refused_in_one_line(tmp_path):
    rng, failures, outcomes = random.Random(2), [], Counter()
    for case in range(CASES):
        task = rng.choice(sorted(GLUE_TASKS))
        processor = get_processor(task, GLUE_PROCESSORS)
        (tmp_path / "train.tsv").write_bytes(mutate_tsv(rng, GLUE_TASKS[task]))
        read = functools.partial(processor.get_train_examples, tmp_path)
        expect_read_or_refused(read, f"glue {task} case {case}", failures, outcomes)
    assert_no_crash(failures, outcomes)


def tfrecord(payload: bytes) -> bytes:
    """One TFRecord frame: length, its masked CRC-32C, the payload, its masked CRC-32C."""

    def masked_crc(data: bytes) -> bytes:
        crc = _crc32c(data)
        return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

    length = struct.pack("<Q", len(payload))
    return length + masked_crc(length) + payload + masked_crc(payload)


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def test_mutated_pretraining_records_are_read_or_refused_in_one_line(tmp_path):
    tf = pytest.importorskip("tensorflow", reason="pre-training records are read by TensorFlow")
    from bertfam.tf.pretraining import check_record_widths

    def feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "input_ids": feature([101, 7, 102, 0]),
                "input_mask": feature([1, 1, 1, 0]),
                "segment_ids": feature([0, 0, 0, 0]),
                "masked_lm_positions": feature([1, 0]),
                "masked_lm_ids": feature([7, 0]),
                "next_sentence_labels": feature([0]),
            }
        )
    ).SerializeToString()
    widths = [
        ("input_ids", "max_seq_length", 4),
        ("masked_lm_positions", "max_predictions_per_seq", 2),
    ]
    rng, failures, outcomes = random.Random(3), [], Counter()
    path = tmp_path / "records.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(example)
    assert path.read_bytes() == tfrecord(example)  # our framing is TensorFlow's
    for case in range(CASES // 3):
        if case % 2:  # intact framing around a damaged Example
            path.write_bytes(tfrecord(mutate_bytes(rng, example)))
        else:  # damaged framing (a file cut short or flipped on disk)
            path.write_bytes(mutate_bytes(rng, tfrecord(example)))
        expect_read_or_refused(
            lambda: check_record_widths(str(path), widths),
            f"records case {case}",
            failures,
            outcomes,
        )
    assert_no_crash(failures, outcomes)


def shard_arrays():
    """A tiny valid NVIDIA shard: 4 sequences of 8 tokens, 2 predictions each."""
    rng = np.random.default_rng(0)
    return {
        "input_ids": rng.integers(0, 100, (4, 8)).astype(np.int32),
        "input_mask": np.ones((4, 8), np.int8),
        "segment_ids": np.zeros((4, 8), np.int8),
        "masked_lm_positions": np.array([[1, 3], [2, 0], [5, 6], [7, 0]], np.int32),
        "masked_lm_ids": rng.integers(0, 100, (4, 2)).astype(np.int32),
        "next_sentence_labels": np.array([0, 1, 0, 1], np.int8),
    }


def mutate_arrays(rng: random.Random, arrays: dict) -> dict:
    """One dataset changed as a foreign or broken writer would leave it: missing, another
    type, another rank, rows lost, positions past the sequence."""
    arrays = dict(arrays)
    name = rng.choice(sorted(arrays))
    value = arrays[name]
    choice = rng.randrange(6)
    if choice == 0:
        del arrays[name]
    elif choice == 1:
        arrays[name] = value.astype(rng.choice([np.float32, np.float64, "S3", np.bool_]))
    elif choice == 2:
        arrays[name] = value.reshape(-1) if rng.random() < 0.5 else value.reshape(*value.shape, 1)
    elif choice == 3:
        arrays[name] = value[: rng.randrange(len(value))]
    elif choice == 4:
        arrays[name] = np.asarray(rng.choice([7, 1.5, b"x"]))  # a scalar dataset
    else:
        arrays[name] = value.astype(np.int64) + rng.choice([-200, 8, 2**31 - 200])
    return arrays


def write_raw_shard(path, arrays: dict) -> None:
    """Whatever `arrays` holds, as hdf5 datasets (no checks: the writer under test is not ours)."""
    import h5py

    with h5py.File(path, "w") as shard:
        for name, value in arrays.items():
            shard.create_dataset(name, data=value)


def test_mutated_hdf5_shards_are_read_or_refused_in_one_line(tmp_path):
    """PyTorch pre-training's shards: through the width check run_pretraining.py makes
    before training and the reader of every shard after it."""
    pytest.importorskip("torch", reason="the hdf5 shard reader is PyTorch pre-training's")
    from bertfam.pretraining.hdf5 import write_hdf5_shard
    from bertfam.torch.pretraining_data import check_shard_widths, read_training_shard

    rng, failures, outcomes = random.Random(4), [], Counter()
    path, intact = tmp_path / "shard.hdf5", tmp_path / "intact.hdf5"
    write_hdf5_shard(shard_arrays(), intact)

    def read():
        check_shard_widths(path, 8, 2)
        read_training_shard(path, 8, 2)

    for case in range(CASES // 4):
        if case % 2:  # datasets of the wrong kind in a sound file
            write_raw_shard(path, mutate_arrays(rng, shard_arrays()))
        else:  # a sound shard damaged on disk (cut short, bytes flipped)
            path.write_bytes(mutate_bytes(rng, intact.read_bytes()))
        expect_read_or_refused(read, f"hdf5 case {case}", failures, outcomes)
    assert_no_crash(failures, outcomes)
