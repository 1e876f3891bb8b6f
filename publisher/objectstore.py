"""Where published files live: a local folder (the embedded default) or an S3-compatible bucket.

The website channel writes its pages through an :class:`ObjectStore`, so the site can sit in a folder
a web server serves or in a bucket (阿里云 OSS, 腾讯云 COS, MinIO, AWS S3) that a CDN serves, with the
same guarantee: a reader sees an object whole or not at all. A folder gets that from a temporary file,
``fsync`` and ``os.replace``; a bucket from S3 itself (a PUT replaces an object atomically). Keys are
``/``-separated paths relative to the store's root (``items/7.html``), never starting with ``/``.

The errors::

    PublisherError
     └── ObjectStoreError           the store refused or failed; ``transient`` says whether to retry

A folder raises ``OSError`` as the file system does (callers already map errno values); a bucket
raises :class:`ObjectStoreError`, the botocore cause chained. Credentials come from the environment
variables the settings name, never from the settings file.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import mimetypes
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from publisher.errors import ConfigError, MissingSecret, PublisherError

TMP_PREFIX = ".tmp-"

#: content types the site's objects are served with (a bucket serves what it was told at PUT)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}


def content_type_of(key: str) -> str:
    suffix = Path(key).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"


class ObjectStoreError(PublisherError):
    """The object store failed."""

    def __init__(self, message: str | None = None, *, transient: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        #: worth retrying (a timeout, 5xx, SlowDown) rather than a person's fix (AccessDenied, NoSuchBucket)
        self.transient = transient
        #: the service's own error code (``AccessDenied``) or the errno name
        self.code = code


def _etags(header: str) -> set[str]:
    """The ETags of an If-None-Match header (weak ones compared as strong, as GET may)."""
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


@dataclass(frozen=True)
class Fetched:
    """An object as read for serving: its bytes (empty when ``not_modified``), type and validators."""

    data: bytes
    content_type: str
    #: the quoted entity tag (S3's own: the MD5 of a single-part upload)
    etag: str | None
    last_modified: datetime | None
    not_modified: bool = False


class S3Config(BaseModel):
    """``[… .s3]``: an S3-compatible bucket. The keys are the secrets' variable names, not the secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(min_length=3, max_length=63)
    #: a folder inside the bucket (``"xxgk/"``); empty: the bucket's root
    prefix: str = ""
    #: the service's endpoint; none for AWS itself (e.g. ``https://oss-cn-beijing.aliyuncs.com``,
    #: ``https://cos.ap-beijing.myqcloud.com``, ``http://minio.internal:9000``)
    endpoint_url: str | None = None
    region: str = "us-east-1"
    #: ``path`` for MinIO and most self-hosted servers, ``virtual`` for 阿里云 OSS (it refuses path style)
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    access_key_env: str = "PUBLISHER_S3_ACCESS_KEY_ID"
    secret_key_env: str = "PUBLISHER_S3_SECRET_ACCESS_KEY"


