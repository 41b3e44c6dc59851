"""bertfam.tf.encoder against HuggingFace's PyTorch ALBERT and ELECTRA on the same weights.

BERT and DistilBERT compose the encoder with their defaults and are checked in their own
folders; here the two options they do not use: factorized embeddings with one layer shared
across the stack (ALBERT), and the projection alone (ELECTRA-small), each under the root
scope and checkpoint names the model gives. Weights go through a `NameTable`, as a model
folder's would.
"""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (bertfam.tf needs it)")
torch = pytest.importorskip("torch", reason="torch is the reference's framework")
transformers = pytest.importorskip("transformers", reason="HuggingFace is the reference")

from bertfam.bert_config import BertConfig  # noqa: E402
from bertfam.checkpoints import DENSE, NORM, TABLE, NameTable, hf_weights_as_google  # noqa: E402
from bertfam.tf.checkpoint import assign_weights, variables_by_name  # noqa: E402
from bertfam.tf.encoder import EncoderNames, TransformerEncoder  # noqa: E402
from bertfam.tinydata import PARITY_SHAPES  # noqa: E402

SHAPES = dict(PARITY_SHAPES, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
EMBEDDING_SIZE = 16

# Google ALBERT's names (google-research/albert modeling.py): one layer group, reused.
ALBERT_NAMES = EncoderNames(
    layer="encoder/transformer/group_0/inner_group_0",
    attention="attention_1/self",
    attention_output="attention_1/output/dense",
    attention_layer_norm="LayerNorm",
    residual_attention="attention_1/output/add",
    intermediate="ffn_1/intermediate/dense",
    output="ffn_1/intermediate/output/dense",
    output_layer_norm="LayerNorm_1",
    residual_output="ffn_1/add",
)
ALBERT_LAYER = "albert.encoder.albert_layer_groups.0.albert_layers.0"
ALBERT_TABLE = NameTable(
    rows=(
        ("albert.embeddings.word_embeddings", "bert/embeddings/word_embeddings", TABLE),
        ("albert.embeddings.position_embeddings", "bert/embeddings/position_embeddings", TABLE),
        (
            "albert.embeddings.token_type_embeddings",
            "bert/embeddings/token_type_embeddings",
            TABLE,
        ),
        ("albert.embeddings.LayerNorm", "bert/embeddings/LayerNorm", NORM),
        (
            "albert.encoder.embedding_hidden_mapping_in",
            "bert/encoder/embedding_hidden_mapping_in",
            DENSE,
        ),
        *(
            (f"{ALBERT_LAYER}.{hf}", f"bert/encoder/transformer/group_0/inner_group_0/{tf_}", kind)
            for hf, tf_, kind in (
                ("attention.query", "attention_1/self/query", DENSE),
                ("attention.key", "attention_1/self/key", DENSE),
                ("attention.value", "attention_1/self/value", DENSE),
                ("attention.dense", "attention_1/output/dense", DENSE),
                ("attention.LayerNorm", "LayerNorm", NORM),
                ("ffn", "ffn_1/intermediate/dense", DENSE),
                ("ffn_output", "ffn_1/intermediate/output/dense", DENSE),
                ("full_layer_layer_norm", "LayerNorm_1", NORM),
            )
        ),
        ("albert.pooler", "bert/pooler/dense", DENSE),
    ),
    root="albert.",
    bare_scopes=("embeddings.", "encoder.", "pooler."),
)

ELECTRA_NAMES = EncoderNames(embedding_projection="embeddings_project")
ELECTRA_TABLE = NameTable(
    rows=(
        ("electra.embeddings.word_embeddings", "electra/embeddings/word_embeddings", TABLE),
        ("electra.embeddings.position_embeddings", "electra/embeddings/position_embeddings", TABLE),
        (
            "electra.embeddings.token_type_embeddings",
            "electra/embeddings/token_type_embeddings",
            TABLE,
        ),
        ("electra.embeddings.LayerNorm", "electra/embeddings/LayerNorm", NORM),
        ("electra.embeddings_project", "electra/embeddings_project", DENSE),
        *(
            (f"electra.encoder.layer.{{n}}.{hf}", f"electra/encoder/layer_{{n}}/{tf_}", kind)
            for hf, tf_, kind in (
                ("attention.self.query", "attention/self/query", DENSE),
                ("attention.self.key", "attention/self/key", DENSE),
                ("attention.self.value", "attention/self/value", DENSE),
                ("attention.output.dense", "attention/output/dense", DENSE),
                ("attention.output.LayerNorm", "attention/output/LayerNorm", NORM),
                ("intermediate.dense", "intermediate/dense", DENSE),
                ("output.dense", "output/dense", DENSE),
                ("output.LayerNorm", "output/LayerNorm", NORM),
            )
        ),
    ),
    root="electra.",
    bare_scopes=("embeddings.", "embeddings_project.", "encoder."),
)


def inputs(batch=3, length=11, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, SHAPES["vocab_size"], (batch, length)).astype(np.int32)
    mask = np.ones((batch, length), dtype=np.int32)
    mask[1, 7:] = 0
    segments = (np.arange(length) >= 5).astype(np.int32)[np.newaxis].repeat(batch, 0)
    return ids, mask, segments


def hf_outputs(model, ids, mask, segments):
    model.eval()
    with torch.no_grad():
        as_torch = [torch.from_numpy(a).long() for a in (ids, mask, segments)]
        return model(input_ids=as_torch[0], attention_mask=as_torch[1], token_type_ids=as_torch[2])


def loaded(encoder, hf_model, table):
    state = {key: value.numpy() for key, value in hf_model.state_dict().items()}
    report = assign_weights(variables_by_name(encoder), hf_weights_as_google(state, table), "hf")
    assert report.newly_initialized == []
    return report


def test_factorized_embeddings_and_one_shared_layer_equal_huggingface_albert():
    torch.manual_seed(0)
    hf_config = transformers.AlbertConfig(
        **SHAPES, embedding_size=EMBEDDING_SIZE, hidden_act="gelu_new"
    )
    hf = transformers.AlbertModel(hf_config)
    config = BertConfig.from_dict({**SHAPES, "hidden_act": "gelu_new"})
    encoder = TransformerEncoder(
        config, "bert", ALBERT_NAMES, embedding_size=EMBEDDING_SIZE, share_layers=True
    )
    # One layer's weights for a three-layer stack, and the embeddings at width 16.
    names = variables_by_name(encoder)
    assert sum("inner_group_0" in name for name in names) == 16
    assert tuple(names["bert/embeddings/word_embeddings"].shape) == (99, EMBEDDING_SIZE)
    assert tuple(names["bert/encoder/embedding_hidden_mapping_in/kernel"].shape) == (16, 32)
    report = loaded(encoder, hf, ALBERT_TABLE)
    assert report.unused == []

    ids, mask, segments = inputs()
    sequence, pooled = encoder(ids, mask, segments)
    expected = hf_outputs(hf, ids, mask, segments)
    np.testing.assert_allclose(sequence.numpy(), expected.last_hidden_state.numpy(), atol=1e-5)
    np.testing.assert_allclose(pooled.numpy(), expected.pooler_output.numpy(), atol=1e-5)


def test_embedding_projection_alone_equals_huggingface_electra_small_shape():
    torch.manual_seed(1)
    hf_config = transformers.ElectraConfig(**SHAPES, embedding_size=EMBEDDING_SIZE)
    hf = transformers.ElectraModel(hf_config)
    config = BertConfig.from_dict(SHAPES)
    encoder = TransformerEncoder(
        config, "electra", ELECTRA_NAMES, with_pooler=False, embedding_size=EMBEDDING_SIZE
    )
    names = variables_by_name(encoder)
    assert sum("/layer_" in name for name in names) == 3 * 16
    assert all(name.startswith("electra/") for name in names)
    loaded(encoder, hf, ELECTRA_TABLE)

    ids, mask, segments = inputs(seed=1)
    sequence, pooled = encoder(ids, mask, segments)
    expected = hf_outputs(hf, ids, mask, segments).last_hidden_state.numpy()
    assert pooled is None
    np.testing.assert_allclose(sequence.numpy(), expected, atol=1e-5)


def test_two_encoders_under_two_root_scopes_keep_their_weights_apart():
    config = BertConfig.from_dict(SHAPES)
    generator = TransformerEncoder(config, "generator", with_pooler=False)
    discriminator = TransformerEncoder(config, "discriminator", with_pooler=False)
    ours = set(variables_by_name(generator)) | set(variables_by_name(discriminator))
    assert len(ours) == 2 * len(variables_by_name(generator))
    assert "generator/encoder/layer_2/output/LayerNorm/gamma" in ours
    assert "discriminator/embeddings/word_embeddings" in ours
