"""bf16 mixed precision on CPUs and GPUs, decided op by op by the upstream bf16 JSON.

On Gaudi, Habana's graph pass reads ``TF_BF16_CONVERSION=<json>`` and converts the ops the
JSON lists. CPUs and GPUs have no such pass, so the model asks a `Bf16Policy` at every op
it builds: "this is a MatMul named bert/encoder/layer_0/attention/self/query/MatMul,
and these are my inputs: which dtype do I compute in?". The policy answers from the JSON
(`bertfam.precision.Bf16Config`) and casts the op's float inputs accordingly, so the traced
graph holds bf16 ops exactly where the JSON allows them:

- ``allowlist`` ops and name matches of ``convertible_exceptions`` compute in bf16;
- ``conditional_list`` ops follow their inputs (bf16 when any input already is), which is
  the forward half of Habana's rule (it also looks at consumers; casting a Reshape's
  input before or after it gives the same values);
- name matches of ``non_convertible_exceptions`` (``KEEP_FP32_PRECISION``) and unlisted
  ops compute in fp32.

Our composite layers stand for Habana's fused ops of the same role and are asked under
those names: layer norm is ``HabanaLayerNorm``, GELU ``HabanaGelu``, dropout
``HabanaDropout``. Variables stay fp32 (the casts are differentiable, so gradients and
optimizer state are fp32), and models return fp32 logits so losses stay in fp32.
"""

from __future__ import annotations

from typing import Callable, Optional

import tensorflow as tf

from bertfam.precision import Bf16Config, load_bf16_config


def _is_float(value) -> bool:
    return isinstance(value, (tf.Tensor, tf.Variable)) and value.dtype in (tf.float32, tf.bfloat16)


class Bf16Policy:
    """Decides and applies each op's compute dtype; `Bf16Policy(None)` is plain fp32."""

    def __init__(self, config: Optional[Bf16Config] = None):
        self.config = config

    @classmethod
    def from_setting(cls, setting: Optional[str]) -> Bf16Policy:
        """From a resolved --bf16_config_path / TF_BF16_CONVERSION: None or a JSON path
        (Habana's "full" and "basic" never reach here: `bf16_policy` refuses them)."""
        return cls(None) if setting is None else cls(load_bf16_config(setting))

    @property
    def enabled(self) -> bool:
        return self.config is not None

    def __call__(self, op_type: str, fn: Callable, *args, name: Optional[str] = None):
        """Run ``fn(*args)`` in the dtype the JSON gives op `op_type` named `name`."""
        if self.config is None:
            return fn(*args)
        scope = tf.get_current_name_scope()
        op_name = f"{scope}/{name or op_type}" if scope else (name or op_type)
        inputs_bf16 = [arg.dtype == tf.bfloat16 for arg in args if _is_float(arg)]
        dtype = (
            tf.bfloat16
            if self.config.computes_in_bf16(op_type, op_name, inputs_bf16)
            else tf.float32
        )
        cast = [
            tf.cast(arg, dtype) if _is_float(arg) and arg.dtype != dtype else arg for arg in args
        ]
        return fn(*cast)


FP32 = Bf16Policy(None)


def to_float32(tensor: tf.Tensor) -> tf.Tensor:
    return tf.cast(tensor, tf.float32) if tensor.dtype != tf.float32 else tensor
