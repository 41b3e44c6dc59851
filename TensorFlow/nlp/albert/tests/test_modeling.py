"""Our TensorFlow ALBERT against HuggingFace's PyTorch ALBERT on the same weights, to 1e-5.

The weights travel the ways users' do: a HuggingFace folder read through the ALBERT name
table, a Google-named TF checkpoint (``model.ckpt-best``'s layout), and, the other way,
a checkpoint of ours read by HuggingFace's own converter (`load_tf_weights_in_albert`),
which knows Google's names independently of our table.
"""

import json

import modeling
import numpy as np
import pytest
import tensorflow as tf
import torch
from transformers import AlbertConfig as HFConfig
from transformers import AlbertForPreTraining as HFPreTraining
from transformers import AlbertForQuestionAnswering as HFQuestionAnswering
from transformers import AlbertForSequenceClassification as HFClassifier
from transformers import AlbertModel as HFAlbertModel
from transformers.models.albert.modeling_albert import load_tf_weights_in_albert

from bertfam import tinydata
from bertfam.albert_config import AlbertConfig
from bertfam.bert_config import BertConfigError
from bertfam.checkpoints import CheckpointError
from bertfam.testing import as_tf, hf_outputs, ours_from
from bertfam.testing import parity_inputs as inputs
from bertfam.tf.checkpoint import (
    assign_weights,
    read_init_checkpoint,
    save_name_based_checkpoint,
    variables_by_name,
)

# BERT's parity shapes with ALBERT's narrower embeddings and its tanh GELU.
TINY = dict(tinydata.PARITY_SHAPES, embedding_size=16, hidden_act="gelu_new")


@pytest.fixture(params=["safetensors", "google_checkpoint"])
def weights_format(request):
    return request.param


def save(hf_model, tmp_path, weights_format):
    """HF weights as a HF folder, or as a Google-named TF checkpoint; and our config."""
    folder = tmp_path / "hf"
    hf_model.save_pretrained(folder)
    config = AlbertConfig.from_json_file(folder / "config.json")
    if weights_format == "safetensors":
        return folder, config
    weights, _ = read_init_checkpoint(folder)
    return save_name_based_checkpoint(tmp_path / "model.ckpt-best", weights), config


def test_encoder_matches_huggingface(tmp_path, weights_format):
    torch.manual_seed(0)
    hf = HFAlbertModel(HFConfig(**TINY)).eval()
    source, config = save(hf, tmp_path, weights_format)
    ours, report = ours_from(source, modeling.AlbertModel, config)
    assert report.newly_initialized == [] and report.unused == []
    ids, mask, segments = inputs(TINY["vocab_size"])
    sequence, pooled = ours(*as_tf(ids, mask, segments))
    reference = hf_outputs(hf, ids, mask, segments)
    np.testing.assert_allclose(sequence.numpy(), reference.last_hidden_state.numpy(), atol=1e-5)
    np.testing.assert_allclose(pooled.numpy(), reference.pooler_output.numpy(), atol=1e-5)


