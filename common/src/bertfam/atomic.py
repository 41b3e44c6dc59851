"""Write files and directories so that a reader sees the old version or the new one, never half.

Everything is written under a temporary name in the destination's own directory (so the
final rename stays on one filesystem), flushed and fsynced, then renamed over the
destination. A process killed at any moment leaves the previous version intact; at
worst a hidden ``.<name>.*.tmp`` is left beside it.

Replacing a whole directory uses Linux's ``renameat2(RENAME_EXCHANGE)``, which swaps
two paths in one step; where that call is missing we fall back to two renames, whose
short gap can leave the old version under ``.<name>.*.old`` instead of ``<name>``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]

# mkstemp/mkdtemp create private (0600/0700) entries; outputs should get the permissions
# an ordinary open() would give them. Reading the umask means setting it, so do it once.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def fsync_directory(path: PathLike) -> None:
    """Make a rename inside `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str = "utf-8") -> Iterator[IO]:
    """``with atomic_write(p) as f: f.write(...)``: `p` appears only when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode must be 'w' or 'wb', not {mode!r}")
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": encoding})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(target.parent)


def write_text(path: PathLike, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_json(path: PathLike, obj: object, indent: int = 4) -> None:
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=indent)
        handle.write("\n")


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces `path` when the block succeeds.

    ``with atomic_directory(out / "checkpoint-500") as tmp: save(tmp)``: readers of
    ``checkpoint-500`` see the previous complete directory (or none) until the swap.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)
        yield tmp
        _fsync_tree(tmp)
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_directory(directory)


def _swap_into_place(new: Path, target: Path) -> None:
    if not target.exists():
        os.rename(new, target)  # fails, rather than merging, if someone raced us to it
    elif _exchange(new, target):
        shutil.rmtree(new)  # `new` now holds the previous version
    else:
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        os.rmdir(old)
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old)
    fsync_directory(target.parent)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the kernel or libc cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # e.g. a filesystem without exchange support
    raise OSError(code, os.strerror(code), str(b))
