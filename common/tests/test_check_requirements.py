"""tools/check_requirements.py, which stands in for per-folder virtualenvs in CI: it must
find an import that a folder's requirements do not bring, and accept one they do bring,
directly or through what a requirement requires."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_checker():
    spec = importlib.util.spec_from_file_location(
        "check_requirements", ROOT / "tools" / "check_requirements.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_an_import_the_requirements_do_not_bring_is_reported(tmp_path):
    checker = load_checker()
    (tmp_path / "tests").mkdir()
    (tmp_path / "helper.py").write_text("X = 1\n")
    (tmp_path / "train.py").write_text(
        "import os\nimport numpy\nimport pytest\nimport helper\n"
        "try:\n    import sentencepiece\nexcept ImportError:\n    sentencepiece = None\n"
    )
    (tmp_path / "tests" / "test_train.py").write_text("import pytest\nimport numpy\n")
    # tqdm requires nothing that provides numpy or pytest; pytest is for the tests only.
    folder = checker.Folder(tmp_path, ("tqdm",), ("pytest",))
    problems = checker.missing(folder, {"numpy": ["numpy"], "pytest": ["pytest"]})
    reported = [line.split(" (")[0].rsplit("/", 1)[-1] for line in problems]
    assert reported == [
        "test_train.py imports numpy",  # a test is held to both files
        "train.py imports numpy",
        "train.py imports pytest",  # production code is held to requirements.txt alone
    ]


def test_a_requirement_brings_what_it_requires():
    checker = load_checker()
    # transformers requires numpy and tokenizers (its installed metadata says so).
    assert {"numpy", "tokenizers", "transformers"} <= checker.closure(("transformers",))
    assert "torch" not in checker.closure(("tokenizers",))
