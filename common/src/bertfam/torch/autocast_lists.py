"""The op lists carried by ``torch.autocast``: bf16 with no Python on most ops.

`OpListPrecision` (hmp.py) sees every torch call in Python, which on a GPU costs more
than small kernels take. ``torch.autocast`` decides in C++, but by its own policy. Most
of BERT's lists agree with that policy: autocast computes ``linear``, ``matmul``,
``addmm``, ``bmm``, ``mm`` and ``scaled_dot_product_attention`` in bf16 and, on CUDA,
``layer_norm``, ``softmax``, ``log_softmax`` and ``nll_loss`` in fp32. Autocast leaves
other listed ops (``dropout``, ``gelu``, ``embedding``, ``add``; ``layer_norm`` on the
CPU) to their inputs; for those, `AutocastOpLists` registers a small kernel on the
device's autocast dispatch key that casts their floating-point arguments to the listed
dtype, so Python runs for those calls only.

`op_list_precision` takes this path in eager mode when it carries every listed op (a
compiled step traces the mode's casts into its graph instead); it does not when
autocast's own rule for a listed op disagrees with the list (``softmax`` on the bf16 list
on CUDA, where autocast forces fp32), for in-place ops, or for ops it cannot check. Then
it returns `OpListPrecision`, which is exact everywhere. One difference remains: ops on
neither list follow autocast here (on CUDA, autocast computes ``sum``, ``exp``, ``pow``
and a few more in fp32) where the mode leaves them alone. For BERT's steps under the
shipped lists that changes nothing, call for call; ``tests/test_hmp.py`` proves it on
the CPU and ``benchmarks/hmp_overhead.py --device cuda`` on a GPU.

The kernels are registered once per process and cast only while an `AutocastOpLists`
is entered; any other ``torch.autocast`` (HuggingFace's, say) sees what it always sees.
"""

from __future__ import annotations

import functools
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn.functional as F

from bertfam.torch.hmp import COMPOSITES, OpListPrecision, _cast_floats, _is_in_place

# The dispatcher's names where they are not the Python function's.
_ATEN_NAMES = {"cross_entropy": "cross_entropy_loss"}


def _square(device: str) -> torch.Tensor:
    return torch.linspace(-1, 1, 16, device=device).reshape(4, 4)


# For the listed ops autocast has a rule for: a call on one tensor, to see which dtype
# autocast computes the op in. A listed op with an autocast rule and no probe is not carried.
_PROBES: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: F.linear(x, x),
    "matmul": lambda x: torch.matmul(x, x),
    "mm": lambda x: torch.mm(x, x),
    "bmm": lambda x: torch.bmm(x[None], x[None]),
    "addmm": lambda x: torch.addmm(x, x, x),
    "baddbmm": lambda x: torch.baddbmm(x[None], x[None], x[None]),
    "scaled_dot_product_attention": lambda x: F.scaled_dot_product_attention(
        x[None, None], x[None, None], x[None, None]
    ),
    "layer_norm": lambda x: F.layer_norm(x, (4,)),
    "softmax": lambda x: F.softmax(x, dim=-1),
    "log_softmax": lambda x: F.log_softmax(x, dim=-1),
    "nll_loss": lambda x: F.nll_loss(x, torch.arange(4, device=x.device)),
    "cross_entropy": lambda x: F.cross_entropy(x, torch.arange(4, device=x.device)),
}


class NotCarried(Exception):
    """Autocast cannot carry these lists on this device; the message says which op."""


class AutocastOpLists:
    """``with AutocastOpLists(lists, "cuda"): loss = model(...)``: the casts of `lists`
    (an `OpListPrecision`) as ``torch.autocast`` plus cast kernels. Raises `NotCarried`."""

    def __init__(self, lists: OpListPrecision, device_type: str):
        self.lists = lists
        self.device_type = device_type
        self.dtype = lists.dtype
        self.casts: Dict[str, torch.dtype] = {}  # aten op -> dtype, where a kernel casts
        key = "Autocast" + torch._C._dispatch_key_for_device(device_type)
        for name in sorted(lists.bf16_ops | lists.fp32_ops | set(COMPOSITES)):
            wanted = lists.dtype_for(name)
            if wanted is None:  # a composite the lists leave alone: autocast's to decide
                continue
            aten = _ATEN_NAMES.get(name, name)
            if getattr(torch.ops.aten, aten, None) is None:
                continue  # no op dispatches under this name, so none to cast
            if _is_in_place(name):
                raise NotCarried(f"{name!r} is in place: autocast casts no op's own tensor")
            overloads = _dispatched_overloads(aten)
            own_rule = (aten, key) not in _REGISTERED and any(
                _has_kernel(aten, overload, key) for overload in overloads
            )
            native = dict.fromkeys(overloads)  # what autocast does with each, left alone
            if own_rule:
                computes = _autocast_computes(name, device_type, self.dtype)
                if computes is None:
                    raise NotCarried(f"autocast on {device_type} has a rule for {name!r} "
                                     "that this cannot check")  # fmt: skip
                if computes == wanted:
                    continue
                # Ours replaces autocast's and keeps its rule for every other caller.
                native = {o: computes if _has_kernel(aten, o, key) else None for o in overloads}
            _register_cast_kernel(aten, key, native)
            self.casts[aten] = wanted
        self._entered: List[Tuple[torch.autocast, Optional[Dict[str, torch.dtype]]]] = []

    def __enter__(self):
        autocast = torch.autocast(self.device_type, dtype=self.dtype)
        autocast.__enter__()
        self._entered.append((autocast, _ACTIVE.casts))
        _ACTIVE.casts = self.casts
        return self

    def __exit__(self, *exc):
        autocast, outer = self._entered.pop()
        _ACTIVE.casts = outer
        return autocast.__exit__(*exc)


