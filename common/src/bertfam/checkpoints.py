"""Checkpoint names: one declarative table per model family between HuggingFace's keys
and the TensorFlow names (Google's for BERT), and the code that reads model folders and
matches weights against a model.

Google: ``bert/encoder/layer_3/attention/self/query/kernel`` [in, out]
HuggingFace: ``bert.encoder.layer.3.attention.self.query.weight`` [out, in]

A table is rows of (HuggingFace module, TF scope, kind); ``{n}`` stands for a layer
index. The kind says how the leaves map: a ``DENSE`` Linear's
``weight`` is the ``kernel``, stored transposed, and its ``bias`` the ``bias``; a ``NORM``
has ``gamma``/``beta`` (HuggingFace's ``weight``/``bias``, or ``gamma``/``beta`` in old
files); a ``TABLE`` (embeddings) is the scope itself; a ``HEAD`` (Google's task heads:
``qa_outputs`` is ``cls/squad/output_weights``, the classifier the top-level
``output_weights``) keeps its matrix as it is. Keys of a bare base model (no ``bert.``
prefix, as sentence-transformers folders have) get the model's prefix; keys no row
names keep their path (dots as slashes), so they show up by name among the unused.

`BERT_TABLE` maps HuggingFace BERT to Google's names. `DISTILBERT_TABLE` maps
HuggingFace DistilBERT to the object paths of HuggingFace's TF DistilBERT, which
Habana's loader matches (``distilbert/transformer/layer/3/attention/q_lin/kernel``; the
word and position tables are ``distilbert/embeddings/weight`` and ``.../embeddings``).
`ALBERT_TABLE` maps HuggingFace ALBERT to Google's ALBERT names (one shared layer under
``bert/encoder/transformer/group_0/inner_group_0``).
`ELECTRA_TABLE` and `ELECTRA_GENERATOR_TABLE` map HuggingFace ELECTRA discriminator and
generator folders to Google's ELECTRA names (``electra/``, ``generator/``).
A model folder's ``model_type`` picks the table (`HF_TABLES`).

Also here: reading a HuggingFace model folder (config.json + model.safetensors or
pytorch_model.bin) into NumPy arrays, and `match_weights`, the loud check of a
checkpoint against a model. Framework-free: safetensors files are read with NumPy;
``pytorch_model.bin`` needs torch, imported only then.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from bertfam.errors import UserError

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# A folder's config: HuggingFace's name, then NVIDIA's (its modeling's CONFIG_NAME).
CONFIG_FILES = ("config.json", "bert_config.json")


class CheckpointError(UserError):
    """A checkpoint or model folder is missing, unreadable, or does not fit the model."""


DENSE, NORM, TABLE, HEAD = "dense", "norm", "table", "head"
# HuggingFace leaf -> (TF leaf, transposed?), by kind; a TABLE is its scope ("").
_TF_LEAVES = {
    DENSE: {"weight": ("kernel", True), "bias": ("bias", False)},
    NORM: {
        "weight": ("gamma", False),
        "bias": ("beta", False),
        "gamma": ("gamma", False),
        "beta": ("beta", False),
    },
    TABLE: {"weight": ("", False)},
    HEAD: {"weight": ("output_weights", False), "bias": ("output_bias", False)},
}
# TF leaf -> HuggingFace leaf (today's spelling), for the kinds with a TF leaf.
_HF_LEAVES = {
    DENSE: {"kernel": "weight", "bias": "bias"},
    NORM: {"gamma": "weight", "beta": "bias"},
    HEAD: {"output_weights": "weight", "output_bias": "bias"},
}


def _pattern(template: str) -> re.Pattern:
    """A row's module or scope, with ``{n}`` matching a layer index."""
    return re.compile(re.escape(template).replace(re.escape("{n}"), r"(?P<n>\d+)"))


