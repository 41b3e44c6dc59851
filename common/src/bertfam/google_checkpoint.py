"""Google's pretrained checkpoint zips, fetched, checked and unpacked into ``<dest>/<name>/``.

The TensorFlow download scripts (BERT's, and DistilBERT's, which borrows BERT's vocabulary)
take upstream's positional arguments `<base_url> <model_name> ... <flatten>`; this module
does the work. It fetches `<base_url><model_name>.zip` and unpacks it so that the
checkpoint ends up in `<dest_dir>/<model_name>/`, then deletes the zip. `flatten` says how
the archive is laid out:

- False: the zip has no top-level folder (the 2020_02_20 releases); its files are
  unpacked into `<model_name>/`.
- True: the zip keeps everything in a top-level folder `<model_name>/` (the 2019_05_30
  whole-word-masking releases); the archive's own tree is kept, so the files land in the
  same `<model_name>/`. (Upstream's name for this is "flatten_archive".)

Where we differ from upstream (the scripts' READMEs say the same):

- The folder counts as there only when it holds bert_config.json, vocab.txt and
  bert_model.ckpt.index (upstream: when the folder exists at all), and the same three
  files are checked after unpacking; a folder lacking them is downloaded again.
- The download resumes after an interruption and is checked against a sha256 when given;
  the model folder appears only once it is complete, so a failed run leaves no
  half-written folder behind.
- flatten must be exactly True or False (upstream took anything but "True" as False),
  and an archive whose layout does not match it is refused with a hint, instead of
  scattering files into the package dir.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import List, Optional

from bertfam.atomic import atomic_directory
from bertfam.download import download, extract
from bertfam.errors import UserError

# What the BERT scripts read from the model folder.
REQUIRED_FILES = ("bert_config.json", "vocab.txt", "bert_model.ckpt.index")


class ModelArchiveError(UserError):
    """The archive does not hold a BERT checkpoint laid out as the arguments say."""


def parse_flatten(value: str) -> bool:
    """Upstream compares with "True" and takes anything else as False; we refuse the rest."""
    if value in ("True", "False"):
        return value == "True"
    raise argparse.ArgumentTypeError(f"must be True or False, not {value!r}")


def model_url(base_url: str, model_name: str) -> str:
    """`<base_url><model_name>.zip`, adding the "/" that README base URLs end with if missing."""
    separator = "" if base_url.endswith("/") else "/"
    return f"{base_url}{separator}{model_name}.zip"


def missing_files(folder: Path) -> List[str]:
    return [name for name in REQUIRED_FILES if not (folder / name).is_file()]


def check_model_name(model_name: str) -> None:
    # The name becomes a folder and a file name: keep it one plain path component.
    if not model_name or model_name in (".", "..") or "/" in model_name or os.sep in model_name:
        raise ModelArchiveError(
            f"model name {model_name!r} must be a plain name such as uncased_L-12_H-768_A-12"
        )


def download_pretrained_model(
    base_url: str,
    model_name: str,
    flatten: bool,
    dest_dir: Path,
    sha256: Optional[str] = None,
    progress: bool = True,
) -> Path:
    """Make `dest_dir/model_name/` hold the checkpoint, downloading it if needed; return it."""
    check_model_name(model_name)
    model_dir = Path(dest_dir) / model_name
    if not missing_files(model_dir):
        print(f"Pretrained model already in {model_dir}: nothing to do")
        return model_dir
    if model_dir.exists():
        print(f"{model_dir} lacks {', '.join(missing_files(model_dir))}: downloading it again")

    url = model_url(base_url, model_name)
    archive = Path(dest_dir) / f"{model_name}.zip"
    # download() reuses a complete zip left by an earlier run and resumes a partial one.
    print(f"Downloading {url} to {archive}")
    download(url, archive, sha256=sha256, progress=progress)

    print(f"Extracting {archive.name} into {model_dir}")
    try:
        install_archive(archive, model_dir, flatten)
    except UserError as error:
        # The archive is complete but not what we need: keeping it would make the next
        # run reuse it instead of downloading again.
        archive.unlink()
        raise ModelArchiveError(
            f"{error} ({url}; deleted {archive.name}, so the next run downloads it again)"
        ) from None
    archive.unlink()  # as upstream, keep only the unpacked model
    print(f"Pretrained model ready in {model_dir}")
    return model_dir


def install_archive(archive: Path, model_dir: Path, flatten: bool) -> None:
    """Unpack `archive` beside `model_dir`, check it, then swap it in as `model_dir`.

    Upstream unpacks straight into the package dir. We unpack into a hidden scratch
    folder first, so that a bad archive is refused before anything appears under the
    model's name, and an existing folder is replaced in one step (bertfam.atomic).
    """
    parent = model_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        dir=parent, prefix=f".{model_dir.name}.", suffix=".unpack"
    ) as scratch:
        unpacked = extract(archive, Path(scratch) / "archive")
        root = model_root(unpacked, model_dir.name, flatten)
        missing = missing_files(root)
        if missing:
            raise ModelArchiveError(
                f"{archive.name} has no {', '.join(missing)}{_where(unpacked, root, flatten)}"
            )
        with atomic_directory(model_dir) as staging:
            for entry in root.iterdir():
                os.replace(entry, staging / entry.name)


def model_root(unpacked: Path, model_name: str, flatten: bool) -> Path:
    """The folder of the unpacked archive that becomes the model folder.

    flatten=False: the archive's top level. flatten=True: its one top-level folder, which
    must be named after the model (upstream would unpack any other tree into the package
    dir as it is; we refuse rather than scatter files there).
    """
    if not flatten:
        return unpacked
    top_level = sorted(entry.name for entry in unpacked.iterdir())
    if top_level != [model_name] or not (unpacked / model_name).is_dir():
        shown = ", ".join(top_level[:5]) or "nothing"
        raise ModelArchiveError(
            f"with flatten True the archive must hold one top-level folder {model_name}/, "
            f"but its top level has {shown}; pass False for an archive without that folder"
        )
    return unpacked / model_name


def _where(unpacked: Path, root: Path, flatten: bool) -> str:
    """Where the files were looked for, and a hint when flatten should have been True."""
    if flatten:
        return f" in its folder {root.name}/"
    entries = list(unpacked.iterdir())
    one_folder = len(entries) == 1 and entries[0].is_dir()
    if one_folder and not missing_files(entries[0]):
        return (
            f" at its top level: they are in its folder {entries[0].name}/, "
            "so pass True as the third argument"
        )
    return ""


def add_archive_arguments(parser: argparse.ArgumentParser) -> None:
    """The positional `<base_url> <model_name>` every download script starts with."""
    parser.add_argument("base_url", help="URL prefix: the zip is <base_url><model_name>.zip")
    parser.add_argument(
        "model_name", help='archive name without .zip, e.g. "uncased_L-12_H-768_A-12"'
    )


def add_layout_arguments(parser: argparse.ArgumentParser, package_dir: Path) -> None:
    """The positional `<flatten>` every download script ends with, and our options."""
    parser.add_argument(
        "flatten",
        type=parse_flatten,
        help="True if the zip keeps its files in a top-level <model_name>/ folder, else False",
    )
    parser.add_argument(
        "--dest_dir",
        type=Path,
        default=package_dir,
        help=f"where the model folder goes (default: the package dir, {package_dir})",
    )
    parser.add_argument("--sha256", default=None, help="expected sha256 of the zip (optional)")
