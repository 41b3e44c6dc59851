"""Download and unpack one of Google's pretrained BERT checkpoints.

Upstream (Habana Model-References, TensorFlow/nlp/bert/README.md), run from
TensorFlow/nlp/bert:

    $PYTHON download/download_pretrained_model.py \\
            "https://storage.googleapis.com/bert_models/2020_02_20/" \\
            "uncased_L-12_H-768_A-12" \\
            False

    $PYTHON download/download_pretrained_model.py \\
            "https://storage.googleapis.com/bert_models/2019_05_30/" \\
            "wwm_uncased_L-24_H-1024_A-16" \\
            True

The arguments are positional, as upstream: `<base_url> <model_name> <flatten>`. The script
fetches `<base_url><model_name>.zip` and unpacks it into `<package_dir>/<model_name>/`,
where the package dir is TensorFlow/nlp/bert (the parent of this download/ folder), then
deletes the zip. flatten is True when the zip keeps its files in a top-level
`<model_name>/` folder (the 2019_05_30 releases) and False when it has none (2020_02_20).

The work, and where it differs from upstream (resumable, checksummed, checked, never
half-there), is `bertfam.google_checkpoint`. Ours also takes `--dest_dir`, to put the
model folder elsewhere, and `--sha256`; the progress bar is drawn only when stderr is a
terminal, so logs and the one-line error that bad input gets stay clean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from bertfam.errors import OneLineParser, exit_on_user_error
from bertfam.google_checkpoint import (
    add_archive_arguments,
    add_layout_arguments,
    download_pretrained_model,
)

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        description="Fetch a Google BERT checkpoint zip and unpack it into <dest_dir>/<model_name>/"
    )
    add_archive_arguments(parser)
    add_layout_arguments(parser, PACKAGE_DIR)
    return parser


@exit_on_user_error
def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    download_pretrained_model(
        args.base_url,
        args.model_name,
        args.flatten,
        dest_dir=args.dest_dir,
        sha256=args.sha256,
        progress=sys.stderr.isatty(),
    )


if __name__ == "__main__":
    main()