@dataclass(frozen=True)
class NameTable:
    """HuggingFace keys <-> TF names of one model family (see the module docstring)."""

    rows: Tuple[Tuple[str, str, str], ...]
    root: str = ""  # the HuggingFace prefix of the base model ("bert.")
    bare_scopes: Tuple[str, ...] = ()  # its top-level modules, for keys without the prefix
    # Buffers (not weights) and tied copies of another weight.
    skipped: str = r"(^|\.)(position_ids|token_type_ids)$"
    _compiled: list = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        rows = [(_pattern(hf), _pattern(tf), hf, tf, kind) for hf, tf, kind in self.rows]
        object.__setattr__(self, "_compiled", rows)

    def hf_to_tf(self, key: str) -> Optional[Tuple[str, bool]]:
        """(TF name, transpose?) for a HuggingFace key, or None for keys to skip."""
        if re.search(self.skipped, key):
            return None
        if key.startswith(self.bare_scopes):
            key = self.root + key
        module, _, leaf = key.rpartition(".")
        for hf_pattern, _, _, tf_scope, kind in self._compiled:
            match = hf_pattern.fullmatch(module)
            if match and leaf in _TF_LEAVES[kind]:
                tf_leaf, transpose = _TF_LEAVES[kind][leaf]
                scope = tf_scope.format(**match.groupdict())
                return "/".join(part for part in (scope, tf_leaf) if part), transpose
        return key.replace(".", "/"), False

    def tf_to_hf(self, name: str) -> Tuple[str, bool]:
        """The inverse of `hf_to_tf`: (HuggingFace key, transpose?)."""
        scope, _, leaf = name.rpartition("/")
        for _, tf_pattern, hf_module, _, kind in self._compiled:
            if kind == TABLE:
                match, hf_leaf = tf_pattern.fullmatch(name), "weight"
            elif leaf in _HF_LEAVES[kind]:
                match, hf_leaf = tf_pattern.fullmatch(scope), _HF_LEAVES[kind][leaf]
            else:
                continue
            if match:
                module = hf_module.format(**match.groupdict())
                return f"{module}.{hf_leaf}", kind == DENSE and leaf == "kernel"
        return name.replace("/", "."), False


def _layer_rows(hf_layer: str, tf_layer: str, parts) -> Tuple[Tuple[str, str, str], ...]:
    return tuple((f"{hf_layer}.{hf}", f"{tf_layer}/{tf}", kind) for hf, tf, kind in parts)


# Google BERT's names inside one layer (ELECTRA's layers use them too).
_BERT_LAYER_PARTS = (
    ("attention.self.query", "attention/self/query", DENSE),
    ("attention.self.key", "attention/self/key", DENSE),
    ("attention.self.value", "attention/self/value", DENSE),
    ("attention.output.dense", "attention/output/dense", DENSE),
    ("attention.output.LayerNorm", "attention/output/LayerNorm", NORM),
    ("intermediate.dense", "intermediate/dense", DENSE),
    ("output.dense", "output/dense", DENSE),
    ("output.LayerNorm", "output/LayerNorm", NORM),
)


BERT_TABLE = NameTable(
    rows=(
        ("bert.embeddings.word_embeddings", "bert/embeddings/word_embeddings", TABLE),
        ("bert.embeddings.position_embeddings", "bert/embeddings/position_embeddings", TABLE),
        ("bert.embeddings.token_type_embeddings", "bert/embeddings/token_type_embeddings", TABLE),
        ("bert.embeddings.LayerNorm", "bert/embeddings/LayerNorm", NORM),
        *_layer_rows("bert.encoder.layer.{n}", "bert/encoder/layer_{n}", _BERT_LAYER_PARTS),
        ("bert.pooler.dense", "bert/pooler/dense", DENSE),
        ("cls.predictions.transform.dense", "cls/predictions/transform/dense", DENSE),
        ("cls.predictions.transform.LayerNorm", "cls/predictions/transform/LayerNorm", NORM),
        ("cls.predictions", "cls/predictions", HEAD),  # only the bias: the decoder is tied
        ("cls.seq_relationship", "cls/seq_relationship", HEAD),
        ("qa_outputs", "cls/squad", HEAD),
        ("classifier", "", HEAD),  # Google keeps the classifier at top level
    ),
    root="bert.",
    bare_scopes=("embeddings.", "encoder.", "pooler."),
    skipped=r"(^|\.)(position_ids|token_type_ids)$|^cls\.predictions\.decoder\.(weight|bias)$",
)

