"""Our TensorFlow ELECTRA against HuggingFace's PyTorch ELECTRA on the same weights, to
1e-5: the discriminator (``ElectraForPreTraining``), the generator
(``ElectraForMaskedLM``) and the SQuAD model (``ElectraForQuestionAnswering``), each read
from a HuggingFace folder through the ELECTRA name tables; and the pre-training pair's
names, shapes and shared tables."""

import modeling
import numpy as np
import pytest
import tensorflow as tf
import torch
from transformers import ElectraConfig as HFConfig
from transformers import ElectraForMaskedLM as HFGenerator
from transformers import ElectraForPreTraining as HFDiscriminator
from transformers import ElectraForQuestionAnswering as HFQuestionAnswering

from bertfam.bert_config import BertConfigError
from bertfam.electra_config import SIZES, ElectraConfig
from bertfam.testing import as_tf, hf_outputs, ours_from
from bertfam.testing import parity_inputs as inputs
from bertfam.tf.checkpoint import variables_by_name

# ELECTRA-small's layout (embeddings narrower than the encoder, so projected), shrunk.
TINY = dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
            type_vocab_size=2, hidden_act="gelu")  # fmt: skip


def saved(hf_model, tmp_path):
    folder = tmp_path / "hf"
    hf_model.save_pretrained(folder)
    return folder, ElectraConfig.from_json_file(folder / "config.json")


@pytest.mark.parametrize("embedding_size", [16, 32], ids=["projected", "hidden-wide"])
def test_discriminator_matches_huggingface(tmp_path, embedding_size):
    torch.manual_seed(0)
    hf = HFDiscriminator(HFConfig(**{**TINY, "embedding_size": embedding_size})).eval()
    folder, config = saved(hf, tmp_path)
    ours, report = ours_from(folder, modeling.ElectraDiscriminator, config)
    assert report.newly_initialized == [] and report.unused == []
    assert ("electra/embeddings_project/kernel" in report.restored) == (embedding_size == 16)
    ids, mask, segments = inputs(TINY["vocab_size"])
    logits = ours(*as_tf(ids, mask, segments))
    reference = hf_outputs(hf, ids, mask, segments).logits.numpy()
    np.testing.assert_allclose(logits.numpy(), reference, atol=1e-5)


def test_generator_matches_huggingface(tmp_path):
    torch.manual_seed(1)
    hf = HFGenerator(HFConfig(**TINY)).eval()
    folder, config = saved(hf, tmp_path)
    ours, report = ours_from(folder, modeling.ElectraGenerator, config)
    assert report.newly_initialized == [] and report.unused == []
    assert "generator_predictions/output_bias" in report.restored
    ids, mask, segments = inputs(TINY["vocab_size"])
    every_position = np.tile(np.arange(ids.shape[1]), (ids.shape[0], 1))
    logits = ours(*as_tf(ids, mask, segments, every_position))
    reference = hf_outputs(hf, ids, mask, segments).logits.numpy()
    np.testing.assert_allclose(logits.numpy(), reference, atol=1e-5)


