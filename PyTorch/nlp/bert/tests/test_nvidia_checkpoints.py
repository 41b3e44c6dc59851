"""ckpt_<step>.pt in NVIDIA's layout, checked against NVIDIA's own names written out here
from DeepLearningExamples' PyTorch/LanguageModeling/BERT (modeling.py, run_pretraining.py),
not against our mapping table; and NVIDIA-named files read back by every script."""

import json
import pickle
import random
import subprocess
import sys

import modeling
import numpy as np
import pytest
import torch
from finetuning_fixtures import run
from pretraining_fixtures import flags, run_pretraining, tiny_config
from transformers import BertConfig as HFConfig
from transformers import BertForPreTraining as HFBertForPreTraining
from transformers import BertModel as HFBertModel

from bertfam import tinydata
from bertfam.bert_config import BertConfig
from bertfam.checkpoints import read_hf_weights
from bertfam.pretraining.hdf5 import write_hdf5_shard
from bertfam.torch.checkpoint import load_weights
from bertfam.torch.pretraining_data import ShardReader

LENGTH, PREDICTIONS, ROWS, BATCH = 64, 10, 96, 32  # 3 updates a shard, 6 an epoch of 2
# run_pretraining.py's weight-decay exclusions, as NVIDIA writes them.
NO_DECAY = ("bias", "gamma", "beta", "LayerNorm")
# The keys our run adds for an exact resume, which NVIDIA's script never reads.
OUR_KEYS = ("scheduler", "global_step", "phase2", "position", "rng")


def nvidia_parameters(config: dict, vocab_size: int):
    """[(name, shape)] of NVIDIA's BertForPreTraining.named_parameters(), in its order:
    LinearActivation (``dense_act``) where a Linear is followed by its activation."""
    hidden, inner = config["hidden_size"], config["intermediate_size"]

    def linear(name, out_size, in_size):
        return [(f"{name}.weight", (out_size, in_size)), (f"{name}.bias", (out_size,))]

    def norm(name):
        return [(f"{name}.weight", (hidden,)), (f"{name}.bias", (hidden,))]

    names = [
        ("bert.embeddings.word_embeddings.weight", (vocab_size, hidden)),
        ("bert.embeddings.position_embeddings.weight", (config["max_position_embeddings"], hidden)),
        ("bert.embeddings.token_type_embeddings.weight", (config["type_vocab_size"], hidden)),
        *norm("bert.embeddings.LayerNorm"),
    ]
    for i in range(config["num_hidden_layers"]):
        layer = f"bert.encoder.layer.{i}"
        for part in ("query", "key", "value"):
            names += linear(f"{layer}.attention.self.{part}", hidden, hidden)
        names += linear(f"{layer}.attention.output.dense", hidden, hidden)
        names += norm(f"{layer}.attention.output.LayerNorm")
        names += linear(f"{layer}.intermediate.dense_act", inner, hidden)
        names += linear(f"{layer}.output.dense", hidden, inner)
        names += norm(f"{layer}.output.LayerNorm")
    names += linear("bert.pooler.dense_act", hidden, hidden)
    # BertLMPredictionHead's own bias comes before its submodules' parameters.
    names += [("cls.predictions.bias", (vocab_size,))]
    names += linear("cls.predictions.transform.dense_act", hidden, hidden)
    names += norm("cls.predictions.transform.LayerNorm")
    names += linear("cls.seq_relationship", 2, hidden)
    return names


def nvidia_state_keys(config: dict, vocab_size: int) -> dict:
    """{key: shape} of NVIDIA's state_dict(): the parameters plus the decoder weight, tied
    to the word embeddings, which a state dict lists under both names."""
    keys = dict(nvidia_parameters(config, vocab_size))
    keys["cls.predictions.decoder.weight"] = (vocab_size, config["hidden_size"])
    return keys


