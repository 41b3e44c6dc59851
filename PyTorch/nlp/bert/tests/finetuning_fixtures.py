"""Tiny models and data for the end-to-end tests, and a way to run the scripts as users do."""

import subprocess
import sys
from pathlib import Path

import modeling
import torch

from bertfam import tinydata
from bertfam.bert_config import BertConfig
from bertfam.torch.checkpoint import save_pretrained

FOLDER = Path(__file__).resolve().parents[1]
HUB_IDS = ("bert-base-uncased", "bert-large-uncased-whole-word-masking")


def tiny_model_cache(root: Path, **config_overrides) -> Path:
    """A --cache_dir holding tiny random BERTs under the hub ids demo_bert.py maps to."""
    root.mkdir(parents=True, exist_ok=True)
    vocab = tinydata.vocab_file(root / "vocab.txt")
    size = len(vocab.read_text().splitlines())
    overrides = {"max_position_embeddings": 512, **config_overrides}
    config = BertConfig.from_json_file(
        tinydata.bert_config_file(root / "bert_config.json", size, **overrides)
    )
    torch.manual_seed(0)
    for hub_id in HUB_IDS:
        save_pretrained(modeling.BertModel(config), config, root / hub_id, vocab)
    return root


def run(script, *args, timeout=600, env=None):
    return subprocess.run(
        [sys.executable, str(FOLDER / script), *map(str, args)],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
