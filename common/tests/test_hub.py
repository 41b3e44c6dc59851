"""bertfam.hub: a HuggingFace folder from a folder, an archive, the local caches or the hub."""

import zipfile

import pytest

from bertfam.checkpoints import CheckpointError
from bertfam.download import DownloadError
from bertfam.hub import fetch_hf_model, model_short_name

CONFIG = b'{"model_type": "distilbert", "vocab_size": 5}'
WEIGHTS = b"weights bytes"


def hf_folder(path, weights="model.safetensors"):
    path.mkdir(parents=True)
    (path / "config.json").write_bytes(CONFIG)
    (path / weights).write_bytes(WEIGHTS)
    return path


@pytest.mark.parametrize(
    "source",
    [
        "distilbert-base-uncased",
        "distilbert/distilbert-base-uncased",
        "/models/distilbert-base-uncased/",
        "file:///x/distilbert-base-uncased.tar.gz",
        "https://host/distilbert-base-uncased.zip",
    ],
)
def test_short_name(source):
    assert model_short_name(source) == "distilbert-base-uncased"


def test_a_folder_is_used_where_it_is(tmp_path):
    folder = hf_folder(tmp_path / "model")
    found = fetch_hf_model(str(folder), tmp_path / "staging")
    assert found.path == folder and not (tmp_path / "staging").exists()


def test_an_archive_path_or_url_is_unpacked(tmp_path):
    folder = hf_folder(tmp_path / "model")
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for file in folder.iterdir():
            handle.write(file, f"model/{file.name}")
    for index, source in enumerate((str(archive), archive.as_uri())):
        found = fetch_hf_model(source, tmp_path / f"staging{index}", progress=False)
        assert found.weights_file.read_bytes() == WEIGHTS and found.path.name == "model"


def test_a_hub_id_downloads_from_the_resolve_urls(http_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder of that name here
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    http_server.serve("/org/m/resolve/main/config.json", CONFIG)
    http_server.serve("/org/m/resolve/main/pytorch_model.bin", WEIGHTS)  # no safetensors
    found = fetch_hf_model("org/m", tmp_path / "staging", http_server.url + "/", progress=False)
    assert found.weights_file.name == "pytorch_model.bin"
    assert found.weights_file.read_bytes() == WEIGHTS
    assert http_server.requests == [
        "/org/m/resolve/main/config.json",
        "/org/m/resolve/main/model.safetensors",
        "/org/m/resolve/main/pytorch_model.bin",
    ]


def test_a_cached_hub_id_needs_no_network(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    snapshot = hf_folder(tmp_path / "cache" / "models--org--m" / "snapshots" / "abc")
    found = fetch_hf_model("org/m", tmp_path / "staging", "http://127.0.0.1:9/")
    assert found.path == snapshot


def test_missing_things_are_one_clear_error(http_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    http_server.serve("/m/resolve/main/config.json", CONFIG)
    with pytest.raises(CheckpointError, match="has neither model.safetensors nor pytorch_model"):
        fetch_hf_model("m", tmp_path / "staging", http_server.url, progress=False)
    monkeypatch.setenv("HF_ENDPOINT", http_server.url)  # the endpoint when none is given
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_hf_model("other", tmp_path / "staging2", progress=False)
    assert http_server.requests[-1] == "/other/resolve/main/config.json"
    with pytest.raises(CheckpointError, match="neither a model folder nor an archive"):
        fetch_hf_model(str(tmp_path / "nowhere"), tmp_path / "staging3")
    (tmp_path / "weights.bin").write_bytes(WEIGHTS)
    with pytest.raises(CheckpointError, match="a file, not a model folder nor an archive"):
        fetch_hf_model("weights.bin", tmp_path / "staging4")
