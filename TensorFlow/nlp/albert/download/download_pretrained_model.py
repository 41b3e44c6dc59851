"""Download and unpack one of Google's pretrained ALBERT checkpoints.

Upstream (Habana Model-References, TensorFlow/nlp/albert/README.md), run from
TensorFlow/nlp/albert:

    python download/download_pretrained_model.py \\
            https://storage.googleapis.com/albert_models/ \\
            albert_large_v1

    python download/download_pretrained_model.py \\
            https://storage.googleapis.com/albert_models/ \\
            albert_base_v1

The arguments are positional, as upstream: `<base_url> <model_name>`. The script fetches
`<base_url><model_name>.tar.gz` and extracts it with the first path component stripped
into `<package_dir>/<model_name>/`, where the package dir is TensorFlow/nlp/albert (the
parent of this download/ folder), then deletes the tarball. Google's tarballs keep
everything in one top-level folder whose name need not be the model's
(albert_large_v1.tar.gz holds albert_large/), hence the stripping. The model folder then
holds albert_config.json, model.ckpt-best.{data-00000-of-00001,index,meta},
30k-clean.model and 30k-clean.vocab.

Where we differ from upstream (the work is `bertfam.google_checkpoint`, shared with BERT):

- The folder counts as there only when it holds albert_config.json, 30k-clean.model,
  30k-clean.vocab and model.ckpt-best.index (upstream: when the folder exists at all);
  the same files are checked after unpacking, and a folder lacking them is downloaded
  again.
- The download resumes when run again after an interruption, and is checked against
  `--sha256` when given.
- The model folder appears in one step, only once it is complete: it is unpacked into a
  hidden scratch folder beside it first.
- A tarball that is not one top-level folder, or lacks those files, is refused with a
  one-line error (exit status 2) and deleted, so the next run downloads it again;
  nothing half-written is left (upstream would strip whatever the first component is).
- `--dest_dir` puts the model folder elsewhere; the progress bar is drawn only when
  stderr is a terminal, so logs and the one-line error stay clean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from bertfam.errors import OneLineParser, exit_on_user_error
from bertfam.google_checkpoint import (
    ALBERT_RELEASE,
    Layout,
    add_archive_arguments,
    add_destination_arguments,
    download_pretrained_model,
)

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        description="Fetch a Google ALBERT checkpoint tarball and unpack it into "
        "<dest_dir>/<model_name>/"
    )
    add_archive_arguments(parser, ALBERT_RELEASE)
    add_destination_arguments(parser, PACKAGE_DIR)
    return parser


@exit_on_user_error
def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    download_pretrained_model(
        args.base_url,
        args.model_name,
        Layout.ONE_FOLDER_STRIPPED,  # upstream strips the first path component
        dest_dir=args.dest_dir,
        sha256=args.sha256,
        progress=sys.stderr.isatty(),
        release=ALBERT_RELEASE,
    )


if __name__ == "__main__":
    main()