def nvidia_to_hf(state: dict) -> dict:
    """NVIDIA's names to HuggingFace's, by NVIDIA's modeling: the fused layers' one Linear is
    HuggingFace's ``dense``, and HuggingFace lists the masked-LM bias under the decoder too."""
    hf = {key.replace(".dense_act.", ".dense."): value for key, value in state.items()}
    hf["cls.predictions.decoder.bias"] = hf["cls.predictions.bias"]
    return hf


def hf_to_nvidia(state: dict) -> dict:
    renamed = {}
    for key, value in state.items():
        for module in ("intermediate.dense.", "pooler.dense.", "transform.dense."):
            key = key.replace(module, module.replace("dense.", "dense_act."))
        renamed[key] = value
    renamed.pop("cls.predictions.decoder.bias")
    return renamed


def padded(size: int) -> int:
    return -(-size // 8) * 8  # NVIDIA's run_pretraining.py: vocab_size up to a multiple of 8


def random_shards(folder, vocab_size, count=2, seed=0):
    """`count` NVIDIA hdf5 shards of random sequences, named as bertPrep names them."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for index in range(count):
        positions = np.zeros((ROWS, PREDICTIONS), np.int64)
        for row in range(ROWS):
            picked = np.sort(rng.choice(np.arange(1, LENGTH), PREDICTIONS - row % 3, replace=False))
            positions[row, : len(picked)] = picked
        arrays = {
            "input_ids": rng.integers(5, vocab_size, (ROWS, LENGTH)),
            "input_mask": (np.arange(LENGTH) < rng.integers(LENGTH // 2, LENGTH + 1, (ROWS, 1))),
            "segment_ids": (np.arange(LENGTH) >= LENGTH // 2).repeat(ROWS).reshape(LENGTH, ROWS).T,
            "masked_lm_positions": positions,
            "masked_lm_ids": np.where(
                positions > 0, rng.integers(5, vocab_size, positions.shape), 0
            ),
            "next_sentence_labels": rng.integers(0, 2, (ROWS, 1)),
        }
        write_hdf5_shard(arrays, folder / f"books_wiki_en_corpus_training_{index}.hdf5")
    return folder


def succeeded(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, minilm_dir):
    """A 7-update run (6 a shard epoch) checkpointing every update: ckpt_5 mid-shard,
    ckpt_6 at the next epoch's first shard, ckpt_7 one batch into it."""
    root = tmp_path_factory.mktemp("nvidia")
    vocab = minilm_dir / "vocab.txt"
    size = len(vocab.read_text(encoding="utf-8").splitlines())
    config = tiny_config(root / "bert_config.json", vocab)
    shards = random_shards(root / "shards", size)
    output = root / "out"
    common = dict(train_batch_size=BATCH, max_steps=7, num_steps_per_checkpoint=1)
    succeeded(run_pretraining(*flags(shards, config, output, **common)))
    return {
        "root": root, "vocab": vocab, "config": config, "shards": shards, "output": output,
        "flags": common, "vocab_size": padded(size),
    }  # fmt: skip


def test_ckpt_model_has_nvidias_keys_and_shapes(trained):
    config = json.loads(trained["config"].read_text())
    saved = load(trained["output"] / "ckpt_7.pt")
    wanted = nvidia_state_keys(config, trained["vocab_size"])
    assert {k: tuple(v.shape) for k, v in saved["model"].items()} == wanted
    assert list(saved)[:5] == ["model", "optimizer", "files", "epoch", "data_loader"]
    assert saved["data_loader"] is None
    assert set(saved) - {"model", "optimizer", "files", "epoch", "data_loader"} == set(OUR_KEYS)


def test_ckpt_optimizer_moments_follow_nvidias_parameter_groups(trained):
    """NVIDIA's optimizer groups named_parameters() by its no-decay rule; its FusedLAMB
    loads our moments by that order, so each must have its parameter's shape."""
    config = json.loads(trained["config"].read_text())
    parameters = nvidia_parameters(config, trained["vocab_size"])
    decayed = [shape for name, shape in parameters if not any(nd in name for nd in NO_DECAY)]
    excluded = [shape for name, shape in parameters if any(nd in name for nd in NO_DECAY)]
    optimizer = load(trained["output"] / "ckpt_7.pt")["optimizer"]
    groups = optimizer["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    for group, shapes in zip(groups, (decayed, excluded)):
        got = [tuple(optimizer["state"][index]["exp_avg"].shape) for index in group["params"]]
        assert got == shapes


def test_renaming_keeps_the_network(trained):
    """The run's checkpoint, loaded strictly by NVIDIA's names into HuggingFace's
    BertForPreTraining, computes what our model loaded from it computes."""
    path = trained["output"] / "ckpt_7.pt"
    values = json.loads(trained["config"].read_text())
    reference = HFBertForPreTraining(HFConfig(**{**values, "vocab_size": trained["vocab_size"]}))
    reference.load_state_dict(nvidia_to_hf(load(path)["model"]), strict=True)
    config = BertConfig.from_json_file(trained["config"])
    ours = modeling.BertForPreTraining(
        config.__class__(**{**config.to_dict(), "vocab_size": trained["vocab_size"]})
    )
    report = load_weights(ours, read_hf_weights(path), str(path))
    assert not report.unused and not report.newly_initialized
    ids, mask, types = batch(trained["vocab_size"])
    with torch.no_grad():
        expected = reference.eval()(ids, attention_mask=mask, token_type_ids=types)
        mlm, nsp = ours.eval()(ids, mask, types)
    torch.testing.assert_close(mlm, expected.prediction_logits, atol=1e-6, rtol=0)
    torch.testing.assert_close(nsp, expected.seq_relationship_logits, atol=1e-6, rtol=0)


def batch(vocab_size, rows=3, length=24, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size - 8, (rows, length), generator=generator)
    mask = (torch.arange(length) < torch.tensor([[length], [length - 5], [9]])).long()
    types = (torch.arange(length) >= length // 2).long().expand(rows, -1).contiguous()
    return ids, mask, types


def test_nvidias_resume_arithmetic_names_the_shard_ours_resumes_from(trained):
    """NVIDIA's resume: files = ckpt['files'][1:], rank r of W reads
    files[(ckpt['files'][0] * W + r) % len(files)], the epoch's order being the sorted
    training files shuffled by Random(seed + epoch)."""
    shards = sorted(str(p) for p in trained["shards"].iterdir() if "training" in p.name)
    positions = {}
    for step in (5, 6, 7):
        saved = load(trained["output"] / f"ckpt_{step}.pt")
        f_id, files = saved["files"][0], saved["files"][1:]
        order = list(shards)
        random.Random(42 + saved["epoch"]).shuffle(order)  # --seed 42, the default
        assert files == order
        position = saved["position"]
        positions[step] = (saved["epoch"], f_id, position["batch"])
        assert (position["epoch"], position["f_id"]) == (saved["epoch"], f_id)
        for world in (1, 2, 3):
            for rank in range(world):
                reader = ShardReader([trained["shards"] / p for p in shards], BATCH, 42, rank,
                                     world, LENGTH, PREDICTIONS)  # fmt: skip
                ours = reader.shard_at(position["epoch"], position["f_id"])
                assert str(ours) == files[(f_id * world + rank) % len(files)]
                reader.close()
    # Mid-shard, then the next epoch's first shard, then one batch into it.
    assert positions == {5: (0, 1, 2), 6: (1, 0, 0), 7: (1, 0, 1)}


def nvidia_written(source, target):
    """`source` as NVIDIA's run_pretraining.py writes it: its five keys, none of ours."""
    saved = load(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({key: saved[key] for key in ("model", "optimizer", "files", "epoch")}
               | {"data_loader": None}, target)  # fmt: skip


def assert_same_model(path, reference_path, atol=1e-6):
    ours, reference = load(path)["model"], load(reference_path)["model"]
    assert ours.keys() == reference.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], reference[name], atol=atol, rtol=0, msg=name)


def test_checkpoints_of_earlier_versions_still_resume_exactly(trained, tmp_path):
    """Before this layout: HuggingFace's names (decoder bias included) and ``files`` the
    sorted shards. Resumed mid-shard from ckpt_5, the run still ends as the uninterrupted."""
    saved = load(trained["output"] / "ckpt_5.pt")
    saved["model"] = nvidia_to_hf(saved["model"])
    saved["files"] = sorted(str(p) for p in trained["shards"].iterdir())
    del saved["data_loader"]
    output = tmp_path / "out"
    output.mkdir()
    torch.save(saved, output / "ckpt_5.pt")
    succeeded(run_pretraining(*flags(
        trained["shards"], trained["config"], output, resume_from_checkpoint=True,
        **trained["flags"],
    )))  # fmt: skip
    assert_same_model(output / "ckpt_7.pt", trained["output"] / "ckpt_7.pt")


@pytest.fixture(scope="module")
def nvidia_named(trained):
    """HuggingFace BertForPreTraining weights as NVIDIA's SQuAD and NGC files hold them:
    ``{"model": state_dict}``, NVIDIA's names, the vocabulary padded to a multiple of 8."""
    values = json.loads(trained["config"].read_text())
    vocab_size = values["vocab_size"]
    torch.manual_seed(3)
    reference = HFBertForPreTraining(HFConfig(**values)).eval()
    state = hf_to_nvidia(reference.state_dict())
    extra = trained["vocab_size"] - vocab_size
    for key in ("bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight",
                "cls.predictions.bias"):  # fmt: skip
        state[key] = torch.cat([state[key], torch.zeros((extra, *state[key].shape[1:]))])
    path = trained["root"] / "nvidia_named.pt"
    torch.save({"model": state}, path)
    return reference, path


def test_nvidia_named_weights_start_pretraining_exactly(trained, nvidia_named, tmp_path):
    """--init_checkpoint reads NVIDIA's names: at learning rate 0 the run's checkpoint
    computes HuggingFace's logits."""
    reference, path = nvidia_named
    output = tmp_path / "out"
    succeeded(run_pretraining(*flags(
        trained["shards"], trained["config"], output, init_checkpoint=path, learning_rate=0,
        max_steps=1,
    )))  # fmt: skip
    config = BertConfig.from_json_file(trained["config"])
    padded_config = config.__class__(**{**config.to_dict(), "vocab_size": trained["vocab_size"]})
    ours = modeling.BertForPreTraining(padded_config)
    load_weights(ours, read_hf_weights(output / "ckpt_1.pt"), "ckpt_1.pt")
    ids, mask, types = batch(config.vocab_size)
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask, token_type_ids=types)
        mlm, nsp = ours.eval()(ids, mask, types)
    torch.testing.assert_close(mlm[..., : config.vocab_size], expected.prediction_logits,
                               atol=1e-5, rtol=0)  # fmt: skip
    torch.testing.assert_close(nsp, expected.seq_relationship_logits, atol=1e-5, rtol=0)


def test_nvidia_named_weights_fine_tune_from_exactly_those_weights(trained, nvidia_named, tmp_path):
    """run_squad.py --model_name_or_path <NVIDIA's {"model": ...} file> with its config and
    vocab: at learning rate 0 the saved model's encoder is HuggingFace's."""
    reference, path = nvidia_named
    squad = tinydata.squad_file(tmp_path / "train.json", questions=8)
    output = tmp_path / "out"
    succeeded(run(
        "finetuning/run_squad.py", "--model_type", "bert", "--model_name_or_path", path,
        "--config_name", trained["config"], "--tokenizer_name", trained["vocab"],
        "--do_lower_case", "--do_train", "--train_file", squad, "--output_dir", output,
        "--max_seq_length", "64", "--doc_stride", "32", "--max_query_length", "16",
        "--per_gpu_train_batch_size", "8", "--learning_rate", "0", "--max_steps", "1",
    ))  # fmt: skip
    finetuned = HFBertModel.from_pretrained(output, add_pooling_layer=False).eval()
    ids, mask, types = batch(reference.config.vocab_size)
    with torch.no_grad():
        expected = reference.bert(ids, attention_mask=mask, token_type_ids=types)
        got = finetuned(ids, attention_mask=mask, token_type_ids=types)
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state, atol=1e-5, rtol=0)


