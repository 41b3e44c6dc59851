"""Find and choose the device a run computes on: Habana Gaudi (HPU), NVIDIA GPU, or CPU.

"auto" prefers HPU when `habana_frameworks` imports and sees a card, then a CUDA GPU,
then the CPU. A device asked for by name that is not there is one clear error: a run that
silently fell back to the CPU would take a hundred times longer and look like it works.

TensorFlow and PyTorch are imported only inside the probe for the framework asked for,
so `import bertfam.devices` costs nothing and a PyTorch run never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional

from bertfam.errors import UserError, exit_on_user_error

FRAMEWORKS = ("tensorflow", "pytorch")
KINDS = ("hpu", "gpu", "cpu")  # the order "auto" tries them in
_ALIASES = {"cuda": "gpu", "gaudi": "hpu"}


class DeviceUnavailableError(UserError):
    """A device was asked for by name and the framework cannot see it."""


@dataclass(frozen=True)
class Probe:
    """How many devices of one kind a framework sees, and why when it sees none."""

    count: int
    detail: str = ""


@dataclass(frozen=True)
class Device:
    kind: str  # "hpu", "gpu" or "cpu"
    framework: str
    count: int

    def tf_name(self, index: int = 0) -> str:
        """The TensorFlow device string, e.g. "/device:GPU:0"."""
        return f"/device:{self.kind.upper()}:{index if self.kind != 'cpu' else 0}"

    def torch_name(self, local_rank: int = 0) -> str:
        """The torch.device string; each process of a node takes the GPU of its local rank."""
        if self.kind == "gpu":
            return f"cuda:{local_rank % self.count}"
        return self.kind


ProbeFn = Callable[[], Probe]


def _import_error_detail(module: str, error: ImportError) -> str:
    return f"{module} does not import ({error})"


def _tf_hpu() -> Probe:
    try:
        from habana_frameworks.tensorflow import load_habana_module
    except ImportError as error:
        return Probe(0, _import_error_detail("habana_frameworks.tensorflow", error))
    load_habana_module()
    import tensorflow as tf

    return Probe(len(tf.config.list_physical_devices("HPU")), "TensorFlow lists no HPU")


def _tf_gpu() -> Probe:
    import tensorflow as tf

    count = len(tf.config.list_physical_devices("GPU"))
    return Probe(count, "TensorFlow lists no GPU (no CUDA build or no driver)")


def _torch_hpu() -> Probe:
    try:
        import habana_frameworks.torch.hpu as hthpu
    except ImportError as error:
        return Probe(0, _import_error_detail("habana_frameworks.torch", error))
    count = hthpu.device_count() if hthpu.is_available() else 0
    return Probe(count, "habana_frameworks.torch.hpu.is_available() is False")


def _torch_gpu() -> Probe:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return Probe(count, "torch.cuda.is_available() is False")


def _cpu() -> Probe:
    return Probe(1)


DEFAULT_PROBES: Dict[str, Dict[str, ProbeFn]] = {
    "tensorflow": {"hpu": _tf_hpu, "gpu": _tf_gpu, "cpu": _cpu},
    "pytorch": {"hpu": _torch_hpu, "gpu": _torch_gpu, "cpu": _cpu},
}


def habana_installed() -> bool:
    """Whether habana_frameworks can load, found without importing it (or a framework), so
    the flag checks that depend on Gaudi cost nothing."""
    try:
        return importlib.util.find_spec("habana_frameworks") is not None
    except (ImportError, ValueError):
        return False


def normalize_kind(requested: str) -> str:
    kind = requested.strip().lower()
    kind = _ALIASES.get(kind, kind)
    if kind != "auto" and kind not in KINDS:
        raise DeviceUnavailableError(
            f"unknown device {requested!r}: use one of auto, {', '.join(KINDS)}"
        )
    return kind


def _probes_for(framework: str, probes: Optional[Mapping[str, ProbeFn]]) -> Mapping[str, ProbeFn]:
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, not {framework!r}")
    return DEFAULT_PROBES[framework] if probes is None else probes


def available_devices(
    framework: str, probes: Optional[Mapping[str, ProbeFn]] = None
) -> Dict[str, Probe]:
    """Probe every kind: {"hpu": Probe, "gpu": Probe, "cpu": Probe}."""
    table = _probes_for(framework, probes)
    return {kind: table[kind]() for kind in KINDS}


def choose_device(
    framework: str,
    requested: str = "auto",
    probes: Optional[Mapping[str, ProbeFn]] = None,
) -> Device:
    """The device to run on; `requested` is "auto", "hpu", "gpu" (or "cuda") or "cpu"."""
    table = _probes_for(framework, probes)
    kind = normalize_kind(requested)
    if kind != "auto":
        probe = table[kind]()
        if probe.count < 1:
            raise DeviceUnavailableError(
                f"device {kind!r} was asked for but {framework} cannot use one: {probe.detail}"
            )
        return Device(kind, framework, probe.count)
    for candidate in KINDS:
        probe = table[candidate]()
        if probe.count > 0:
            return Device(candidate, framework, probe.count)
    raise AssertionError("the CPU probe always finds a device")


def describe(framework: str, devices: Mapping[str, Probe]) -> str:
    parts = []
    for kind, probe in devices.items():
        parts.append(f"{kind}: {probe.count}" + (f" ({probe.detail})" if not probe.count else ""))
    return f"{framework} devices: " + "; ".join(parts)


@exit_on_user_error
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Report the devices a framework can use.")
    parser.add_argument("--framework", choices=FRAMEWORKS, required=True)
    parser.add_argument("--device", default="auto", help="auto, hpu, gpu or cpu")
    args = parser.parse_args(argv)
    print(describe(args.framework, available_devices(args.framework)))
    chosen = choose_device(args.framework, args.device)
    print(f"chosen: {chosen.kind} ({chosen.count} visible)")


if __name__ == "__main__":
    main()
