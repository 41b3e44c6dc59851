"""Tiny DistilBERT models and Google-style BERT zips, made the way users get the real ones.

`google_zip` builds a BERT archive as storage.googleapis.com serves it (flat, with
vocab.txt); `save_hf_distilbert` writes a HuggingFace DistilBERT folder with random
weights; `convert` runs download/download_pretrained_model.py on them with upstream's
positional arguments, and returns the converted model folder.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from transformers import DistilBertConfig as HFConfig

from bertfam import tinydata as tiny

FOLDER = Path(__file__).resolve().parents[1]
BERT_MODEL = "uncased_L-2_H-128_A-2"
BASE_PATH = "/bert_models/2020_02_20/"
# Small enough to train in seconds; vocab_size is the tiny vocab's.
SHAPES = dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64)


def vocab_size() -> int:
    """The size of the tiny vocab (`tiny.vocab_file`) the models are made for."""
    with tempfile.TemporaryDirectory() as scratch:
        return len(tiny.vocab_file(Path(scratch) / "vocab.txt").read_text().splitlines())


def google_zip(tmp_path: Path) -> bytes:
    vocab = tiny.vocab_file(tmp_path / "google_vocab.txt")
    config = tiny.bert_config_file(tmp_path / "google_config.json", vocab_size())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(vocab, "vocab.txt")
        archive.write(config, "bert_config.json")
        archive.writestr("bert_model.ckpt.index", b"not used by DistilBERT")
    return buffer.getvalue()


def save_hf_distilbert(
    model_class, folder: Path, seed: int = 0, safe_serialization: bool = True, **overrides
):
    """A HuggingFace DistilBERT `model_class` with random weights, saved in `folder`."""
    torch.manual_seed(seed)
    shapes = {"vocab_size": vocab_size(), **SHAPES, **overrides}
    model = model_class(HFConfig(**shapes)).eval()
    model.save_pretrained(folder, safe_serialization=safe_serialization)
    return model


def run_download(*args, cwd: Path = FOLDER) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "download/download_pretrained_model.py", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def serve_google_zip(http_server, tmp_path: Path) -> str:
    """Serve the BERT zip as Google does; the base URL the seed's first argument stands for."""
    http_server.serve(f"{BASE_PATH}{BERT_MODEL}.zip", google_zip(tmp_path))
    return http_server.url + BASE_PATH


def file_base_url(tmp_path: Path) -> str:
    """The BERT zip in a local folder, as a file:// base URL (no server needed)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir(parents=True)
    (mirror / f"{BERT_MODEL}.zip").write_bytes(google_zip(tmp_path))
    return mirror.as_uri() + "/"


def convert(base_url: str, tmp_path: Path, hf_source, *extra) -> Path:
    """The seed's download line into `tmp_path`; returns the model folder."""
    result = run_download(base_url, BERT_MODEL, hf_source, "False", "--dest_dir", tmp_path, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / BERT_MODEL
