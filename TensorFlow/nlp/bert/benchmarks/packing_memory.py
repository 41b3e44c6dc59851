r"""Peak memory of pack_pretraining_data_tfrec.py on 1x and 10x an input, and its efficiency.

    python benchmarks/packing_memory.py \
        --vocab_file $BERT_DIR/vocab.txt \
        [--documents 300] [--max_seq_length 256] [--max_predictions_per_seq 40] \
        [--copies 4] [--sequences_per_chunk 2000]

Writes a corpus of random sentences over the vocabulary (`bertfam.tinydata`'s, as the
tests use), makes unpacked records of it with this folder's create_pretraining_data.py,
and links each of its two shards ``--copies`` times (1x) and ten times as often (10x):
the same records passed repeatedly, as more input files. Each packing runs in a child of
a fresh interpreter, whose ``ru_maxrss`` of children is the packer's peak RSS. Printed
per run: sequences, input size, what holding every sequence would cost (the packer's
own compact bytes per sequence), peak RSS, wall time, packed rows and packing
efficiency. A last run packs the 1x input as a single chunk, to show what chunking costs
in efficiency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1]
CREATE = FOLDER / "data_preprocessing" / "create_pretraining_data.py"
PACK = FOLDER / "data_preprocessing" / "pack_pretraining_data_tfrec.py"
PEAK_OF_CHILD = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)"
)


def make_records(folder: Path, args) -> list:
    from bertfam.tinydata import pretraining_corpus

    corpus = pretraining_corpus(folder / "corpus.txt", args.vocab_file, 1, args.documents)
    shards = [folder / f"unpacked_{index}.tfrecord" for index in range(2)]
    command = [sys.executable, str(CREATE), f"--input_file={corpus}",
               f"--output_file={','.join(map(str, shards))}", f"--vocab_file={args.vocab_file}",
               f"--max_seq_length={args.max_seq_length}",
               f"--max_predictions_per_seq={args.max_predictions_per_seq}",
               "--dupe_factor=3"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return shards


def linked(shards: list, folder: Path, copies: int) -> Path:
    folder.mkdir()
    for copy in range(copies):
        for shard in shards:
            (folder / f"{copy:04d}_{shard.name}").symlink_to(shard)
    return folder


def pack(inputs: Path, output: Path, chunk: int, args) -> dict:
    command = [sys.executable, "-c", PEAK_OF_CHILD, sys.executable, str(PACK),
               f"--input-glob={inputs}", f"--output-dir={output}", "--max-files=100000",
               f"--max-sequence-length={args.max_seq_length}",
               f"--max-predictions-per-sequence={args.max_predictions_per_seq}",
               f"--sequences-per-chunk={chunk}"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_kb, status = done.stdout.split()
    if status != "0":
        sys.exit(done.stderr)
    metadata = json.loads((output.parent / f"{output.name}_metadata.json").read_text())
    return {"peak_mb": int(peak_kb) / 1024, "seconds": seconds, **metadata}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab_file", required=True)
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--max_seq_length", type=int, default=256)
    parser.add_argument("--max_predictions_per_seq", type=int, default=40)
    parser.add_argument("--copies", type=int, default=4, help="links to each shard in 1x")
    parser.add_argument("--sequences_per_chunk", type=int, default=2000)
    args = parser.parse_args()
    os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the scripts' own defaults

    from bertfam.pretraining.packing import PackingOptions, SequenceChunk

    probe = SequenceChunk(1, PackingOptions(args.max_seq_length, args.max_predictions_per_seq))
    per_sequence = probe.bytes_per_sequence()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        shards = make_records(folder, args)
        runs = []
        for name, copies, chunk in [
            ("1x", args.copies, args.sequences_per_chunk),
            ("10x", 10 * args.copies, args.sequences_per_chunk),
            ("1x, one chunk", args.copies, 10**9),
        ]:
            inputs = linked(shards, folder / f"in {name}", copies)
            size = sum(path.stat().st_size for path in inputs.iterdir())
            result = pack(inputs, folder / f"out {name}" / "packed", chunk, args)
            runs.append((name, len(list(inputs.iterdir())), size, result))
    print(
        f"L={args.max_seq_length}, P={args.max_predictions_per_seq}, "
        f"--sequences-per-chunk={args.sequences_per_chunk}; {per_sequence} bytes a sequence held"
    )
    print(f"{'run':14} {'files':>5} {'sequences':>9} {'input MB':>8} {'full load MB':>12} "
          f"{'peak RSS MB':>11} {'time s':>6} {'rows':>7} {'efficiency':>10}")  # fmt: skip
    for name, files, size, run in runs:
        sequences = run["original_number_of_samples"]
        print(f"{name:14} {files:5d} {sequences:9d} {size / 2**20:8.1f} "
              f"{sequences * per_sequence / 2**20:12.1f} {run['peak_mb']:11.1f} "
              f"{run['seconds']:6.1f} {run['new_number_of_samples']:7d} "
              f"{run['packing_efficiency']:10.4f}")  # fmt: skip
    unpacked = 1 / runs[0][3]["theoretical_speedup"]
    print(f"unpacked efficiency {unpacked:.4f}; 10x - 1x peak RSS: "
          f"{runs[1][3]['peak_mb'] - runs[0][3]['peak_mb']:+.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
