"""The model a PyTorch fine-tuning run starts from, found and checked before torch loads.

``--model_name_or_path`` is a HuggingFace BERT folder (config.json + model.safetensors
or pytorch_model.bin + vocab.txt), a hub id already downloaded (see
`bertfam.checkpoints.resolve_pretrained`), or a ``checkpoint-N`` folder an earlier run
saved, which resumes that run as HF v3.0.2 does. It may also be a weights file: a
pre-training ``ckpt_<step>.pt`` (ours, NVIDIA's or Habana's) or NVIDIA's
``{"model": state_dict}`` files, whose config and vocab.txt are found beside it
(``config.json`` or NVIDIA's ``bert_config.json``) unless ``--config_name`` and
``--tokenizer_name`` name them, as they override a folder's. Torch-free: what makes a
folder a ``checkpoint-N`` to resume is `bertfam.torch.checkpoint`'s, which imports torch
only when it reads or writes tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bertfam.bert_config import BertConfig
from bertfam.checkpoints import CONFIG_FILES, resolve_pretrained
from bertfam.errors import FlagError
from bertfam.torch.args import FinetuneConfig
from bertfam.torch.checkpoint import resumable_step


@dataclass(frozen=True)
class ModelFiles:
    folder: Path  # the model folder, or the weights file given in its place
    model_config: BertConfig
    vocab_file: Path
    resume_step: Optional[int]  # set when the folder is a checkpoint-N to resume


def locate_model(config: FinetuneConfig) -> ModelFiles:
    given = Path(config.model_name_or_path).expanduser()
    if given.is_file():  # a weights file: nothing to resume, config and vocab beside it
        model_config = BertConfig.from_json_file(_config_beside(config, given))
        vocab = given.parent / "vocab.txt"
        vocab_file = _vocab_file(config, vocab if vocab.is_file() else None)
        return ModelFiles(given, model_config, vocab_file, resume_step=None)
    found = resolve_pretrained(config.model_name_or_path, config.cache_dir or None)
    config_file = Path(config.config_name) if config.config_name else found.config_file
    if not config_file.is_file():
        raise FlagError(f"--config_name={config.config_name}: no such file")
    model_config = BertConfig.from_json_file(config_file)
    vocab_file = _vocab_file(config, found.vocab_file)
    return ModelFiles(found.path, model_config, vocab_file, resumable_step(found.path))


def _config_beside(config: FinetuneConfig, weights_file: Path) -> Path:
    if config.config_name:
        if not Path(config.config_name).is_file():
            raise FlagError(f"--config_name={config.config_name}: no such file")
        return Path(config.config_name)
    for name in CONFIG_FILES:
        if (weights_file.parent / name).is_file():
            return weights_file.parent / name
    raise FlagError(
        f"--model_name_or_path={weights_file} is a weights file with no config.json or "
        "bert_config.json beside it: give its BERT config with --config_name"
    )


def _vocab_file(config: FinetuneConfig, model_vocab: Optional[Path]) -> Path:
    if config.tokenizer_name:
        given = Path(config.tokenizer_name)
        vocab = given / "vocab.txt" if given.is_dir() else given
        if not vocab.is_file():
            raise FlagError(f"--tokenizer_name={given}: no vocab.txt there")
        return vocab
    if model_vocab is None:
        raise FlagError(
            f"{config.model_name_or_path} has no vocab.txt: add it to the folder or point "
            "--tokenizer_name at one"
        )
    return model_vocab
