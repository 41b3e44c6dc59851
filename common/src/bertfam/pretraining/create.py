"""The whole of a ``create_pretraining_data.py`` but the writing, shared by the TensorFlow
script (TFRecords) and the PyTorch one (hdf5 shards): both take Google's flag names."""

from __future__ import annotations

import glob
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from bertfam.errors import FlagError
from bertfam.pretraining.instances import InstanceOptions, read_documents
from bertfam.pretraining.kernel import TokenizedCorpus, instance_arrays


def input_files(patterns: str, flag: str = "input_file") -> List[str]:
    """Each comma-separated glob's matches, sorted, in the order the globs are given."""
    files = []
    for pattern in patterns.split(","):
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise FlagError(f"--{flag}: {pattern!r} matches no file")
        files.extend(matches)
    return files


def output_files(value: str) -> List[str]:
    """--output_file's comma-separated paths, each in a folder that exists."""
    paths = value.split(",")
    for path in paths:
        if not Path(path).resolve().parent.is_dir():
            raise FlagError(f"--output_file: the folder of {path} does not exist")
    return paths


def options_from_flags(values) -> InstanceOptions:
    """The instance settings from parsed flags named as Google's (absl or argparse;
    bertPrep.py has no --do_whole_word_mask)."""
    options = InstanceOptions(
        max_seq_length=values.max_seq_length,
        max_predictions_per_seq=values.max_predictions_per_seq,
        masked_lm_prob=values.masked_lm_prob,
        short_seq_prob=values.short_seq_prob,
        dupe_factor=values.dupe_factor,
        do_whole_word_mask=getattr(values, "do_whole_word_mask", False),
    )
    options.check()
    return options


def pretraining_arrays(values) -> Dict[str, np.ndarray]:
    """Read, tokenize, make the instances and lay them out, as parsed flags `values`
    (``--input_file --vocab_file --do_lower_case --random_seed`` and the instance flags)
    say; every flag is checked before the corpus is read."""
    options = options_from_flags(values)
    return corpus_arrays(
        input_files(values.input_file),
        values.vocab_file,
        values.do_lower_case,
        values.random_seed,
        options,
    )


def corpus_arrays(
    paths: Sequence[str],
    vocab_file: str,
    do_lower_case: bool,
    random_seed: int,
    options: InstanceOptions,
) -> Dict[str, np.ndarray]:
    """The instance arrays of the text files `paths`, as Google's script makes them."""
    from bertfam.tokenization.wordpiece import WordPieceTokenizer

    tokenizer = WordPieceTokenizer(vocab_file, do_lower_case=do_lower_case)
    corpus = TokenizedCorpus.from_documents(read_documents(paths, tokenizer, ids=True))
    return instance_arrays(corpus, tokenizer.vocab, options, random.Random(random_seed))


@dataclass(frozen=True)
class ShardJob:
    """One text shard to one record file, each shard with the same seed (as upstream's
    bertPrep.py runs create_pretraining_data.py once per shard)."""

    input_file: str
    output_file: str
    vocab_file: str
    do_lower_case: bool
    random_seed: int
    options: InstanceOptions


def write_tfrecord_shard(job: ShardJob) -> int:
    from bertfam.tf.pretraining_records import write_example_files  # TensorFlow loads

    arrays = corpus_arrays(
        [job.input_file], job.vocab_file, job.do_lower_case, job.random_seed, job.options
    )
    return write_example_files(arrays, [job.output_file], show_progress=False)


def write_hdf5_file(job: ShardJob) -> int:
    from bertfam.pretraining.hdf5 import write_hdf5_shard

    arrays = corpus_arrays(
        [job.input_file], job.vocab_file, job.do_lower_case, job.random_seed, job.options
    )
    return write_hdf5_shard(arrays, job.output_file)