class ObjectStore(abc.ABC):
    """Objects by key. Every method may raise ``OSError`` (a folder) or :class:`ObjectStoreError` (a bucket)."""

    #: where the objects are, for messages (``/srv/site``, ``s3://bucket/prefix/``)
    where: str = ""

    @abc.abstractmethod
    def put(self, key: str, data: bytes, *, durable: bool = True) -> bool:
        """Store ``data`` at ``key``, atomically: readers see the old object or the whole new one.

        Returns False when the object already held exactly these bytes and was left alone (a folder
        checks; a bucket always writes). ``durable=False`` lets a folder defer the directory's fsync to
        :meth:`sync`, so a change of many files syncs each directory once.
        """

    @abc.abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` (streamed; attachments may be large), atomically."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object's bytes, None when there is none."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str, *, durable: bool = True) -> bool:
        """Remove the object; False when there was none (never an error)."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """The keys under ``prefix`` (``"categories/"``), at any depth, in key order."""

    def sync(self, keys: Iterable[str]) -> None:  # noqa: B027 - nothing to do for a bucket
        """Make the deferred changes of ``keys`` durable (a folder fsyncs their directories)."""

    def url_for(self, key: str) -> str | None:
        """A ``file:`` path (folder) or ``s3://`` URI naming the object, for messages and checks."""
        return None

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path | None]:
        """The object as a local file, for a reader that needs a path (the DOCX, XLSX and PDF parsers of
        the privacy check); None when there is no such object. A bucket's object is copied to a
        temporary file that is removed afterwards; a folder gives its own file (see FolderStore)."""
        data = self.get(key)
        if data is None:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="publisher-object-") as tmp:
            path = Path(tmp) / (Path(key).name or "object")
            path.write_bytes(data)
            yield path

    def fetch(self, key: str, *, if_none_match: str | None = None) -> Fetched | None:
        """The object with what a web server answers about it (for ``publisher serve``'s ``/site/``);
        None when there is none. ``if_none_match``: an ETag the reader holds; when it is still the
        object's, the answer is ``not_modified`` with no bytes."""
        data = self.get(key)
        if data is None:
            return None
        etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
        if if_none_match is not None and etag in _etags(if_none_match):
            return Fetched(b"", content_type_of(key), etag, None, not_modified=True)
        return Fetched(data, content_type_of(key), etag, None)


# ------------------------------------------------------------------------------------------- folder
def fsync_dir(folder: Path) -> None:
    """Make a rename durable (a crash right after must not bring the old file back)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


class FolderStore(ObjectStore):
    """A local folder: temporary file, fsync, ``os.replace``; unchanged files are not rewritten."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)

    def path(self, key: str) -> Path:
        return self.folder / key

    def put(self, key: str, data: bytes, *, durable: bool = True) -> bool:
        path = self.path(key)
        try:
            if path.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
        atomic_write(path, data, sync_dir=durable)
        return True

    def put_file(self, key: str, path: Path) -> None:
        atomic_copy(path, self.path(key))

    def get(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str, *, durable: bool = True) -> bool:
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            return False
        if durable:
            fsync_dir(self.path(key).parent)
        return True

    def list(self, prefix: str) -> list[str]:
        base = self.path(prefix) if prefix.endswith("/") else self.path(prefix).parent
        if not base.is_dir():
            return []
        found = []
        for path in base.rglob("*"):
            key = path.relative_to(self.folder).as_posix()
            if path.is_file() and key.startswith(prefix) and not path.name.startswith(TMP_PREFIX):
                found.append(key)
        return sorted(found)

    def sync(self, keys: Iterable[str]) -> None:
        for folder in sorted({self.path(k).parent for k in keys}):
            with contextlib.suppress(FileNotFoundError):
                fsync_dir(folder)

    def url_for(self, key: str) -> str | None:
        return self.path(key).as_uri() if self.folder.is_absolute() else None

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path | None]:
        """The file itself, read in place; None when it is not a file inside the folder (a symbolic link
        out of it included: the check reads only what the folder holds)."""
        path = self.path(key).resolve()
        yield path if path.is_relative_to(self.folder.resolve()) and path.is_file() else None


# ------------------------------------------------------------------------------------------- bucket
#: S3 error codes a retry may cure; everything else (AccessDenied, NoSuchBucket, InvalidAccessKeyId,
#: SignatureDoesNotMatch…) needs a person
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed", "Throttling"}
)


class S3Store(ObjectStore):
    """An S3-compatible bucket through boto3, under ``config.prefix``.

    botocore 1.36 began sending CRC32 checksums (``x-amz-checksum-*``, aws-chunked uploads) by default;
    several S3-compatible services refuse them, so checksums are sent and checked only where an
    operation requires them (``when_required``), as those services' documentation asks.
    """

    def __init__(self, config: S3Config, *, environ: dict[str, str] | None = None) -> None:
        import boto3
        from botocore.config import Config

        env = os.environ if environ is None else environ
        key_id, secret = env.get(config.access_key_env), env.get(config.secret_key_env)
        if not key_id or not secret:
            missing = config.access_key_env if not key_id else config.secret_key_env
            raise MissingSecret(f"the bucket {config.bucket!r}: environment variable {missing} is not set")
        prefix = config.prefix.strip("/")
        self.prefix = prefix + "/" if prefix else ""
        self.bucket = config.bucket
        self.where = f"s3://{config.bucket}/{self.prefix}"
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(
                s3={"addressing_style": config.addressing_style},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=16,
            ),
        )

    def _key(self, key: str) -> str:
        return self.prefix + key

    @contextlib.contextmanager
    def _translated(self, what: str, key: str = "") -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

        try:
            yield
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code") or "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            transient = code in _TRANSIENT_CODES or status >= 500
            hint = "; will retry" if transient else "; check the bucket, its policy and the access key"
            raise ObjectStoreError(
                f"cannot {what} {self.where}{key}: {code or status} {err.get('Message') or ''}".rstrip() + hint,
                transient=transient,
                code=code or str(status),
            ) from exc
        except (NoCredentialsError, ParamValidationError) as exc:
            raise ObjectStoreError(f"cannot {what} {self.where}{key}: {exc}", code=type(exc).__name__) from exc
        except BotoCoreError as exc:  # connection refused, timeouts, a cut connection
            raise ObjectStoreError(
                f"cannot {what} {self.where}{key}: {exc}; will retry", transient=True, code=type(exc).__name__
            ) from exc

    def put(self, key: str, data: bytes, *, durable: bool = True) -> bool:
        with self._translated("write", key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type_of(key))
        return True

    def put_file(self, key: str, path: Path) -> None:
        with self._translated("write", key), open(path, "rb") as fh:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=fh, ContentType=content_type_of(key))

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with self._translated("read", key):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise

    def fetch(self, key: str, *, if_none_match: str | None = None) -> Fetched | None:
        from botocore.exceptions import ClientError

        extra = {"IfNoneMatch": if_none_match} if if_none_match else {}
        with self._translated("read", key):
            try:
                got = self.client.get_object(Bucket=self.bucket, Key=self._key(key), **extra)
            except ClientError as exc:
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
                if status == 304:
                    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
                    return Fetched(b"", content_type_of(key), headers.get("etag"), None, not_modified=True)
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            data = got["Body"].read()
        return Fetched(data, got.get("ContentType") or content_type_of(key), got.get("ETag"), got.get("LastModified"))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with self._translated("read", key):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    return False
                raise
        return True

    def delete(self, key: str, *, durable: bool = True) -> bool:
        # S3 answers 204 whether or not the object was there; one HEAD would only add a round trip
        with self._translated("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        return True

    def list(self, prefix: str) -> list[str]:
        found: list[str] = []
        with self._translated("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
            for page in pages:
                found += [o["Key"][len(self.prefix) :] for o in page.get("Contents", [])]
        return sorted(found)

    def url_for(self, key: str) -> str | None:
        return f"{self.where}{key}"

    def check(self) -> None:
        """Reach the bucket (HeadBucket): ObjectStoreError when it is missing or the key may not use it."""
        with self._translated("reach"):
            self.client.head_bucket(Bucket=self.bucket)


def open_object_store(storage: str, *, folder: Path, s3: S3Config | None, what: str) -> ObjectStore:
    """The store a setting names: ``"folder"`` (``folder``) or ``"s3"`` (the ``s3`` table); ConfigError
    naming ``what`` (the settings table) when the table is missing. MissingSecret when a key is unset."""
    if storage == "folder":
        return FolderStore(folder)
    if storage == "s3":
        if s3 is None:
            raise ConfigError(f'{what}: storage = "s3" needs an s3 table (bucket, endpoint_url, region, prefix…)')
        return S3Store(s3)
    raise ConfigError(f'{what}: storage must be "folder" or "s3", not {storage!r}')
