"""Every folder's requirements files name each third-party package its Python files import.

CI installs all folders' requirements into one virtualenv, so that TensorFlow, torch and
transformers are installed once instead of six times. There, a package missing from one
folder's files would hide behind another folder's; this check finds it, where a folder's
own virtualenv would only find it if a test happened to import it.

For each folder, every top-level module that a file imports must be the standard
library's, the folder's own, or come from a distribution that the folder's requirements
ask for, directly or through what those require in turn. Production files are held to
``requirements.txt``; tests and benchmarks to that and ``tests/requirements.txt``. An
import inside ``try: ... except ImportError`` is optional and not checked.

    python tools/check_requirements.py      # in a virtualenv holding every folder's requirements

It prints one line per missing requirement and exits 1, or prints what it checked.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# Installed by a script rather than a requirements file, for the folders named.
INSTALLED_BY_SCRIPT = {"horovod": "tools/install_horovod.sh"}
# Habana's packages are not on PyPI; the code imports them only on a Gaudi machine.
NOT_ON_PYPI = {"habana_frameworks"}
TEST_PARTS = {"tests", "benchmarks", "testing"}


@dataclass(frozen=True)
class Folder:
    path: Path
    requirements: tuple[str, ...]  # requirement lines for production files
    test_requirements: tuple[str, ...]  # and, added to them, for tests and benchmarks
    by_script: frozenset[str] = frozenset()


def requirement_lines(file: Path, base: Path) -> tuple[str, ...]:
    """The requirement lines of a requirements file, local project paths resolved from
    ``base``, the folder pip runs in (a model folder, as nox and the README run it)."""
    if not file.is_file():
        return ()
    lines = []
    for raw in file.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith((".", "/")):
            line = local_project_requirement(base, line)
        lines.append(line)
    return tuple(lines)


def local_project_requirement(base: Path, line: str) -> str:
    """``../../../common[torch]`` -> ``bertfam-common[torch]``: the project's name from its
    pyproject.toml (what it requires is read from its installed metadata, like any other)."""
    match = re.fullmatch(r"([^\[]+)(\[.*\])?", line)
    project = (base / match.group(1)).resolve() / "pyproject.toml"
    if not project.is_file():
        raise SystemExit(f"{base}: {line} is not a project folder")
    name = re.search(r'^name = "([^"]+)"', project.read_text(encoding="utf-8"), re.M)
    return name.group(1) + (match.group(2) or "")


def requires(requirement: Requirement) -> list[str]:
    """What an installed distribution requires, with its requested extras' requirements."""
    try:
        lines = importlib.metadata.requires(requirement.name) or []
    except importlib.metadata.PackageNotFoundError:
        return []  # reported when something imports from it
    extras = set(requirement.extras) | {""}
    return [
        line
        for line in lines
        if (marker := Requirement(line).marker) is None
        or any(marker.evaluate({"extra": extra}) for extra in extras)
    ]


def folders() -> list[Folder]:
    # common: bertfam.tf and bertfam.torch need their framework's extra; its tests get
    # the extras nox installs for them.
    found = [
        Folder(
            ROOT / "common",
            (local_project_requirement(ROOT, "common[tensorflow,torch]"),),
            (local_project_requirement(ROOT, "common[test,tensorflow]"),),
        )
    ]
    for framework in ("TensorFlow", "PyTorch"):
        for model in sorted((ROOT / framework / "nlp").iterdir()):
            if not (model / "requirements.txt").is_file():
                continue
            by_script = frozenset(INSTALLED_BY_SCRIPT) if framework == "TensorFlow" else frozenset()
            found.append(
                Folder(
                    model,
                    requirement_lines(model / "requirements.txt", model),
                    requirement_lines(model / "tests" / "requirements.txt", model),
                    by_script,
                )
            )
    return found


def closure(lines: tuple[str, ...]) -> set[str]:
    """Canonical names of every distribution these requirements bring, transitively."""
    seen: set[str] = set()
    pending = [Requirement(line) for line in lines]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = name + "[" + ",".join(sorted(requirement.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        pending += [Requirement(line) for line in requires(requirement)]
    return {key.split("[", 1)[0] for key in seen}


class Imports(ast.NodeVisitor):
    """Top-level names a module imports (absolute imports only), except optional ones."""

    def __init__(self):
        self.names: set[str] = set()
        self.optional_depth = 0

    def visit_Try(self, node: ast.Try) -> None:
        catches_import_error = any(
            handler.type is not None
            and {n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)}
            & {"ImportError", "ModuleNotFoundError"}
            for handler in node.handlers
        )
        self.optional_depth += catches_import_error
        for statement in node.body:
            self.visit(statement)
        self.optional_depth -= catches_import_error
        for rest in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(rest)

    def visit_Import(self, node: ast.Import) -> None:
        if not self.optional_depth:
            self.names.update(alias.name.split(".")[0] for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not self.optional_depth and node.level == 0 and node.module:
            self.names.add(node.module.split(".")[0])


def imported_names(file: Path) -> set[str]:
    visitor = Imports()
    visitor.visit(ast.parse(file.read_text(encoding="utf-8"), str(file)))
    return visitor.names


def local_names(folder: Path) -> set[str]:
    """Modules and packages a folder's files can import as their own."""
    names = {path.stem for path in folder.rglob("*.py")}
    names |= {path.name for path in folder.rglob("*") if path.is_dir()}
    return names


def missing(folder: Folder, providers: dict[str, list[str]]) -> list[str]:
    own = local_names(folder.path) | set(sys.stdlib_module_names) | NOT_ON_PYPI
    own |= folder.by_script
    production = closure(folder.requirements)
    everything = production | closure(folder.requirements + folder.test_requirements)
    problems = []
    for file in sorted(folder.path.rglob("*.py")):
        relative = file.relative_to(folder.path)
        if {"build", "__pycache__"} & set(relative.parts):
            continue
        allowed = everything if TEST_PARTS & set(relative.parts) else production
        for name in sorted(imported_names(file) - own):
            distributions = {canonicalize_name(d) for d in providers.get(name, [])}
            if not distributions & allowed:
                where = ", ".join(sorted(distributions)) or "no installed distribution"
                problems.append(
                    f"{shown(file)} imports {name} ({where}), "
                    f"which {shown(folder.path)}'s requirements do not bring"
                )
    return problems


def shown(path: Path) -> str:
    return os.path.relpath(path, ROOT)


def main() -> int:
    providers = importlib.metadata.packages_distributions()
    checked = folders()
    problems = [line for folder in checked for line in missing(folder, providers)]
    for line in problems:
        print(line)
    if problems:
        return 1
    print(f"requirements cover the imports of {', '.join(shown(f.path) for f in checked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
