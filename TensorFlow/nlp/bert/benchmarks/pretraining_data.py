r"""Wall time of create_pretraining_data: ours against Google's, same corpus, flags, seed.

    pip install bert-tensorflow==1.0.4      # Google's own code, only for this comparison
    python benchmarks/pretraining_data.py --vocab_file $BERT_DIR/vocab.txt \
        [--documents 2000] [--dupe_factor 5] [--max_seq_length 128] [--shards 8]

Writes a corpus of random sentences over the vocabulary (`bertfam.tinydata`'s, as the
tests use), then runs, one after the other in this process, Google's
`create_training_instances` + `write_instance_to_example_files` (its pure-Python
tokenizer) and ours (`bertfam.pretraining` on the Rust tokenizer, then
`bertfam.tf.pretraining_records`), each on one core's worth of work, and checks that the
two TFRecord files are identical byte for byte before it prints the times.

With ``--shards N`` it then writes N such corpora as shards the way bertPrep.py's
create stage does (`bertfam.pretraining.prep.run_jobs`), on one worker and on every core,
and prints the end-to-end sequences per second of each.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAYON_NUM_THREADS", "1")  # the Rust tokenizer on one core too


def google(corpus: Path, output: Path, args) -> float:
    from absl import flags
    from bert import create_pretraining_data, tokenization

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    start = time.perf_counter()
    tokenizer = tokenization.FullTokenizer(args.vocab_file, do_lower_case=True)
    instances = create_pretraining_data.create_training_instances(
        [str(corpus)], tokenizer, args.max_seq_length, args.dupe_factor, 0.1, 0.15,
        args.max_predictions_per_seq, random.Random(12345),
    )  # fmt: skip
    create_pretraining_data.write_instance_to_example_files(
        instances, tokenizer, args.max_seq_length, args.max_predictions_per_seq, [str(output)]
    )
    return time.perf_counter() - start


def ours(corpus: Path, output: Path, args) -> float:
    """What data_preprocessing/create_pretraining_data.py runs."""
    from bertfam.pretraining.create import corpus_arrays
    from bertfam.pretraining.instances import InstanceOptions
    from bertfam.tf.pretraining_records import write_example_files

    options = InstanceOptions(
        max_seq_length=args.max_seq_length,
        max_predictions_per_seq=args.max_predictions_per_seq,
        dupe_factor=args.dupe_factor,
    )
    start = time.perf_counter()
    arrays = corpus_arrays([str(corpus)], args.vocab_file, True, 12345, options)
    write_example_files(arrays, [str(output)], show_progress=False)
    return time.perf_counter() - start


def shards_per_second(folder: Path, args) -> None:
    from bertfam.pretraining.create import ShardJob, write_tfrecord_shard
    from bertfam.pretraining.instances import InstanceOptions
    from bertfam.pretraining.prep import run_jobs
    from bertfam.tinydata import pretraining_corpus

    options = InstanceOptions(
        max_seq_length=args.max_seq_length,
        max_predictions_per_seq=args.max_predictions_per_seq,
        dupe_factor=args.dupe_factor,
    )
    texts = [
        pretraining_corpus(folder / f"shard_{i}.txt", args.vocab_file, i + 1, args.documents)
        for i in range(args.shards)
    ]
    for workers in sorted({1, os.cpu_count() or 1}):
        jobs = [
            ShardJob(str(text), str(folder / f"{workers}_{i}.tfrecord"), args.vocab_file,
                     True, 12345, options)
            for i, text in enumerate(texts)
        ]  # fmt: skip
        start = time.perf_counter()
        sequences = run_jobs(write_tfrecord_shard, jobs, workers, show_progress=False)
        seconds = time.perf_counter() - start
        print(
            f"{args.shards} shards on {workers} worker(s): {sequences} sequences in "
            f"{seconds:.1f} s, {sequences / seconds:,.0f} sequences/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab_file", required=True)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--dupe_factor", type=int, default=5)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--max_predictions_per_seq", type=int, default=20)
    parser.add_argument("--shards", type=int, default=0)
    args = parser.parse_args()
    import tensorflow  # noqa: F401  (loaded before either timer starts)

    from bertfam.tinydata import pretraining_corpus

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        corpus = pretraining_corpus(folder / "corpus.txt", args.vocab_file, 0, args.documents)
        lines = sum(1 for line in corpus.read_text().splitlines() if line)
        theirs_s = google(folder / "corpus.txt", folder / "google.tfrecord", args)
        ours_s = ours(folder / "corpus.txt", folder / "ours.tfrecord", args)
        same = (folder / "google.tfrecord").read_bytes() == (folder / "ours.tfrecord").read_bytes()
        size = (folder / "ours.tfrecord").stat().st_size
    print(f"corpus: {args.documents} documents, {lines} sentences; dupe_factor {args.dupe_factor}")
    print(f"records identical byte for byte: {same} ({size / 1e6:.1f} MB)")
    print(f"google-research/bert (bert-tensorflow 1.0.4): {theirs_s:8.1f} s")
    print(f"ours (bertfam.pretraining):                 {ours_s:8.1f} s   {theirs_s / ours_s:.1f}x")
    if args.shards:
        with tempfile.TemporaryDirectory() as folder:
            shards_per_second(Path(folder), args)


if __name__ == "__main__":
    main()
