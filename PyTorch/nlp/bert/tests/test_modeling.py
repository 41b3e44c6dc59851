"""Our PyTorch BERT against HuggingFace's on the same weights: outputs to 1e-5, one AdamW
step to 1e-6, and checkpoints both ways."""

import copy

import modeling
import numpy as np
import pytest
import torch
from transformers import BertConfig as HFConfig
from transformers import BertForPreTraining as HFPreTraining
from transformers import BertForQuestionAnswering as HFQuestionAnswering
from transformers import BertForSequenceClassification as HFClassifier
from transformers import BertModel as HFBertModel

from bertfam import tinydata
from bertfam.bert_config import BertConfig
from bertfam.checkpoints import CheckpointError
from bertfam.torch.checkpoint import load_pretrained, load_weights, save_pretrained
from bertfam.torch.losses import pretraining_losses, span_loss

TINY = tinydata.PARITY_SHAPES


def inputs(vocab_size, batch=3, length=13, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    mask[-1, 4:] = 0
    segments = torch.zeros_like(ids)
    segments[:, 6:] = 1
    return ids, mask, segments


def saved(hf_model, tmp_path, safetensors):
    folder = tmp_path / "hf"
    hf_model.save_pretrained(folder, safe_serialization=safetensors)
    return folder, BertConfig.from_json_file(folder / "config.json")


@pytest.mark.parametrize(
    "safetensors", [True, False], ids=["model.safetensors", "pytorch_model.bin"]
)
def test_encoder_matches_huggingface(tmp_path, safetensors):
    torch.manual_seed(0)
    hf = HFBertModel(HFConfig(**TINY)).eval()
    folder, config = saved(hf, tmp_path, safetensors)
    ours = modeling.BertModel(config).eval()
    report = load_pretrained(ours, folder)
    assert report.newly_initialized == [] and report.unused == []
    ids, mask, segments = inputs(TINY["vocab_size"])
    with torch.no_grad():
        sequence, pooled = ours(ids, mask, segments)
        reference = hf(input_ids=ids, attention_mask=mask, token_type_ids=segments)
    torch.testing.assert_close(sequence, reference.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(pooled, reference.pooler_output, atol=1e-5, rtol=0)


def test_heads_match_huggingface(tmp_path):
    torch.manual_seed(1)
    hf_qa = HFQuestionAnswering(HFConfig(**TINY)).eval()
    folder, config = saved(hf_qa, tmp_path / "qa", True)
    ours_qa = modeling.BertForQuestionAnswering(config).eval()
    load_pretrained(ours_qa, folder)
    hf_cls = HFClassifier(HFConfig(num_labels=3, **TINY)).eval()
    folder, _ = saved(hf_cls, tmp_path / "cls", True)
    ours_cls = modeling.BertForSequenceClassification(config, num_labels=3).eval()
    load_pretrained(ours_cls, folder)
    ids, mask, segments = inputs(TINY["vocab_size"])
    with torch.no_grad():
        start, end = ours_qa(ids, mask, segments)
        reference = hf_qa(input_ids=ids, attention_mask=mask, token_type_ids=segments)
        torch.testing.assert_close(start, reference.start_logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(end, reference.end_logits, atol=1e-5, rtol=0)
        logits = ours_cls(ids, mask, segments)
        torch.testing.assert_close(
            logits,
            hf_cls(input_ids=ids, attention_mask=mask, token_type_ids=segments).logits,
            atol=1e-5,
            rtol=0,
        )


def pretraining_labels(ids, seed=5):
    """Masked-LM labels (-1 where nothing is predicted) with 3 predictions a row, their
    positions (padded with 0, label -1), and next-sentence labels."""
    generator = torch.Generator().manual_seed(seed)
    batch, length = ids.shape
    positions = torch.stack(
        [torch.randperm(length - 1, generator=generator)[:4] + 1 for _ in range(batch)]
    )
    positions[:, 3] = 0  # the padding slot of a row with fewer predictions
    picked = ids.gather(1, positions)
    picked[:, 3] = -1
    labels = torch.full_like(ids, -1)
    labels.scatter_(1, positions[:, :3], picked[:, :3])
    return labels, positions, picked, torch.tensor([0, 1, 1])


@pytest.mark.parametrize(
    "safetensors", [True, False], ids=["model.safetensors", "pytorch_model.bin"]
)
def test_pretraining_heads_and_losses_match_huggingface(tmp_path, safetensors):
    torch.manual_seed(4)
    hf = HFPreTraining(HFConfig(**TINY)).eval()
    folder, config = saved(hf, tmp_path, safetensors)
    ours = modeling.BertForPreTraining(config).eval()
    report = load_pretrained(ours, folder)
    assert report.newly_initialized == [] and report.unused == []
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight
    ids, mask, segments = inputs(TINY["vocab_size"])
    labels, positions, picked, nsp_labels = pretraining_labels(ids)
    with torch.no_grad():
        reference = hf(
            input_ids=ids, attention_mask=mask, token_type_ids=segments,
            labels=labels.masked_fill(labels == -1, -100),  # HF's "not a prediction"
            next_sentence_label=nsp_labels,
        )  # fmt: skip
        mlm, nsp = ours(ids, mask, segments)
        gathered, _ = ours(ids, mask, segments, masked_positions=positions)
        mlm_sum, nsp_sum = pretraining_losses(gathered, picked, nsp, nsp_labels)
    torch.testing.assert_close(mlm, reference.prediction_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(nsp, reference.seq_relationship_logits, atol=1e-5, rtol=0)
    expected = reference.prediction_logits.gather(
        1, positions[..., None].expand(-1, -1, TINY["vocab_size"])
    )
    torch.testing.assert_close(gathered, expected, atol=1e-5, rtol=0)
    # HF's loss: the mean over the 9 predictions plus the mean over the 3 sequences.
    torch.testing.assert_close(mlm_sum / 9 + nsp_sum / 3, reference.loss, atol=1e-5, rtol=0)


def test_pretraining_model_saves_a_folder_huggingface_loads_whole(tmp_path):
    torch.manual_seed(6)
    config = BertConfig(**TINY)
    ours = modeling.BertForPreTraining(config).eval()
    folder = save_pretrained(ours, config, tmp_path / "pretrained")
    hf, info = HFPreTraining.from_pretrained(str(folder), output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    ids, mask, segments = inputs(TINY["vocab_size"])
    with torch.no_grad():
        mlm, nsp = ours(ids, mask, segments)
        reference = hf.eval()(input_ids=ids, attention_mask=mask, token_type_ids=segments)
    torch.testing.assert_close(mlm, reference.prediction_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(nsp, reference.seq_relationship_logits, atol=1e-5, rtol=0)


def test_real_minilm_checkpoint_matches_huggingface(minilm_dir):
    config = BertConfig.from_json_file(minilm_dir / "config.json")
    ours = modeling.BertModel(config).eval()
    report = load_pretrained(ours, minilm_dir)
    assert len(report.restored) == 5 + 6 * 16 + 2
    hf = HFBertModel.from_pretrained(str(minilm_dir)).eval()
    ids, mask, segments = inputs(config.vocab_size, batch=2, length=24)
    with torch.no_grad():
        sequence, pooled = ours(ids, mask, segments)
        reference = hf(input_ids=ids, attention_mask=mask, token_type_ids=segments)
    torch.testing.assert_close(sequence, reference.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(pooled, reference.pooler_output, atol=1e-5, rtol=0)


def test_one_adamw_step_gives_the_same_parameters(tmp_path):
    torch.manual_seed(2)
    config_values = dict(TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    hf = HFQuestionAnswering(HFConfig(**config_values))
    folder, config = saved(hf, tmp_path, True)
    ours = modeling.BertForQuestionAnswering(config)
    load_pretrained(ours, folder)
    ids, mask, segments = inputs(TINY["vocab_size"])
    starts, ends = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 3])
    hf_optimizer = torch.optim.AdamW(hf.parameters(), lr=1e-3, eps=1e-6, weight_decay=0.01)
    our_optimizer = torch.optim.AdamW(ours.parameters(), lr=1e-3, eps=1e-6, weight_decay=0.01)
    hf(
        input_ids=ids,
        attention_mask=mask,
        token_type_ids=segments,
        start_positions=starts,
        end_positions=ends,
    ).loss.backward()
    span_loss(*ours(ids, mask, segments), starts, ends).backward()
    hf_optimizer.step()
    our_optimizer.step()
    theirs = dict(hf.named_parameters())
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(parameter, theirs[name], atol=1e-6, rtol=0, msg=name)


def test_saved_checkpoint_loads_into_huggingface(tmp_path, minilm_dir):
    config = BertConfig.from_json_file(minilm_dir / "config.json")
    ours = modeling.BertForQuestionAnswering(config).eval()
    load_pretrained(ours, minilm_dir, fresh_prefixes=("qa_outputs.",))
    folder = save_pretrained(
        ours, config, tmp_path / "checkpoint-10", vocab_file=minilm_dir / "vocab.txt"
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "pytorch_model.bin",
        "vocab.txt",
    ]
    hf = HFQuestionAnswering.from_pretrained(str(folder)).eval()
    ids, mask, segments = inputs(config.vocab_size)
    with torch.no_grad():
        start, _ = ours(ids, mask, segments)
        torch.testing.assert_close(
            start,
            hf(input_ids=ids, attention_mask=mask, token_type_ids=segments).start_logits,
            atol=1e-5,
            rtol=0,
        )
    reloaded = modeling.BertForQuestionAnswering(config).eval()
    assert load_pretrained(reloaded, folder).newly_initialized == []


def test_loading_problems_are_reported_by_parameter_name(tmp_path):
    torch.manual_seed(3)
    hf = HFBertModel(HFConfig(**TINY))
    weights = {k: v.numpy() for k, v in hf.state_dict().items()}
    config = BertConfig(**TINY)
    ours = modeling.BertModel(config)
    wrong = dict(weights, **{"pooler.dense.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(
        CheckpointError,
        match=r"bert.pooler.dense.weight|pooler.dense.weight \(checkpoint \(3, 3\), model \(32, 32\)\)",
    ):
        load_weights(modeling.BertModel(config), wrong, "x")
    missing = {k: v for k, v in weights.items() if ".layer.2." not in k}
    with pytest.raises(CheckpointError, match=r"lacks 16 model parameters: encoder.layer.2."):
        load_weights(ours, missing, "x")
    old_names = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): v
        for k, v in weights.items()
    }
    assert load_weights(copy.deepcopy(ours), old_names, "x").newly_initialized == []
    with pytest.raises(CheckpointError, match="no such model folder"):
        load_pretrained(ours, tmp_path / "absent")
