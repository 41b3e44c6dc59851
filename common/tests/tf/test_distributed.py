import os
import sys
import types

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow is not installed (bertfam.tf needs it)")

from bertfam.tf.distributed import HorovodUnavailableError, init_workers  # noqa: E402


def fake_horovod(seen):
    module = types.ModuleType("horovod.tensorflow")
    module.init = lambda: seen.append(os.environ.get("HOROVOD_HIERARCHICAL_ALLREDUCE"))
    module.rank, module.size, module.local_rank = (lambda: 1), (lambda: 4), (lambda: 1)
    module.Average = "average"
    module.allreduce = lambda tensor, op: ("allreduced", tensor, op)
    module.broadcast_variables = lambda variables, root_rank: seen.append(("broadcast", root_rank))
    package = types.ModuleType("horovod")
    package.tensorflow = module
    return package, module


def test_workers_from_horovod(monkeypatch):
    seen = []
    package, module = fake_horovod(seen)
    monkeypatch.setitem(sys.modules, "horovod", package)
    monkeypatch.setitem(sys.modules, "horovod.tensorflow", module)
    monkeypatch.delenv("HOROVOD_HIERARCHICAL_ALLREDUCE", raising=False)
    workers = init_workers(use_horovod=True, hierarchical_allreduce=True)
    assert seen == ["1"]  # set before hvd.init(), which reads it
    assert (workers.rank, workers.size, workers.local_rank, workers.is_main_process) == (
        1,
        4,
        1,
        False,
    )
    assert workers.allreduce("g") == ("allreduced", "g", "average")
    workers.broadcast_from_rank0([])
    assert seen[-1] == ("broadcast", 0)


def test_single_process_without_horovod():
    workers = init_workers(use_horovod=False)
    assert (workers.rank, workers.size, workers.allreduce) == (0, 1, None)


def test_missing_horovod_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "horovod", None)
    monkeypatch.setitem(sys.modules, "horovod.tensorflow", None)
    with pytest.raises(HorovodUnavailableError, match="recipe: tools/install_horovod.sh"):
        init_workers(use_horovod=True)
