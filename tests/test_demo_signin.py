"""`publisher demo` with the sign-in sandboxes of this tree's pyproject.toml: it signs the demo's campus
account in through the CAS sandbox, and the sign-in sandboxes never become channels."""

from __future__ import annotations

import importlib
import io
import os
import tomllib
from pathlib import Path

import pytest
from rich.console import Console

from publisher import demo

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _declared() -> dict[str, str]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"]["publisher.sandboxes"]


def _load(target: str):  # type: ignore[no-untyped-def]
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def test_the_sign_in_sandboxes_are_declared() -> None:
    declared = _declared()
    assert declared["cas"] == "channels.sandbox.cas:demo_sandbox"
    assert declared["oidc"] == "channels.sandbox.oidc:demo_sandbox"


def test_demo_signs_in_through_cas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in [k for k in os.environ if k.startswith("PUBLISHER_")]:
        monkeypatch.delenv(k)
    # the sign-in sandboxes and one channel's, as this tree declares them (the installed metadata may be older)
    wanted = {k: _load(v) for k, v in _declared().items() if k in ("cas", "oidc", "webhook")}
    monkeypatch.setattr(demo, "available_sandboxes", lambda: wanted)
    saved = dict(os.environ)
    try:
        buf = io.StringIO()
        demo.run_demo(tmp_path / "settings.toml", items=1, console=Console(file=buf, width=200))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    text = buf.getvalue()
    assert "channels: website, webhook" in text, text  # cas and oidc are no channels
    assert "zhang.san signed in through CAS as 张三 (viewer, 人事处)" in text, text
    assert "a campus CAS server at http://127.0.0.1:" in text and "campus-demo-2026" in text
