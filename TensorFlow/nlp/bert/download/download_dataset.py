"""Download the MRPC fine-tuning data into a folder, unless that folder already exists.

Upstream (Habana Model-References TensorFlow/nlp/bert; the Voyager guide, seed 003):

    python Model-References/TensorFlow/nlp/bert/download/download_dataset.py \\
        /voyager/ceph/users/youruser/datasets/bert/MRPC

If `<dataset_path>` does not exist, this runs the MRPC path of download_glue_data.py
(`--data_dir <dataset_path> --tasks MRPC`), so the files end up in
`<dataset_path>/MRPC/{train,dev,test}.tsv`: with the guide's command line that is
`.../bert/MRPC/MRPC/`, and `--data_dir` of run_classifier.py must name that inner folder.
If `<dataset_path>` exists, it says so and does nothing, as upstream.

Where we differ from upstream:

- download_glue_data.py is called as a function, not through a shell.
- `<dataset_path>` appears only once everything in it is complete (bertfam.atomic).
  Upstream creates it first, so a failed download left an empty or partial folder that
  every later run then took for a finished one. The price: a failed run keeps nothing,
  and the next one downloads the (small) files again.
- Failures are reported (one line, exit status 2); upstream ignored the exit status of
  the download script.
- The MRPC source flags of download_glue_data.py (`--path_to_mrpc`, `--mrpc_train_url`,
  `--mrpc_test_url`, `--mrpc_dev_ids_url`) are accepted and passed on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

from bertfam.atomic import atomic_directory
from bertfam.errors import UserError, exit_on_user_error
from bertfam.folder_modules import folder_module


def glue_downloader():
    """The download_glue_data module that sits beside this file, whether this file runs as
    a script or is imported some other way (tests, the TensorFlow.nlp.bert namespace of
    upstream's PYTHONPATH). The two scripts share the folder, not a package: there is no
    __init__.py, as upstream."""
    return folder_module(Path(__file__).resolve().parent, "download_glue_data")


def canonical_path(name: str) -> Path:
    """`~` and `$VARS` expanded, made absolute: what upstream's get_canonical_path does."""
    return Path(os.path.expandvars(os.path.expanduser(name))).resolve()


def download_dataset(dataset_path: str, **mrpc_sources) -> Path:
    """Fill a new `dataset_path` with `MRPC/`; leave an existing one alone. Return the path.

    `mrpc_sources` are download_mrpc's keyword arguments (path_to_mrpc and the URLs).
    """
    path = canonical_path(dataset_path)
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{path} exists and is not a folder: give a new path for the dataset")
        print(f"Reusing existing dataset from {path}: nothing to do")
        return path
    print(f"*** Downloading dataset to {path}...")
    glue = glue_downloader()
    with atomic_directory(path) as staging:
        glue.download_mrpc(staging, **mrpc_sources)
    print(f"Dataset ready in {path / 'MRPC'}")
    return path


def build_parser():
    glue = glue_downloader()
    parser = glue.OneLineParser(
        description="Download the MRPC data into <dataset_path>/MRPC/ unless the path exists."
    )
    parser.add_argument("dataset_path", help="folder to create; nothing happens if it exists")
    glue.add_mrpc_source_arguments(parser)
    return parser


@exit_on_user_error
def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    download_dataset(
        args.dataset_path,
        path_to_mrpc=args.path_to_mrpc,
        train_url=args.mrpc_train_url,
        test_url=args.mrpc_test_url,
        dev_ids_url=args.mrpc_dev_ids_url,
        progress=sys.stderr.isatty(),
    )


if __name__ == "__main__":
    main()