def test_question_answering_matches_huggingface(tmp_path, weights_format):
    torch.manual_seed(1)
    hf = HFQuestionAnswering(HFConfig(**TINY)).eval()
    source, config = save(hf, tmp_path, weights_format)
    ours, report = ours_from(source, modeling.AlbertForQuestionAnswering, config)
    assert "cls/squad/output_weights" in report.restored
    start, end = ours(*as_tf(*inputs(TINY["vocab_size"])))
    reference = hf_outputs(hf, *inputs(TINY["vocab_size"]))
    np.testing.assert_allclose(start.numpy(), reference.start_logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(end.numpy(), reference.end_logits.numpy(), atol=1e-5)


def test_classifier_matches_huggingface(tmp_path, weights_format):
    torch.manual_seed(2)
    hf = HFClassifier(HFConfig(num_labels=3, **TINY)).eval()
    source, config = save(hf, tmp_path, weights_format)
    ours, report = ours_from(
        source, lambda c: modeling.AlbertForSequenceClassification(c, num_labels=3), config
    )
    assert {"output_weights", "output_bias"} <= set(report.restored)
    logits = ours(*as_tf(*inputs(TINY["vocab_size"])))
    reference = hf_outputs(hf, *inputs(TINY["vocab_size"]))
    np.testing.assert_allclose(logits.numpy(), reference.logits.numpy(), atol=1e-5)


def pretraining_logits(hf, ours, positions):
    """(ours, HuggingFace's) masked-LM logits at `positions` and sentence-order logits."""
    ids, mask, segments = inputs(TINY["vocab_size"])
    mlm, sop = ours(*as_tf(ids, mask, segments, positions))
    reference = hf_outputs(hf, ids, mask, segments)
    gathered = np.take_along_axis(reference.prediction_logits.numpy(), positions[..., None], 1)
    return (mlm.numpy(), sop.numpy()), (gathered, reference.sop_logits.numpy())


def random_heads(hf):
    with torch.no_grad():  # tied to the decoder's bias, and ones by default: not here
        hf.predictions.bias.normal_()
        hf.predictions.LayerNorm.weight.normal_(1.0, 0.1)
    return hf


def test_pretraining_heads_match_huggingface(tmp_path, weights_format):
    torch.manual_seed(3)
    hf = random_heads(HFPreTraining(HFConfig(**TINY)).eval())
    source, config = save(hf, tmp_path, weights_format)
    ours, report = ours_from(source, modeling.AlbertForPreTraining, config)
    assert report.newly_initialized == [] and report.unused == []
    positions = np.array([[1, 4, 7, 0], [2, 3, 8, 0], [1, 2, 3, 0]])
    got, expected = pretraining_logits(hf, ours, positions)
    for ours_logits, reference in zip(got, expected):
        np.testing.assert_allclose(ours_logits, reference, atol=1e-5)


def test_huggingfaces_converter_reads_our_checkpoint(tmp_path):
    """Our freshly initialized network, saved in Google's layout, loaded by HuggingFace's
    `load_tf_weights_in_albert` (its own rules for Google's names), computes the same."""
    tf.random.set_seed(5)
    config = AlbertConfig.from_dict(TINY)
    ours = modeling.AlbertForPreTraining(config)
    weights = {name: v.numpy() for name, v in variables_by_name(ours).items()}
    prefix = save_name_based_checkpoint(tmp_path / "model.ckpt-best", weights)
    hf = HFPreTraining(HFConfig(**TINY)).eval()
    load_tf_weights_in_albert(hf, hf.config, prefix)
    hf.tie_weights()  # the decoder reads the word table, as ours does
    got, expected = pretraining_logits(hf, ours, np.array([[1, 2, 5], [3, 4, 6], [0, 2, 3]]))
    for ours_logits, reference in zip(got, expected):
        np.testing.assert_allclose(ours_logits, reference, atol=1e-5)


GOOGLE_NAMES = {  # for E = 16, H = 32, I = 37
    "bert/embeddings/word_embeddings": [99, 16],
    "bert/embeddings/position_embeddings": [64, 16],
    "bert/embeddings/token_type_embeddings": [2, 16],
    "bert/embeddings/LayerNorm/gamma": [16],
    "bert/embeddings/LayerNorm/beta": [16],
    "bert/encoder/embedding_hidden_mapping_in/kernel": [16, 32],
    "bert/encoder/embedding_hidden_mapping_in/bias": [32],
    **{
        f"bert/encoder/transformer/group_0/inner_group_0/{name}": shape
        for name, shape in {
            "attention_1/self/query/kernel": [32, 32],
            "attention_1/self/query/bias": [32],
            "attention_1/self/key/kernel": [32, 32],
            "attention_1/self/key/bias": [32],
            "attention_1/self/value/kernel": [32, 32],
            "attention_1/self/value/bias": [32],
            "attention_1/output/dense/kernel": [32, 32],
            "attention_1/output/dense/bias": [32],
            "LayerNorm/gamma": [32],
            "LayerNorm/beta": [32],
            "ffn_1/intermediate/dense/kernel": [32, 37],
            "ffn_1/intermediate/dense/bias": [37],
            "ffn_1/intermediate/output/dense/kernel": [37, 32],
            "ffn_1/intermediate/output/dense/bias": [32],
            "LayerNorm_1/gamma": [32],
            "LayerNorm_1/beta": [32],
        }.items()
    },
    "bert/pooler/dense/kernel": [32, 32],
    "bert/pooler/dense/bias": [32],
    "cls/predictions/transform/dense/kernel": [32, 16],
    "cls/predictions/transform/dense/bias": [16],
    "cls/predictions/transform/LayerNorm/gamma": [16],
    "cls/predictions/transform/LayerNorm/beta": [16],
    "cls/predictions/output_bias": [99],
    "cls/seq_relationship/output_weights": [2, 32],
    "cls/seq_relationship/output_bias": [2],
}


def test_variable_names_are_googles():
    model = modeling.AlbertForPreTraining(AlbertConfig.from_dict(TINY))
    shapes = {name: list(v.shape) for name, v in variables_by_name(model).items()}
    assert shapes == GOOGLE_NAMES


def write_config(tmp_path, **values):
    path = tmp_path / "albert_config.json"
    path.write_text(json.dumps(dict(TINY, **values)))
    return path


def test_googles_gelu_is_the_tanh_approximation(tmp_path):
    """albert_config.json says "gelu" and means google-research/albert's tanh GELU."""
    google = AlbertConfig.from_json_file(write_config(tmp_path, hidden_act="gelu"))
    assert google.hidden_act == "gelu_new"
    hf = AlbertConfig.from_dict(dict(TINY, hidden_act="gelu", model_type="albert"))
    assert hf.hidden_act == "gelu"  # HuggingFace's files say what they mean


@pytest.mark.parametrize(
    "values, message",
    [
        ({"num_hidden_groups": 2}, "builds ALBERT's one shared layer"),
        ({"inner_group_num": 2}, "builds ALBERT's one shared layer"),
        ({"net_structure_type": 1}, "net_structure_type 1 is an ALBERT variant"),
        ({"embedding_size": 0}, "'embedding_size' must be a positive integer"),
    ],
)
def test_configs_this_release_cannot_build(tmp_path, values, message):
    with pytest.raises(BertConfigError, match=message):
        AlbertConfig.from_json_file(write_config(tmp_path, **values))


def test_a_bert_checkpoint_is_refused_by_name(tmp_path):
    from transformers import BertConfig as HFBertConfig
    from transformers import BertModel as HFBertModel

    HFBertModel(HFBertConfig(**tinydata.PARITY_SHAPES)).save_pretrained(tmp_path / "bert")
    model = modeling.AlbertModel(AlbertConfig.from_dict(TINY))
    weights, description = read_init_checkpoint(tmp_path / "bert")
    # BERT's tables are hidden-wide, ALBERT's embedding-wide: refused before anything loads.
    with pytest.raises(CheckpointError, match=r"shapes differ.*word_embeddings \(checkpoint"):
        assign_weights(variables_by_name(model), weights, description)
