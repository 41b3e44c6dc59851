"""End-to-end tests of download/download_pretrained_model.py, run as a subprocess with
upstream's arguments from the package dir.

The tarballs are built here, laid out as Google's (one top-level folder whose name is not
the model's: albert_large_v1.tar.gz holds albert_large/), and served from 127.0.0.1
(`http_server` from bertfam.testing); `--dest_dir` keeps the repository clean.
"""

from __future__ import annotations

import hashlib
import io
import random
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict

import pytest

ALBERT_DIR = Path(__file__).resolve().parents[1]
SCRIPT = Path("download") / "download_pretrained_model.py"
BASE_PATH = "/albert_models/"

MODEL, TOP_FOLDER = "albert_large_v1", "albert_large"
# Small stand-ins for the six files of a real release, each different, so a file landing
# under the wrong name or truncated shows up in a byte-for-byte comparison.
CHECKPOINT_FILES = {
    "albert_config.json": b'{"hidden_size": 16, "num_hidden_layers": 2, "vocab_size": 6}\n',
    "model.ckpt-best.data-00000-of-00001": random.Random(0).randbytes(64 * 1024),
    "model.ckpt-best.index": b"index bytes \x00\x01\x02",
    "model.ckpt-best.meta": b"meta graph \xff\xfe",
    "30k-clean.model": b"\x0a\x0bsentencepiece model",
    "30k-clean.vocab": "<pad>\t0\n<unk>\t0\n[CLS]\t0\n[SEP]\t0\n[MASK]\t0\n▁the\t-3.0\n".encode(),
}


def make_tar_gz(members: Dict[str, bytes], folders=()) -> bytes:
    """A gzipped tarball with these files (and directory entries, as `tar czf` writes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def google_tarball(folder: str = TOP_FOLDER, files=CHECKPOINT_FILES) -> bytes:
    """As Google publishes them: everything in one top-level folder."""
    return make_tar_gz({f"{folder}/{name}": data for name, data in files.items()}, [folder])


def serve(server, archive: bytes, model: str = MODEL, **options) -> str:
    """Serve `archive` as `<model>.tar.gz`; return the base URL to pass, as the README's."""
    server.serve(f"{BASE_PATH}{model}.tar.gz", archive, **options)
    return server.url + BASE_PATH


