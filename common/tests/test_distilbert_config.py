"""bertfam.distilbert_config and DistilBERT's checkpoint-name table."""

import json

import pytest

from bertfam.bert_config import BertConfigError
from bertfam.checkpoints import DISTILBERT_TABLE
from bertfam.distilbert_config import DistilBertConfig

HF_CONFIG = {  # HuggingFace's distilbert-base-uncased config.json
    "activation": "gelu", "architectures": ["DistilBertForMaskedLM"], "attention_dropout": 0.1,
    "dim": 768, "dropout": 0.1, "hidden_dim": 3072, "initializer_range": 0.02,
    "max_position_embeddings": 512, "model_type": "distilbert", "n_heads": 12, "n_layers": 6,
    "pad_token_id": 0, "qa_dropout": 0.1, "seq_classif_dropout": 0.2,
    "sinusoidal_pos_embds": False, "tie_weights_": True, "vocab_size": 30522,
}  # fmt: skip
HABANA_CONFIG = {  # what Habana's helper writes: BERT-base's config, 6 layers, 16 types
    "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
    "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 6,
    "type_vocab_size": 16, "vocab_size": 30522,
}  # fmt: skip


def test_both_schemas_describe_the_same_network(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(HF_CONFIG))
    from_hf = DistilBertConfig.from_json_file(path)
    from_habana = DistilBertConfig.from_dict(HABANA_CONFIG)
    assert from_hf.to_dict() == {**from_habana.to_dict(), "qa_dropout": 0.1}
    assert (from_habana.num_hidden_layers, from_habana.head_size) == (6, 64)
    # Habana's file has no DistilBERT keys: learned positions, no head dropout, as upstream.
    assert from_habana.sinusoidal_pos_embds is False and from_habana.qa_dropout == 0.0
    # Our file round-trips.
    assert DistilBertConfig.from_dict(from_hf.to_dict()) == from_hf


def test_without_dropout_also_drops_the_head_dropout():
    config = DistilBertConfig.from_dict(HF_CONFIG).without_dropout()
    assert (config.hidden_dropout_prob, config.attention_probs_dropout_prob) == (0.0, 0.0)
    assert config.qa_dropout == 0.0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"qa_dropout": 1.5}, "'qa_dropout' must be in [0, 1)"),
        ({"sinusoidal_pos_embds": "yes"}, "'sinusoidal_pos_embds' must be true or false"),
        ({"n_heads": 7}, "not a multiple of num_attention_heads"),
    ],
)
def test_impossible_values_name_the_key(change, message):
    with pytest.raises(BertConfigError, match=message.replace("[", r"\[").replace(")", r"\)")):
        DistilBertConfig.from_dict({**HF_CONFIG, **change}, source="c.json")


@pytest.mark.parametrize(
    "key, expected",
    [
        ("distilbert.embeddings.word_embeddings.weight", ("distilbert/embeddings/weight", False)),
        (
            "distilbert.embeddings.position_embeddings.weight",
            ("distilbert/embeddings/embeddings", False),
        ),
        ("embeddings.LayerNorm.weight", ("distilbert/embeddings/LayerNorm/gamma", False)),
        (
            "distilbert.transformer.layer.5.attention.q_lin.weight",
            ("distilbert/transformer/layer/5/attention/q_lin/kernel", True),
        ),
        (
            "transformer.layer.0.sa_layer_norm.bias",
            ("distilbert/transformer/layer/0/sa_layer_norm/beta", False),
        ),
        (
            "distilbert.transformer.layer.2.ffn.lin2.bias",
            ("distilbert/transformer/layer/2/ffn/lin2/bias", False),
        ),
        ("qa_outputs.weight", ("cls/squad/output_weights", False)),
        ("distilbert.embeddings.position_ids", None),
    ],
)
def test_hf_keys_map_to_upstream_tf_names(key, expected):
    assert DISTILBERT_TABLE.hf_to_tf(key) == expected
