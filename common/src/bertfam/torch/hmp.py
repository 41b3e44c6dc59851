"""Mixed precision from op lists, as Habana's HMP takes them (``--hmp_bf16 --hmp_fp32``).

Each file lists one torch op name a line (``linear``, ``matmul``, ``softmax``, ``add``…;
upstream-surface.md §9.3). Inside `OpListPrecision`, a call to a listed op computes in
that dtype: its floating-point tensor arguments are cast to bf16 for the bf16 list and to
fp32 for the fp32 list; ops on neither list run on whatever they are given. On Gaudi the
same files go to Habana's own HMP. Parameters, gradients and optimizer state stay fp32;
the casts are ordinary autograd ops.

Calls are matched by name through PyTorch's ``__torch_function__`` protocol, so the
Python operators count too: ``a + b`` is ``add``, ``a += b`` is ``iadd``, ``1 - a`` is
``rsub``, ``a / b`` is ``truediv``.
"""

from __future__ import annotations

import re
from typing import Iterable

import torch
from torch.overrides import TorchFunctionMode

from bertfam.precision import OpListError, read_op_list

_DUNDER = re.compile(r"^__(\w+?)__$")
_IN_PLACE_OPERATORS = {"iadd", "isub", "imul", "itruediv"}
# Composite functions and the ops HMP sees them as: one counts as fp32 when any part is
# on the fp32 list, as bf16 when every part is on the bf16 list.
COMPOSITES = {
    "cross_entropy": ("log_softmax", "nll_loss"),
    "scaled_dot_product_attention": ("matmul", "softmax"),
}


def op_name(func) -> str:
    """``F.linear`` -> "linear", ``Tensor.__add__`` -> "add", ``Tensor.__iadd__`` -> "iadd"."""
    name = getattr(func, "__name__", str(func))
    match = _DUNDER.match(name)
    return match.group(1) if match else name


class OpListPrecision(TorchFunctionMode):
    """``with OpListPrecision(bf16_ops, fp32_ops): loss = model(...)``."""

    def __init__(self, bf16_ops: Iterable[str], fp32_ops: Iterable[str], dtype=torch.bfloat16):
        super().__init__()
        self.bf16_ops = frozenset(bf16_ops)
        self.fp32_ops = frozenset(fp32_ops)
        both = self.bf16_ops & self.fp32_ops
        if both:
            raise OpListError(f"ops on both the bf16 and the fp32 list: {', '.join(sorted(both))}")
        self.dtype = dtype

    @classmethod
    def from_files(cls, bf16_file, fp32_file, dtype=torch.bfloat16) -> OpListPrecision:
        return cls(read_op_list(bf16_file), read_op_list(fp32_file), dtype)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        dtype = self.dtype_for(op_name(func))
        if dtype is None:
            return func(*args, **kwargs)
        if _is_in_place(func) and args and isinstance(args[0], torch.Tensor):
            # An in-place op must write into its own tensor: cast only the others, to it.
            target = args[0].dtype
            return func(args[0], *_cast_floats(args[1:], target), **_cast_floats(kwargs, target))
        return func(*_cast_floats(args, dtype), **_cast_floats(kwargs, dtype))

    def dtype_for(self, name: str):
        """The dtype op `name` computes in here, or None to leave it alone."""
        parts = COMPOSITES.get(name)
        if parts is not None:
            if any(part in self.fp32_ops for part in parts):
                return torch.float32
            return self.dtype if all(part in self.bf16_ops for part in parts) else None
        if name in self.bf16_ops:
            return self.dtype
        if name in self.fp32_ops:
            return torch.float32
        return None


def _is_in_place(func) -> bool:
    name = op_name(func)
    # Slices, not str.endswith: torch.compile traces these when the mode wraps a graph.
    return name in _IN_PLACE_OPERATORS or (name[-1:] == "_" and name[:1] != "_")


def _cast_floats(value, dtype):
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, (list, tuple)):
        return type(value)([_cast_floats(item, dtype) for item in value])
    if isinstance(value, dict):
        return {key: _cast_floats(item, dtype) for key, item in value.items()}
    return value
