"""`publisher demo`, the first thing a new developer runs, run twice in the same folder."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from publisher.demo import run_demo


def test_demo_twice_in_one_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each demo starts fresh sandboxes; the first run's cached tokens, image uploads and CMS category
    ids must not be sent to them (a second run failed on the CMS and WeChat)."""
    for k in [k for k in os.environ if k.startswith("PUBLISHER_")]:
        monkeypatch.delenv(k)
    saved = dict(os.environ)
    try:
        for _ in range(2):
            buf = io.StringIO()
            run_demo(tmp_path / "settings.toml", items=1, console=Console(file=buf, width=200))
            text = buf.getvalue()
            assert "1 of 1 sample items published on every channel." in text, text
            header = next(line for line in text.splitlines() if "┃ channel" in line)
            assert header.split() == [
                "┃",
                "channel",
                "┃",
                "published",
                "┃",
                "items",
                "┃",
                "failed",
                "┃",
                "pending",
                "┃",
            ], header
    finally:
        os.environ.clear()
        os.environ.update(saved)
