import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from bertfam.download import DownloadError, download, extract, partial_path

PAYLOAD = os.urandom(3 * (1 << 20) + 123)  # a few chunks, not a multiple of the chunk size
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_plain_download_with_checksum(http_server, tmp_path):
    url = http_server.serve("/model.bin", PAYLOAD)
    dest = download(url, tmp_path / "model.bin", sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]
    assert http_server.range_headers == [None]


def test_interrupted_download_resumes_with_range(http_server, tmp_path):
    url = http_server.serve("/model.bin", PAYLOAD, cut_after=1_500_000)
    dest = tmp_path / "model.bin"
    with pytest.raises(DownloadError, match="run again to resume"):
        download(url, dest, sha256=SHA, progress=False)
    assert not dest.exists()  # nothing that looks complete
    assert partial_path(dest).stat().st_size == 1_500_000

    download(url, dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert http_server.range_headers == [None, "bytes=1500000-"]
    assert not partial_path(dest).exists()


def test_server_without_range_support_restarts_cleanly(http_server, tmp_path):
    url = http_server.serve("/model.bin", PAYLOAD, honour_range=False)
    dest = tmp_path / "model.bin"
    partial_path(dest).write_bytes(PAYLOAD[:1000])
    download(url, dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert http_server.range_headers == ["bytes=1000-"]


def test_stale_partial_longer_than_the_file_starts_over(http_server, tmp_path):
    url = http_server.serve("/small.txt", b"hello")
    dest = tmp_path / "small.txt"
    partial_path(dest).write_bytes(b"much longer stale data")
    download(url, dest, progress=False)
    assert dest.read_bytes() == b"hello"
    assert http_server.range_headers == ["bytes=22-", None]


def test_bad_checksum_leaves_nothing_behind(http_server, tmp_path):
    url = http_server.serve("/model.bin", PAYLOAD)
    dest = tmp_path / "model.bin"
    with pytest.raises(
        DownloadError, match=f"sha256 is {SHA}, expected {'0' * 64}; the download was deleted"
    ):
        download(url, dest, sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_complete_file_is_not_fetched_again(http_server, tmp_path):
    url = http_server.serve("/model.bin", PAYLOAD)
    dest = tmp_path / "model.bin"
    dest.write_bytes(PAYLOAD)
    download(url, dest, sha256=SHA, progress=False)
    assert http_server.range_headers == []
    with pytest.raises(DownloadError, match="exists but does not match sha256"):
        download(url, dest, sha256="f" * 64, progress=False)


def test_http_errors_are_one_line(http_server, tmp_path):
    with pytest.raises(DownloadError, match=r"/missing: HTTP 404 Not Found"):
        download(http_server.url + "/missing", tmp_path / "x", progress=False)
    with pytest.raises(DownloadError, match="cannot connect"):
        download("http://127.0.0.1:9/nothing", tmp_path / "x", progress=False, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_file_url(tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(PAYLOAD)
    dest = download(source.as_uri(), tmp_path / "out" / "copy.bin", sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def make_tar(path, members, mode="w:gz"):
    with tarfile.open(path, mode) as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))


def test_download_and_extract_tar_and_zip(http_server, tmp_path):
    members = {"uncased_L-2/vocab.txt": b"[PAD]\n", "uncased_L-2/bert_config.json": b"{}"}
    make_tar(tmp_path / "m.tar.gz", members)
    with zipfile.ZipFile(tmp_path / "m.zip", "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    for archive in ("m.tar.gz", "m.zip"):
        url = http_server.serve("/" + archive, (tmp_path / archive).read_bytes())
        fetched = download(url, tmp_path / "dl" / archive, progress=False)
        out = extract(fetched, tmp_path / ("out-" + archive))
        assert (out / "uncased_L-2" / "vocab.txt").read_bytes() == b"[PAD]\n"
        assert (out / "uncased_L-2" / "bert_config.json").read_bytes() == b"{}"


def test_extract_replaces_a_previous_extraction(tmp_path):
    make_tar(tmp_path / "a.tar", {"new.txt": b"new"}, mode="w")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    extract(tmp_path / "a.tar", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new.txt"]


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt"])
def test_extract_refuses_members_outside(tmp_path, name):
    make_tar(tmp_path / "bad.tar", {name: b"x"}, mode="w")
    with pytest.raises(DownloadError, match="points outside the archive"):
        extract(tmp_path / "bad.tar", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_extract_corrupt_archive(tmp_path):
    (tmp_path / "bad.tar.gz").write_bytes(b"not an archive at all")
    with pytest.raises(DownloadError, match="not a readable zip or tar archive"):
        extract(tmp_path / "bad.tar.gz", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]


def test_interrupted_download_in_a_killed_process_resumes(http_server, tmp_path):
    """A downloader killed mid-stream leaves only the .part, and the next run completes it."""
    url = http_server.serve("/big.bin", PAYLOAD)
    dest = tmp_path / "big.bin"
    # The child reads a first chunk, then is killed from inside before the rest arrives.
    code = (
        "import os, signal, bertfam.download as d\n"
        "real = d.tqdm.update\n"
        "def update(self, n):\n"
        "    real(self, n)\n"
        "    if self.n >= 1 << 20: os.kill(os.getpid(), signal.SIGKILL)\n"
        "d.tqdm.update = update\n"
        f"d.download({url!r}, {str(dest)!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert result.returncode == -9
    assert not dest.exists()
    assert partial_path(dest).stat().st_size >= 1 << 20
    download(url, dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
