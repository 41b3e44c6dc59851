"""Our TensorFlow BERT against HuggingFace's PyTorch BERT on the same weights, to 1e-5."""

import modeling
import numpy as np
import pytest
import tensorflow as tf
import torch
from transformers import BertConfig as HFConfig
from transformers import BertForPreTraining as HFPreTraining
from transformers import BertForQuestionAnswering as HFQuestionAnswering
from transformers import BertForSequenceClassification as HFClassifier
from transformers import BertModel as HFBertModel

from bertfam import tinydata
from bertfam.bert_config import BertConfig
from bertfam.checkpoints import CheckpointError
from bertfam.testing import as_tf, hf_outputs, ours_from
from bertfam.testing import parity_inputs as inputs
from bertfam.tf.checkpoint import (
    assign_weights,
    read_init_checkpoint,
    save_name_based_checkpoint,
    variables_by_name,
)
from bertfam.tf.losses import pretraining_losses

TINY = tinydata.PARITY_SHAPES


@pytest.fixture(params=["safetensors", "pytorch_model.bin", "google_checkpoint"])
def weights_format(request):
    return request.param


def save(hf_model, tmp_path, weights_format):
    """Write HF weights as a HF folder (either file) or as a Google-named TF checkpoint."""
    folder = tmp_path / "hf"
    hf_model.save_pretrained(folder, safe_serialization=weights_format == "safetensors")
    config = BertConfig.from_json_file(folder / "config.json")
    if weights_format != "google_checkpoint":
        return folder, config
    weights, _ = read_init_checkpoint(folder)
    return save_name_based_checkpoint(tmp_path / "bert_model.ckpt", weights), config


def test_encoder_matches_huggingface(tmp_path, weights_format):
    torch.manual_seed(0)
    hf = HFBertModel(HFConfig(**TINY)).eval()
    source, config = save(hf, tmp_path, weights_format)
    ours, report = ours_from(source, modeling.BertModel, config)
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
    ours, report = ours_from(source, modeling.BertForQuestionAnswering, config)
    assert "cls/squad/output_weights" in report.restored
    start, end = ours(*as_tf(*inputs(TINY["vocab_size"])))
    reference = hf_outputs(hf, *inputs(TINY["vocab_size"]))
    np.testing.assert_allclose(start.numpy(), reference.start_logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(end.numpy(), reference.end_logits.numpy(), atol=1e-5)


def test_classifier_matches_huggingface(tmp_path, weights_format):
    torch.manual_seed(2)
    hf = HFClassifier(HFConfig(num_labels=3, **TINY)).eval()
    source, config = save(hf, tmp_path, weights_format)
    ours, _ = ours_from(
        source, lambda c: modeling.BertForSequenceClassification(c, num_labels=3), config
    )
    logits = ours(*as_tf(*inputs(TINY["vocab_size"])))
    reference = hf_outputs(hf, *inputs(TINY["vocab_size"]))
    np.testing.assert_allclose(logits.numpy(), reference.logits.numpy(), atol=1e-5)


def test_pretraining_heads_and_losses_match_huggingface(tmp_path, weights_format):
    torch.manual_seed(3)
    hf = HFPreTraining(HFConfig(**TINY)).eval()
    with torch.no_grad():
        hf.cls.predictions.bias.normal_()  # tied to the decoder's bias: not zero here
        hf.cls.predictions.transform.LayerNorm.weight.normal_(1.0, 0.1)
    source, config = save(hf, tmp_path, weights_format)
    ours, report = ours_from(source, modeling.BertForPreTraining, config)
    assert report.newly_initialized == [] and report.unused == []
    ids, mask, segments = inputs(TINY["vocab_size"])
    positions = np.array([[1, 4, 7, 0], [2, 3, 8, 0], [1, 2, 3, 0]])
    weights = np.array([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 0, 0]], np.float32)
    labels = np.random.RandomState(4).randint(0, TINY["vocab_size"], positions.shape)
    next_sentence = np.array([[0], [1], [1]])
    mlm_logits, nsp_logits = ours(*as_tf(ids, mask, segments, positions))

    hf_labels = np.full(ids.shape, -100)
    for row in range(len(ids)):
        real = weights[row] > 0
        hf_labels[row, positions[row][real]] = labels[row][real]
    with torch.no_grad():
        reference = hf(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            token_type_ids=torch.tensor(segments),
            labels=torch.tensor(hf_labels),
            next_sentence_label=torch.tensor(next_sentence[:, 0]),
        )
    gathered = np.take_along_axis(reference.prediction_logits.numpy(), positions[..., None], 1)
    np.testing.assert_allclose(mlm_logits.numpy(), gathered, atol=1e-5)
    np.testing.assert_allclose(nsp_logits.numpy(), reference.seq_relationship_logits, atol=1e-5)

    batch = {
        "masked_lm_ids": tf.constant(labels),
        "masked_lm_weights": tf.constant(weights),
        "next_sentence_labels": tf.constant(next_sentence),
    }
    losses = pretraining_losses(mlm_logits, nsp_logits, batch)
    # HuggingFace averages over the real predictions; Google adds 1e-5 to their count.
    count = weights.sum()
    nsp = torch.nn.functional.cross_entropy(
        reference.seq_relationship_logits, torch.tensor(next_sentence[:, 0])
    ).item()
    hf_mlm = reference.loss.item() - nsp
    assert float(losses["mlm_loss"]) == pytest.approx(hf_mlm * count / (count + 1e-5), rel=1e-5)
    assert float(losses["nsp_loss"]) == pytest.approx(nsp, rel=1e-5)
    assert float(losses["total_loss"]) == pytest.approx(float(losses["mlm_loss"]) + nsp, rel=1e-5)


