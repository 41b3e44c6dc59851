"""bertfam.folder_modules: a model folder's module loaded by path, once, under its plain
name, without the folder on sys.path."""

import importlib
import sys

import pytest

from bertfam.folder_modules import folder_module


def test_loads_once_under_its_name_without_touching_sys_path(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "toy_modeling", raising=False)
    (tmp_path / "toy_modeling.py").write_text("LOADS = []\nLOADS.append(1)\n")
    path_before = list(sys.path)
    first = folder_module(tmp_path, "toy_modeling")
    again = folder_module(tmp_path, "toy_modeling")
    assert first is again is sys.modules["toy_modeling"]
    assert first.LOADS == [1]  # executed once
    assert sys.path == path_before
    # An import finds the same module (the one an `import toy_modeling` would find).
    assert importlib.import_module("toy_modeling") is first
    monkeypatch.delitem(sys.modules, "toy_modeling")


def test_another_folders_module_of_that_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "toy_modeling", raising=False)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "toy_modeling.py").write_text(f"NAME = {name!r}\n")
    assert folder_module(tmp_path / "a", "toy_modeling").NAME == "a"
    with pytest.raises(ImportError, match="is loaded, not"):
        folder_module(tmp_path / "b", "toy_modeling")
    monkeypatch.delitem(sys.modules, "toy_modeling")


def test_a_module_that_fails_to_load_is_not_left_half_registered(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "toy_broken", raising=False)
    (tmp_path / "toy_broken.py").write_text("raise RuntimeError('broken')\n")
    with pytest.raises(RuntimeError, match="broken"):
        folder_module(tmp_path, "toy_broken")
    assert "toy_broken" not in sys.modules
    with pytest.raises(ImportError, match="no module missing"):
        folder_module(tmp_path, "missing")
