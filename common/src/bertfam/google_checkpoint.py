"""Google's pretrained checkpoint archives, fetched, checked and unpacked into ``<dest>/<name>/``.

The TensorFlow download scripts (BERT's, DistilBERT's, which borrows BERT's vocabulary, and
ALBERT's) take upstream's positional arguments `<base_url> <model_name> ...`; this module
does the work. It fetches `<base_url><model_name><suffix>` and unpacks it so that the
checkpoint ends up in `<dest_dir>/<model_name>/`, then deletes the archive. A
`ReleaseFormat` says what differs between the families: the suffix (BERT's ".zip",
ALBERT's ".tar.gz") and the files a model folder must hold. A `Layout` says which folder
of the archive becomes the model folder:

- FILES_AT_TOP: the zip has no top-level folder (BERT's 2020_02_20 releases; upstream's
  flatten False); its files are unpacked into `<model_name>/`.
- MODEL_NAMED_FOLDER: the zip keeps everything in a top-level folder `<model_name>/`
  (BERT's 2019_05_30 whole-word-masking releases; flatten True, upstream's
  "flatten_archive"); the archive's own tree is kept, so the files land in the same
  `<model_name>/`.
- ONE_FOLDER_STRIPPED: the tarball keeps everything in one top-level folder of any name
  (ALBERT: albert_large_v1.tar.gz holds albert_large/); upstream extracts it with the
  first path component stripped, so its contents land in `<model_name>/`.

Where we differ from upstream (the scripts' READMEs say the same):

- The folder counts as there only when it holds the release's required files (BERT:
  bert_config.json, vocab.txt and bert_model.ckpt.index; upstream: when the folder exists
  at all), and the same files are checked after unpacking; a folder lacking them is
  downloaded again.
- The download resumes after an interruption and is checked against a sha256 when given;
  the model folder appears only once it is complete, so a failed run leaves no
  half-written folder behind.
- flatten must be exactly True or False (upstream took anything but "True" as False),
  and an archive whose layout does not match it is refused with a hint, instead of
  scattering files into the package dir. Likewise an ALBERT tarball that is not one
  top-level folder is refused (upstream would strip the first component of each member,
  whatever it is).
"""

from __future__ import annotations

import argparse
import enum
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

from bertfam.atomic import atomic_directory
from bertfam.checkpoint_names import TF_BEST
from bertfam.download import download, extract
from bertfam.errors import UserError

# What the BERT scripts read from the model folder.
REQUIRED_FILES = ("bert_config.json", "vocab.txt", "bert_model.ckpt.index")
# What the ALBERT scripts read: the config, the SentencePiece model and vocab, and the
# checkpoint, whose .index names the variables (its .data and .meta come with it).
ALBERT_REQUIRED_FILES = (
    "albert_config.json",
    "30k-clean.model",
    "30k-clean.vocab",
    f"{TF_BEST}.index",
)


@dataclass(frozen=True)
class ReleaseFormat:
    """How one family's archives are published: the suffix after the model name, the
    files its model folder must hold, and a model name to show in help and errors."""

    suffix: str
    required_files: Sequence[str]
    example_name: str


BERT_RELEASE = ReleaseFormat(".zip", REQUIRED_FILES, "uncased_L-12_H-768_A-12")
ALBERT_RELEASE = ReleaseFormat(".tar.gz", ALBERT_REQUIRED_FILES, "albert_base_v1")


class Layout(enum.Enum):
    """Which folder of the unpacked archive becomes the model folder (module docstring)."""

    FILES_AT_TOP = "files at the top"
    MODEL_NAMED_FOLDER = "one top-level folder named after the model"
    ONE_FOLDER_STRIPPED = "one top-level folder of any name, stripped"


class ModelArchiveError(UserError):
    """The archive does not hold a checkpoint laid out as the arguments say."""


def parse_flatten(value: str) -> bool:
    """Upstream compares with "True" and takes anything else as False; we refuse the rest."""
    if value in ("True", "False"):
        return value == "True"
    raise argparse.ArgumentTypeError(f"must be True or False, not {value!r}")


def layout_from_flatten(flatten: Union[bool, Layout]) -> Layout:
    """BERT's scripts pass upstream's flatten as it was parsed; map it to the layout it means."""
    if isinstance(flatten, Layout):
        return flatten
    return Layout.MODEL_NAMED_FOLDER if flatten else Layout.FILES_AT_TOP


def model_url(base_url: str, model_name: str, suffix: str = BERT_RELEASE.suffix) -> str:
    """`<base_url><model_name><suffix>`, adding the "/" README base URLs end with if missing."""
    separator = "" if base_url.endswith("/") else "/"
    return f"{base_url}{separator}{model_name}{suffix}"


def missing_files(folder: Path, required: Sequence[str] = REQUIRED_FILES) -> List[str]:
    return [name for name in required if not (folder / name).is_file()]


def check_model_name(model_name: str, example: str = BERT_RELEASE.example_name) -> None:
    # The name becomes a folder and a file name: keep it one plain path component.
    if not model_name or model_name in (".", "..") or "/" in model_name or os.sep in model_name:
        raise ModelArchiveError(f"model name {model_name!r} must be a plain name such as {example}")