DISTILBERT_TABLE = NameTable(
    rows=(
        ("distilbert.embeddings.word_embeddings", "distilbert/embeddings/weight", TABLE),
        ("distilbert.embeddings.position_embeddings", "distilbert/embeddings/embeddings", TABLE),
        ("distilbert.embeddings.LayerNorm", "distilbert/embeddings/LayerNorm", NORM),
        *_layer_rows(
            "distilbert.transformer.layer.{n}",
            "distilbert/transformer/layer/{n}",
            (
                ("attention.q_lin", "attention/q_lin", DENSE),
                ("attention.k_lin", "attention/k_lin", DENSE),
                ("attention.v_lin", "attention/v_lin", DENSE),
                ("attention.out_lin", "attention/out_lin", DENSE),
                ("sa_layer_norm", "sa_layer_norm", NORM),
                ("ffn.lin1", "ffn/lin1", DENSE),
                ("ffn.lin2", "ffn/lin2", DENSE),
                ("output_layer_norm", "output_layer_norm", NORM),
            ),
        ),
        ("vocab_transform", "vocab_transform", DENSE),
        ("vocab_layer_norm", "vocab_layer_norm", NORM),
        ("pre_classifier", "pre_classifier", DENSE),
        ("classifier", "classifier", DENSE),
        ("qa_outputs", "cls/squad", HEAD),
    ),
    root="distilbert.",
    bare_scopes=("embeddings.", "transformer."),
)

# ALBERT's one shared layer: HuggingFace's group 0, layer 0 is
# Google's group_0/inner_group_0, whose two layer norms are the default-named
# LayerNorm and LayerNorm_1.
_ALBERT_LAYER = "bert/encoder/transformer/group_0/inner_group_0"
ALBERT_TABLE = NameTable(
    rows=(
        ("albert.embeddings.word_embeddings", "bert/embeddings/word_embeddings", TABLE),
        ("albert.embeddings.position_embeddings", "bert/embeddings/position_embeddings", TABLE),
        ("albert.embeddings.token_type_embeddings", "bert/embeddings/token_type_embeddings", TABLE),
        ("albert.embeddings.LayerNorm", "bert/embeddings/LayerNorm", NORM),
        (
            "albert.encoder.embedding_hidden_mapping_in",
            "bert/encoder/embedding_hidden_mapping_in",
            DENSE,
        ),
        *_layer_rows(
            "albert.encoder.albert_layer_groups.0.albert_layers.0",
            _ALBERT_LAYER,
            (
                ("attention.query", "attention_1/self/query", DENSE),
                ("attention.key", "attention_1/self/key", DENSE),
                ("attention.value", "attention_1/self/value", DENSE),
                ("attention.dense", "attention_1/output/dense", DENSE),
                ("attention.LayerNorm", "LayerNorm", NORM),
                ("ffn", "ffn_1/intermediate/dense", DENSE),
                ("ffn_output", "ffn_1/intermediate/output/dense", DENSE),
                ("full_layer_layer_norm", "LayerNorm_1", NORM),
            ),
        ),
        ("albert.pooler", "bert/pooler/dense", DENSE),
        ("predictions.dense", "cls/predictions/transform/dense", DENSE),
        ("predictions.LayerNorm", "cls/predictions/transform/LayerNorm", NORM),
        ("predictions", "cls/predictions", HEAD),  # only the bias: the decoder is tied
        ("sop_classifier.classifier", "cls/seq_relationship", HEAD),
        ("qa_outputs", "cls/squad", HEAD),
        ("classifier", "", HEAD),  # Google keeps the classifier at top level
    ),
    root="albert.",
    bare_scopes=("embeddings.", "encoder.", "pooler."),
    skipped=r"(^|\.)(position_ids|token_type_ids)$|^predictions\.decoder\.(weight|bias)$",
)


def _electra_rows(encoder: str) -> Tuple[Tuple[str, str, str], ...]:
    """An ELECTRA folder's backbone: the tables under Google's ``electra/embeddings``
    (the generator reads the discriminator's), the projection and layers under
    `encoder` (``electra`` or ``generator``)."""
    return (
        ("electra.embeddings.word_embeddings", "electra/embeddings/word_embeddings", TABLE),
        ("electra.embeddings.position_embeddings", "electra/embeddings/position_embeddings",
         TABLE),
        ("electra.embeddings.token_type_embeddings", "electra/embeddings/token_type_embeddings",
         TABLE),
        ("electra.embeddings.LayerNorm", "electra/embeddings/LayerNorm", NORM),
        ("electra.embeddings_project", f"{encoder}/embeddings_project", DENSE),
        *_layer_rows("electra.encoder.layer.{n}", f"{encoder}/encoder/layer_{{n}}",
                     _BERT_LAYER_PARTS),
    )  # fmt: skip