def run_script(*args) -> subprocess.CompletedProcess:
    """`python download/download_pretrained_model.py args...` from the package dir."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        cwd=ALBERT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def contents(folder: Path) -> Dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.mark.parametrize(
    "model, top_folder", [(MODEL, TOP_FOLDER), ("albert_base_v1", "albert_base")]
)
def test_tarball_lands_stripped_in_model_folder_and_rerun_does_nothing(
    http_server, tmp_path, model, top_folder
):
    base_url = serve(http_server, google_tarball(top_folder), model)

    result = run_script(base_url, model, "--dest_dir", tmp_path)
    assert result.returncode == 0, result.stderr
    # The top folder is stripped; tarball and scratch folder are gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == [model]
    assert contents(tmp_path / model) == CHECKPOINT_FILES
    assert http_server.requests == [f"{BASE_PATH}{model}.tar.gz"]

    again = run_script(base_url, model, "--dest_dir", tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already" in again.stdout
    assert len(http_server.requests) == 1  # nothing fetched the second time
    assert contents(tmp_path / model) == CHECKPOINT_FILES


def test_base_url_without_trailing_slash_and_checksum(http_server, tmp_path):
    archive = google_tarball()
    base_url = serve(http_server, archive)
    checksum = hashlib.sha256(archive).hexdigest()
    result = run_script(base_url.rstrip("/"), MODEL, "--dest_dir", tmp_path, "--sha256", checksum)
    assert result.returncode == 0, result.stderr
    assert contents(tmp_path / MODEL) == CHECKPOINT_FILES


def test_interrupted_download_resumes(http_server, tmp_path):
    archive = google_tarball()
    cut = len(archive) // 2
    base_url = serve(http_server, archive, cut_after=cut)

    first = run_script(base_url, MODEL, "--dest_dir", tmp_path)
    assert_one_line_error(first, "run again to resume")
    assert not (tmp_path / MODEL).exists()

    second = run_script(base_url, MODEL, "--dest_dir", tmp_path)
    assert second.returncode == 0, second.stderr
    assert http_server.range_headers == [None, f"bytes={cut}-"]
    assert contents(tmp_path / MODEL) == CHECKPOINT_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL]


def test_incomplete_model_folder_is_replaced(http_server, tmp_path):
    stale = tmp_path / MODEL
    stale.mkdir()
    (stale / "albert_config.json").write_bytes(b"{}")
    (stale / "leftover.txt").write_bytes(b"from an earlier, broken run")
    base_url = serve(http_server, google_tarball())
    result = run_script(base_url, MODEL, "--dest_dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "lacks 30k-clean.model, 30k-clean.vocab, model.ckpt-best.index" in result.stdout
    assert contents(tmp_path / MODEL) == CHECKPOINT_FILES  # the old folder replaced whole


def test_http_404_leaves_nothing(http_server, tmp_path):
    result = run_script(http_server.url + BASE_PATH, MODEL, "--dest_dir", tmp_path)
    assert_one_line_error(result, "HTTP 404", f"{MODEL}.tar.gz")
    assert list(tmp_path.iterdir()) == []


FILES_AT_TOP = make_tar_gz(dict(CHECKPOINT_FILES))
TWO_FOLDERS = make_tar_gz(
    {f"{TOP_FOLDER}/{name}": data for name, data in CHECKPOINT_FILES.items()}
    | {"albert_base/albert_config.json": b"{}"}
)
FOLDER_AND_FILE = make_tar_gz(
    {f"{TOP_FOLDER}/{name}": data for name, data in CHECKPOINT_FILES.items()} | {"README": b"stray"}
)


@pytest.mark.parametrize(
    "archive, top_level",
    [
        (FILES_AT_TOP, "30k-clean.model, 30k-clean.vocab, albert_config.json"),
        (TWO_FOLDERS, "albert_base, albert_large"),
        (FOLDER_AND_FILE, "README, albert_large"),
        (make_tar_gz({}), "nothing"),
    ],
    ids=["files-at-top", "two-folders", "folder-and-file", "empty"],
)
def test_archive_that_is_not_one_top_level_folder_is_refused(
    http_server, tmp_path, archive, top_level
):
    base_url = serve(http_server, archive)
    result = run_script(base_url, MODEL, "--dest_dir", tmp_path)
    assert_one_line_error(
        result, "one top-level folder", f"its top level has {top_level}", "downloads it again"
    )
    assert list(tmp_path.iterdir()) == []  # no model folder, no tarball, no scratch folder


@pytest.mark.parametrize("lacking", ["30k-clean.vocab", "model.ckpt-best.index"])
def test_archive_without_a_required_file_is_refused_and_deleted(http_server, tmp_path, lacking):
    files = {name: data for name, data in CHECKPOINT_FILES.items() if name != lacking}
    base_url = serve(http_server, google_tarball(files=files))
    result = run_script(base_url, MODEL, "--dest_dir", tmp_path)
    assert_one_line_error(
        result, f"{MODEL}.tar.gz has no {lacking} in its folder {TOP_FOLDER}/", "downloads it again"
    )
    assert list(tmp_path.iterdir()) == []


def test_wrong_checksum_is_refused(http_server, tmp_path):
    base_url = serve(http_server, google_tarball())
    result = run_script(base_url, MODEL, "--dest_dir", tmp_path, "--sha256", "0" * 64)
    assert_one_line_error(result, "sha256", "expected " + "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_not_a_tarball_is_refused(http_server, tmp_path):
    base_url = serve(http_server, b"<html>not a tarball</html>")
    result = run_script(base_url, MODEL, "--dest_dir", tmp_path)
    assert_one_line_error(result, "not a readable zip or tar archive")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["http://127.0.0.1:9/"], "required: model_name"),
        (["http://127.0.0.1:9/", MODEL, "False"], "unrecognized arguments: False"),
        (["http://127.0.0.1:9/", "../evil"], "plain name such as albert_base_v1"),
    ],
    ids=["no-model-name", "bert-style-flatten", "path-as-name"],
)
def test_bad_arguments_give_one_line(tmp_path, args, fragment):
    result = run_script(*args, "--dest_dir", tmp_path)
    assert_one_line_error(result, fragment)
    assert list(tmp_path.iterdir()) == []


def test_help_names_the_arguments_and_the_package_dir_as_default():
    result = run_script("--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "base_url model_name" in text
    assert "<base_url><model_name>.tar.gz" in text
    assert str(ALBERT_DIR) in text
