"""Writing the site safely: one change's writes as a batch, the folder's lock, the old manifest.

The files go through an object store (publisher.objectstore): in a folder each is written to a
temporary file in the same folder, fsynced and ``os.replace``-d; in a bucket each is one PUT. Either
way a web server never serves half a page and a crash never leaves one behind. Storage errors become
channel errors: a full disk or a bucket's timeout is retried, a wrong folder or a refused key is not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from publisher.channel import ObjectStore, ObjectStoreError, PermanentChannelError, TransientChannelError

MANIFEST = "_manifest.json"
LOCK = ".lock"

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


class Batch:
    """The writes of one change through the site's object store: a folder leaves unchanged files
    alone (no needless fsync) and fsyncs each directory once at the end instead of after every rename."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.keys: set[str] = set()
        #: every key the change wrote or deleted, changed or not (a retried change finds its own earlier
        #: writes unchanged, yet a CDN may still hold what was there before): what it owes a CDN purge
        self.touched: set[str] = set()

    def write(self, key: str, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.touched.add(key)
        if self.store.put(key, data, durable=False):
            self.keys.add(key)

    def unlink(self, key: str) -> None:
        self.touched.add(key)
        if self.store.delete(key, durable=False):
            self.keys.add(key)

    def sync(self) -> None:
        self.store.sync(self.keys)
        self.keys.clear()


@contextlib.contextmanager
def translate_errors(folder: Path | str) -> Iterator[None]:
    """File-system and bucket errors become channel errors: a full disk or a timeout is retried, a
    wrong folder or a refused key is not."""
    try:
        yield
    except ObjectStoreError as exc:
        if exc.transient:
            raise TransientChannelError(str(exc), code=exc.code) from exc
        raise PermanentChannelError(f"{exc}; then publish again", code=exc.code) from exc
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