def test_real_minilm_checkpoint_matches_huggingface(minilm_dir):
    config = BertConfig.from_json_file(minilm_dir / "config.json")
    ours, report = ours_from(minilm_dir, modeling.BertModel, config)
    assert len(report.restored) == 5 + 6 * 16 + 2  # embeddings, 6 layers, pooler
    hf = HFBertModel.from_pretrained(str(minilm_dir)).eval()
    ids, mask, segments = inputs(config.vocab_size, batch=2, length=24)
    sequence, pooled = ours(*as_tf(ids, mask, segments))
    reference = hf_outputs(hf, ids, mask, segments)
    np.testing.assert_allclose(sequence.numpy(), reference.last_hidden_state.numpy(), atol=1e-5)
    np.testing.assert_allclose(pooled.numpy(), reference.pooler_output.numpy(), atol=1e-5)


def test_variable_names_are_googles():
    config = BertConfig(
        vocab_size=30522,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
    )
    names = set(variables_by_name(modeling.BertForQuestionAnswering(config)))
    layer = "bert/encoder/layer_1"
    expected = {
        "bert/embeddings/word_embeddings",
        "bert/embeddings/token_type_embeddings",
        "bert/embeddings/position_embeddings",
        "bert/embeddings/LayerNorm/gamma",
        "bert/embeddings/LayerNorm/beta",
        f"{layer}/attention/self/query/kernel",
        f"{layer}/attention/self/key/bias",
        f"{layer}/attention/output/dense/kernel",
        f"{layer}/attention/output/LayerNorm/gamma",
        f"{layer}/intermediate/dense/kernel",
        f"{layer}/output/dense/bias",
        f"{layer}/output/LayerNorm/beta",
        "cls/squad/output_weights",
        "cls/squad/output_bias",
    }
    assert expected <= names and len(names) == 5 + 2 * 16 + 2
    classifier = set(variables_by_name(modeling.BertForSequenceClassification(config, 2)))
    assert {"output_weights", "output_bias", "bert/pooler/dense/kernel"} <= classifier
    pretraining = set(variables_by_name(modeling.BertForPreTraining(config)))
    heads = {
        "cls/predictions/transform/dense/kernel",
        "cls/predictions/transform/dense/bias",
        "cls/predictions/transform/LayerNorm/gamma",
        "cls/predictions/transform/LayerNorm/beta",
        "cls/predictions/output_bias",
        "cls/seq_relationship/output_weights",
        "cls/seq_relationship/output_bias",
    }
    # Google's checkpoint: the encoder, the pooler and these (the decoder is the table).
    assert (
        pretraining
        == (names - {"cls/squad/output_weights", "cls/squad/output_bias"})
        | {
            "bert/pooler/dense/kernel",
            "bert/pooler/dense/bias",
        }
        | heads
    )


