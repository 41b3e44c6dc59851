"""``create_datasets_from_start.sh [wiki_only|wiki_books] [working dir] [bertPrep flags]``:
every `bertfam.pretraining.prep` stage in order, then the records of both phases.

    python -m bertfam.pretraining.from_start --records tfrecord wiki_only /data/bert \\
        --n_processes 16

Download the dump (and Google's weights for their vocab, unless ``$VOCAB_FILE`` names
one), format, shard, then write phase 1 (128 tokens, 20 predictions) and phase 2 (512,
80) records: TFRecords for the TensorFlow recipes, hdf5 shards for PyTorch. Flags after
the working dir go to every stage; each stage resumes, so rerunning after a kill
continues where it stopped.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from bertfam.errors import UserError, exit_on_user_error
from bertfam.pretraining import prep

PHASES = ((128, 20), (512, 80))


def stages(records: str, extra: Sequence[str]) -> List[List[str]]:
    """The bertPrep command lines, in order."""
    vocab = os.environ.get("VOCAB_FILE")
    vocab_flags = ["--vocab_file", vocab] if vocab else []
    create = "create_tfrecord_files" if records == "tfrecord" else "create_hdf5_files"
    lines = [["--action", "download", "--dataset", prep.WIKI]]
    if not vocab:
        lines.append(["--action", "download", "--dataset", prep.WEIGHTS])
    lines.append(["--action", "text_formatting", "--dataset", prep.WIKI])
    lines.append(["--action", "sharding", "--dataset", prep.WIKI])
    for length, predictions in PHASES:
        lines.append(
            ["--action", create, "--dataset", prep.WIKI, "--max_seq_length", str(length),
             "--max_predictions_per_seq", str(predictions), *vocab_flags]
        )  # fmt: skip
    return [line + list(extra) for line in lines]


@exit_on_user_error
def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] != "--records" or argv[1] not in ("tfrecord", "hdf5"):
        raise UserError("usage: from_start --records {tfrecord,hdf5} [corpus] [dir] [flags]")
    records, rest = argv[1], argv[2:]
    default_dir = None
    if rest[:1] == ["--default_dir"]:  # the folder's script's default working dir
        default_dir, rest = rest[1], rest[2:]
    corpus = rest.pop(0) if rest and not rest[0].startswith("--") else "wiki_only"
    work = rest.pop(0) if rest and not rest[0].startswith("--") else default_dir
    if corpus == "wiki_books":
        raise UserError(prep.BOOKS_GONE)
    if corpus != "wiki_only":
        raise UserError(f"corpus {corpus!r}: give wiki_only")
    for line in stages(records, rest):
        prep.main(line, work=Path(work or os.getcwd()))


if __name__ == "__main__":
    main()
