"""download/download_pretrained_model.py with the seed's positional arguments.

Google's zip and the HuggingFace hub are played by a server on 127.0.0.1 serving what
they serve, at the URLs they serve it (`<endpoint>/<id>/resolve/main/<file>`).
"""

import tarfile

import numpy as np
import pytest
from distilbert_fixtures import (
    BERT_MODEL,
    convert,
    file_base_url,
    run_download,
    save_hf_distilbert,
    serve_google_zip,
)
from transformers import DistilBertModel as HFDistilBertModel

from bertfam import tinydata as tiny

HF_NAME = "distilbert-base-uncased"
CHECKPOINT_FILES = {
    "distilbert_config.json",
    f"{HF_NAME}.ckpt-1.index",
    f"{HF_NAME}.ckpt-1.data-00000-of-00001",
    "checkpoint",
}


def serve_hub_model(http_server, folder, weights_file="model.safetensors"):
    for name in ("config.json", weights_file):
        http_server.serve(f"/{HF_NAME}/resolve/main/{name}", (folder / name).read_bytes())


def checkpoint(prefix):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.mark.parametrize("weights_file", ["model.safetensors", "pytorch_model.bin"])
def test_seed_line_converts_a_hub_model(http_server, tmp_path, weights_file):
    hf_folder = tmp_path / "upload"
    save_hf_distilbert(HFDistilBertModel, hf_folder)
    if weights_file == "pytorch_model.bin":  # an older hub repository: no safetensors
        save_hf_distilbert(HFDistilBertModel, hf_folder, safe_serialization=False)
    serve_hub_model(http_server, hf_folder, weights_file)
    base_url = serve_google_zip(http_server, tmp_path)

    model_dir = convert(base_url, tmp_path, HF_NAME, "--hf_endpoint", http_server.url)
    assert CHECKPOINT_FILES | {"vocab.txt"} <= {path.name for path in model_dir.iterdir()}
    assert (
        (model_dir / "checkpoint")
        .read_text()
        .startswith(f'model_checkpoint_path: "{HF_NAME}.ckpt-1"')
    )
    assert not list(tmp_path.glob(".*download"))  # fetched files are gone once converted
    assert f"/{HF_NAME}/resolve/main/{weights_file}" in http_server.requests

    asked = len(http_server.requests)
    again = convert(base_url, tmp_path, HF_NAME, "--hf_endpoint", http_server.url)
    assert again == model_dir and len(http_server.requests) == asked  # nothing fetched


def test_archive_url_and_folder_give_the_same_checkpoint(tmp_path):
    hf_folder = tmp_path / "models" / HF_NAME
    save_hf_distilbert(HFDistilBertModel, hf_folder)
    archive = tmp_path / f"{HF_NAME}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(hf_folder, arcname=HF_NAME)
    from_folder = convert(file_base_url(tmp_path), tmp_path / "a", hf_folder)
    from_archive = convert(file_base_url(tmp_path / "b"), tmp_path / "b", archive.as_uri())
    ours, theirs = (checkpoint(d / f"{HF_NAME}.ckpt-1") for d in (from_folder, from_archive))
    assert ours.keys() == theirs.keys() and len(ours) == 4 + 2 * 16
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def assert_one_line_error(result, fragment):
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and fragment in lines[0], result.stderr


def test_a_bert_folder_is_refused_and_nothing_is_written(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(**tiny.PARITY_SHAPES)).save_pretrained(tmp_path / "bert")
    result = run_download(
        file_base_url(tmp_path), BERT_MODEL, tmp_path / "bert", "False", "--dest_dir", tmp_path
    )
    assert_one_line_error(result, "model_type is 'bert', not 'distilbert'")
    assert not CHECKPOINT_FILES & {path.name for path in (tmp_path / BERT_MODEL).iterdir()}


def test_a_vocab_of_another_size_is_refused(tmp_path):
    save_hf_distilbert(HFDistilBertModel, tmp_path / HF_NAME, vocab_size=1000)
    result = run_download(
        file_base_url(tmp_path), BERT_MODEL, tmp_path / HF_NAME, "False", "--dest_dir", tmp_path
    )
    assert_one_line_error(result, "vocab.txt has 64 tokens but")
    assert not CHECKPOINT_FILES & {path.name for path in (tmp_path / BERT_MODEL).iterdir()}


def test_a_model_the_hub_does_not_have_is_one_line(http_server, tmp_path):
    base_url = serve_google_zip(http_server, tmp_path)
    result = run_download(
        base_url, BERT_MODEL, "no-such-model", "False", "--dest_dir", tmp_path,
        "--hf_endpoint", http_server.url,
    )  # fmt: skip
    assert_one_line_error(result, "no-such-model/resolve/main/config.json: HTTP 404")


def test_bad_flatten_is_one_line(tmp_path):
    result = run_download("http://unused/", BERT_MODEL, HF_NAME, "false", "--dest_dir", tmp_path)
    assert_one_line_error(result, "must be True or False")
    assert not any(tmp_path.iterdir())
