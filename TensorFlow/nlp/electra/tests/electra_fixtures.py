"""What the ELECTRA end-to-end tests share: a tiny discriminator (dropout off, so runs are
deterministic), BERT-layout pre-training records made from sample_text.txt and SQuAD
files of a few XQuAD questions."""

import json
import shutil
from pathlib import Path

import pytest

from bertfam.pretraining.create import corpus_arrays
from bertfam.pretraining.instances import InstanceOptions

TINY = dict(vocab_size=30522, embedding_size=16, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=37, max_position_embeddings=512,
            type_vocab_size=2, hidden_act="gelu", hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0)  # fmt: skip


def bert_inputs(shared_data: Path):
    """(BERT's uncased vocab, sample_text.txt), or a skip naming what is missing."""
    vocab = shared_data / "bert_uncased" / "vocab.txt"
    text = shared_data / "pretraining" / "sample_text.txt"
    if not (vocab.is_file() and text.is_file()):
        pytest.skip(f"BERT's vocab or sample_text.txt not in {shared_data}")
    return vocab, text


def write_records(vocab: Path, text: Path, paths, length: int, predictions: int, dupes: int):
    """BERT's pre-training records of `text`, dealt over `paths`."""
    from bertfam.tf.pretraining_records import write_example_files

    options = InstanceOptions(max_seq_length=length, max_predictions_per_seq=predictions,
                              dupe_factor=dupes)  # fmt: skip
    arrays = corpus_arrays([str(text)], str(vocab), True, 1, options)
    write_example_files(arrays, [str(p) for p in paths], show_progress=False)


def write_config(path: Path) -> Path:
    path.write_text(json.dumps(TINY))
    return path


EVALUATE = Path(__file__).resolve().parents[1] / "data" / "download" / "squad"


def tiny_squad(xquad: Path, folder: Path, version: str, impossible: bool = False) -> Path:
    """train/dev-v<version>.json of the first two XQuAD paragraphs (four questions each),
    and the evaluation script this repository ships for that version."""
    paragraphs = json.loads(xquad.read_text())["data"][0]["paragraphs"][:2]
    for paragraph in paragraphs:
        paragraph["qas"] = paragraph["qas"][:4]
        if version == "2.0":
            for qa in paragraph["qas"]:
                qa["is_impossible"] = False
    if impossible:  # the first question of the second paragraph asked of the first
        question = dict(paragraphs[1]["qas"][0], id="impossible", answers=[], is_impossible=True)
        paragraphs[0]["qas"].append(question)
    folder.mkdir(parents=True)
    data = {"version": f"v{version}" if version == "2.0" else version,
            "data": [{"title": "tiny", "paragraphs": paragraphs}]}  # fmt: skip
    for split in ("train", "dev"):
        (folder / f"{split}-v{version}.json").write_text(json.dumps(data))
    shutil.copy(EVALUATE / f"v{version}" / f"evaluate-v{version}.py", folder)
    return folder
