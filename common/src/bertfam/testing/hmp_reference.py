"""The op-list rules of `bertfam.torch.hmp.OpListPrecision` applied by name at every call,
without its per-function table: what the tests and ``benchmarks/hmp_overhead.py`` check
the fast path against."""

from bertfam.torch.hmp import OpListPrecision


class ReferenceOpListPrecision(OpListPrecision):
    """The same rules as `OpListPrecision`, applied by name at every call, without its table."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return self.apply_by_name(func, args, kwargs)
