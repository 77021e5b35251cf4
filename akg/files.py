"""Writing files so that readers see the old content or the new, never half of it.

`stage` writes to a temporary file beside the target (same directory, so the rename is atomic),
`commit` renames staged files into place in order; an error removes what was staged and becomes
an `InputError` naming the file, instead of a traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from pathlib import Path

from akg.errors import InputError


@contextlib.contextmanager
def held_lock(path: Path):
    """An exclusive flock on `path` (created if missing) for the block: processes that read, change
    and write one shared file take turns. The kernel releases it when a process dies, however it dies."""
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def stage(target: Path, data: str | bytes, *, mode: int = 0o644) -> tuple[Path, Path]:
    """Write `data` to a new temporary file next to `target`; returns (temporary, target)."""
    target = Path(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise InputError(f"cannot write here ({e.strerror or e})", file=str(target)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, mode)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write ({e.strerror or e})", file=str(target)) from None
    return Path(tmp), target


def commit(staged: list[tuple[Path, Path]]) -> None:
    try:
        for tmp, target in staged:
            os.replace(tmp, target)
    except OSError as e:
        raise InputError(f"cannot write ({e.strerror or e})", file=str(target)) from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def write_together(contents: dict) -> None:
    """Write several files (path -> str or bytes) so that all of them change or none: each is staged
    beside its target, then all are renamed into place (a report's files never mix two runs)."""
    staged = []
    try:
        for path, data in contents.items():
            staged.append(stage(Path(path), data))
    except InputError:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    commit(staged)


def read_input(path: Path, kind: str) -> bytes:
    """A file the user named, as bytes without a UTF-8 byte-order mark (spreadsheet tools write one);
    a missing file, a directory, a device or pipe, or one that cannot be read is an InputError naming
    it and saying what was expected (`kind`)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"no such file ({kind})", file=str(path)) from None
    except OSError as e:
        raise InputError(f"cannot be read ({e.strerror or e})", file=str(path)) from None
    if stat.S_ISDIR(mode):
        raise InputError(f"is a directory, not {kind}", file=str(path))
    if not stat.S_ISREG(mode):  # /dev/zero or a FIFO would be read forever
        raise InputError(f"is not a regular file ({kind} was expected)", file=str(path))
    try:
        data = path.read_bytes()
    except OSError as e:  # /proc/self/mem: a regular file that refuses to be read
        raise InputError(f"cannot be read ({e.strerror or e})", file=str(path)) from None
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def write_atomic(target: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    commit([stage(target, data, mode=mode)])
