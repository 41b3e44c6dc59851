r"""Pack BERT pre-training records: several short sequences in one row, with Habana's flags.

    python data_preprocessing/pack_pretraining_data_tfrec.py \
      --input-glob "<dir>/*.tfrecord" --output-dir <packed_dir> --max-files 100 \
      --duplication-factor 1 --max-sequence-length 512 \
      --max-predictions-per-sequence 76 --max-sequences-per-pack 3

Reads unpacked records (google-research/bert's layout, as create_pretraining_data.py
writes them) and writes packed ones into ``<packed_dir>/packed_part_<k>.tfrecord`` (one
file per input file read, rows dealt round-robin) and ``<packed_dir name>_metadata.json``
beside the folder, whose ``avg_seq_per_sample`` run_pretraining.py reads. The packing is
the NNLSHP of Krell et al. 2021 as Graphcore's and Habana's scripts do it; the layout and
why the memory stays bounded are in `bertfam.pretraining.packing`.

Where it differs from Habana's script:

- ``--input-glob`` is a glob, as its help says (Habana's lists the files of a folder; a
  folder still works). At most ``--max-files`` of the matches are read: all of them when
  there are that few, else that many chosen at random with a fixed seed (Habana draws
  them unseeded, and fails when fewer files match).
- The input is streamed and packed in chunks of ``--sequences-per-chunk`` sequences (our
  flag), so memory does not grow with the input; Habana's loads every record first.
- ``--duplication-factor`` is, as Habana's help says, the ``--dupe_factor`` the input
  was made with: it is recorded in the metadata, and every sequence is packed once.
- ``--max-sequences-per-pack 2`` packs at most two sequences a row but keeps the widths
  run_pretraining.py parses (P + 3 predictions, 3 next-sentence slots).
- Every input sequence is written (Habana's drops none either); records whose widths are
  not the flags' stop the run with one line, and nothing is written.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
from pathlib import Path
from typing import List

# TensorFlow 2.15 logs cuDNN/cuFFT/cuBLAS registration errors at import on every machine;
# this script uses it only to read and write records, whose failures raise in Python.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from bertfam.errors import FlagError, OneLineParser, exit_on_user_error  # noqa: E402
from bertfam.pretraining.packing import (  # noqa: E402
    PackingOptions,
    check_output_dir,
    metadata_path,
)

log = logging.getLogger("pack_pretraining_data")

FILE_CHOICE_SEED = 12345


def parse_flags(argv=None):
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input-glob", required=True, help="Unpacked TFRecord files (a glob)")
    parser.add_argument("--output-dir", required=True, help="Folder for the packed files")
    parser.add_argument(
        "--max-files", type=int, default=100, help="At most this many input files are read"
    )
    parser.add_argument(
        "--duplication-factor",
        type=int,
        default=1,
        help="The --dupe_factor the input was made with (recorded; each sequence is packed once)",
    )
    parser.add_argument("--max-sequence-length", type=int, default=512)
    parser.add_argument("--max-predictions-per-sequence", type=int, default=76)
    parser.add_argument("--max-sequences-per-pack", type=int, choices=[2, 3], default=3)
    parser.add_argument(
        "--sequences-per-chunk",
        type=int,
        default=65536,
        help="Sequences packed together: the memory bound (about 3 kB a sequence at 512/76)",
    )
    return parser.parse_args(argv)


def input_files(pattern: str, max_files: int) -> List[str]:
    """The files `pattern` names (a glob, or a folder's files), at most `max_files`."""
    if max_files < 1:
        raise FlagError(f"--max-files={max_files}: must be >= 1")
    if Path(pattern).is_dir():
        found = [str(p) for p in Path(pattern).iterdir() if p.is_file() and p.name[0] != "."]
    else:
        found = [path for path in glob.glob(pattern) if Path(path).is_file()]
    if not found:
        raise FlagError(f"--input-glob={pattern!r}: matches no file")
    found.sort()
    if len(found) > max_files:
        rng = np.random.default_rng(FILE_CHOICE_SEED)
        found = [found[i] for i in sorted(rng.choice(len(found), max_files, replace=False))]
    return found


@exit_on_user_error
def main(argv=None) -> None:
    # Log lines go to stdout (a progress bar only to a terminal's stderr), so a failing
    # run's stderr is its one error line.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout, force=True
    )
    args = parse_flags(argv)
    options = PackingOptions(
        max_sequence_length=args.max_sequence_length,
        max_predictions_per_sequence=args.max_predictions_per_sequence,
        max_sequences_per_pack=args.max_sequences_per_pack,
        duplication_factor=args.duplication_factor,
    )
    options.check()
    if args.sequences_per_chunk < 1:
        raise FlagError(f"--sequences-per-chunk={args.sequences_per_chunk}: must be >= 1")
    files = input_files(args.input_glob, args.max_files)
    check_output_dir(args.output_dir)
    log.info("packing %d files into %s", len(files), args.output_dir)

    from bertfam.tf.packed_records import pack_record_files  # TensorFlow loads

    stats = pack_record_files(
        files, args.output_dir, options, args.sequences_per_chunk, sys.stderr.isatty()
    )
    metadata = stats.metadata()
    log.info(
        "%d sequences in %d rows: %.3f sequences a row, packing efficiency %.4f "
        "(unpacked %.4f), speed-up %.3f of at most %.3f; metadata in %s",
        metadata["original_number_of_samples"],
        metadata["new_number_of_samples"],
        metadata["avg_seq_per_sample"],
        metadata["packing_efficiency"],
        1 / metadata["theoretical_speedup"],
        metadata["expected_speedup"],
        metadata["theoretical_speedup"],
        metadata_path(args.output_dir),
    )


if __name__ == "__main__":
    main()
