"""Google TF checkpoint -> HuggingFace folder: every tensor back where HuggingFace keeps it."""

import subprocess
import sys

import numpy as np
import torch
from finetuning_fixtures import FOLDER
from transformers import BertConfig as HFConfig
from transformers import BertForPreTraining, BertForQuestionAnswering

from bertfam import tinydata
from bertfam.checkpoints import read_hf_weights
from bertfam.tf.checkpoint import save_name_based_checkpoint


def convert(*args):
    return subprocess.run(
        [sys.executable, str(FOLDER / "convert_tf_checkpoint_to_pytorch.py"), *map(str, args)],
        cwd=FOLDER, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def google_name(key):
    """Google's bert_model.ckpt name for a HuggingFace BERT key, and whether its matrix is
    transposed: written out here from Google's modeling.py and run_pretraining.py, not from
    our table. None for what Google's files do not hold."""
    key = key if key.startswith(("bert.", "cls.")) else f"bert.{key}"
    if key.endswith(("position_ids", "token_type_ids")) or key.startswith(
        "cls.predictions.decoder"
    ):
        return None
    special = {
        "cls.predictions.bias": "cls/predictions/output_bias",
        "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",  # [2, H] as is
        "cls.seq_relationship.bias": "cls/seq_relationship/output_bias",
    }
    if key in special:
        return special[key], False
    module, leaf = key.rsplit(".", 1)
    scope = module.replace(".", "/").replace("encoder/layer/", "encoder/layer_")
    if module.endswith("LayerNorm"):
        return f"{scope}/{'gamma' if leaf == 'weight' else 'beta'}", False
    if module.endswith("_embeddings"):
        return scope, False
    return f"{scope}/{'kernel' if leaf == 'weight' else 'bias'}", leaf == "weight"


def google_checkpoint(hf_folder, target):
    """HuggingFace weights written as Google's bert_model.ckpt, with its config and vocab."""
    target.mkdir()
    weights = {}
    for key, value in read_hf_weights(next(hf_folder.glob("*.safetensors"))).items():
        named = google_name(key)
        if named is not None:
            weights[named[0]] = np.ascontiguousarray(value.T) if named[1] else value
    weights["global_step"] = np.int64(1000)  # bookkeeping Google's files carry
    weights["bert/encoder/layer_0/attention/self/query/kernel/adam_m"] = np.zeros((1,), np.float32)
    save_name_based_checkpoint(target / "bert_model.ckpt", weights)
    return target / "bert_model.ckpt"


def test_round_trip_keeps_every_tensor(tmp_path):
    torch.manual_seed(0)
    reference = BertForPreTraining(HFConfig(**tinydata.PARITY_SHAPES)).eval()
    reference.save_pretrained(tmp_path / "hf")
    prefix = google_checkpoint(tmp_path / "hf", tmp_path / "google")
    tinydata.vocab_file(tmp_path / "google" / "vocab.txt")
    config = tmp_path / "google" / "bert_config.json"
    config.write_text((tmp_path / "hf" / "config.json").read_text())
    result = convert("--tf_checkpoint_path", prefix, "--bert_config_file", config,
                     "--pytorch_dump_path", tmp_path / "out")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    converted = BertForPreTraining.from_pretrained(tmp_path / "out").eval()
    expected, got = reference.state_dict(), converted.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=key)
    assert (tmp_path / "out" / "vocab.txt").read_text() == (
        tmp_path / "google" / "vocab.txt"
    ).read_text()


def test_minilm_through_google_format_loads_into_huggingface(minilm_dir, tmp_path):
    prefix = google_checkpoint(minilm_dir, tmp_path / "google")
    result = convert("--tf_checkpoint_path", prefix, "--bert_config_file", minilm_dir / "config.json",
                     "--vocab_file", minilm_dir / "vocab.txt", "--pytorch_dump_path", tmp_path / "out")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    original = read_hf_weights(next(minilm_dir.glob("*.safetensors")))
    model = BertForQuestionAnswering.from_pretrained(tmp_path / "out")
    state = model.state_dict()
    for key, value in original.items():
        name = key if key.startswith("bert.") else f"bert.{key}"
        if name in state:
            np.testing.assert_array_equal(state[name].numpy(), value, err_msg=name)


def test_bad_input_is_one_line(tmp_path):
    torch.manual_seed(0)
    BertForPreTraining(HFConfig(**tinydata.PARITY_SHAPES)).save_pretrained(tmp_path / "hf")
    prefix = google_checkpoint(tmp_path / "hf", tmp_path / "google")
    tinydata.vocab_file(tmp_path / "google" / "vocab.txt")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(
        (tmp_path / "hf" / "config.json")
        .read_text()
        .replace('"intermediate_size": 37', '"intermediate_size": 40')
    )
    for args, expected in (
        (
            ["--tf_checkpoint_path", tmp_path / "absent.ckpt", "--bert_config_file", wrong],
            "no absent.ckpt.index there",
        ),
        (
            ["--tf_checkpoint_path", prefix, "--bert_config_file", wrong],
            "bert.encoder.layer.0.intermediate.dense.weight",
        ),
    ):
        result = convert(*args, "--pytorch_dump_path", tmp_path / "out")
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not (tmp_path / "out").exists()
