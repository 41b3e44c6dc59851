"""What graph mode compiles with on each device: Habana's backend on Gaudi; CUDA graphs for
the fine-tuning step of one process on a CUDA GPU (host-bound at small sizes otherwise);
plain Inductor for several processes, the CPU and pre-training."""

import pytest
import torch

from bertfam.launch import detect_launch_env
from bertfam.torch.args import FinetuneConfig
from bertfam.torch.start import Run


def compile_arguments(monkeypatch, kind: str, world: int, cuda_graphs: bool) -> dict:
    seen = {}

    def record(step, **kwargs):
        seen.update(kwargs)
        return step

    monkeypatch.setattr(torch, "compile", record)
    config = FinetuneConfig(model_name_or_path="-", output_dir="-", do_train=True, mode="graph")
    env = {"WORLD_SIZE": str(world), "RANK": "0", "LOCAL_RANK": "0"} if world > 1 else {}
    run = Run(config, torch.device("cpu"), kind, detect_launch_env(env))
    assert run.world_size == world
    step = run.compile(len, cuda_graphs=cuda_graphs)
    assert step is len
    return seen


@pytest.mark.parametrize(
    "kind, world, cuda_graphs, expected",
    [
        ("gpu", 1, True, {"mode": "reduce-overhead"}),
        ("gpu", 1, False, {}),  # pre-training asks for none
        ("gpu", 2, True, {}),  # beside DDP: not measured, plain Inductor
        ("cpu", 1, True, {}),
        ("hpu", 1, True, {"backend": "hpu_backend"}),
    ],
)
def test_graph_mode_compiles_for_the_device(monkeypatch, kind, world, cuda_graphs, expected):
    assert compile_arguments(monkeypatch, kind, world, cuda_graphs) == expected
