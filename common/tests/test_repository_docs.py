"""The repository documents itself: common/README.md maps every module of the package,
and no file of the repository points at notes that a clone does not contain; production
code never imports the test harnesses."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "common" / "src" / "bertfam"
# Notes kept beside the repository, never in a clone (spelled in two parts so that this
# file does not name them itself).
OUTSIDE_NOTES = (
    "upstream" + "-surface",
    "design" + ".md",
    "style-by" + "-example",
    "shared" + "/docs",
)


def test_the_module_map_names_every_module():
    readme = (ROOT / "common" / "README.md").read_text(encoding="utf-8")
    modules = sorted(
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
    )
    assert len(modules) > 50
    assert [module for module in modules if f"`{module}`" not in readme] == []


def tracked_files():
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"{ROOT} is not a git checkout: the tracked files are unknown")
    return [ROOT / name for name in listed if name]


def test_no_file_cites_notes_outside_the_repository():
    citing = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue  # binary, or removed in the working tree
        citing += [f"{path.relative_to(ROOT)}: {n}" for n in OUTSIDE_NOTES if n in text]
        # Only tests (and their harnesses) read the real-data folder beside a checkout.
        relative = path.relative_to(ROOT)
        if "../" + "shared" in text and not {"tests", "testing"} & set(relative.parts):
            citing.append(f"{relative}: the real-data folder's path")
    assert citing == []


def test_production_code_never_imports_the_test_harnesses():
    """`bertfam.testing` (fixtures, harnesses that patch the training loop, reference
    implementations) is for tests and benchmarks only."""
    importing = [
        str(path.relative_to(ROOT))
        for path in production_python_files()
        if re.search(
            r"^\s*(from|import) bertfam\.testing\b", path.read_text(encoding="utf-8"), re.M
        )
    ]
    assert importing == []


def production_python_files():
    """Tracked Python files outside tests, benchmarks, the test harnesses and nox."""
    for path in tracked_files():
        relative = path.relative_to(ROOT)
        if path.suffix != ".py" or {"tests", "benchmarks", "testing"} & set(relative.parts):
            continue
        if path.name != "noxfile.py" and path.is_file():
            yield path


# Settings of third-party libraries whose only interface is the environment. Our own
# modules never talk to each other through it: what one decides, it passes as a value.
THIRD_PARTY_SETTINGS = {
    "TF_CPP_MIN_LOG_LEVEL",  # TensorFlow's log level, read when it loads
    "TF_BF16_CONVERSION",  # Habana's TensorFlow bf16 pass, read when its module loads
    "PT_HPU_LAZY_MODE",  # Habana's PyTorch bridge
    "PT_HPU_LOWER_AS_STRIDED",
    "HOROVOD_HIERARCHICAL_ALLREDUCE",  # Horovod, read by hvd.init()
    "HOROVOD_STALL_SHUTDOWN_TIME_SECONDS",
    "RAYON_NUM_THREADS",  # the tokenizers' thread pool in worker processes
}


def test_code_writes_only_third_party_settings_to_the_environment():
    written = set()
    for path in production_python_files():
        relative = path.relative_to(ROOT)
        text = path.read_text(encoding="utf-8")
        pattern = r"os\.environ(?:\[\s*[\"'](\w+)[\"']\s*\]\s*=[^=]|\.setdefault\(\s*[\"'](\w+))"
        written |= {
            f"{relative}: {a or b}"
            for a, b in re.findall(pattern, text)
            if (a or b) not in THIRD_PARTY_SETTINGS
        }
        if re.search(r"os\.(putenv|environ\.update)\b", text):
            written.add(f"{relative}: os.putenv or os.environ.update")
    assert written == set()


def test_no_production_file_edits_sys_path():
    """Model folders' scripts load their folder's modules with bertfam.folder_modules."""
    editing = [
        str(path.relative_to(ROOT))
        for path in production_python_files()
        if re.search(r"sys\.path\.(insert|append)\(", path.read_text(encoding="utf-8"))
    ]
    assert editing == []
