"""Checkpoint names: one table between Google's TF names and HuggingFace's BERT keys.

Google: ``bert/encoder/layer_3/attention/self/query/kernel`` [in, out]
HuggingFace: ``bert.encoder.layer.3.attention.self.query.weight`` [out, in]

The rules (upstream-surface.md §8.1): dots become slashes and ``layer.N`` becomes
``layer_N``; a Linear ``weight`` is a ``kernel`` stored transposed; LayerNorm
``weight``/``bias`` (old files: ``gamma``/``beta``) are ``gamma``/``beta``; embedding
tables drop the ``.weight``; the task heads are renamed whole (``qa_outputs`` is
``cls/squad/output_weights`` and is *not* transposed, nor is ``classifier``, which Google
keeps at top level as ``output_weights``). Keys of a bare ``BertModel`` (no ``bert.``
prefix, as sentence-transformers folders have) get the ``bert/`` scope.

DistilBERT has a table of its own (`hf_distilbert_to_tf`): its HuggingFace keys
(``distilbert.transformer.layer.3.attention.q_lin.weight``) map to the object paths that
HuggingFace's TF DistilBERT checkpoints use and that Habana's loader matches
(``distilbert/transformer/layer/3/attention/q_lin/kernel``; word and position tables are
``distilbert/embeddings/weight`` and ``distilbert/embeddings/embeddings``). A model
folder's ``model_type`` picks the table (`hf_folder_weights_as_tf`).

Also here: reading a HuggingFace model folder (config.json + model.safetensors or
pytorch_model.bin) into NumPy arrays under Google names. Framework-free: safetensors
files are read with NumPy; ``pytorch_model.bin`` needs torch, imported only then.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from bertfam.errors import UserError

# Keys HuggingFace stores that are not weights (buffers) or that repeat another weight.
_SKIPPED_HF_KEYS = re.compile(
    r"(^|\.)(position_ids|token_type_ids)$|^cls\.predictions\.decoder\.(weight|bias)$"
)
_HEAD_RENAMES = {
    "qa_outputs.weight": ("cls/squad/output_weights", False),
    "qa_outputs.bias": ("cls/squad/output_bias", False),
    "classifier.weight": ("output_weights", False),
    "classifier.bias": ("output_bias", False),
    "cls.predictions.bias": ("cls/predictions/output_bias", False),
    "cls.seq_relationship.weight": ("cls/seq_relationship/output_weights", False),
    "cls.seq_relationship.bias": ("cls/seq_relationship/output_bias", False),
}
_EMBEDDING_TABLES = ("word_embeddings", "position_embeddings", "token_type_embeddings")
_LAYER_NORM_LEAVES = {"weight": "gamma", "bias": "beta", "gamma": "gamma", "beta": "beta"}
_BARE_MODEL_SCOPES = ("embeddings.", "encoder.", "pooler.")

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class CheckpointError(UserError):
    """A checkpoint or model folder is missing, unreadable, or does not fit the model."""


def hf_to_google(key: str) -> Optional[Tuple[str, bool]]:
    """(Google name, transpose?) for a HuggingFace BERT key, or None for keys to skip."""
    if _SKIPPED_HF_KEYS.search(key):
        return None
    if key in _HEAD_RENAMES:
        return _HEAD_RENAMES[key]
    if key.startswith(_BARE_MODEL_SCOPES):
        key = "bert." + key
    parts = key.split(".")
    *scope, leaf = parts
    name = re.sub(r"layer/(\d+)", r"layer_\1", "/".join(scope))
    if scope and scope[-1] == "LayerNorm":
        return f"{name}/{_LAYER_NORM_LEAVES[leaf]}", False
    if scope and scope[-1] in _EMBEDDING_TABLES and leaf == "weight":
        return name, False
    if leaf == "weight":
        return f"{name}/kernel", True
    if leaf == "bias":
        return f"{name}/bias", False
    return None


def google_to_hf(name: str) -> Tuple[str, bool]:
    """The inverse of `hf_to_google`: (HuggingFace key, transpose?)."""
    for key, (google, transpose) in _HEAD_RENAMES.items():
        if google == name:
            return key, transpose
    parts = re.sub(r"layer_(\d+)", r"layer.\1", name).split("/")
    *scope, leaf = parts
    if leaf in _EMBEDDING_TABLES:
        return ".".join(parts) + ".weight", False
    renamed = {"gamma": "weight", "beta": "bias", "kernel": "weight"}.get(leaf, leaf)
    return ".".join(scope + [renamed]), leaf == "kernel"


_DISTILBERT_RENAMES = {
    "distilbert.embeddings.word_embeddings.weight": ("distilbert/embeddings/weight", False),
    "distilbert.embeddings.position_embeddings.weight": ("distilbert/embeddings/embeddings", False),
    "qa_outputs.weight": _HEAD_RENAMES["qa_outputs.weight"],
    "qa_outputs.bias": _HEAD_RENAMES["qa_outputs.bias"],
}
_DISTILBERT_LAYER_NORMS = ("LayerNorm", "sa_layer_norm", "output_layer_norm", "vocab_layer_norm")


def hf_distilbert_to_tf(key: str) -> Optional[Tuple[str, bool]]:
    """(TF name, transpose?) for a HuggingFace DistilBERT key, or None for keys to skip."""
    if key.startswith(("embeddings.", "transformer.")):  # a bare DistilBertModel
        key = "distilbert." + key
    if key in _DISTILBERT_RENAMES:
        return _DISTILBERT_RENAMES[key]
    *scope, leaf = key.split(".")
    if not scope or leaf not in ("weight", "bias"):
        return None  # buffers such as position_ids
    name = "/".join(scope)
    if scope[-1] in _DISTILBERT_LAYER_NORMS:
        return f"{name}/{_LAYER_NORM_LEAVES[leaf]}", False
    return (f"{name}/kernel", True) if leaf == "weight" else (f"{name}/bias", False)


# Which table turns a folder's keys into TF names, by its config.json ``model_type``.
HF_TO_TF: Dict[str, Callable[[str], Optional[Tuple[str, bool]]]] = {
    "bert": hf_to_google,
    "distilbert": hf_distilbert_to_tf,
}


@dataclass(frozen=True)
class HfFolder:
    path: Path
    config_file: Path
    weights_file: Path
    vocab_file: Optional[Path]


def find_hf_folder(path: Union[str, Path]) -> HfFolder:
    """Check a HuggingFace BERT folder has what we need, naming what is missing."""
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such model folder")
    config = folder / "config.json"
    if not config.is_file():
        raise CheckpointError(f"{folder}: no config.json, so it is not a HuggingFace model folder")
    weights = next((folder / name for name in HF_WEIGHT_FILES if (folder / name).is_file()), None)
    if weights is None:
        raise CheckpointError(f"{folder}: no weights ({' or '.join(HF_WEIGHT_FILES)})")
    vocab = folder / "vocab.txt"
    return HfFolder(folder, config, weights, vocab if vocab.is_file() else None)


def resolve_pretrained(name_or_path: str, cache_dir: Optional[Union[str, Path]] = None) -> HfFolder:
    """A local folder, or a hub id (``bert-base-uncased``) already downloaded into
    `cache_dir`, the current directory or the HuggingFace cache. Nothing is fetched: a
    model that is nowhere here is one error saying what to download and where to put it."""
    if Path(name_or_path).exists() or name_or_path.startswith(("/", ".", "~")):
        return find_hf_folder(Path(name_or_path).expanduser())  # a path: no hub lookup
    roots = [Path(cache_dir)] if cache_dir else []
    roots.append(Path.cwd())
    hub_home = (
        os.environ.get("HF_HUB_CACHE")
        or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
    )
    roots.append(Path(hub_home))
    cached_name = "models--" + name_or_path.replace("/", "--")
    for root in roots:
        plain = root / name_or_path
        if plain.is_dir():
            return find_hf_folder(plain)
        snapshots = sorted(
            (root / cached_name / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime
        )
        for snapshot in reversed(snapshots):
            if (snapshot / "config.json").is_file():
                return find_hf_folder(snapshot)
    where = cache_dir or "<cache_dir>"
    raise CheckpointError(
        f"model {name_or_path!r} is not here and nothing is downloaded at run time: "
        f"download it (huggingface-cli download {name_or_path} --local-dir "
        f"{where}/{name_or_path}) and pass --cache_dir {where}, or give the folder's path"
    )


def read_hf_weights(weights_file: Union[str, Path]) -> Dict[str, np.ndarray]:
    """{HuggingFace key: float32 array} from model.safetensors or pytorch_model.bin."""
    weights_file = Path(weights_file)
    try:
        if weights_file.suffix == ".safetensors":
            from safetensors.numpy import load_file

            tensors = load_file(str(weights_file))
        else:
            try:
                import torch
            except ImportError:
                raise CheckpointError(
                    f"{weights_file}: reading pytorch_model.bin needs torch "
                    "(pip install torch), or give a folder with model.safetensors"
                ) from None
            state = torch.load(str(weights_file), map_location="cpu", weights_only=True)
            tensors = {key: value.float().numpy() for key, value in state.items()}
    except CheckpointError:
        raise
    except Exception as error:  # a corrupt file raises whatever its parser raises
        raise CheckpointError(f"{weights_file}: cannot read the weights ({error})") from None
    return {key: np.asarray(value, dtype=np.float32) for key, value in tensors.items()}


def hf_weights_as_google(
    weights: Dict[str, np.ndarray], to_tf: Callable = hf_to_google
) -> Dict[str, np.ndarray]:
    """HuggingFace keys and layouts to Google (TF) names and layouts (kernels transposed),
    by the table `to_tf` (BERT's unless given)."""
    converted = {}
    for key, value in weights.items():
        mapped = to_tf(key)
        if mapped is None:
            continue
        name, transpose = mapped
        converted[name] = np.ascontiguousarray(value.T) if transpose else value
    return converted


def hf_model_type(folder: HfFolder) -> str:
    """The folder's config.json ``model_type``; "bert" when it names none."""
    try:
        config = json.loads(folder.config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{folder.config_file}: cannot read it ({error})") from None
    model_type = config.get("model_type", "bert") if isinstance(config, dict) else None
    if not isinstance(model_type, str):
        raise CheckpointError(f"{folder.config_file}: expected a JSON object with a model_type")
    return model_type


def hf_folder_weights_as_tf(folder: HfFolder) -> Dict[str, np.ndarray]:
    """A HuggingFace folder's weights under TF names, by the table of its ``model_type``
    (BERT's for any type without a table of its own)."""
    to_tf = HF_TO_TF.get(hf_model_type(folder), hf_to_google)
    return hf_weights_as_google(read_hf_weights(folder.weights_file), to_tf)


def google_weights_as_hf(weights: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Google names and layouts to HuggingFace keys and layouts (kernels transposed)."""
    converted = {}
    for name, value in weights.items():
        key, transpose = google_to_hf(name)
        converted[key] = np.ascontiguousarray(value.T) if transpose else value
    return converted


@dataclass(frozen=True)
class LoadReport:
    source: str
    restored: List[str]
    newly_initialized: List[str]
    unused: List[str]

    def log_leftovers(self, logger: logging.Logger) -> None:
        """What was not loaded: fresh weights (the new task head) and unused checkpoint keys."""
        for name in self.newly_initialized:
            logger.info("  %s: not in the checkpoint, trained from scratch", name)
        if self.unused:
            logger.info(
                "%d checkpoint weights not used by this model: %s",
                len(self.unused),
                ", ".join(self.unused),
            )


def match_weights(
    model_shapes: Mapping[str, Tuple[int, ...]],
    weights: Mapping[str, np.ndarray],
    source: str,
    fresh_prefixes: Sequence[str] = (),
    what: str = "variables",
) -> LoadReport:
    """Check checkpoint `weights` against the model's names and shapes, before any copy.

    Shape mismatches are an error naming every one with both shapes; model entries the
    checkpoint lacks are an error unless they start with one of `fresh_prefixes` (the task
    head a run trains from scratch); checkpoint entries the model does not use are listed.
    """
    mismatched = [
        f"{name} (checkpoint {tuple(weights[name].shape)}, model {tuple(shape)})"
        for name, shape in model_shapes.items()
        if name in weights and tuple(weights[name].shape) != tuple(shape)
    ]
    if mismatched:
        raise CheckpointError(f"{source}: shapes differ from the model's: {'; '.join(mismatched)}")
    absent = sorted(name for name in model_shapes if name not in weights)
    missing = [name for name in absent if not name.startswith(tuple(fresh_prefixes))]
    if missing:
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        raise CheckpointError(
            f"{source}: the checkpoint lacks {len(missing)} model {what}: {shown}"
        )
    restored = [name for name in model_shapes if name in weights]
    return LoadReport(source, restored, absent, sorted(set(weights) - set(model_shapes)))
