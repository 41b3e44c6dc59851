"""One kind of error for bad input, and the entry-point wrapper that reports it.

Every check on what a user gave us (files, flags, environment) raises a subclass of
`UserError`. Entry points run under `exit_on_user_error`, which turns it into a single
line on stderr and a non-zero exit instead of a traceback from deep inside.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Callable, TypeVar

EXIT_USER_ERROR = 2

F = TypeVar("F", bound=Callable)


class UserError(Exception):
    """Something the user can fix: the message says what and, where it can, how."""


class FlagError(UserError):
    """Flags that cannot work together, or input files that are not there (every script,
    TensorFlow and PyTorch)."""


def require_file(path: str | None, flag: str) -> None:
    """--`flag` must name an existing file."""
    if not path:
        raise FlagError(f"--{flag} is required")
    if not Path(path).is_file():
        raise FlagError(f"--{flag}={path}: no such file")


def refuse_given(values, reasons: dict) -> None:
    """One line for the first flag in `reasons` ({flag: why}) that the command sets."""
    for flag, why in reasons.items():
        if getattr(values, flag):
            raise FlagError(f"--{flag}: {why}")


def report_and_exit(error: UserError, prog: str | None = None) -> None:
    prefix = f"{prog}: " if prog else ""
    message = " ".join(str(error).split("\n"))
    print(f"{prefix}error: {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


def exit_on_user_error(main: F) -> F:
    """Decorate an entry point so a `UserError` exits with one line and status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            report_and_exit(error)

    return wrapper  # type: ignore[return-value]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr and exit 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        report_and_exit(UserError(f"{message} (see --help)"), self.prog)
