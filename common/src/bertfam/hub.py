"""A HuggingFace model folder from wherever the user has one: a folder, an archive, the hub.

`fetch_hf_model(source, staging, endpoint)` accepts, in this order:

1. a local folder holding config.json and model.safetensors (or pytorch_model.bin);
2. an archive of such a folder (.zip, .tar, .tar.gz, .tgz), as a local file or a URL
   (``file://``, ``http(s)://``): downloaded, resumably, and unpacked into `staging`;
3. a hub id such as ``distilbert-base-uncased``: first looked up where HuggingFace
   tools leave models (a folder of that name in the current directory, the HuggingFace
   cache, `bertfam.checkpoints.resolve_pretrained`), and only then downloaded file by
   file from ``<endpoint>/<id>/resolve/<revision>/<file>``, the hub's own URLs, into
   `staging`. `endpoint` is https://huggingface.co unless ``HF_ENDPOINT`` names a mirror,
   as for HuggingFace's own tools.

Downloads go through `bertfam.download`: an interrupted one resumes when run again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from bertfam.checkpoints import (
    HF_WEIGHT_FILES,
    CheckpointError,
    HfFolder,
    find_hf_folder,
    resolve_pretrained,
)
from bertfam.download import DownloadError, download, extract

DEFAULT_ENDPOINT = "https://huggingface.co"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def default_endpoint() -> str:
    """``$HF_ENDPOINT`` (a mirror), else the hub itself, as HuggingFace's tools do."""
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT)


def model_short_name(source: str) -> str:
    """``distilbert-base-uncased`` for that id, ``distilbert/distilbert-base-uncased``,
    ``.../distilbert-base-uncased/`` or ``file:///.../distilbert-base-uncased.tar.gz``."""
    name = source.rstrip("/").rsplit("/", 1)[-1]
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_archive(source: str) -> bool:
    return source.endswith(ARCHIVE_SUFFIXES)


def fetch_hf_model(
    source: str,
    staging: Union[str, Path],
    endpoint: Optional[str] = None,
    revision: str = "main",
    progress: bool = True,
) -> HfFolder:
    """The HuggingFace folder `source` names, downloading into `staging` if needed
    (from `endpoint`, by default `default_endpoint()`)."""
    staging = Path(staging)
    local = Path(source).expanduser()
    if local.is_dir():
        return find_hf_folder(local)
    if local.is_file() and not is_archive(source):
        raise CheckpointError(
            f"{source}: a file, not a model folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)})"
        )
    if is_archive(source):
        url = source if "://" in source else local.resolve().as_uri()
        archive = download(url, staging / Path(source).name, progress=progress)
        return _unpacked_folder(extract(archive, staging / "unpacked"), source)
    if "://" in source or source.startswith(("/", ".", "~")):
        raise CheckpointError(
            f"{source}: neither a model folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)})"
        )
    try:
        return resolve_pretrained(source)
    except CheckpointError:
        pass  # not here yet: download it
    endpoint = endpoint or default_endpoint()
    return _download_from_hub(source, staging / "hub", endpoint, revision, progress)


def _unpacked_folder(unpacked: Path, source: str) -> HfFolder:
    """The archive's top level, or its one folder that holds config.json."""
    if (unpacked / "config.json").is_file():
        return find_hf_folder(unpacked)
    folders = [entry for entry in unpacked.iterdir() if (entry / "config.json").is_file()]
    if len(folders) != 1:
        raise CheckpointError(
            f"{source}: the archive holds no model folder (config.json and weights) at its "
            "top level or in one folder there"
        )
    return find_hf_folder(folders[0])


def _download_from_hub(
    model_id: str, folder: Path, endpoint: str, revision: str, progress: bool
) -> HfFolder:
    base = f"{endpoint.rstrip('/')}/{model_id}/resolve/{revision}"
    download(f"{base}/config.json", folder / "config.json", progress=progress)
    for name in HF_WEIGHT_FILES:  # safetensors first; older repositories have only the .bin
        try:
            download(f"{base}/{name}", folder / name, progress=progress)
            break
        except DownloadError as error:
            if error.status != 404:
                raise
    else:
        raise CheckpointError(f"{base}: has neither {' nor '.join(HF_WEIGHT_FILES)}")
    return find_hf_folder(folder)
