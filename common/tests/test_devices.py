import subprocess
import sys
import types

import pytest

from bertfam.devices import (
    Device,
    DeviceUnavailableError,
    Probe,
    available_devices,
    choose_device,
    describe,
)


def probes(hpu=0, gpu=0):
    return {
        "hpu": lambda: Probe(hpu, "habana_frameworks does not import"),
        "gpu": lambda: Probe(gpu, "no CUDA"),
        "cpu": lambda: Probe(1),
    }


@pytest.mark.parametrize(
    "hpu, gpu, expected",
    [(8, 0, "hpu"), (8, 2, "hpu"), (0, 2, "gpu"), (0, 0, "cpu")],
)
def test_auto_prefers_hpu_then_gpu_then_cpu(hpu, gpu, expected):
    assert choose_device("pytorch", "auto", probes(hpu, gpu)).kind == expected


def test_requested_device_that_is_absent_is_one_clear_error():
    with pytest.raises(
        DeviceUnavailableError,
        match="device 'hpu' was asked for but tensorflow cannot use one: habana_frameworks does not import",
    ):
        choose_device("tensorflow", "hpu", probes(gpu=1))
    with pytest.raises(DeviceUnavailableError, match="'gpu'.*no CUDA"):
        choose_device("pytorch", "CUDA", probes(hpu=1))


def test_explicit_cpu_wins_over_accelerators():
    assert choose_device("pytorch", "cpu", probes(hpu=8, gpu=8)).kind == "cpu"


def test_unknown_device_name():
    with pytest.raises(DeviceUnavailableError, match="unknown device 'tpu'"):
        choose_device("pytorch", "tpu", probes())


def test_device_names_for_each_framework():
    gpu = Device("gpu", "pytorch", 2)
    assert [gpu.torch_name(r) for r in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert Device("hpu", "pytorch", 8).torch_name(3) == "hpu"
    assert Device("cpu", "pytorch", 1).torch_name(1) == "cpu"
    assert Device("gpu", "tensorflow", 1).tf_name() == "/device:GPU:0"
    assert Device("hpu", "tensorflow", 1).tf_name() == "/device:HPU:0"


def test_real_pytorch_on_this_machine_reports_the_truth():
    torch = pytest.importorskip("torch")
    found = available_devices("pytorch")
    assert found["cpu"].count == 1
    assert found["gpu"].count == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert (
        found["hpu"].count == 0 and "habana_frameworks.torch does not import" in found["hpu"].detail
    )
    if not torch.cuda.is_available():
        assert choose_device("pytorch").kind == "cpu"
        with pytest.raises(DeviceUnavailableError, match=r"torch\.cuda\.is_available\(\) is False"):
            choose_device("pytorch", "gpu")
    assert "pytorch devices: hpu: 0 (" in describe("pytorch", found)


def test_frameworks_are_imported_only_when_asked():
    code = (
        "import sys, bertfam.devices as d\n"
        "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules\n"
        "d.choose_device('pytorch')\n"
        "assert 'torch' in sys.modules and 'tensorflow' not in sys.modules\n"
    )
    pytest.importorskip("torch")
    subprocess.run([sys.executable, "-c", code], check=True)


def _fake_tensorflow(hpus=0, gpus=0):
    def list_physical_devices(kind):
        return [f"{kind}:{i}" for i in range({"HPU": hpus, "GPU": gpus}.get(kind, 0))]

    tf = types.ModuleType("tensorflow")
    tf.config = types.SimpleNamespace(list_physical_devices=list_physical_devices)
    return tf


def test_tensorflow_probes_with_habana_present(monkeypatch):
    loaded = []
    habana = types.ModuleType("habana_frameworks")
    habana_tf = types.ModuleType("habana_frameworks.tensorflow")
    habana_tf.load_habana_module = lambda: loaded.append(True)
    habana.tensorflow = habana_tf
    monkeypatch.setitem(sys.modules, "habana_frameworks", habana)
    monkeypatch.setitem(sys.modules, "habana_frameworks.tensorflow", habana_tf)
    monkeypatch.setitem(sys.modules, "tensorflow", _fake_tensorflow(hpus=8))

    device = choose_device("tensorflow")
    assert (device.kind, device.count, device.tf_name()) == ("hpu", 8, "/device:HPU:0")
    assert loaded == [True]  # the Habana module must be loaded before TF lists HPUs


def test_tensorflow_probes_without_habana(monkeypatch):
    monkeypatch.setitem(sys.modules, "habana_frameworks", None)  # import fails
    monkeypatch.setitem(sys.modules, "tensorflow", _fake_tensorflow(gpus=2))
    found = available_devices("tensorflow")
    assert (found["hpu"].count, found["gpu"].count) == (0, 2)
    assert "habana_frameworks.tensorflow does not import" in found["hpu"].detail
    assert choose_device("tensorflow").kind == "gpu"
    monkeypatch.setitem(sys.modules, "tensorflow", _fake_tensorflow())
    with pytest.raises(DeviceUnavailableError, match="TensorFlow lists no GPU"):
        choose_device("tensorflow", "gpu")


def test_pytorch_hpu_probe_uses_habana_api(monkeypatch):
    hpu_module = types.ModuleType("habana_frameworks.torch.hpu")
    hpu_module.is_available = lambda: True
    hpu_module.device_count = lambda: 8
    torch_pkg = types.ModuleType("habana_frameworks.torch")
    torch_pkg.hpu = hpu_module
    root = types.ModuleType("habana_frameworks")
    root.torch = torch_pkg
    monkeypatch.setitem(sys.modules, "habana_frameworks", root)
    monkeypatch.setitem(sys.modules, "habana_frameworks.torch", torch_pkg)
    monkeypatch.setitem(sys.modules, "habana_frameworks.torch.hpu", hpu_module)
    device = choose_device("pytorch")
    assert (device.kind, device.count, device.torch_name(5)) == ("hpu", 8, "hpu")


def test_devices_command_line_error_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "bertfam.devices", "--framework", "pytorch", "--device", "hpu"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: device 'hpu' was asked for but pytorch cannot use one")
