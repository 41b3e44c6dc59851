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

nox.options.sessions = ["lint", "common"]
nox.options.error_on_missing_interpreters = True


def run_pytest(session: nox.Session, tests: Path) -> None:
    """Run one folder's tests; extra arguments pass through: ``nox -s common -- -k launch``."""
    session.run("pytest", str(tests), "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def common(session: nox.Session) -> None:
    """The shared package, installed as users get it (not editable), with its tests."""
    session.install(f"{ROOT / 'common'}[test]")
    run_pytest(session, ROOT / "common" / "tests")
