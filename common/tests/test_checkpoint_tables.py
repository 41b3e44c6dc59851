"""The declarative name tables of bertfam.checkpoints, on every key HuggingFace writes."""

import pytest

torch = pytest.importorskip("torch", reason="HuggingFace's models need torch")
transformers = pytest.importorskip("transformers", reason="HuggingFace is the reference")

from bertfam.checkpoints import BERT_TABLE, DISTILBERT_TABLE  # noqa: E402
from bertfam.tinydata import PARITY_SHAPES  # noqa: E402

# Google's names for one of each kind of weight (google-research/bert checkpoints).
GOOGLE = {
    "bert.embeddings.word_embeddings.weight": ("bert/embeddings/word_embeddings", False),
    "bert.embeddings.LayerNorm.weight": ("bert/embeddings/LayerNorm/gamma", False),
    "bert.encoder.layer.1.attention.self.key.weight": (
        "bert/encoder/layer_1/attention/self/key/kernel",
        True,
    ),
    "bert.encoder.layer.0.output.LayerNorm.bias": (
        "bert/encoder/layer_0/output/LayerNorm/beta",
        False,
    ),
    "bert.pooler.dense.bias": ("bert/pooler/dense/bias", False),
    "cls.predictions.transform.dense.weight": ("cls/predictions/transform/dense/kernel", True),
    "cls.predictions.bias": ("cls/predictions/output_bias", False),
    "cls.seq_relationship.weight": ("cls/seq_relationship/output_weights", False),
    "qa_outputs.weight": ("cls/squad/output_weights", False),
    "classifier.bias": ("output_bias", False),
}


def state_keys(model_class, config_class, **shapes):
    torch.manual_seed(0)
    return list(model_class(config_class(**shapes)).state_dict())


def test_bert_keys_map_to_google_names_and_back():
    keys = set()
    for model_class in (
        transformers.BertForPreTraining,
        transformers.BertForQuestionAnswering,
        transformers.BertForSequenceClassification,
    ):
        keys.update(state_keys(model_class, transformers.BertConfig, **PARITY_SHAPES))
    mapped = {key: BERT_TABLE.hf_to_tf(key) for key in keys}
    for key, expected in GOOGLE.items():
        assert mapped[key] == expected
    skipped = {key for key, value in mapped.items() if value is None}
    assert skipped <= {"bert.embeddings.position_ids", "cls.predictions.decoder.weight"} | {
        "cls.predictions.decoder.bias",
        "bert.embeddings.token_type_ids",
    }
    for key, value in mapped.items():
        if value is not None:
            assert BERT_TABLE.tf_to_hf(value[0]) == (key, value[1])


def test_old_and_bare_bert_keys():
    assert BERT_TABLE.hf_to_tf("encoder.layer.2.attention.output.LayerNorm.gamma") == (
        "bert/encoder/layer_2/attention/output/LayerNorm/gamma",
        False,
    )
    assert BERT_TABLE.hf_to_tf("some.other.weight") == ("some/other/weight", False)  # listed unused


def test_distilbert_keys_map_to_habana_names_and_back():
    shapes = dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37)
    keys = set()
    for model_class in (
        transformers.DistilBertForQuestionAnswering,
        transformers.DistilBertForSequenceClassification,
        transformers.DistilBertForMaskedLM,
    ):
        keys.update(state_keys(model_class, transformers.DistilBertConfig, **shapes))
    for key in keys:
        mapped = DISTILBERT_TABLE.hf_to_tf(key)
        if mapped is None:
            assert key.endswith("position_ids")
        elif not key.startswith("vocab_projector."):  # tied to the word table
            assert DISTILBERT_TABLE.tf_to_hf(mapped[0]) == (key, mapped[1])


# Google's ELECTRA names for one of each kind, by folder.
ELECTRA_GOOGLE = {
    "electra.embeddings_project.weight": ("electra/embeddings_project/kernel", True),
    "electra.encoder.layer.1.attention.self.key.bias": (
        "electra/encoder/layer_1/attention/self/key/bias",
        False,
    ),
    "discriminator_predictions.dense_prediction.weight": (
        "discriminator_predictions/dense_1/kernel",
        True,
    ),
    "qa_outputs.weight": ("cls/squad/output_weights", False),
}
ELECTRA_GENERATOR_GOOGLE = {
    "electra.embeddings.word_embeddings.weight": ("electra/embeddings/word_embeddings", False),
    "electra.embeddings_project.bias": ("generator/embeddings_project/bias", False),
    "electra.encoder.layer.0.output.LayerNorm.weight": (
        "generator/encoder/layer_0/output/LayerNorm/gamma",
        False,
    ),
    "generator_predictions.LayerNorm.bias": ("generator_predictions/LayerNorm/beta", False),
    "generator_lm_head.bias": ("generator_predictions/output_bias", False),
}


@pytest.mark.parametrize("generator", [False, True], ids=["discriminator", "generator"])
def test_electra_keys_map_to_google_names_and_back(generator):
    from bertfam.checkpoints import ELECTRA_GENERATOR_TABLE, ELECTRA_TABLE

    shapes = dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                  num_attention_heads=4, intermediate_size=37)  # fmt: skip
    table, expected = (
        (ELECTRA_GENERATOR_TABLE, ELECTRA_GENERATOR_GOOGLE)
        if generator
        else (ELECTRA_TABLE, ELECTRA_GOOGLE)
    )
    classes = (
        (transformers.ElectraForMaskedLM,)
        if generator
        else (transformers.ElectraForPreTraining, transformers.ElectraForQuestionAnswering)
    )
    keys = set()
    for model_class in classes:
        keys.update(state_keys(model_class, transformers.ElectraConfig, **shapes))
    mapped = {key: table.hf_to_tf(key) for key in keys}
    for key, name in expected.items():
        assert mapped[key] == name
    skipped = {key for key, value in mapped.items() if value is None}
    assert skipped <= {"electra.embeddings.position_ids", "electra.embeddings.token_type_ids",
                       "generator_lm_head.weight"}  # fmt: skip
    for key, value in mapped.items():
        if value is not None:
            assert table.tf_to_hf(value[0]) == (key, value[1])