def test_variables_are_listed_in_the_order_gradients_are_summed():
    # The global-norm clip sums squared gradients in this order; another order moves
    # training results in the last bits (the demo's EM/F1 with them), so it is fixed.
    model = modeling.BertForQuestionAnswering(BertConfig(**TINY))
    names = list(variables_by_name(model))
    layer = "bert/encoder/layer_0"
    assert names[:5] == [
        "bert/embeddings/position_embeddings",
        "bert/embeddings/token_type_embeddings",
        "bert/embeddings/word_embeddings",
        "bert/embeddings/LayerNorm/beta",
        "bert/embeddings/LayerNorm/gamma",
    ]
    assert names[5:21] == [
        f"{layer}/{name}"
        for name in (
            "attention/output/LayerNorm/beta",
            "attention/output/LayerNorm/gamma",
            "attention/output/dense/bias",
            "attention/output/dense/kernel",
            "attention/self/key/bias",
            "attention/self/key/kernel",
            "attention/self/query/bias",
            "attention/self/query/kernel",
            "attention/self/value/bias",
            "attention/self/value/kernel",
            "intermediate/dense/bias",
            "intermediate/dense/kernel",
            "output/LayerNorm/beta",
            "output/LayerNorm/gamma",
            "output/dense/bias",
            "output/dense/kernel",
        )
    ]
    assert names[-2:] == ["cls/squad/output_bias", "cls/squad/output_weights"]


def test_loading_reports_problems_by_name(tmp_path):
    torch.manual_seed(3)
    hf = HFBertModel(HFConfig(**TINY)).eval()
    folder, config = save(hf, tmp_path, "safetensors")
    weights, source = read_init_checkpoint(folder)
    model = modeling.BertModel(config)
    variables = variables_by_name(model)

    wrong_shape = dict(weights)
    wrong_shape["bert/pooler/dense/kernel"] = np.zeros((3, 3), np.float32)
    with pytest.raises(
        CheckpointError, match=r"bert/pooler/dense/kernel \(checkpoint \(3, 3\), model \(32, 32\)\)"
    ):
        assign_weights(variables, wrong_shape, source)

    missing = {k: v for k, v in weights.items() if "layer_2" not in k}
    with pytest.raises(
        CheckpointError, match="the checkpoint lacks 16 model variables: bert/encoder/layer_2/"
    ):
        assign_weights(variables, missing, source)

    extra = dict(weights, **{"cls/predictions/output_bias": np.zeros(99, np.float32)})
    assert assign_weights(variables, extra, source).unused == ["cls/predictions/output_bias"]


def test_unreadable_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_init_checkpoint(tmp_path / "nothing.ckpt")
    (tmp_path / "bad.ckpt.index").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read it"):
        read_init_checkpoint(tmp_path / "bad.ckpt")
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no weights"):
        read_init_checkpoint(folder)


def test_a_packed_row_gives_each_sequence_its_unpacked_outputs():
    """Two sequences packed into one row (Habana's layout): their masked-LM and
    next-sentence logits equal those of each sequence alone, so attention, positions and
    pooling never cross from one packed sequence into the other."""
    tf.random.set_seed(5)
    config = BertConfig.from_dict({**TINY, "max_position_embeddings": 32})
    model = modeling.BertForPreTraining(config)
    rng = np.random.RandomState(6)
    lengths, width = (5, 7), 16
    alone = []
    for length in lengths:
        ids = rng.randint(5, TINY["vocab_size"], (1, width)) * (np.arange(width) < length)
        mask = (np.arange(width) < length).astype(np.int64)[None]
        segments = (np.arange(width) >= 2).astype(np.int64)[None] * mask
        masked = np.array([[1, length - 2]])
        alone.append((ids, mask, segments, masked))
    packed_ids = np.concatenate([a[0][0, :n] for a, n in zip(alone, lengths)])
    pad = width - len(packed_ids)
    row = {
        "input_ids": np.pad(packed_ids, (0, pad))[None],
        "input_mask": np.pad(np.repeat([1, 2], lengths), (0, pad))[None],
        "segment_ids": np.pad(
            np.concatenate([a[2][0, :n] for a, n in zip(alone, lengths)]), (0, pad)
        )[None],
        "positions": np.pad(np.concatenate([np.arange(n) for n in lengths]), (0, pad))[None],
        "masked_lm_positions": np.array([[1, 3, 5 + 1, 5 + 5]]),
        "next_sentence_positions": np.array([[0, 5, 0]]),
    }
    mlm, nsp = model(
        *as_tf(row["input_ids"], row["input_mask"], row["segment_ids"]),
        tf.constant(row["masked_lm_positions"]),
        positions=tf.constant(row["positions"]),
        next_sentence_positions=tf.constant(row["next_sentence_positions"]),
    )
    for index, (ids, mask, segments, masked) in enumerate(alone):
        mlm_alone, nsp_alone = model(*as_tf(ids, mask, segments), tf.constant(masked))
        np.testing.assert_allclose(mlm[0, 2 * index : 2 * index + 2], mlm_alone[0], atol=1e-5)
        np.testing.assert_allclose(nsp[0, index], nsp_alone[0], atol=1e-5)
