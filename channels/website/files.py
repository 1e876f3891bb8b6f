"""Writing the site folder safely: atomic writes, batched directory fsyncs, the lock, the old manifest.

Every file is written to a temporary file in the same folder, fsynced and ``os.replace``-d, so a web
server never serves half a page and a crash never leaves one behind. File-system errors become
channel errors: a full disk is retried, a wrong folder is not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from publisher.channel import PermanentChannelError, TransientChannelError

MANIFEST = "_manifest.json"
LOCK = ".lock"
TMP_PREFIX = ".tmp-"

#: file-system failures worth retrying; anything else (EACCES, EROFS, ENOTDIR...) needs a person
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EIO,
        errno.EAGAIN,
        errno.EBUSY,
        errno.EINTR,
        errno.ENOLCK,
        errno.ETIMEDOUT,
        errno.ESTALE,
    }
)


def atomic_write(path: Path, data: bytes | str, *, sync_dir: bool = True) -> None:
    """Write ``path`` so readers see either the old file or the whole new one, never a part."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            # mkstemp makes 0600 files; the web server must be able to read the site
            os.fchmod(fh.fileno(), 0o644)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def atomic_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1024 * 1024)
            out.flush()
            os.fchmod(out.fileno(), 0o644)
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(dest.parent)


def fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a crash right after must not bring the old file back)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Batch:
    """The writes of one commit: unchanged files are left alone (no needless fsync), and each
    directory is fsynced once at the end instead of after every rename."""

    def __init__(self) -> None:
        self.dirs: set[Path] = set()

    def write(self, path: Path, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            if path.read_bytes() == data:
                return
        except FileNotFoundError:
            pass
        atomic_write(path, data, sync_dir=False)
        self.dirs.add(path.parent)

    def unlink(self, path: Path) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        self.dirs.add(path.parent)

    def sync(self) -> None:
        for folder in sorted(self.dirs):
            fsync_dir(folder)


@contextlib.contextmanager
def translate_errors(folder: Path) -> Iterator[None]:
    """File-system errors become channel errors: a full disk is retried, a wrong folder is not."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _TRANSIENT_ERRNOS:
            raise TransientChannelError(
                f"cannot write the site under {folder}: {exc.strerror or exc}; will retry"
            ) from exc
        raise PermanentChannelError(
            f"cannot write the site under {folder}: {exc.strerror or exc}; fix the folder "
            f"(permissions, mount, free space) and publish again",
            code=errno.errorcode.get(exc.errno or 0),
        ) from exc


#: where a change can be made to fail (``inject_os_error(step=...)``), as a crash there would stop it:
#: before anything; after the item page is written (a publish) or deleted (a withdrawal, before the
#: state forgets the item); after the state is committed; after the index pages are written
STEPS = ("start", "page", "committed", "indexes")


class SiteFolder:
    """The site folder: its lock, the old manifest (read once, to migrate), injected write failures."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._faults: dict[str, deque[int]] = {step: deque() for step in STEPS}
        self._faults_lock = threading.Lock()

    def inject_os_error(self, err: int = errno.ENOSPC, times: int = 1, step: str = "start") -> None:
        with self._faults_lock:
            self._faults[step].extend([err] * times)

    def maybe_fail(self, step: str = "start") -> None:
        """Raise an injected fault for ``step`` — as a crash there would stop the change."""
        with self._faults_lock:
            faults = self._faults[step]
            err = faults.popleft() if faults else None
        if err is not None:
            raise OSError(err, os.strerror(err), str(self.folder))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the site lock: flock conflicts between processes and between threads alike,
        because every acquisition opens its own file description."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def read_manifest(self) -> dict[str, dict[str, Any]]:
        try:
            raw = (self.folder / MANIFEST).read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise PermanentChannelError(
                f"the site manifest {self.folder / MANIFEST} is corrupt ({exc}); restore it from a backup"
            ) from exc
        return {str(e["item_id"]): e for e in data.get("entries", [])}
