"""Where /metrics is served: by ``publisher run --metrics-port`` only, never by the web app (a scrape
endpoint has no log-in, and the web app's routes are logged in or public on purpose). The docs say so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@sqlite_only
def test_the_web_app_serves_no_metrics(client, login):
    for who in (None, "admin"):
        if who:
            login(client, who)
        r = client.get("/metrics")
        assert r.status_code == 404, who
        assert "publisher_store_up" not in r.text


def test_the_docs_do_not_say_the_web_app_serves_metrics():
    """Every sentence of the docs naming /metrics and the web app (or `publisher serve`) says it does not."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "publisher" / "metrics.py"]:
        prose = re.sub(r"```.*?```", " ", path.read_text(encoding="utf-8"), flags=re.S)  # not the diagrams
        text = re.sub(r"\s+", " ", prose)
        for sentence in re.split(r"(?<=[.:;])\s", text):
            names_metrics = "/metrics" in sentence or "metrics_text" in sentence
            if names_metrics and re.search(r"web app|publisher serve|publisher-web", sentence):
                assert re.search(r"\b(no|not|never)\b", sentence), f"{path.name}: {sentence}"
