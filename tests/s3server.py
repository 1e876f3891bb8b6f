"""A local S3-compatible server for the tests and bench/: moto's server mode on a free loopback port.

moto implements the S3 REST API the website channel uses (PutObject, GetObject, HeadObject,
DeleteObject, ListObjectsV2, HeadBucket), path-style and virtual-hosted, and checks nothing we rely
on being lax about. ``S3Server`` starts it on a thread (``ThreadedMotoServer``), makes a bucket per
call of :meth:`bucket`, and sets the environment variables the settings name for the keys.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

ACCESS_ENV = "PUBLISHER_S3_ACCESS_KEY_ID"
SECRET_ENV = "PUBLISHER_S3_SECRET_ACCESS_KEY"
KEYS = {ACCESS_ENV: "testing-key-id", SECRET_ENV: "testing-secret"}


class S3Server:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def __enter__(self) -> S3Server:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.stop()

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEYS[ACCESS_ENV],
            aws_secret_access_key=KEYS[SECRET_ENV],
            config=Config(s3={"addressing_style": "path"}),
        )

    def bucket(self, prefix: str = "xxgk/") -> dict[str, Any]:
        """A new, empty bucket; returns the ``s3`` settings table that points at it (path style)."""
        name = f"site-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return {
            "bucket": name,
            "prefix": prefix,
            "endpoint_url": self.endpoint,
            "region": "us-east-1",
            "addressing_style": "path",
        }

    def keys(self, table: dict[str, Any]) -> list[str]:
        """Every key in the bucket, with the site's prefix."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=table["bucket"])
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def mirror(self, table: dict[str, Any], folder: Path) -> Path:
        """Copy the site (the objects under the table's prefix) into ``folder``, as a reader sees it."""
        client, prefix = self.client(), table.get("prefix", "")
        for key in self.keys(table):
            if key.startswith(prefix):
                dest = folder / key[len(prefix) :]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(client.get_object(Bucket=table["bucket"], Key=key)["Body"].read())
        return folder


def set_keys(environ: Any = None) -> None:
    """Put the test keys into ``environ`` (a pytest monkeypatch, or os.environ)."""
    for name, value in KEYS.items():
        if environ is None:
            os.environ[name] = value
        else:
            environ.setenv(name, value)