# ELECTRA under Google's names. A discriminator folder
# (ElectraForPreTraining, or a fine-tuned ElectraForQuestionAnswering) and a generator
# folder (ElectraForMaskedLM) share HuggingFace's keys for different networks, so each
# has its table; `hf_folder_weights_as_tf` tells them apart by the generator's head.
ELECTRA_TABLE = NameTable(
    rows=(
        *_electra_rows("electra"),
        ("discriminator_predictions.dense", "discriminator_predictions/dense", DENSE),
        ("discriminator_predictions.dense_prediction", "discriminator_predictions/dense_1",
         DENSE),
        ("qa_outputs", "cls/squad", HEAD),
    ),
    root="electra.",
    bare_scopes=("embeddings.", "embeddings_project.", "encoder."),
)  # fmt: skip
ELECTRA_GENERATOR_TABLE = NameTable(
    rows=(
        *_electra_rows("generator"),
        ("generator_predictions.dense", "generator_predictions/dense", DENSE),
        ("generator_predictions.LayerNorm", "generator_predictions/LayerNorm", NORM),
        ("generator_lm_head", "generator_predictions", HEAD),  # the bias: the matrix is tied
    ),
    root="electra.",
    bare_scopes=("embeddings.", "embeddings_project.", "encoder."),
    skipped=r"(^|\.)(position_ids|token_type_ids)$|^generator_lm_head\.weight$",
)


@dataclass(frozen=True)
class KeyRenames:
    """PyTorch state-dict keys of one layout <-> HuggingFace's, for layouts that keep
    HuggingFace's tensors and shapes but name some modules otherwise. `rows` are
    (HuggingFace module, other module), ``{n}`` a layer index; `dropped` are HuggingFace
    keys the other layout does not hold (a tied alias it saves once)."""

    rows: Tuple[Tuple[str, str], ...]
    dropped: Tuple[str, ...] = ()
    _from_hf: list = field(init=False, repr=False, compare=False)
    _to_hf: list = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_from_hf", [(_pattern(hf), other) for hf, other in self.rows])
        object.__setattr__(self, "_to_hf", [(_pattern(other), hf) for hf, other in self.rows])

    @staticmethod
    def _renamed(key: str, rows) -> str:
        module, dot, leaf = key.rpartition(".")
        for pattern, template in rows:
            match = pattern.fullmatch(module)
            if match:
                return template.format(**match.groupdict()) + dot + leaf
        return key

    def from_hf(self, state: Mapping[str, object]) -> Dict[str, object]:
        """HuggingFace-named tensors under this layout's names (values untouched)."""
        return {
            self._renamed(key, self._from_hf): value
            for key, value in state.items()
            if key not in self.dropped
        }

    def to_hf(self, state: Mapping[str, object]) -> Dict[str, object]:
        """This layout's tensors under HuggingFace's names; HuggingFace keys pass as they are,
        so either layout reads. A dropped alias stays absent (loaders tie it back)."""
        return {self._renamed(key, self._to_hf): value for key, value in state.items()}


# NVIDIA's PyTorch BERT (DeepLearningExamples' modeling.py, and Habana's fork of it): the
# keys of ``ckpt_<step>.pt["model"]`` and of its SQuAD ``{"model": state_dict}`` files.
# HuggingFace's names, except that a Linear followed by its activation is one fused
# ``LinearActivation`` called ``dense_act`` at three places, and the masked-LM bias is saved
# once, as ``cls.predictions.bias`` (HuggingFace adds ``cls.predictions.decoder.bias``).
_INTERMEDIATE = "bert.encoder.layer.{n}.intermediate."
NVIDIA_KEYS = KeyRenames(
    rows=(
        (_INTERMEDIATE + "dense", _INTERMEDIATE + "dense_act"),
        ("bert.pooler.dense", "bert.pooler.dense_act"),
        ("cls.predictions.transform.dense", "cls.predictions.transform.dense_act"),
    ),
    dropped=("cls.predictions.decoder.bias",),
)