def download_pretrained_model(
    base_url: str,
    model_name: str,
    layout: Union[bool, Layout],
    dest_dir: Path,
    sha256: Optional[str] = None,
    progress: bool = True,
    release: ReleaseFormat = BERT_RELEASE,
) -> Path:
    """Make `dest_dir/model_name/` hold the checkpoint, downloading it if needed; return it.

    `layout` is a Layout, or upstream's flatten (True or False) as BERT's scripts pass it.
    """
    layout = layout_from_flatten(layout)
    check_model_name(model_name, release.example_name)
    model_dir = Path(dest_dir) / model_name
    missing = missing_files(model_dir, release.required_files)
    if not missing:
        print(f"Pretrained model already in {model_dir}: nothing to do")
        return model_dir
    if model_dir.exists():
        print(f"{model_dir} lacks {', '.join(missing)}: downloading it again")

    url = model_url(base_url, model_name, release.suffix)
    archive = Path(dest_dir) / f"{model_name}{release.suffix}"
    # download() reuses a complete archive left by an earlier run and resumes a partial one.
    print(f"Downloading {url} to {archive}")
    download(url, archive, sha256=sha256, progress=progress)

    print(f"Extracting {archive.name} into {model_dir}")
    try:
        install_archive(archive, model_dir, layout, release.required_files)
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


def install_archive(
    archive: Path,
    model_dir: Path,
    layout: Union[bool, Layout],
    required: Sequence[str] = REQUIRED_FILES,
) -> None:
    """Unpack `archive` beside `model_dir`, check it, then swap it in as `model_dir`.

    Upstream unpacks straight into the package dir. We unpack into a hidden scratch
    folder first, so that a bad archive is refused before anything appears under the
    model's name, and an existing folder is replaced in one step (bertfam.atomic).
    """
    layout = layout_from_flatten(layout)
    parent = model_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        dir=parent, prefix=f".{model_dir.name}.", suffix=".unpack"
    ) as scratch:
        unpacked = extract(archive, Path(scratch) / "archive")
        root = model_root(unpacked, model_dir.name, layout)
        missing = missing_files(root, required)
        if missing:
            where = _where(unpacked, root, layout, required)
            raise ModelArchiveError(f"{archive.name} has no {', '.join(missing)}{where}")
        with atomic_directory(model_dir) as staging:
            for entry in root.iterdir():
                os.replace(entry, staging / entry.name)


def model_root(unpacked: Path, model_name: str, layout: Union[bool, Layout]) -> Path:
    """The folder of the unpacked archive that becomes the model folder."""
    layout = layout_from_flatten(layout)
    if layout is Layout.FILES_AT_TOP:
        return unpacked
    if layout is Layout.MODEL_NAMED_FOLDER:
        return _model_named_folder(unpacked, model_name)
    return _sole_top_folder(unpacked)


def _model_named_folder(unpacked: Path, model_name: str) -> Path:
    """The archive's one top-level folder, which must be named after the model: upstream
    would unpack any other tree into the package dir as it is; we refuse rather than
    scatter files there."""
    top_level = _top_level_names(unpacked)
    if top_level != [model_name] or not (unpacked / model_name).is_dir():
        raise ModelArchiveError(
            f"with flatten True the archive must hold one top-level folder {model_name}/, "
            f"but its top level has {_shown(top_level)}; "
            "pass False for an archive without that folder"
        )
    return unpacked / model_name


def _sole_top_folder(unpacked: Path) -> Path:
    """The archive's one top-level folder, whatever its name. Upstream strips the first
    path component of every member, which for any other tree would merge or drop files;
    we refuse such an archive instead."""
    top_level = _top_level_names(unpacked)
    if len(top_level) != 1 or not (unpacked / top_level[0]).is_dir():
        raise ModelArchiveError(
            "the archive must hold its files in one top-level folder (whose name is "
            f"stripped), but its top level has {_shown(top_level)}"
        )
    return unpacked / top_level[0]


def _top_level_names(unpacked: Path) -> List[str]:
    return sorted(entry.name for entry in unpacked.iterdir())


def _shown(names: List[str]) -> str:
    return ", ".join(names[:5]) or "nothing"


def _where(unpacked: Path, root: Path, layout: Layout, required: Sequence[str]) -> str:
    """Where the files were looked for, and a hint when flatten should have been True."""
    if layout is not Layout.FILES_AT_TOP:
        return f" in its folder {root.name}/"
    entries = list(unpacked.iterdir())
    one_folder = len(entries) == 1 and entries[0].is_dir()
    if one_folder and not missing_files(entries[0], required):
        return (
            f" at its top level: they are in its folder {entries[0].name}/, "
            "so pass True as the third argument"
        )
    return ""


def add_archive_arguments(
    parser: argparse.ArgumentParser, release: ReleaseFormat = BERT_RELEASE
) -> None:
    """The positional `<base_url> <model_name>` every download script starts with."""
    parser.add_argument(
        "base_url", help=f"URL prefix: the archive is <base_url><model_name>{release.suffix}"
    )
    parser.add_argument(
        "model_name",
        help=f'archive name without {release.suffix}, e.g. "{release.example_name}"',
    )


def add_layout_arguments(parser: argparse.ArgumentParser, package_dir: Path) -> None:
    """The positional `<flatten>` BERT's download scripts end with, and our options."""
    parser.add_argument(
        "flatten",
        type=parse_flatten,
        help="True if the zip keeps its files in a top-level <model_name>/ folder, else False",
    )
    add_destination_arguments(parser, package_dir)


def add_destination_arguments(parser: argparse.ArgumentParser, package_dir: Path) -> None:
    """Our options, which upstream lacks: where the model folder goes, and the checksum."""
    parser.add_argument(
        "--dest_dir",
        type=Path,
        default=package_dir,
        help=f"where the model folder goes (default: the package dir, {package_dir})",
    )
    parser.add_argument("--sha256", default=None, help="expected sha256 of the archive (optional)")
