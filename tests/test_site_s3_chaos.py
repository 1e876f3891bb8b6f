"""A short bench/site_s3_chaos.py: two ``publisher run`` processes with their own working folders
(two hosts, no shared disk), one bucket (moto's S3 server), one PostgreSQL store; items published and
a third withdrawn while the workers are killed with SIGKILL twice. Afterwards every page is in the
bucket exactly when its item is live and every listing, the feed and the sitemap agree (the 1,000
items of issue 14 are the benchmark's default run: docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from bench.site_s3_chaos import run, site_channel
from tests.s3server import S3Server, set_keys

pytestmark = pytest.mark.slow

PG_ONLY = pytest.mark.parametrize("store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


@PG_ONLY
def test_two_hosts_killed_mid_run_leave_a_consistent_site(make_app, tmp_path, monkeypatch):
    set_keys(monkeypatch)
    with S3Server() as s3:
        table = s3.bucket()
        app = make_app(channels={"site": site_channel(table)})
        result = run(app, s3, table, tmp_path, n=30, kills=2, log=print)
    assert result["live"] == 20 and result["withdrawn"] == 10
