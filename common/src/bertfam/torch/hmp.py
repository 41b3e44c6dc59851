"""Mixed precision from op lists, as Habana's HMP takes them (``--hmp_bf16 --hmp_fp32``).

Each file lists one torch op name a line (``linear``, ``matmul``, ``softmax``, ``add``…).
Inside `OpListPrecision`, a call to a listed op computes in
that dtype: its floating-point tensor arguments are cast to bf16 for the bf16 list and to
fp32 for the fp32 list; ops on neither list run on whatever they are given. An in-place op
(``add_``) casts its other arguments to its own tensor's dtype. On Gaudi the same files go
to Habana's own HMP. Parameters, gradients and optimizer state stay fp32; the casts are
ordinary autograd ops.

Calls are matched by the name PyTorch's ``__torch_function__`` protocol gives them, so
the Python operators count under the method they call: in torch 2.13 ``a + b`` is
``add``, ``a / b`` is ``div`` (not ``truediv``), ``a += b`` is ``add_`` (not ``iadd``),
``1 - a`` is ``rsub``, ``a.shape`` is ``get`` (never listed).

`OpListPrecision` answers each call from a table it fills once per function (func ->
pass through, or the dtype and whether the op is in place), looks only for arguments not
yet in that dtype, and rebuilds the arguments only when it casts one. On the 2-core CI
machine that is about 0.2 us of its own for a call passed through and under 1 us for a
listed call with nothing to cast, on top of what PyTorch charges for calling any Python
mode (about 1 us for a C function such as ``F.linear``, 3.5 us for a Python one such as
``F.layer_norm``); ``benchmarks/hmp_overhead.py`` measures it. Under ``torch.compile`` the
rules are traced into the graph and cost nothing per call. The tests compare it with the
same rules applied by name at every call (`bertfam.testing.hmp_reference`).
In eager mode ``--hmp`` runs the lists through ``torch.autocast`` where it can
(`bertfam.torch.autocast_lists`), which leaves Python out of most calls.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, Optional, Tuple

import torch
from torch.overrides import TorchFunctionMode

from bertfam.precision import OpListError, read_op_list

_is_compiling = torch.compiler.is_compiling
_DUNDER = re.compile(r"^__(\w+?)__$")
_IN_PLACE_OPERATORS = {"iadd", "isub", "imul", "itruediv"}
# Composite functions and the ops HMP sees them as: one counts as fp32 when any part is
# on the fp32 list, as bf16 when every part is on the bf16 list. Attention counts as its
# matmuls: every scaled_dot_product_attention kernel, given bf16, multiplies in bf16 and
# takes the softmax in fp32, which is what "matmul" in bf16 with "softmax" in either list
# asks for (bf16 products, a softmax at least as precise as listed).
COMPOSITES = {
    "cross_entropy": ("log_softmax", "nll_loss"),
    "scaled_dot_product_attention": ("matmul",),
}

# What a call does: None to pass it through, else (dtype, in place, _CastNeeded for dtype).
_Plan = Optional[Tuple[torch.dtype, bool, "_CastNeeded"]]


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
        self._plans: Dict[object, _Plan] = {}
        self._changes = _ByTarget()  # target dtype -> argument dtype -> whether it casts

    @classmethod
    def from_files(cls, bf16_file, fp32_file, dtype=torch.bfloat16) -> OpListPrecision:
        return cls(read_op_list(bf16_file), read_op_list(fp32_file), dtype)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if _is_compiling():
            # Traced once into the graph: the plain rules. Filling the table while tracing
            # would make every new entry a guard failure and a recompile.
            return self.apply_by_name(func, args, kwargs)
        try:
            plan = self._plans[func]
        except KeyError:
            plan = self._plans[func] = self.plan(func)
        except TypeError:  # an unhashable callable: decide every time
            plan = self.plan(func)
        if plan is None:
            return func(*args, **kwargs) if kwargs else func(*args)
        dtype, in_place, changes = plan
        if in_place and args and isinstance(args[0], torch.Tensor):
            # An in-place op must write into its own tensor: cast only the others, to it.
            dtype = args[0].dtype
            changes = self._changes[dtype]
            if _casts_any(args[1:], changes):
                args = args[:1] + _cast_each(args[1:], dtype, changes)
        elif _casts_any(args, changes):
            args = _cast_each(args, dtype, changes)
        if not kwargs:
            return func(*args)
        if _casts_any(kwargs.values(), changes):
            kwargs = dict(zip(kwargs, _cast_each(kwargs.values(), dtype, changes)))
        return func(*args, **kwargs)

    def apply_by_name(self, func, args, kwargs):
        """The rules written plainly: `func(*args, **kwargs)` with the casts its name asks for."""
        kwargs = kwargs or {}
        dtype = self.dtype_for(op_name(func))
        if dtype is None:
            return func(*args, **kwargs)
        if _is_in_place(func) and args and isinstance(args[0], torch.Tensor):
            target = args[0].dtype
            return func(args[0], *_cast_floats(args[1:], target), **_cast_floats(kwargs, target))
        return func(*_cast_floats(args, dtype), **_cast_floats(kwargs, dtype))

    def plan(self, func) -> _Plan:
        """What a call to `func` does here: None to pass it through, else the dtype its
        floating arguments go to, whether it is in place, and which dtypes that casts."""
        dtype = self.dtype_for(op_name(func))
        return None if dtype is None else (dtype, _is_in_place(func), self._changes[dtype])

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


class _CastNeeded(dict):
    """dtype -> True where `_cast_floats` to `target` would cast a tensor of that dtype."""

    def __init__(self, target: torch.dtype):
        super().__init__()
        self.target = target

    def __missing__(self, dtype: torch.dtype) -> bool:
        self[dtype] = dtype.is_floating_point and dtype != self.target
        return self[dtype]


class _ByTarget(dict):
    def __missing__(self, target: torch.dtype) -> _CastNeeded:
        self[target] = _CastNeeded(target)
        return self[target]


def _is_in_place(func) -> bool:
    name = op_name(func)
    # Slices, not str.endswith: torch.compile traces these when the mode wraps a graph.
    return name in _IN_PLACE_OPERATORS or (name[-1:] == "_" and name[:1] != "_")


# Argument types that never hold a tensor; torch.Size is a tuple of ints.
_PLAIN = frozenset({int, float, bool, str, type(None), torch.dtype, torch.device, torch.Size})


def _casts_any(values: Iterable, changes: _CastNeeded) -> bool:
    """Whether `_cast_floats` to `changes.target` would cast anything in `values`."""
    for value in values:
        kind = type(value)
        if kind in _PLAIN:
            continue
        if kind is torch.Tensor or isinstance(value, torch.Tensor):
            if changes[value.dtype]:
                return True
        elif isinstance(value, (list, tuple)):
            if _casts_any(value, changes):
                return True
        elif isinstance(value, dict) and _casts_any(value.values(), changes):
            return True
    return False


def _cast_each(values: Iterable, dtype: torch.dtype, changes: _CastNeeded) -> tuple:
    """`_cast_floats` of each value, with the test for a tensor taken from `changes`."""
    cast = []
    for value in values:
        if isinstance(value, torch.Tensor):
            cast.append(value.to(dtype) if changes[value.dtype] else value)
        else:
            cast.append(_cast_floats(value, dtype))
    return tuple(cast)


def _cast_floats(value, dtype):
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, (list, tuple)):
        return type(value)([_cast_floats(item, dtype) for item in value])
    if isinstance(value, dict):
        return {key: _cast_floats(item, dtype) for key, item in value.items()}
    return value
