"""Output files: pre-flight checks, and temporary files that a killed run cannot leave for good.

Every tool output is written to a hidden temporary next to it and renamed into place on success
(:func:`atomic_output` for plain files; :mod:`dvclic.video.writers` for videos and PNG folders).
A temporary is named ``.<name>.<pid>.<8 hex>.tmp``: the process id of the writer is in the name,
so when a run is killed in a way no ``finally`` survives (SIGKILL, power loss), the next run that
writes the same output removes the temporaries whose process is gone. Temporaries of a live
process (``os.kill(pid, 0)`` succeeds or is refused with EPERM) are never touched. A pid reused
by an unrelated live process keeps its stale temporary until that process ends; pids are only
meaningful on one machine, so the check assumes one host writes a given folder.

:func:`check_output` is the pre-flight check the tools run before loading weights or coding a
frame: the output is not one of the inputs (also through symlinks and hard links), its folder
exists or can be created, is writable, and the output is not an existing directory (unless a
directory is what is written) nor under a regular file. Failures are one-line
:class:`~dvclic.errors.InputError` messages.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError

TEMP_SUFFIX = ".tmp"
_TOKEN_HEX = 4  # bytes of randomness: 8 hex digits


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<pid>.<random>.tmp`` (not created)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(_TOKEN_HEX)}{TEMP_SUFFIX}")


def _process_alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's live process; or not a real pid
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` left by processes that no longer exist; return them.

    Only names of the exact form :func:`temp_path` makes for this ``path`` are considered.
    Never raises (a folder that cannot be listed simply has nothing removed).
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]{{{2 * _TOKEN_HEX}}}{re.escape(TEMP_SUFFIX)}")
    removed = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        stale = path.parent / name
        try:
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
        except FileNotFoundError:  # another run cleaned it first
            pass
        except OSError:
            continue
        removed.append(stale)
    return removed


def create_temp_file(path: Path) -> tuple[Path, int]:
    """Create a new empty temporary file beside ``path`` (mode 0666 & ~umask); return it and an fd.

    Stale temporaries of ``path`` (their process is gone) are removed first.
    """
    remove_stale_temps(path)
    while True:
        temp = temp_path(path)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        return temp, fd


def create_temp_dir(path: Path) -> Path:
    """Create a new empty temporary directory beside ``path``, after removing stale ones."""
    remove_stale_temps(path)
    while True:
        temp = temp_path(path)
        try:
            os.mkdir(temp)
        except FileExistsError:
            continue
        return temp


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a new temporary file beside ``path`` (parents created); rename it into place on success.

    On any exception (KeyboardInterrupt included) the temporary is removed and ``path`` is
    untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp, fd = create_temp_file(path)
    os.close(fd)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file: same inode when both exist, else same real path."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _nearest_existing(folder: Path) -> Path:
    """``folder`` or its closest ancestor that exists (as anything, a broken link included)."""
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    return folder


def check_output(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    outputs: Iterable[str | os.PathLike[str] | None] = (),
    directory: bool = False,
    create_parents: bool = True,
) -> Path:
    """Refuse, before any work, an output that must not or cannot be written; return it as a Path.

    ``inputs`` are the files the run reads and ``outputs`` the other files it writes (``None``
    entries are skipped): the output may not be any of them. ``directory`` says the output is a
    folder (an existing directory is then fine; the caller checks what it contains).
    ``create_parents`` says whether a missing output folder will be created by the writer;
    otherwise a missing folder is an error. Raises :class:`InputError` with one line.
    """
    target = Path(path)
    for source in inputs:
        if source is not None and _same_file(target, Path(source)):
            raise InputError(f"{target}: is the same file as the input {source}; choose another output")
    for other in outputs:
        if other is not None and _same_file(target, Path(other)):
            raise InputError(f"{target}: is also the output {other}; give the outputs different names")
    if not directory and target.is_dir():
        raise InputError(f"{target}: is a directory; give an output file name")
    parent = target.parent
    existing = _nearest_existing(parent)
    if not existing.is_dir():
        kind = "a broken link" if not existing.exists() else "not a folder"
        raise InputError(f"{target}: {existing} is {kind}, so the output cannot be created there")
    if existing != parent and not create_parents:
        raise InputError(f"{target}: output folder {parent} does not exist")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{target}: folder {existing} is not writable")
    try:  # os.access is not the whole story (read-only mounts, ACLs, root squash)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise InputError(f"{target}: cannot write in folder {existing} ({error.strerror or error})") from None
    return target


__all__ = [
    "TEMP_SUFFIX", "atomic_output", "check_output", "create_temp_dir", "create_temp_file",
    "remove_stale_temps", "temp_path",
]
