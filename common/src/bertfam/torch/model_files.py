"""The model a PyTorch fine-tuning run starts from, found and checked before torch loads.

``--model_name_or_path`` is a HuggingFace BERT folder (config.json + model.safetensors
or pytorch_model.bin + vocab.txt), a hub id already downloaded (see
`bertfam.checkpoints.resolve_pretrained`), or a ``checkpoint-N`` folder an earlier run
saved, which resumes that run as HF v3.0.2 does. ``--config_name`` and
``--tokenizer_name`` override the config and the vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bertfam.bert_config import BertConfig
from bertfam.checkpoints import CheckpointError, resolve_pretrained
from bertfam.tokenization.wordpiece import WordPieceTokenizer
from bertfam.torch.args import FinetuneConfig, FinetuneFlagError

# What a checkpoint-N folder holds besides the model (written by bertfam.torch.finetune).
CHECKPOINT_PREFIX = "checkpoint-"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
STATE_FILE = "trainer_state.json"


@dataclass(frozen=True)
class ModelFiles:
    folder: Path
    weights_file: Path
    model_config: BertConfig
    vocab_file: Path
    resume_step: Optional[int]  # set when the folder is a checkpoint-N to resume


def resumable_step(folder: Path) -> Optional[int]:
    """The update a checkpoint-N folder resumes from, or None for a plain model folder."""
    state = Path(folder) / STATE_FILE
    if not (state.is_file() and (Path(folder) / OPTIMIZER_FILE).is_file()):
        return None
    try:
        return int(json.loads(state.read_text())["global_step"])
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{state}: not a trainer state ({error})") from None


def locate_model(config: FinetuneConfig) -> ModelFiles:
    found = resolve_pretrained(config.model_name_or_path, config.cache_dir or None)
    config_file = Path(config.config_name) if config.config_name else found.config_file
    if not config_file.is_file():
        raise FinetuneFlagError(f"--config_name={config.config_name}: no such file")
    model_config = BertConfig.from_json_file(config_file)
    vocab_file = _vocab_file(config, found.vocab_file)
    return ModelFiles(
        found.path, found.weights_file, model_config, vocab_file, resumable_step(found.path)
    )


def _vocab_file(config: FinetuneConfig, model_vocab: Optional[Path]) -> Path:
    if config.tokenizer_name:
        given = Path(config.tokenizer_name)
        vocab = given / "vocab.txt" if given.is_dir() else given
        if not vocab.is_file():
            raise FinetuneFlagError(f"--tokenizer_name={given}: no vocab.txt there")
        return vocab
    if model_vocab is None:
        raise FinetuneFlagError(
            f"{config.model_name_or_path} has no vocab.txt: add it to the folder or point "
            "--tokenizer_name at one"
        )
    return model_vocab


def saved_do_lower_case(folder: Path, default: bool = True) -> bool:
    """tokenizer_config.json's do_lower_case (HF's BertTokenizer default: True)."""
    path = folder / "tokenizer_config.json"
    if path.is_file():
        try:
            return bool(json.loads(path.read_text()).get("do_lower_case", default))
        except (ValueError, AttributeError):
            raise CheckpointError(f"{path}: not a JSON object") from None
    return default


def load_tokenizer(files: ModelFiles, do_lower_case: bool) -> WordPieceTokenizer:
    """The vocabulary, refused when its size is not the model's."""
    tokenizer = WordPieceTokenizer(str(files.vocab_file), do_lower_case=do_lower_case)
    if tokenizer.vocab_size != files.model_config.vocab_size:
        raise FinetuneFlagError(
            f"the vocab file {files.vocab_file} has {tokenizer.vocab_size} tokens but "
            f"{files.model_config.source} says vocab_size={files.model_config.vocab_size}: "
            "they must come from the same model"
        )
    return tokenizer