def op_list_precision(
    bf16_ops: Iterable[str],
    fp32_ops: Iterable[str],
    device_type: str,
    graph: bool = False,
    dtype=torch.bfloat16,
) -> Tuple[object, str]:
    """(context, how): the lists as `AutocastOpLists` where autocast carries them on
    `device_type`, else as `OpListPrecision`; `how` says which, and why for the mode.
    For a step `torch.compile` compiles (`graph`), the mode: its casts are traced into
    the graph, where no call costs anything, and Dynamo cannot enter our context."""
    lists = OpListPrecision(bf16_ops, fp32_ops, dtype)
    if graph:
        return lists, "the op-list mode, traced into the compiled graph"
    try:
        return AutocastOpLists(lists, device_type), "torch.autocast with the lists' casts"
    except NotCarried as why:
        return lists, f"a Python op-list mode, since {why}"


class _Active:
    casts: Optional[Dict[str, torch.dtype]] = None  # the entered lists' kernel casts


_ACTIVE = _Active()
_REGISTERED = set()  # (aten op, dispatch key) with a cast kernel
_LIBRARY = torch.library.Library("aten", "IMPL")


def _dispatched_overloads(aten: str) -> List[str]:
    """The overloads of ``aten::<aten>`` the dispatcher knows (TorchScript adds others,
    such as ``add.str``), less those writing into an ``out=`` tensor."""
    found = []
    for overload in getattr(torch.ops.aten, aten).overloads():
        qualified = aten if overload == "default" else f"{aten}.{overload}"
        if not overload.endswith("out") and torch._C._dispatch_has_kernel(f"aten::{qualified}"):
            found.append(overload)
    return found


def _has_kernel(aten: str, overload: str, key: str) -> bool:
    name = f"aten::{aten}" if overload == "default" else f"aten::{aten}.{overload}"
    return torch._C._dispatch_has_kernel_for_dispatch_key(name, key)


@functools.cache
def _autocast_computes(name: str, device_type: str, dtype: torch.dtype) -> Optional[torch.dtype]:
    """The dtype autocast computes op `name` in, when it is the same for fp32 and for
    `dtype` inputs; None when it follows the inputs or there is no probe."""
    probe = _PROBES.get(name)
    if probe is None:
        return None
    results = set()
    with torch.autocast(device_type, dtype=dtype):
        for given in (torch.float32, dtype):
            results.add(probe(_square(device_type).to(given)).dtype)
    return results.pop() if len(results) == 1 else None


def _register_cast_kernel(aten: str, key: str, native: Dict[str, Optional[torch.dtype]]) -> None:
    """A kernel on `key` for every overload in `native`: it casts to the entered lists'
    dtype for `aten`, else to `native`'s dtype for that overload (None: no cast)."""
    if (aten, key) in _REGISTERED:
        return
    dispatch_key = getattr(torch._C.DispatchKey, key)
    below = torch._C.DispatchKeySet(dispatch_key)
    packet = getattr(torch.ops.aten, aten)
    for overload, dtype in native.items():
        op = getattr(packet, overload)
        kernel = functools.partial(_cast_then_call, op, aten, dtype, below)
        with warnings.catch_warnings():  # "Overriding a previously registered kernel"
            warnings.simplefilter("ignore")
            _LIBRARY.impl(aten if overload == "default" else f"{aten}.{overload}", kernel, key)
        op.py_impl(dispatch_key)(kernel)  # what torch.compile traces through
    _REGISTERED.add((aten, key))


def _cast_then_call(op, aten: str, native: Optional[torch.dtype], below, *args, **kwargs):
    casts = _ACTIVE.casts
    dtype = native if casts is None else casts.get(aten, native)
    if dtype is not None:
        args, kwargs = _cast_floats(args, dtype), _cast_floats(kwargs, dtype)
    with torch._C._ExcludeDispatchKeyGuard(below):
        return op(*args, **kwargs)
