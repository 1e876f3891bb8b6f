"""`publisher demo` with the sign-in sandboxes of this tree's pyproject.toml: it signs the demo's campus
account in through the CAS sandbox, and the sign-in sandboxes never become channels."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.declared import declared_sandboxes, run_demo

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _declared() -> dict[str, str]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"]["publisher.sandboxes"]


def test_the_sign_in_sandboxes_are_declared() -> None:
    declared = _declared()
    assert declared["cas"] == "channels.sandbox.cas:demo_sandbox"
    assert declared["oidc"] == "channels.sandbox.oidc:demo_sandbox"


def test_demo_signs_in_through_cas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the sign-in sandboxes and one channel's, as this tree declares them (the installed metadata may be older)
    text = run_demo(tmp_path, monkeypatch, declared_sandboxes("cas", "oidc", "webhook"))
    assert "channels: website, webhook" in text, text  # cas and oidc are no channels
    assert "zhang.san signed in through CAS as 张三 (viewer, 人事处)" in text, text
    assert "a campus CAS server at http://127.0.0.1:" in text and "campus-demo-2026" in text
