"""Fetch pretrained models and datasets: resumable, checksummed, never half-there.

``download(url, dest)`` streams into ``dest.part``. An interrupted download leaves that
file, and the next call asks the server for the rest (HTTP Range) instead of starting
over. Only a complete file whose sha256 matches (when one is given) is renamed to
``dest``; a bad checksum deletes the partial file, so nothing that looks complete is
ever wrong. ``extract`` unpacks zip and tar archives into a directory that appears
only when extraction finished. ``file://`` URLs work too, for local mirrors and tests.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Optional, Union
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from bertfam.atomic import atomic_directory, fsync_directory
from bertfam.errors import UserError

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
_CHUNK = 1 << 20


class DownloadError(UserError):
    """A download or extraction failed; the message says whether rerunning will resume.
    `status` is the HTTP status when the server answered with an error (404...)."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status


def sha256_of(path: PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def partial_path(dest: PathLike) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def download(
    url: str,
    dest: PathLike,
    sha256: Optional[str] = None,
    *,
    progress: bool = True,
    timeout: float = 60.0,
    sha1: Optional[str] = None,
) -> Path:
    """Download `url` to `dest` (resuming a previous partial download) and return `dest`.
    The checksum is sha256, or sha1 where that is all the publisher gives (Wikimedia)."""
    dest = Path(dest)
    algorithm = "sha1" if sha1 and not sha256 else "sha256"
    expected = (sha256 or sha1 or "").lower() or None
    if dest.exists():
        if expected and sha256_of(dest, algorithm) != expected:
            raise DownloadError(
                f"{dest} exists but does not match {algorithm} {expected}; "
                "delete it to download again"
            )
        log.info("%s already downloaded", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(dest)

    _fetch_into(url, part, progress=progress, timeout=timeout)

    if expected:
        actual = sha256_of(part, algorithm)
        if actual != expected:
            part.unlink()
            raise DownloadError(
                f"{url}: {algorithm} is {actual}, expected {expected}; the download was deleted"
            )
    os.replace(part, dest)
    fsync_directory(dest.parent)
    return dest


def _fetch_into(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    request = Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urlopen(request, timeout=timeout)
    except HTTPError as error:
        if error.code == 416 and offset:
            # Our partial file is no prefix of what the server has now: start again.
            part.unlink()
            return _fetch_into(url, part, progress=progress, timeout=timeout)
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}", error.code) from None
    except (URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None

    with response:
        status = getattr(response, "status", None)
        resumed = bool(offset) and status == 206 and _range_start(response) == offset
        if offset and not resumed:
            log.info(
                "%s: server did not resume at byte %d; downloading from the start", url, offset
            )
            offset = 0
        remaining = response.headers.get("Content-Length")
        total = offset + int(remaining) if remaining is not None else None
        received = offset
        with (
            open(part, "ab" if resumed else "wb") as handle,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=Path(part.name[: -len(".part")]).name,
                disable=not progress,
            ) as bar,
        ):
            try:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    handle.write(block)
                    received += len(block)
                    bar.update(len(block))
            except (http.client.HTTPException, OSError) as error:
                raise DownloadError(
                    f"{url}: interrupted after {received} bytes ({error}); run again to resume"
                ) from None
            handle.flush()
            os.fsync(handle.fileno())
    if total is not None and received != total:
        raise DownloadError(
            f"{url}: interrupted after {received} of {total} bytes; run again to resume"
        )


def _range_start(response) -> Optional[int]:
    """The first byte a 206 answer carries, from "Content-Range: bytes START-END/TOTAL"."""
    value = response.headers.get("Content-Range", "")
    unit, _, span = value.partition(" ")
    try:
        return int(span.split("-", 1)[0]) if unit == "bytes" else None
    except ValueError:
        return None


def extract(archive: PathLike, dest_dir: PathLike) -> Path:
    """Unpack a .zip or tar archive (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz) into `dest_dir`.

    `dest_dir` is replaced as a whole, and only once every member is out. Members that
    would land outside it (absolute paths, "..", links pointing out) are refused.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise DownloadError(f"{archive}: no such archive")
    with atomic_directory(dest_dir) as tmp:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp)
        else:
            _extract_tar(archive, tmp)
    return dest_dir


def _check_member(archive: Path, name: str) -> None:
    parts = Path(name).parts
    if os.path.isabs(name) or ".." in parts:
        raise DownloadError(
            f"{archive}: refusing member {name!r}, which points outside the archive"
        )


def _extract_zip(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as handle:
            for name in handle.namelist():
                _check_member(archive, name)
            handle.extractall(into)
    except zipfile.BadZipFile as error:
        raise DownloadError(f"{archive}: not a readable zip archive ({error})") from None


def _extract_tar(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as handle:
            members = handle.getmembers()
            for member in members:
                _check_member(archive, member.name)
            if hasattr(tarfile, "data_filter"):
                handle.extractall(into, filter="data")
            else:  # Python without extraction filters: refuse links outright
                for member in members:
                    if member.issym() or member.islnk():
                        raise DownloadError(f"{archive}: refusing link member {member.name!r}")
                handle.extractall(into)
    except tarfile.TarError as error:
        raise DownloadError(f"{archive}: not a readable zip or tar archive ({error})") from None
