"""A model folder's own modules, for its scripts in subfolders (``finetuning/``,
``pretraining/``, ``benchmarks/``, ``download/``).

Upstream's command lines run those scripts by path (``python finetuning/run_glue.py``),
so Python sees the subfolder, not the model folder whose ``modeling.py`` they build.
Rather than put the whole model folder on ``sys.path`` (where each of its file and
folder names would shadow any package of that name for the rest of the process), a
script names the one module it needs: ``modeling = folder_module(FOLDER, "modeling")``.
The module is registered under its plain name, so a second call, or an ``import
modeling`` inside it, finds the same one.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def folder_module(folder: Path, name: str) -> ModuleType:
    """``<folder>/<name>.py`` as the module ``name``, loaded once per process."""
    path = (Path(folder) / f"{name}.py").resolve()
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", "") or "").resolve() != path:
            raise ImportError(f"a module named {name} from {loaded.__file__} is loaded, not {path}")
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or not path.is_file():
        raise ImportError(f"no module {name} in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
