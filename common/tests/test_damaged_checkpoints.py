"""Checkpoint files cut short or corrupted (a broken download or copy): one error naming
the file, never a traceback from deep inside a reader."""

import numpy as np
import pytest

from bertfam.checkpoints import CheckpointError, read_hf_weights


def cut(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_huggingface_weights_cut_short(tmp_path, name):
    torch = pytest.importorskip("torch", reason="PyTorch writes the reference files")
    path = tmp_path / name
    weights = {"bert.pooler.dense.weight": torch.ones(64, 64)}
    if name.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(weights, str(path))
    else:
        torch.save(weights, path)
    assert set(read_hf_weights(path)) == set(weights)
    cut(path)
    with pytest.raises(CheckpointError, match=f"{path}: cannot read the weights"):
        read_hf_weights(path)


def test_google_checkpoint_with_its_data_or_index_cut_short(tmp_path):
    pytest.importorskip("tensorflow", reason="TensorFlow reads Google checkpoints")
    from bertfam.tf.checkpoint import read_tf_checkpoint, save_name_based_checkpoint

    prefix = tmp_path / "bert_model.ckpt"
    save_name_based_checkpoint(prefix, {"bert/pooler/dense/kernel": np.ones((64, 64), "float32")})
    assert list(read_tf_checkpoint(prefix)) == ["bert/pooler/dense/kernel"]
    cut(tmp_path / "bert_model.ckpt.data-00000-of-00001")
    with pytest.raises(CheckpointError, match="the .data file is truncated or damaged"):
        read_tf_checkpoint(prefix)
    cut(tmp_path / "bert_model.ckpt.index")
    with pytest.raises(CheckpointError, match="cannot read it"):
        read_tf_checkpoint(prefix)