def test_nvidia_named_checkpoint_exports_to_a_huggingface_folder(trained, nvidia_named, tmp_path):
    reference, path = nvidia_named
    output = tmp_path / "hf"
    succeeded(run(
        "pretraining/export_huggingface.py", "--checkpoint", path, "--config_file",
        trained["config"], "--vocab_file", trained["vocab"], "--output_dir", output,
    ))  # fmt: skip
    exported = HFBertForPreTraining.from_pretrained(output).eval()
    ids, mask, types = batch(reference.config.vocab_size)
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask, token_type_ids=types)
        got = exported(ids, attention_mask=mask, token_type_ids=types)
    torch.testing.assert_close(got.prediction_logits, expected.prediction_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.seq_relationship_logits, expected.seq_relationship_logits,
                               atol=1e-5, rtol=0)  # fmt: skip


PICKLED_DATA_LOADER = """
import sys, torch
from torch.utils.data import DataLoader, Dataset

class pretraining_dataset(Dataset):  # NVIDIA's, defined in its run_pretraining.py
    def __len__(self):
        return 4
    def __getitem__(self, index):
        return index

saved = torch.load(sys.argv[1], weights_only=False)
saved["data_loader"] = DataLoader(pretraining_dataset(), batch_size=2)
torch.save(saved, sys.argv[1])
"""


