"""Build GLUE's MRPC task folder (train.tsv, dev.tsv, test.tsv) from the MSR Paraphrase Corpus.

This is the MRPC path of the widely used GLUE downloader gist (`download_glue_data.py`,
which Habana ships in download/ and download_dataset.py runs):

    python download_glue_data.py --data_dir glue_data --tasks MRPC
    python download_glue_data.py --data_dir glue_data --tasks MRPC --path_to_mrpc <dir>

As the gist does, it takes `msr_paraphrase_train.txt` and `msr_paraphrase_test.txt` (from
SentEval's copy, or from `--path_to_mrpc`) and GLUE's list of dev pairs `dev_ids.tsv`, and
writes `<data_dir>/MRPC/`:

- train.tsv and dev.tsv: the header `Quality  #1 ID  #2 ID  #1 String  #2 String`, then the
  training pairs, those whose (#1 ID, #2 ID) is in dev_ids.tsv going to dev.tsv;
- test.tsv: the header `index  #1 ID  #2 ID  #1 String  #2 String`, then row i of the test
  file as `i  #1 ID  #2 ID  #1 String  #2 String` (its label dropped), i counting from 0.

Where we differ from the gist:

- Only MRPC: other task names are refused (the gist also downloads CoLA, SST, ...), and
  `--tasks` defaults to MRPC instead of all.
- The MSR files are read with bertfam.glue.readers: a UTF-8 byte-order mark, also a
  double-encoded one, and CRLF line ends are dropped, a double-encoded file is repaired,
  and `<QUOTE>` (how some copies write a double quote) becomes `"`, as in GLUE's TSVs. The
  gist copies the header line as it reads it, byte-order mark included; we write it clean.
  Every row is checked (five columns, label 0 or 1, no empty sentence), and dev pairs
  that are missing from the training file are an error instead of a smaller dev set.
- Downloads resume after an interruption (bertfam.download); each output file is written
  atomically, and only after all of them have been computed.
- The URLs can be changed (`--mrpc_train_url`, `--mrpc_test_url`, `--mrpc_dev_ids_url`),
  for mirrors and for tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Set, Tuple, Union

from bertfam.atomic import write_text
from bertfam.download import download
from bertfam.errors import OneLineParser, UserError, exit_on_user_error
from bertfam.glue.readers import MSR_COLUMNS, GlueDataError, read_msr_paraphrase, read_tsv

PathLike = Union[str, Path]

# The gist's sources: SentEval's copy of the MSR corpus, and GLUE's own dev split.
MRPC_TRAIN_URL = "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt"
MRPC_TEST_URL = "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt"
MRPC_DEV_IDS_URL = (
    "https://firebasestorage.googleapis.com/v0/b/mtl-sentence-representations.appspot.com"
    "/o/data%2Fmrpc_dev_ids.tsv?alt=media&token=ec5c0836-31d5-48f4-b431-7480817f1adc"
)

MSR_TRAIN_FILE = "msr_paraphrase_train.txt"
MSR_TEST_FILE = "msr_paraphrase_test.txt"
DEV_IDS_FILE = "dev_ids.tsv"
TRAIN_HEADER = MSR_COLUMNS
TEST_HEADER = ("index",) + MSR_COLUMNS[1:]
SUPPORTED_TASKS = ("MRPC",)

Row = Tuple[str, str, str, str, str]  # Quality, #1 ID, #2 ID, #1 String, #2 String
Pair = Tuple[str, str]


class MrpcSourceError(UserError):
    """The MSR files or the dev ids are missing or do not belong together."""


def read_msr_rows(path: Path) -> List[Row]:
    """The data rows of an MSR paraphrase file, with the sentences as GLUE's TSVs have them.

    read_msr_paraphrase checks every row and restores `<QUOTE>`, but keeps no pair ids;
    read_tsv gives the ids. Both skip the header and blank lines, so their rows pair up.
    """
    examples = read_msr_paraphrase(path)
    rows = [fields for fields in read_tsv(path)[1:] if fields]
    assert len(examples) == len(rows), path
    return [
        (example.label, fields[1], fields[2], example.text_a, example.text_b)
        for example, fields in zip(examples, rows)
    ]


def read_dev_ids(path: Path) -> Set[Pair]:
    """The (#1 ID, #2 ID) pairs of GLUE's dev_ids.tsv: two tab-separated ids per line."""
    pairs = set()
    for number, fields in enumerate(read_tsv(path), start=1):
        if not fields:
            continue
        # The gist strips each line before splitting it; strip each id the same way.
        ids = [field.strip() for field in fields]
        if len(ids) != 2 or not all(ids):
            raise GlueDataError(
                f"{path}, line {number}: expected two tab-separated ids (#1 ID, #2 ID), "
                f"found {fields!r}"
            )
        pairs.add((ids[0], ids[1]))
    if not pairs:
        raise GlueDataError(f"{path}: no dev ids in it")
    return pairs


def split_train_dev(rows: Sequence[Row], dev_ids: Set[Pair]) -> Tuple[List[Row], List[Row]]:
    """(train, dev): the rows whose id pair is in `dev_ids` go to dev, in file order."""
    train = [row for row in rows if (row[1], row[2]) not in dev_ids]
    dev = [row for row in rows if (row[1], row[2]) in dev_ids]
    found = {(row[1], row[2]) for row in dev}
    unmatched = sorted(dev_ids - found)
    if unmatched:
        # The gist would silently write a smaller dev set; it means mismatched files.
        raise MrpcSourceError(
            f"{len(unmatched)} of the {len(dev_ids)} pairs in {DEV_IDS_FILE} are not in "
            f"{MSR_TRAIN_FILE} (first: {unmatched[0][0]} {unmatched[0][1]}): the dev ids "
            "and the corpus files do not belong together"
        )
    return train, dev


def numbered_test_rows(rows: Sequence[Row]) -> List[Tuple[str, ...]]:
    """GLUE's test.tsv rows: the label replaced by the row's index, counting from 0."""
    return [(str(index),) + row[1:] for index, row in enumerate(rows)]


def format_tsv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    return "".join("\t".join(fields) + "\n" for fields in [header, *rows])


def fetch(url: str, dest: Path, progress: bool) -> Path:
    """Download `url` to `dest`, replacing a complete copy left there by an earlier run.

    bertfam.download keeps a file that is already there; these are small, and one left
    by an earlier run may come from another URL, so fetch them again as the gist does.
    (An interrupted download, `dest.part`, is still resumed.)
    """
    dest.unlink(missing_ok=True)
    return download(url, dest, progress=progress)


def msr_sources(
    mrpc_dir: Path,
    path_to_mrpc: Optional[PathLike],
    train_url: str,
    test_url: str,
    progress: bool,
) -> Tuple[Path, Path]:
    """The train and test MSR files: from `path_to_mrpc` if given, else downloaded to mrpc_dir."""
    if path_to_mrpc:
        folder = Path(path_to_mrpc)
        files = (folder / MSR_TRAIN_FILE, folder / MSR_TEST_FILE)
        missing = [path.name for path in files if not path.is_file()]
        if missing:
            raise MrpcSourceError(
                f"--path_to_mrpc {folder}: no {' or '.join(missing)} in it "
                "(it should hold the two MSR Paraphrase Corpus files)"
            )
        return files
    print(f"Local MRPC data not specified, downloading data from {train_url}")
    return (
        fetch(train_url, mrpc_dir / MSR_TRAIN_FILE, progress),
        fetch(test_url, mrpc_dir / MSR_TEST_FILE, progress),
    )


def download_mrpc(
    data_dir: PathLike,
    path_to_mrpc: Optional[PathLike] = None,
    train_url: str = MRPC_TRAIN_URL,
    test_url: str = MRPC_TEST_URL,
    dev_ids_url: str = MRPC_DEV_IDS_URL,
    progress: bool = True,
) -> Path:
    """Write `<data_dir>/MRPC/{train,dev,test}.tsv` (the gist's format_mrpc); return that folder.

    The downloaded MSR files and dev_ids.tsv stay in the folder too, as the gist leaves
    them; like the gist, every run fetches them again.
    """
    print("Processing MRPC...")
    mrpc_dir = Path(data_dir) / "MRPC"
    mrpc_dir.mkdir(parents=True, exist_ok=True)
    train_file, test_file = msr_sources(mrpc_dir, path_to_mrpc, train_url, test_url, progress)
    dev_ids_file = fetch(dev_ids_url, mrpc_dir / DEV_IDS_FILE, progress)

    train, dev = split_train_dev(read_msr_rows(train_file), read_dev_ids(dev_ids_file))
    test = numbered_test_rows(read_msr_rows(test_file))
    # Everything is read and checked before the first file is written.
    outputs = {
        "train.tsv": format_tsv(TRAIN_HEADER, train),
        "dev.tsv": format_tsv(TRAIN_HEADER, dev),
        "test.tsv": format_tsv(TEST_HEADER, test),
    }
    for name, text in outputs.items():
        write_text(mrpc_dir / name, text)
    print(f"\tCompleted! {len(train)} train, {len(dev)} dev, {len(test)} test pairs")
    return mrpc_dir


def parse_tasks(value: str) -> List[str]:
    """The gist's comma-separated `--tasks`, of which only MRPC (any case) is supported here."""
    tasks = [name.strip() for name in value.split(",") if name.strip()]
    unsupported = [name for name in tasks if name.upper() not in SUPPORTED_TASKS]
    if unsupported or not tasks:
        shown = ", ".join(unsupported) or repr(value)
        raise UserError(
            f"--tasks {shown}: only MRPC is supported here (it is the task the BERT recipes "
            "fine-tune on); get the other GLUE tasks from gluebenchmark.com"
        )
    return [name.upper() for name in tasks]


def add_mrpc_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the MRPC inputs come from; download_dataset.py offers the same flags."""
    parser.add_argument(
        "--path_to_mrpc",
        default="",
        help=f"folder holding {MSR_TRAIN_FILE} and {MSR_TEST_FILE}, instead of downloading them",
    )
    parser.add_argument(
        "--mrpc_train_url", default=MRPC_TRAIN_URL, help="where to get the train file"
    )
    parser.add_argument("--mrpc_test_url", default=MRPC_TEST_URL, help="where to get the test file")
    parser.add_argument(
        "--mrpc_dev_ids_url", default=MRPC_DEV_IDS_URL, help=f"where to get GLUE's {DEV_IDS_FILE}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description="Build GLUE's MRPC train/dev/test TSVs.")
    parser.add_argument("--data_dir", default="glue_data", help="directory to save data to")
    parser.add_argument(
        "--tasks", default="MRPC", help="tasks to download, comma-separated (only MRPC here)"
    )
    add_mrpc_source_arguments(parser)
    return parser


@exit_on_user_error
def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    parse_tasks(args.tasks)
    mrpc_dir = download_mrpc(
        args.data_dir,
        path_to_mrpc=args.path_to_mrpc,
        train_url=args.mrpc_train_url,
        test_url=args.mrpc_test_url,
        dev_ids_url=args.mrpc_dev_ids_url,
        progress=sys.stderr.isatty(),
    )
    print(f"MRPC data in {mrpc_dir}")


if __name__ == "__main__":
    main()
