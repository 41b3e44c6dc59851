"""Our TensorFlow DistilBERT against HuggingFace's, on the same random weights, to 1e-5.

The weights reach our network the ways users' do: converted by
download/download_pretrained_model.py, read straight from a HuggingFace folder, and from
the checkpoint upstream's helper writes (HuggingFace's TF model under tf.train.Checkpoint).
"""

import json

import modeling
import numpy as np
import pytest
import tensorflow as tf
import torch
from distilbert_fixtures import SHAPES, convert, save_hf_distilbert, serve_google_zip
from transformers import DistilBertForQuestionAnswering as HFQuestionAnswering
from transformers import DistilBertModel as HFDistilBertModel

from bertfam.distilbert_config import DistilBertConfig
from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint, variables_by_name

HF_NAME = "distilbert-base-uncased"


def inputs(vocab_size, batch=3, length=13, seed=0):
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, vocab_size, (batch, length))
    mask = np.ones_like(ids)
    mask[1, 9:] = 0
    mask[-1, 4:] = 0
    return ids, mask


def reference(hf_model, ids, mask):
    with torch.no_grad():
        return hf_model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))


def load(model, source):
    weights, description = read_init_checkpoint(source)
    return assign_weights(variables_by_name(model), weights, description, ("cls/squad/",))


def as_tf(*arrays):
    return [tf.constant(a, tf.int32) for a in arrays]


@pytest.mark.parametrize("sinusoidal", [False, True], ids=["learned", "sinusoidal"])
def test_converted_checkpoint_matches_huggingface_model(http_server, tmp_path, sinusoidal):
    hf = save_hf_distilbert(HFDistilBertModel, tmp_path / HF_NAME, sinusoidal_pos_embds=sinusoidal)
    model_dir = convert(serve_google_zip(http_server, tmp_path), tmp_path, tmp_path / HF_NAME)
    config = DistilBertConfig.from_json_file(model_dir / "distilbert_config.json")
    assert (config.num_hidden_layers, config.hidden_size) == (SHAPES["n_layers"], SHAPES["dim"])
    assert config.sinusoidal_pos_embds is sinusoidal and config.qa_dropout == 0.1
    ours = modeling.DistilBertModel(config)
    report = load(ours, model_dir / f"{HF_NAME}.ckpt-1")
    assert report.newly_initialized == [] and len(report.restored) == 4 + 2 * 16 - sinusoidal
    ids, mask = inputs(config.vocab_size)
    hidden, _ = ours(*as_tf(ids, mask))
    expected = reference(hf, ids, mask).last_hidden_state.numpy()
    np.testing.assert_allclose(hidden.numpy(), expected, atol=1e-5)


def test_question_answering_matches_huggingface_converted_and_from_its_folder(
    http_server, tmp_path
):
    hf = save_hf_distilbert(HFQuestionAnswering, tmp_path / HF_NAME, seed=1)
    model_dir = convert(serve_google_zip(http_server, tmp_path), tmp_path, tmp_path / HF_NAME)
    config = DistilBertConfig.from_json_file(model_dir / "distilbert_config.json")
    ids, mask = inputs(config.vocab_size)
    expected = reference(hf, ids, mask)
    for source in (model_dir / f"{HF_NAME}.ckpt-1", tmp_path / HF_NAME):
        ours = modeling.DistilBertForQuestionAnswering(config)
        assert "cls/squad/output_weights" in load(ours, source).restored
        segments = np.ones_like(ids)  # fed, as SQuAD features carry them, and unused
        start, end = ours(*as_tf(ids, mask, segments))
        np.testing.assert_allclose(start.numpy(), expected.start_logits.numpy(), atol=1e-5)
        np.testing.assert_allclose(end.numpy(), expected.end_logits.numpy(), atol=1e-5)


def test_upstream_converted_checkpoint_loads_by_the_same_names(tmp_path, monkeypatch):
    """Habana's helper saves HuggingFace's TFDistilBertForTokenClassification with
    tf.train.Checkpoint(model=...); a user's existing file must load into our network."""
    # TF 2.15's Keras is Keras 2 already. Unset, transformers sets this to 1, which points
    # every later tf.keras import in this process (Horovod's) at tf_keras, not installed.
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")
    from transformers import TFDistilBertForTokenClassification

    hf = save_hf_distilbert(HFDistilBertModel, tmp_path / HF_NAME, seed=2)
    tf_model = TFDistilBertForTokenClassification.from_pretrained(
        str(tmp_path / HF_NAME), from_pt=True
    )
    prefix = tf.train.Checkpoint(model=tf_model).save(str(tmp_path / f"{HF_NAME}.ckpt"))
    assert prefix.endswith(f"{HF_NAME}.ckpt-1")
    hf_config = json.loads((tmp_path / HF_NAME / "config.json").read_text())
    config = DistilBertConfig.from_dict(hf_config)
    ours = modeling.DistilBertModel(config)
    report = load(ours, prefix)
    assert report.newly_initialized == [] and len(report.restored) == len(ours.trainable_variables)
    assert report.unused == ["classifier/bias", "classifier/kernel"]
    ids, mask = inputs(config.vocab_size)
    expected = reference(hf, ids, mask).last_hidden_state.numpy()
    np.testing.assert_allclose(ours(*as_tf(ids, mask))[0].numpy(), expected, atol=1e-5)


def test_variable_and_op_names_are_upstreams():
    config = DistilBertConfig(vocab_size=40, hidden_size=8, num_attention_heads=2,
                              intermediate_size=16, num_hidden_layers=2)  # fmt: skip
    model = modeling.DistilBertForQuestionAnswering(config)
    names = set(variables_by_name(model))
    layer = "distilbert/transformer/layer/1"
    assert {
        "distilbert/embeddings/weight",
        "distilbert/embeddings/embeddings",
        "distilbert/embeddings/LayerNorm/gamma",
        f"{layer}/attention/q_lin/kernel",
        f"{layer}/attention/out_lin/bias",
        f"{layer}/sa_layer_norm/beta",
        f"{layer}/ffn/lin1/kernel",
        f"{layer}/ffn/lin2/bias",
        f"{layer}/output_layer_norm/gamma",
        "cls/squad/output_weights",
        "cls/squad/output_bias",
    } <= names
    assert len(names) == 4 + 2 * 16 + 2  # no token types, no pooler
    graph = tf.function(model).get_concrete_function(
        tf.TensorSpec([2, 5], tf.int32), tf.TensorSpec([2, 5], tf.int32)
    )
    ops = {op.name for op in graph.graph.get_operations()}
    # What bf16_config/distilbert.json's convertible_exceptions name.
    assert f"{layer}/attention/Mul" in ops and f"{layer}/attention/add" in ops
