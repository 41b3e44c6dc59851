"""Loading weights into a TensorFlow model by checkpoint name, loudly.

`--init_checkpoint` may be:

- a Google TF checkpoint prefix (``uncased_L-12_H-768_A-12/bert_model.ckpt``): TF1
  name-based, read by name;
- a checkpoint our training loop wrote (``model.ckpt-500``, in Google's layout, see
  `bertfam.tf.training_checkpoints`; the object-based ones earlier versions wrote through
  `tf.train.CheckpointManager` are read too), so fine-tuned or pre-trained weights chain
  into the next run the same way;
- a HuggingFace model folder (config.json + model.safetensors or pytorch_model.bin),
  whose keys go through the table of its ``model_type`` (`bertfam.checkpoints`).

Every model variable found is logged as restored, as Google's ``*INIT_FROM_CKPT*``
listing; a shape mismatch is an error naming both shapes; model variables the
checkpoint lacks are an error unless they are the task head the run trains from
scratch; checkpoint variables the model does not use (the pre-training heads, optimizer
slots) are listed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Mapping, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from bertfam.checkpoints import (
    BERT_TABLE,
    CheckpointError,
    LoadReport,
    NameTable,
    find_hf_folder,
    hf_folder_weights_as_tf,
    match_weights,
)

log = logging.getLogger(__name__)

# What `tf.train.Checkpoint(model={name: variable})` makes of a variable's name.
_OBJECT_PREFIX = "model/"
_OBJECT_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# Google checkpoints also hold optimizer state and bookkeeping no model needs.
_NOT_WEIGHTS = ("/adam_m", "/adam_v", "/accum", "/lamb_m", "/lamb_v")
_BOOKKEEPING = ("global_step", "local_step", "batch_finite", "loss_scale", "good_steps")


def _unescape(key: str) -> str:
    # tf.train.Checkpoint writes "/" in a dict key as ".S" and "." as "..".
    return key.replace(".S", "/").replace("..", ".")


def read_tf_checkpoint(prefix: Union[str, Path]) -> Dict[str, np.ndarray]:
    """{checkpoint name: array} of a Google or of our own checkpoint (model weights only)."""
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except (tf.errors.OpError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"checkpoint {prefix}: cannot read it ({message})") from None
    keys = list(reader.get_variable_to_shape_map())
    ours = any(key.startswith(_OBJECT_PREFIX) and key.endswith(_OBJECT_SUFFIX) for key in keys)
    weights = {}
    for key in keys:
        if ours:
            if not (key.startswith(_OBJECT_PREFIX) and key.endswith(_OBJECT_SUFFIX)):
                continue
            name = _unescape(key[len(_OBJECT_PREFIX) : -len(_OBJECT_SUFFIX)])
        else:
            name = key
            if name.endswith(_NOT_WEIGHTS) or name in _BOOKKEEPING or name.startswith("_"):
                continue
        try:
            weights[name] = reader.get_tensor(key)
        except (tf.errors.OpError, IndexError, ValueError) as error:
            # A .data file cut short (an interrupted download or copy) reads as IndexError
            # ("Read less bytes than requested"); a corrupt one as a DataLossError.
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CheckpointError(
                f"checkpoint {prefix}: cannot read {key} ({message}): the .data file is "
                "truncated or damaged; download or copy it again"
            ) from None
    return weights


def variables_by_name(model: tf.Module) -> Dict[str, tf.Variable]:
    """{checkpoint name: variable} of the model's trainable variables, e.g.
    ``bert/pooler/dense/kernel`` (fixed tables, such as sinusoidal positions, are not
    loaded or saved)."""
    return {v.name.rsplit(":", 1)[0]: v for v in model.trainable_variables}


def read_init_checkpoint(
    path: Union[str, Path], table: NameTable = BERT_TABLE
) -> Tuple[Dict[str, np.ndarray], str]:
    """Weights under TF names from any supported source, and a description of it; a
    HuggingFace folder is read with the table of its model type (else `table`)."""
    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        folder = find_hf_folder(path)
        return hf_folder_weights_as_tf(folder, table), f"{folder.weights_file}"
    if not (path.is_dir() or Path(f"{path}.index").is_file()):
        raise CheckpointError(
            f"checkpoint {path}: not found (give a TF checkpoint prefix such as "
            ".../bert_model.ckpt, whose .index file exists, or a HuggingFace model folder)"
        )
    return read_tf_checkpoint(path), str(path)


def assign_weights(
    variables: Dict[str, tf.Variable],
    weights: Dict[str, np.ndarray],
    source: str,
    fresh_prefixes: Sequence[str] = (),
) -> LoadReport:
    """Copy `weights` into `variables` by name, or fail naming every problem."""
    shapes = {name: tuple(variable.shape) for name, variable in variables.items()}
    report = match_weights(shapes, weights, source, fresh_prefixes)
    log.info("Loading weights from %s", source)
    for name in report.restored:
        variable = variables[name]
        variable.assign(weights[name].astype(variable.dtype.as_numpy_dtype))
        log.info("  name = %s, shape = %s, *INIT_FROM_CKPT*", name, shapes[name])
    report.log_leftovers(log)
    return report


def save_name_based_checkpoint(
    prefix: Union[str, Path], weights: Mapping[str, Union[np.ndarray, tf.Tensor]]
) -> str:
    """Write a TF1-style checkpoint (Google's layout: one tensor per name) at `prefix`."""
    names = sorted(weights)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.convert_to_tensor(weights[name]) for name in names],
    )
    return str(prefix)
