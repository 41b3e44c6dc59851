"""HuggingFace-format BERT checkpoints in and out of a PyTorch model, loudly.

In: a HuggingFace folder (config.json + model.safetensors or pytorch_model.bin). Keys are
matched to the model's parameter names; old files' LayerNorm ``gamma``/``beta`` are read
as ``weight``/``bias``, a bare ``BertModel``'s keys (no ``bert.`` prefix, as
sentence-transformers folders have) get the prefix, buffers such as ``position_ids`` are
ignored. Shape mismatches and missing parameters are errors naming every parameter (the
task head a run trains from scratch excepted); unused checkpoint keys are listed.

Out: `save_pretrained` writes config.json, pytorch_model.bin and vocab.txt into a folder
that appears whole (an atomic directory swap), which HuggingFace's `from_pretrained`
loads as it loads its own.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch

from bertfam.atomic import atomic_directory, atomic_write, write_text
from bertfam.bert_config import BertConfig
from bertfam.checkpoints import LoadReport, find_hf_folder, match_weights, read_hf_weights

log = logging.getLogger(__name__)

_IGNORED_SUFFIXES = ("position_ids", "token_type_ids")  # buffers, not weights
_RENAMED_LEAVES = {".gamma": ".weight", ".beta": ".bias"}


def _normalized_keys(
    weights: Dict[str, np.ndarray], expected: Sequence[str]
) -> Dict[str, np.ndarray]:
    """Checkpoint keys as the model names them."""
    wants_prefix = any(name.startswith("bert.") for name in expected)
    normalized = {}
    for key, value in weights.items():
        if key.endswith(_IGNORED_SUFFIXES):
            continue
        for old, new in _RENAMED_LEAVES.items():
            if key.endswith(old):
                key = key[: -len(old)] + new
        if wants_prefix and key.startswith(("embeddings.", "encoder.", "pooler.")):
            key = "bert." + key
        normalized[key] = value
    return normalized


def load_weights(
    model: torch.nn.Module,
    weights: Dict[str, np.ndarray],
    source: str,
    fresh_prefixes: Sequence[str] = (),
) -> LoadReport:
    """Copy `weights` into `model` by name, or fail naming every problem."""
    state = model.state_dict()
    weights = _normalized_keys(weights, list(state))
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    report = match_weights(shapes, weights, source, fresh_prefixes, what="parameters")
    log.info("Loading weights from %s", source)
    with torch.no_grad():
        for name in report.restored:
            state[name].copy_(torch.from_numpy(np.ascontiguousarray(weights[name])))
    report.log_leftovers(log)
    return report


def load_pretrained(
    model: torch.nn.Module, folder: Union[str, Path], fresh_prefixes: Sequence[str] = ()
) -> LoadReport:
    found = find_hf_folder(folder)
    return load_weights(
        model, read_hf_weights(found.weights_file), str(found.weights_file), fresh_prefixes
    )


def save_pretrained(
    model: torch.nn.Module,
    config: BertConfig,
    folder: Union[str, Path],
    vocab_file: Optional[Union[str, Path]] = None,
    architecture: Optional[str] = None,
    extra_config: Optional[dict] = None,
) -> Path:
    """A HuggingFace folder (config.json, pytorch_model.bin, vocab.txt), written whole."""
    folder = Path(folder)
    with atomic_directory(folder) as tmp:
        write_pretrained(
            model.state_dict(),
            config,
            tmp,
            architecture or type(model).__name__,
            vocab_file,
            extra_config,
        )
    return folder


def write_pretrained(
    state: Dict[str, torch.Tensor],
    config: BertConfig,
    folder: Path,
    architecture: str,
    vocab_file: Optional[Union[str, Path]] = None,
    extra_config: Optional[dict] = None,
) -> None:
    """config.json, pytorch_model.bin (`state`: a model's state dict, or any tensors under
    HuggingFace keys) and vocab.txt into an existing folder, each file replaced atomically
    (a folder that must appear whole goes through `save_pretrained`)."""
    values = config.to_dict()
    values.update(model_type="bert", pad_token_id=0, architectures=[architecture])
    values.update(extra_config or {})
    write_text(folder / "config.json", json.dumps(values, indent=2, sort_keys=True) + "\n")
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}
    with atomic_write(folder / "pytorch_model.bin", "wb") as handle:
        torch.save(tensors, handle)
    if vocab_file is not None and Path(vocab_file).resolve() != (folder / "vocab.txt").resolve():
        with atomic_write(folder / "vocab.txt", "wb") as handle:
            handle.write(Path(vocab_file).read_bytes())