def test_resumes_from_nvidias_mid_run_checkpoint_at_its_shard(trained, tmp_path):
    """ckpt_6 as NVIDIA writes it mid-run: its five keys (no schedule, position or
    generators of ours) and its DataLoader pickled over a class of its script, which is not
    importable here. It sits at the start of a shard, where NVIDIA's resume also starts:
    resumed, the run ends with the uninterrupted run's weights."""
    output = tmp_path / "out"
    nvidia_written(trained["output"] / "ckpt_6.pt", output / "ckpt_6.pt")
    subprocess.run([sys.executable, "-c", PICKLED_DATA_LOADER, str(output / "ckpt_6.pt")],
                   check=True, cwd=tmp_path)  # fmt: skip
    with pytest.raises(pickle.UnpicklingError):  # a plain weights-only load refuses it
        torch.load(output / "ckpt_6.pt", weights_only=True)
    result = succeeded(run_pretraining(*flags(
        trained["shards"], trained["config"], output, resume_from_checkpoint=True,
        **trained["flags"],
    )))  # fmt: skip
    assert "written by another program: resuming at the start of shard 0 of epoch 1" in (
        result.stderr
    )
    assert_same_model(output / "ckpt_7.pt", trained["output"] / "ckpt_7.pt")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda saved: {"model": saved["model"]}, "holds no data position"),
        (
            lambda saved: {**saved, "files": [0, *reversed(saved["files"][1:])]},
            "its shard order for epoch 1 is not this run's",
        ),
    ],
    ids=["model_only", "other_order"],
)
def test_a_checkpoint_that_cannot_resume_here_is_one_line(trained, tmp_path, damage, message):
    """--resume_from_checkpoint on a file without a data position (an NGC-style model file:
    --init_checkpoint takes it), or whose shard order is not this run's: one line, exit 2,
    the file left as it was."""
    output = tmp_path / "out"
    nvidia_written(trained["output"] / "ckpt_6.pt", output / "ckpt_6.pt")
    torch.save(damage(load(output / "ckpt_6.pt")), output / "ckpt_6.pt")
    before = (output / "ckpt_6.pt").read_bytes()
    result = run_pretraining(*flags(
        trained["shards"], trained["config"], output, resume_from_checkpoint=True,
        **trained["flags"],
    ))  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert sorted(p.name for p in output.iterdir()) == ["ckpt_6.pt"]
    assert (output / "ckpt_6.pt").read_bytes() == before