# Which table reads a HuggingFace folder, by its config.json ``model_type``.
HF_TABLES: Dict[str, NameTable] = {
    "albert": ALBERT_TABLE,
    "bert": BERT_TABLE,
    "distilbert": DISTILBERT_TABLE,
    "electra": ELECTRA_TABLE,
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
    config = next((folder / name for name in CONFIG_FILES if (folder / name).is_file()), None)
    if config is None:
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
    """{key: float32 array} from model.safetensors, pytorch_model.bin, or a torch file
    holding ``{"model": state_dict}`` (NVIDIA's ``ckpt_<step>.pt`` and SQuAD files), under
    the names the file uses."""
    weights_file = Path(weights_file)
    if weights_file.suffix != ".safetensors":
        state = torch_state_dict(read_torch_file(weights_file), weights_file)
        return {key: value.float().numpy() for key, value in state.items()}
    try:
        from safetensors.numpy import load_file

        tensors = load_file(str(weights_file))
    except Exception as error:  # a corrupt file raises whatever its parser raises
        raise CheckpointError(f"{weights_file}: cannot read the weights ({error})") from None
    return {key: np.asarray(value, dtype=np.float32) for key, value in tensors.items()}


class UnavailableObject:
    """Stands for a pickled object whose class is not importable here: NVIDIA's mid-run
    checkpoints pickle their DataLoader, over a dataset class of their own script."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


def _tolerant_pickle_module():
    import pickle
    import types

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                return UnavailableObject

    return types.SimpleNamespace(__name__="pickle", Unpickler=Unpickler, load=pickle.load)


def read_torch_file(path: Union[str, Path], what: str = "the weights"):
    """What ``torch.save`` wrote at `path`, on the CPU; one line ("cannot read `what`")
    when it is not readable.

    Tensors and plain containers load with ``weights_only``; a file that pickles other
    objects (upstream's checkpoints carry their DataLoader) loads whole, with classes not
    importable here read as `UnavailableObject` rather than failing the load.
    """
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: reading a torch file needs torch (pip install torch), or give a folder "
            "with model.safetensors"
        ) from None
    import pickle

    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            return torch.load(
                str(path), map_location="cpu", weights_only=False,
                pickle_module=_tolerant_pickle_module(),
            )  # fmt: skip
    except Exception as error:  # a damaged file raises whatever its reader raises
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: cannot read {what} ({first})") from None


def torch_state_dict(contents, source: Union[str, Path]) -> Dict[str, object]:
    """The state dict in a torch file: the file itself (HuggingFace's pytorch_model.bin) or
    its ``model`` entry (NVIDIA's checkpoints and ``{"model": state_dict}`` files)."""
    if isinstance(contents, dict) and isinstance(contents.get("model"), dict):
        contents = contents["model"]
    if not isinstance(contents, dict) or not all(
        isinstance(key, str) and hasattr(value, "float") for key, value in contents.items()
    ):
        raise CheckpointError(f"{source}: holds no state dict (names to tensors)")
    return contents


def _converted(weights: Dict[str, np.ndarray], rename) -> Dict[str, np.ndarray]:
    converted = {}
    for key, value in weights.items():
        mapped = rename(key)
        if mapped is not None:
            name, transpose = mapped
            converted[name] = np.ascontiguousarray(value.T) if transpose else value
    return converted


def hf_weights_as_google(
    weights: Dict[str, np.ndarray], table: NameTable = BERT_TABLE
) -> Dict[str, np.ndarray]:
    """HuggingFace keys and layouts to TF names and layouts (kernels transposed)."""
    return _converted(weights, table.hf_to_tf)


def google_weights_as_hf(
    weights: Dict[str, np.ndarray], table: NameTable = BERT_TABLE
) -> Dict[str, np.ndarray]:
    """TF names and layouts to HuggingFace keys and layouts (kernels transposed)."""
    return _converted(weights, table.tf_to_hf)


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


def hf_folder_weights_as_tf(
    folder: HfFolder, default: NameTable = BERT_TABLE
) -> Dict[str, np.ndarray]:
    """A HuggingFace folder's weights under TF names, by the table of its ``model_type``
    (`default`, the model's own, for a type without a table here)."""
    model_type = hf_model_type(folder)
    weights = read_hf_weights(folder.weights_file)
    table = HF_TABLES.get(model_type, default)
    if model_type == "electra" and any(k.startswith("generator_predictions.") for k in weights):
        table = ELECTRA_GENERATOR_TABLE
    return hf_weights_as_google(weights, table)


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
