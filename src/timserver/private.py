"""Files and folders that hold keys or account data: readable by their owner only.

The database holds every app's secret key in clear (docs/security.md), and so do its ``-wal``
and ``-shm`` files and its snapshots; the bulk CLI's state files name accounts; the TLS folder
holds a private key. Each is made 0600 (folders 0700) when created, whatever the umask, and
a file that already exists with wider permissions is narrowed (it was made by an earlier
version, or by hand).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("timserver.files")

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def make_folder(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` where each folder created is 0700; folders that exist are left alone (the
    data folder may be one the user shares on purpose, like the current folder)."""
    folder = Path(path)
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=FOLDER_MODE)
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(created, FOLDER_MODE)  # mkdir's mode is narrowed by the umask, never widened
    return Path(path)


def create_file(path: str | os.PathLike[str]) -> bool:
    """Create ``path`` empty and 0600 if it does not exist (True if this call created it);
    narrow it to 0600 if it exists with permissions for others."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        restrict(path)
        return False
    os.close(fd)
    return True


def restrict(path: str | os.PathLike[str]) -> None:
    """Take away the group's and others' permissions on an existing file of ours."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077 and info.st_uid == os.geteuid():
        try:
            os.chmod(path, mode & ~0o077)
        except OSError as exc:
            log.warning("cannot make %s private (%s): others may read it", path, exc.strerror)
            return
        log.warning("%s was readable by others (mode %o): now %o", path, mode, mode & ~0o077)


def open_private(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` (``w`` or ``a``, text or binary) for a file created 0600, or
    narrowed to 0600 if it exists."""
    flags = {"w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
             "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND}[mode[0]]
    restrict(path)
    return os.fdopen(os.open(path, flags, FILE_MODE), mode, **kwargs)