def test_question_answering_matches_huggingface(tmp_path):
    torch.manual_seed(2)
    hf = HFQuestionAnswering(HFConfig(**TINY)).eval()
    folder, config = saved(hf, tmp_path)
    ours, report = ours_from(folder, modeling.ElectraForQuestionAnswering, config)
    assert report.newly_initialized == [] and report.unused == []
    start, end = ours(*as_tf(*inputs(TINY["vocab_size"])))
    reference = hf_outputs(hf, *inputs(TINY["vocab_size"]))
    np.testing.assert_allclose(start.numpy(), reference.start_logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(end.numpy(), reference.end_logits.numpy(), atol=1e-5)


def test_pretraining_pair_shares_the_tables_under_googles_names():
    config = ElectraConfig.from_dict(dict(SIZES["base"], vocab_size=30528))
    pair = modeling.ElectraPretrainingModel(config, generator_hidden_size=0.3333333)
    names = {name: tuple(v.shape) for name, v in variables_by_name(pair).items()}
    generator = {n: s for n, s in names.items() if n.startswith("generator")}
    # Google's layout: the generator has no tables of its own,
    # projects the 768-wide embeddings to its 256 hidden units, 12 layers of 4 heads.
    assert not any(n.startswith("generator/embeddings/") for n in names)
    assert generator["generator/embeddings_project/kernel"] == (768, 256)
    assert generator["generator/encoder/layer_11/intermediate/dense/kernel"] == (256, 1024)
    assert generator["generator_predictions/dense/kernel"] == (256, 768)
    assert generator["generator_predictions/output_bias"] == (30528,)
    assert names["discriminator_predictions/dense_1/kernel"] == (768, 1)
    assert "electra/embeddings_project/kernel" not in names  # base: embeddings hidden-wide
    assert names["electra/embeddings/word_embeddings"] == (30528, 768)
    word_tables = [
        v for v in pair.trainable_variables if v.name.startswith("electra/embeddings/word")
    ]
    assert len(word_tables) == 1  # one table, read by both
    assert (
        pair.generator.electra.embeddings.word_embeddings
        is pair.discriminator.electra.embeddings.word_embeddings
    )


@pytest.mark.parametrize(
    "size, fraction, expected",
    [("base", 0.3333333, (256, 4, 1024)), ("large", 0.25, (256, 4, 1024)),
     ("small", 0.25, (64, 1, 256)), ("base", 1.0, (768, 12, 3072))],
)  # fmt: skip
def test_generator_width_rounds_up_to_heads_of_64(size, fraction, expected):
    generator = ElectraConfig.from_dict(dict(SIZES[size], vocab_size=30528)).generator(fraction)
    width = generator.hidden_size, generator.num_attention_heads, generator.intermediate_size
    assert width == expected
    with pytest.raises(BertConfigError, match="--generator_hidden_size=0"):
        generator.generator(0)


def hf_joint_head(ours: modeling.JointSquadHead, hidden: int, beam: int):
    """HuggingFace's XLNet-style SQuAD head (XLM's copy) holding our head's weights."""
    from transformers import XLMConfig
    from transformers.models.xlm.modeling_xlm import XLMSQuADHead

    config = XLMConfig(emb_dim=hidden, start_n_top=beam, end_n_top=beam, layer_norm_eps=1e-12)
    hf = XLMSQuADHead(config).eval()
    pairs = {
        hf.start_logits.dense: ours.start_dense,
        hf.end_logits.dense_0: ours.end_dense_0,
        hf.end_logits.dense_1: ours.end_dense_1,
        hf.answer_class.dense_0: ours.answer_class[0],
        hf.answer_class.dense_1: ours.answer_class[1],
    }
    with torch.no_grad():
        for linear, dense in pairs.items():
            linear.weight.copy_(torch.from_numpy(dense.kernel.numpy().T))
            if dense.bias is not None:
                linear.bias.copy_(torch.from_numpy(dense.bias.numpy()))
        hf.end_logits.LayerNorm.weight.copy_(torch.from_numpy(ours.end_norm.gamma.numpy()))
        hf.end_logits.LayerNorm.bias.copy_(torch.from_numpy(ours.end_norm.beta.numpy()))
    return hf


def test_answer_mask_leaves_context_and_cls_open():
    # [CLS] q q [SEP] c c c [SEP] pad pad
    mask = tf.constant([[1, 1, 1, 1, 1, 1, 1, 1, 0, 0]])
    segments = tf.constant([[0, 0, 0, 0, 1, 1, 1, 1, 0, 0]])
    expected = [[0, 1, 1, 1, 0, 0, 0, 1, 1, 1]]
    np.testing.assert_array_equal(modeling.answer_mask(mask, segments).numpy(), expected)


def test_joint_head_matches_huggingface_xlnet_head():
    import tensorflow as tf

    from bertfam.tf.losses import joint_loss

    tf.random.set_seed(3)
    config = ElectraConfig.from_dict(TINY)
    beam, batch, length, hidden = 3, 4, 12, TINY["hidden_size"]
    head = modeling.JointSquadHead(config, beam, version_2_with_negative=True)
    hf = hf_joint_head(head, hidden, beam)
    rng = np.random.default_rng(0)
    states = rng.standard_normal((batch, length, hidden)).astype(np.float32)
    lengths = np.array([12, 9, 7, 10])
    mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int32)
    segments = ((np.arange(length)[None] >= 4) * mask).astype(np.int32)
    p_mask = modeling.answer_mask(tf.constant(mask), tf.constant(segments))
    starts, ends = np.array([0, 5, 4, 6]), np.array([0, 7, 5, 8])

    start, end, cls = head.training_logits(tf.constant(states), p_mask, tf.constant(starts))
    ours = joint_loss(start, end, cls, tf.constant(starts), tf.constant(ends))
    torch_in = dict(
        p_mask=torch.from_numpy(p_mask.numpy()), cls_index=torch.zeros(batch, dtype=torch.long)
    )
    with torch.no_grad():
        (reference,) = hf(torch.from_numpy(states), start_positions=torch.from_numpy(starts),
                          end_positions=torch.from_numpy(ends),
                          is_impossible=torch.from_numpy((starts == 0).astype(np.float32)),
                          **torch_in)  # fmt: skip
        beams = hf(torch.from_numpy(states), **torch_in)
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5)

    start_lp, start_ix, end_lp, end_ix, cls = head.beams(tf.constant(states), p_mask)
    # HuggingFace's "log_probs" are softmax probabilities; NVIDIA's are log-softmax.
    np.testing.assert_allclose(start_lp.numpy(), np.log(beams[0].numpy()), atol=1e-5)
    np.testing.assert_array_equal(start_ix.numpy(), beams[1].numpy())
    # HuggingFace flattens the ends end-major (j * K + i); NVIDIA's layout is i * K + j.
    start_major = lambda x: x.numpy().reshape(batch, beam, beam).transpose(0, 2, 1)  # noqa: E731
    end_probabilities = np.exp(end_lp.numpy().reshape(batch, beam, beam))
    np.testing.assert_allclose(end_probabilities, start_major(beams[2]), atol=1e-6)
    np.testing.assert_array_equal(end_ix.numpy().reshape(batch, beam, beam), start_major(beams[3]))
    np.testing.assert_allclose(cls.numpy(), beams[4].numpy(), atol=1e-5)
