"""The 腾讯云 CDN sandbox as a ``publisher.sandboxes`` entry point: declared in this tree's pyproject.toml,
loaded as an entry point, answering a signed ``PurgeUrlsCache`` over real HTTP, and wired by
``publisher demo`` into its website, which then purges each change through it."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from channels.sandbox import tencent_cdn
from channels.website.cdn import CdnConfig, TencentCdn
from publisher.channel import SANDBOX_ENTRY_POINT_GROUP, CredentialsRefused, SandboxHandle
from tests.declared import run_demo

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _entry_point() -> EntryPoint:
    """The entry point as this tree declares it (the installed metadata may predate it)."""
    declared = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"]
    return EntryPoint("tencent_cdn", declared[SANDBOX_ENTRY_POINT_GROUP]["tencent_cdn"], SANDBOX_ENTRY_POINT_GROUP)


def test_the_entry_point_loads_and_its_sandbox_answers_a_signed_purge(tmp_path: Path) -> None:
    start = _entry_point().load()
    assert start is tencent_cdn.demo_sandbox
    handle = start(tmp_path)
    try:
        assert isinstance(handle, SandboxHandle)
        assert handle.config == {} and handle.auth == {} and handle.notify == {}  # no channel, no sign-in
        config = CdnConfig.model_validate(handle.cdn)
        assert config.endpoint.startswith("http://127.0.0.1:")
        purger = TencentCdn(config, environ=handle.environ)
        task = purger.purge(["http://127.0.0.1:8000/site/index.html", "http://127.0.0.1:8000/site/items/1.html"])
        assert re.fullmatch(r"\d+-[0-9a-f]{8}", task), task
        # the signature is checked: the same SecretId with another key is refused, typed
        wrong = {config.secret_id_env: handle.environ[config.secret_id_env], config.secret_key_env: "not-the-key"}
        with pytest.raises(CredentialsRefused) as err:
            TencentCdn(config, environ=wrong).purge(["http://127.0.0.1:8000/site/index.html"])
        assert err.value.code == "AuthFailure.SignatureFailure"
    finally:
        handle.stop()


def test_the_demo_website_purges_through_the_cdn_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tencent_cdn.TencentCdnSandbox] = []

    class Recorded(tencent_cdn.TencentCdnSandbox):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            started.append(self)

    monkeypatch.setattr(tencent_cdn, "TencentCdnSandbox", Recorded)
    text = run_demo(tmp_path, monkeypatch, {"tencent_cdn": _entry_point().load()})
    assert "channels: website\n" in text or "channels: website " in text, text  # the CDN is no channel
    assert "1 of 1 sample items published on every channel." in text, text
    assert "腾讯云 CDN PurgeUrlsCache at http://127.0.0.1:" in text, text
    item = re.search(r"written\s+(\d+):", text)
    assert item is not None, text
    [sandbox] = started
    assert [e for e in sandbox.ledger if e["action"] == "refused"] == []
    assert {"http://127.0.0.1:8000/site/index.html", f"http://127.0.0.1:8000/site/items/{item[1]}.html"} <= set(
        sandbox.purged
    ), sandbox.purged
