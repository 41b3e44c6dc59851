"""``bertPrep.py``: the pre-training corpus, stage by stage, as NVIDIA's script lays it out.

    export BERT_PREP_WORKING_DIR=/data/bert
    python bertPrep.py --action download --dataset wikicorpus_en
    python bertPrep.py --action download --dataset google_pretrained_weights  # the vocab
    python bertPrep.py --action text_formatting --dataset wikicorpus_en --n_processes 16
    python bertPrep.py --action sharding --dataset wikicorpus_en
    python bertPrep.py --action create_tfrecord_files --dataset wikicorpus_en \\
        --max_seq_length 128 --max_predictions_per_seq 20 --n_processes 16
    python bertPrep.py --action create_hdf5_files ...        # the PyTorch recipe's input

Everything lives under ``$BERT_PREP_WORKING_DIR``::

    download/wikicorpus_en/wikicorpus_en.xml.bz2
    download/google_pretrained_weights/uncased_L-24_H-1024_A-16/vocab.txt
    formatted/wikicorpus_en/part_<k>.txt        one sentence a line, blank line per article
    sharded_training_shards_<n>_test_shards_<m>_fraction_<f>/wikicorpus_en/
        wikicorpus_en_{training,test}_<i>.txt
    tfrecord/seq_len_<L>/wikicorpus_en/{training,test}/wikicorpus_en_{training,test}_<i>.tfrecord
    hdf5_lower_case_<c>_seq_len_<L>_max_pred_<P>_masked_lm_prob_<p>_random_seed_<s>_\\
        dupe_factor_<d>/wikicorpus_en/wikicorpus_en_{training,test}_<i>.hdf5

Every stage resumes: downloads continue where they stopped, formatting keeps the parts
already written, sharding replaces its folder only when complete, and record creation
skips the shards whose file exists (each file appears whole or not at all). Stages that
can run on several cores do (``--n_processes``): formatting over parts of the dump,
record creation over shards. ``BERT_PREP_WIKI_URL`` and ``BERT_PREP_WEIGHTS_URL`` point
the downloads at a mirror.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from bertfam.errors import OneLineParser, UserError, exit_on_user_error
from bertfam.pretraining import wikipedia
from bertfam.pretraining.create import (
    ShardJob,
    options_from_flags,
    write_hdf5_file,
    write_tfrecord_shard,
)
from bertfam.pretraining.instances import PretrainingDataError
from bertfam.pretraining.sharding import SPLITS, ShardPlan, shard_documents, shard_name
from bertfam.runlog import progress

log = logging.getLogger("bertPrep")

WIKI = "wikicorpus_en"
WEIGHTS = "google_pretrained_weights"
# The large uncased model's vocabulary, as upstream's create_datasets_from_start.sh uses.
WEIGHTS_URL = "https://storage.googleapis.com/bert_models/2018_10_18/uncased_L-24_H-1024_A-16.zip"
WEIGHTS_NAME = "uncased_L-24_H-1024_A-16"
DATASETS = (WIKI, WEIGHTS, "bookscorpus", "books_wiki_en_corpus")
ACTIONS = ("download", "text_formatting", "sharding", "create_tfrecord_files", "create_hdf5_files")
BOOKS_GONE = (
    "BookCorpus is no longer distributed by its authors and its download scripts fail; "
    "prepare wikicorpus_en (create_datasets_from_start.sh wiki_only)"
)


def parse_flags(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = OneLineParser(prog="bertPrep.py", description=__doc__.split("\n")[0])
    parser.add_argument("--action", required=True, choices=ACTIONS)
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--n_training_shards", type=int, default=1472)
    parser.add_argument("--n_test_shards", type=int, default=1472)
    parser.add_argument("--fraction_test_set", type=float, default=0.1)
    parser.add_argument(
        "--segmentation_method",
        default="blingfire",
        help="blingfire (its model is inside the wheel); NLTK's punkt data cannot be fetched",
    )
    parser.add_argument("--n_processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--random_seed", type=int, default=12345)
    parser.add_argument("--dupe_factor", type=int, default=5)
    parser.add_argument("--masked_lm_prob", type=float, default=0.15)
    parser.add_argument("--short_seq_prob", type=float, default=0.1)
    parser.add_argument("--max_seq_length", type=int, default=512)
    parser.add_argument("--max_predictions_per_seq", type=int, default=80)
    parser.add_argument("--do_lower_case", type=int, default=1, choices=(0, 1))
    parser.add_argument("--vocab_file", help="default: the downloaded Google weights' vocab")
    parser.add_argument("--articles_per_part", type=int, default=wikipedia.ARTICLES_PER_PART)
    return parser.parse_args(argv)


def working_dir() -> Path:
    value = os.environ.get("BERT_PREP_WORKING_DIR")
    if not value:
        raise UserError("set BERT_PREP_WORKING_DIR to the folder the corpus is prepared in")
    return Path(value)


def dump_path(work: Path) -> Path:
    return work / "download" / WIKI / f"{WIKI}.xml.bz2"


def formatted_dir(work: Path) -> Path:
    return work / "formatted" / WIKI


def sharded_dir(work: Path, args) -> Path:
    name = (
        f"sharded_training_shards_{args.n_training_shards}_test_shards_"
        f"{args.n_test_shards}_fraction_{args.fraction_test_set}"
    )
    return work / name / WIKI


def tfrecord_path(work: Path, args, split: str, index: int) -> Path:
    folder = work / "tfrecord" / f"seq_len_{args.max_seq_length}" / WIKI / split
    return folder / shard_name(WIKI, split, index, "tfrecord")


def hdf5_path(work: Path, args, split: str, index: int) -> Path:
    folder = work / (
        f"hdf5_lower_case_{args.do_lower_case}_seq_len_{args.max_seq_length}_max_pred_"
        f"{args.max_predictions_per_seq}_masked_lm_prob_{args.masked_lm_prob}_random_seed_"
        f"{args.random_seed}_dupe_factor_{args.dupe_factor}"
    )
    return folder / WIKI / shard_name(WIKI, split, index, "hdf5")


def default_vocab(work: Path) -> Path:
    return work / "download" / WEIGHTS / WEIGHTS_NAME / "vocab.txt"


def download(work: Path, dataset: str, show_progress: bool) -> None:
    from bertfam.download import DownloadError, download, extract

    if dataset == WEIGHTS:
        folder = work / "download" / WEIGHTS
        if (folder / WEIGHTS_NAME).is_dir():
            return
        url = os.environ.get("BERT_PREP_WEIGHTS_URL", WEIGHTS_URL)
        archive = download(url, work / "download" / f"{WEIGHTS_NAME}.zip", progress=show_progress)
        extract(archive, folder)
        archive.unlink()
        return
    if dump_path(work).exists():
        log.info("%s already downloaded", dump_path(work))
        return
    url = os.environ.get("BERT_PREP_WIKI_URL", wikipedia.DUMP_URL)
    sha1 = None
    sums = work / "download" / WIKI / "sha1sums.txt"
    sums.unlink(missing_ok=True)  # fetched afresh: "latest" moves on
    try:
        download(wikipedia.checksums_url(url), sums, progress=False)
        sha1 = wikipedia.published_sha1(sums.read_text(), url.rpartition("/")[2])
    except DownloadError as error:
        if error.status != 404:
            raise
        log.warning("no sha1sums beside %s: the bz2 CRCs are the only integrity check", url)
    download(url, dump_path(work), sha1=sha1, progress=show_progress)


def format_text(work: Path, args, show_progress: bool) -> None:
    dump = dump_path(work)
    if not dump.is_file():
        raise PretrainingDataError(f"{dump}: not downloaded; run --action download first")
    wikipedia.format_dump(
        dump, formatted_dir(work), args.n_processes, args.articles_per_part, show_progress
    )


def shard(work: Path, args) -> None:
    source = formatted_dir(work)
    if not (source / wikipedia.COMPLETE).exists():
        raise PretrainingDataError(f"{source}: not formatted; run --action text_formatting")
    destination = sharded_dir(work, args)
    if destination.is_dir():
        log.info("%s already sharded", destination)
        return
    plan = ShardPlan(
        args.n_training_shards, args.n_test_shards, args.fraction_test_set, args.random_seed
    )
    count = shard_documents(sorted(source.glob("part_*.txt")), destination, WIKI, plan)
    log.info("dealt %d documents into %s", count, destination)


def create_records(work: Path, args, show_progress: bool) -> None:
    """One record file per text shard, shards in parallel; existing files are kept."""
    options = options_from_flags(args)
    vocab = Path(args.vocab_file) if args.vocab_file else default_vocab(work)
    if not vocab.is_file():
        raise PretrainingDataError(
            f"--vocab_file {vocab}: no such file (download {WEIGHTS} or give --vocab_file)"
        )
    source = sharded_dir(work, args)
    if not source.is_dir():
        raise PretrainingDataError(f"{source}: not sharded; run --action sharding first")
    tfrecords = args.action == "create_tfrecord_files"
    output_path = tfrecord_path if tfrecords else hdf5_path
    jobs: List[ShardJob] = []
    for split in SPLITS:
        for index in range(args.n_training_shards if split == "training" else args.n_test_shards):
            output = output_path(work, args, split, index)
            if output.exists():
                continue
            output.parent.mkdir(parents=True, exist_ok=True)
            text = source / shard_name(WIKI, split, index)
            jobs.append(
                ShardJob(
                    str(text),
                    str(output),
                    str(vocab),
                    bool(args.do_lower_case),
                    args.random_seed,
                    options,
                )  # fmt: skip
            )
    writer = write_tfrecord_shard if tfrecords else write_hdf5_file
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the workers inherit it: no banners
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # the workers fill the cores already
    examples = run_jobs(writer, jobs, args.n_processes, show_progress)
    log.info("wrote %d shards (%d examples)", len(jobs), examples)


def run_jobs(writer: Callable[[ShardJob], int], jobs, n_processes: int, show_progress) -> int:
    """`writer(job)` for every job on `n_processes` spawned workers; the first failure
    stops the rest (files already finished stay, and a rerun skips them)."""
    if not jobs:
        return 0
    context = multiprocessing.get_context("spawn")
    bar = progress(total=len(jobs), desc="shards", unit="shard", enabled=show_progress)
    examples = 0
    with concurrent.futures.ProcessPoolExecutor(n_processes, mp_context=context) as pool:
        futures = [pool.submit(writer, job) for job in jobs]
        try:
            for future in concurrent.futures.as_completed(futures):
                examples += future.result()
                bar.update(1)
        finally:
            for future in futures:
                future.cancel()
            bar.close()
    return examples


@exit_on_user_error
def main(argv: Optional[Sequence[str]] = None, work: Optional[Path] = None) -> None:
    """bertPrep.py's command line; `work` is the working dir, else $BERT_PREP_WORKING_DIR."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_flags(argv)
    if args.segmentation_method != "blingfire":
        raise UserError(
            f"--segmentation_method {args.segmentation_method}: only blingfire (NLTK's "
            "punkt model would have to be downloaded at run time)"
        )
    if args.dataset in ("bookscorpus", "books_wiki_en_corpus"):
        raise UserError(BOOKS_GONE)
    if args.dataset == WEIGHTS and args.action != "download":
        raise UserError(f"--dataset {WEIGHTS} can only be downloaded")
    if args.n_processes < 1:
        raise UserError(f"--n_processes={args.n_processes}: need at least 1")
    work = work or working_dir()
    show_progress = sys.stderr.isatty()
    if args.action == "download":
        download(work, args.dataset, show_progress)
    elif args.action == "text_formatting":
        format_text(work, args, show_progress)
    elif args.action == "sharding":
        shard(work, args)
    else:
        create_records(work, args, show_progress)


if __name__ == "__main__":
    main()
