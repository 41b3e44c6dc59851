"""The folders a PyTorch BERT is saved in and read from: one module owns their layout.

HuggingFace folders in: config.json + model.safetensors or pytorch_model.bin. Keys are
matched to the model's parameter names; old files' LayerNorm ``gamma``/``beta`` are read
as ``weight``/``bias``, a bare ``BertModel``'s keys (no ``bert.`` prefix, as
sentence-transformers folders have) get the prefix, NVIDIA's ``dense_act`` names are
HuggingFace's ``dense``, buffers such as ``position_ids`` are ignored, and vocabulary
rows padded to a multiple of 8 (NVIDIA's pre-training) fit a model without the padding,
and back. Shape mismatches and missing parameters are errors naming every parameter (the
task head a run trains from scratch excepted); unused checkpoint keys are listed.

HuggingFace folders out: `save_pretrained` writes config.json, pytorch_model.bin and
vocab.txt into a folder that appears whole (an atomic directory swap), which
HuggingFace's `from_pretrained` loads as it loads its own; `write_model_folder` adds the
tokenizer files and training_args.bin, as HF v3.0.2's Trainer leaves a trained model
(`saved_do_lower_case` reads the casing back).

``checkpoint-N`` folders (HF v3.0.2's Trainer layout): `save_checkpoint` writes
``<output_dir>/checkpoint-<N>/``, whole or not at all, holding the model folder plus
optimizer.pt, scheduler.pt, rng_state.pth and trainer_state.json (``global_step``), then
deletes the oldest past ``--save_total_limit``. A folder given as
``--model_name_or_path`` resumes when `resumable_step` finds its step;
`restore_checkpoint` reads it back; `checkpoint_folders` lists a run's, oldest first.

torch is imported inside the functions that read or write tensors, not at the top, so
the flag checks that run before torch loads (`bertfam.torch.model_files`: is
``--model_name_or_path`` a run to resume? which casing did it save?) ask this module too,
and every file name of the layout is written down here only.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from bertfam.atomic import atomic_directory, atomic_write, write_json, write_text
from bertfam.bert_config import BertConfig
from bertfam.checkpoint_names import TORCH_FINETUNING
from bertfam.checkpoints import (
    NVIDIA_KEYS,
    CheckpointError,
    LoadReport,
    find_hf_folder,
    match_weights,
    read_hf_weights,
)

if TYPE_CHECKING:
    import torch

    from bertfam.torch.args import FinetuneConfig

log = logging.getLogger(__name__)

_IGNORED_SUFFIXES = ("position_ids", "token_type_ids")  # buffers, not weights
# The tensors with a row (or entry) per vocabulary id, by the ends of their names.
VOCABULARY_ROWS = (
    "embeddings.word_embeddings.weight",
    "cls.predictions.bias",
    "cls.predictions.decoder.weight",
    "cls.predictions.decoder.bias",
)
VOCABULARY_PADDING = 8  # upstream pads the vocabulary to a multiple of this
_RENAMED_LEAVES = {".gamma": ".weight", ".beta": ".bias"}

# What a checkpoint-N folder holds besides the model folder (HF v3.0.2's names).
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng_state.pth"
STATE_FILE = "trainer_state.json"
# In every model folder a run saves, beside the HuggingFace files.
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
TRAINING_ARGS_FILE = "training_args.bin"


def _normalized_keys(
    weights: Dict[str, np.ndarray], expected: Sequence[str]
) -> Dict[str, np.ndarray]:
    """Checkpoint keys as the model names them: HuggingFace's of today, from old files'
    ``gamma``/``beta``, a bare model's unprefixed keys or NVIDIA's ``dense_act``."""
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
    return NVIDIA_KEYS.to_hf(normalized)


def _fitted_vocabulary(
    weights: Dict[str, np.ndarray], shapes: Dict[str, Tuple[int, ...]]
) -> Dict[str, np.ndarray]:
    """Vocabulary rows fitted to the model's count where they differ only by the padding
    NVIDIA's pre-training adds (30522 -> 30528, a multiple of 8): padded rows and biases
    are zeros, trimmed rows were the padding, read by no token id."""
    fitted = dict(weights)
    for name, value in weights.items():
        shape = shapes.get(name)
        if not name.endswith(VOCABULARY_ROWS) or shape is None or value.shape == shape:
            continue
        extra = shape[0] - value.shape[0]
        if value.shape[1:] != shape[1:] or not 0 < abs(extra) < VOCABULARY_PADDING:
            continue  # not padding: match_weights names the mismatch
        if extra > 0:
            padding = np.zeros((extra, *value.shape[1:]), value.dtype)
            fitted[name] = np.concatenate([value, padding])
        else:
            fitted[name] = value[: shape[0]]
        log.info("%s: %d vocabulary rows fitted to the model's %d", name, len(value), shape[0])
    return fitted


def load_weights(
    model: torch.nn.Module,
    weights: Dict[str, np.ndarray],
    source: str,
    fresh_prefixes: Sequence[str] = (),
) -> LoadReport:
    """Copy `weights` into `model` by name, or fail naming every problem."""
    import torch

    state, aliases = _state_without_aliases(model)
    weights = _normalized_keys(weights, list(state) + list(aliases))
    for alias, name in aliases.items():
        # A tied tensor (the masked-LM decoder is the word embeddings) is one weight: a
        # file may hold it under either name, or both.
        value = weights.pop(alias, None)
        if value is not None and name not in weights:
            weights[name] = value
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    weights = _fitted_vocabulary(weights, shapes)
    report = match_weights(shapes, weights, source, fresh_prefixes, what="parameters")
    log.info("Loading weights from %s", source)
    with torch.no_grad():
        for name in report.restored:
            state[name].copy_(torch.from_numpy(np.ascontiguousarray(weights[name])))
    report.log_leftovers(log)
    return report


def _state_without_aliases(model):
    """({name: tensor} with each tied tensor once, under its first name; {alias: name})."""
    state = model.state_dict(keep_vars=True)
    first: Dict[int, str] = {}
    aliases = {}
    for name, tensor in state.items():
        if id(tensor) in first:
            aliases[name] = first[id(tensor)]
        else:
            first[id(tensor)] = name
    return {n: t.data for n, t in state.items() if n not in aliases}, aliases


def load_pretrained(
    model: torch.nn.Module, folder: Union[str, Path], fresh_prefixes: Sequence[str] = ()
) -> LoadReport:
    """A model folder's weights, or a weights file's (NVIDIA's ``{"model": ...}`` ones too)."""
    path = Path(folder)
    weights_file = path if path.is_file() else find_hf_folder(path).weights_file
    return load_weights(model, read_hf_weights(weights_file), str(weights_file), fresh_prefixes)


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
    import torch

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


@dataclass(frozen=True)
class SavedModel:
    """What a saved folder needs besides the weights: the config, vocab and architecture."""

    config: BertConfig
    vocab_file: str
    architecture: str
    extra_config: Optional[dict] = None
    do_lower_case: bool = True


def write_model_folder(
    model: torch.nn.Module, saved: SavedModel, folder: Path, training_args: FinetuneConfig
) -> None:
    """config.json, pytorch_model.bin, vocab.txt, tokenizer files and training_args.bin."""
    import torch

    write_pretrained(
        model.state_dict(),
        saved.config,
        folder,
        saved.architecture,
        saved.vocab_file,
        saved.extra_config,
    )
    write_json(folder / TOKENIZER_CONFIG_FILE, {"do_lower_case": saved.do_lower_case})
    write_json(
        folder / "special_tokens_map.json",
        {
            "unk_token": "[UNK]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
        },
    )
    torch.save(asdict(training_args), folder / TRAINING_ARGS_FILE)


def saved_do_lower_case(folder: Path, default: bool = True) -> bool:
    """tokenizer_config.json's do_lower_case (HF's BertTokenizer default: True)."""
    path = Path(folder) / TOKENIZER_CONFIG_FILE
    if path.is_file():
        try:
            return bool(json.loads(path.read_text()).get("do_lower_case", default))
        except (ValueError, AttributeError):
            raise CheckpointError(f"{path}: not a JSON object") from None
    return default


# -- checkpoint-N folders ----------------------------------------------------------------


def save_checkpoint(
    model: torch.nn.Module,
    saved: SavedModel,
    training_args: FinetuneConfig,
    step: int,
    optimizer,
    scheduler,
) -> Path:
    """``checkpoint-<step>/`` in ``--output_dir``, whole or not at all; then the oldest
    past ``--save_total_limit`` go."""
    import torch

    output_dir = Path(training_args.output_dir)
    folder = TORCH_FINETUNING.path(output_dir, step)
    with atomic_directory(folder) as tmp:
        write_model_folder(model, saved, tmp, training_args)
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
        torch.save(scheduler.state_dict(), tmp / SCHEDULER_FILE)
        torch.save(_rng_state(), tmp / RNG_FILE)
        write_json(tmp / STATE_FILE, {"global_step": step})
    _rotate(output_dir, training_args.save_total_limit)
    return folder


def _rotate(output_dir: Path, limit: Optional[int]) -> None:
    if limit is None or limit < 1:
        return
    folders = checkpoint_folders(output_dir)
    for old in folders[: max(0, len(folders) - limit)]:
        TORCH_FINETUNING.delete(old)


def checkpoint_folders(output_dir: Path) -> List[Path]:
    """checkpoint-N folders, oldest first."""
    return list(TORCH_FINETUNING.in_folder(output_dir).values())


def resumable_step(folder: Path) -> Optional[int]:
    """The update a checkpoint-N folder resumes from, or None for a plain model folder."""
    state = Path(folder) / STATE_FILE
    if not (state.is_file() and (Path(folder) / OPTIMIZER_FILE).is_file()):
        return None
    try:
        return int(json.loads(state.read_text())["global_step"])
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{state}: not a trainer state ({error})") from None


def restore_checkpoint(folder: Path, optimizer, scheduler, device: torch.device) -> int:
    """Optimizer, scheduler and RNG state back from a checkpoint-N folder (the weights
    load with the model); returns the step to continue from."""
    import torch

    step = resumable_step(folder)
    assert step is not None, folder
    optimizer.load_state_dict(torch.load(folder / OPTIMIZER_FILE, map_location=device))
    scheduler.load_state_dict(torch.load(folder / SCHEDULER_FILE, weights_only=True))
    if (folder / RNG_FILE).is_file():
        _set_rng_state(torch.load(folder / RNG_FILE, weights_only=False))
    return step


def _rng_state() -> dict:
    """The generators under the keys HuggingFace's Trainer saves in rng_state.pth."""
    import torch

    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "cpu": torch.get_rng_state(),
    }


def _set_rng_state(state: dict) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["cpu"] if "cpu" in state else state["torch"])  # before 2026-12
