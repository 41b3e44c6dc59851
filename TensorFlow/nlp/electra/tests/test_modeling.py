"""Our TensorFlow ELECTRA against HuggingFace's PyTorch ELECTRA on the same weights, to
1e-5: the discriminator (``ElectraForPreTraining``), the generator
(``ElectraForMaskedLM``) and the SQuAD model (``ElectraForQuestionAnswering``), each read
from a HuggingFace folder through the ELECTRA name tables; and the pre-training pair's
names, shapes and shared tables."""

import modeling
import numpy as np
import pytest
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
    # Google's layout (upstream-surface §8.5): the generator has no tables of its own,
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
