"""The website's CDN purge (channels/website/cdn.py) against the 腾讯云 CDN sandbox over real HTTP:
the TC3-HMAC-SHA256 signature checked by the sandbox, its documented quotas and errors, the purges a
withdrawal owes (the page and the listings), a refused purge kept in the site's state and retried,
refused credentials kept as a typed error and told to the admins."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from channels.sandbox.tencent_cdn import TencentCdnSandbox
from channels.website import WebsiteChannel, WebsiteConfig, category_slug
from channels.website.cdn import CONTENT_TYPE, QUOTA_DAY, CdnConfig, TencentCdn, tc3_signature
from publisher.channel import CredentialsRefused, PermanentChannelError, QuotaExceeded, TransientChannelError
from publisher.testing import make_ctx, make_env
from tests.channels.test_website_scale import post

BASE = "https://xxgk.example.edu.cn/"
ID_ENV, KEY_ENV = "PUBLISHER_CDN_SECRET_ID", "PUBLISHER_CDN_SECRET_KEY"
KEYS = {"AKIDsandbox": "sandbox-secret-key"}


@pytest.fixture
def cdn():
    with TencentCdnSandbox(keys=KEYS) as sandbox:
        yield sandbox


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv(ID_ENV, "AKIDsandbox")
    monkeypatch.setenv(KEY_ENV, KEYS["AKIDsandbox"])


def site(tmp_path: Path, cdn: TencentCdnSandbox, **cdn_table) -> WebsiteChannel:
    table = {"endpoint": cdn.base_url, **cdn_table}
    config = WebsiteConfig(base_url=BASE, page_size=5, search_cron="", cdn=table)
    return WebsiteChannel("website", config, make_env(tmp_path))


def owed(ch: WebsiteChannel) -> list[dict]:
    with ch._locked():
        return ch.store.purge_backlog()


# ------------------------------------------------------------------------------------ the sandbox
def client(cdn: TencentCdnSandbox, secret_id: str = "AKIDsandbox", secret_key: str = "sandbox-secret-key", **kw):
    env = {ID_ENV: secret_id, KEY_ENV: secret_key}
    return TencentCdn(CdnConfig(endpoint=cdn.base_url), environ=env, **kw)


def raw(cdn: TencentCdnSandbox, body: dict, *, timestamp: int | None = None) -> dict:
    """A correctly signed request with any body (the client refuses more than 1,000 URLs itself)."""
    payload = json.dumps(body).encode()
    stamp = timestamp or int(datetime.now(UTC).timestamp())
    host = cdn.base_url.removeprefix("http://")
    scope, sig = tc3_signature(
        secret_key="sandbox-secret-key",
        service="cdn",
        host=host,
        action="PurgeUrlsCache",
        payload=payload,
        timestamp=stamp,
        content_type=CONTENT_TYPE,
    )
    headers = {
        "Authorization": f"TC3-HMAC-SHA256 Credential=AKIDsandbox/{scope}, "
        f"SignedHeaders=content-type;host;x-tc-action, Signature={sig}",
        "Content-Type": CONTENT_TYPE,
        "X-TC-Action": "PurgeUrlsCache",
        "X-TC-Timestamp": str(stamp),
        "X-TC-Version": "2018-06-06",
    }
    return requests.post(cdn.base_url + "/", data=payload, headers=headers, timeout=10).json()["Response"]


def test_the_sandbox_checks_the_signature_and_the_documented_limits(cdn):
    assert client(cdn).purge([BASE + "items/1.html"])
    assert cdn.purged == [BASE + "items/1.html"]
    with pytest.raises(CredentialsRefused) as wrong_key:
        client(cdn, secret_key="not-the-key").purge([BASE + "a.html"])
    assert wrong_key.value.code == "AuthFailure.SignatureFailure"
    with pytest.raises(CredentialsRefused) as unknown:
        client(cdn, secret_id="AKIDnobody").purge([BASE + "a.html"])
    assert unknown.value.code == "AuthFailure.SecretIdNotFound"
    # a clock 6 minutes off: expired, worth a retry once the clock is right
    late = client(cdn, clock=lambda: datetime.now(UTC) - timedelta(minutes=6))
    with pytest.raises(TransientChannelError) as expired:
        late.purge([BASE + "a.html"])
    assert expired.value.code == "AuthFailure.SignatureExpire"
    # a body changed after signing is refused
    stamp = int(datetime.now(UTC).timestamp())
    assert raw(cdn, {"Urls": [BASE + "b.html"]}, timestamp=stamp)["TaskId"]
    assert raw(cdn, {"Urls": [BASE + f"{n}.html" for n in range(1001)]})["Error"]["Code"] == (
        "LimitExceeded.CdnPurgeUrlExceedBatchLimit"
    )
    assert raw(cdn, {"Urls": []})["Error"]["Code"] == "MissingParameter"
    assert raw(cdn, {"Urls": ["xxgk.example.edu.cn/a.html"]})["Error"]["Code"] == "InvalidParameter"
    with pytest.raises(PermanentChannelError) as foreign:
        client(cdn).purge(["https://www.example.com/a.html"])
    assert foreign.value.code == "ResourceNotFound.CdnHostNotExists"
    assert cdn.purged == [BASE + "items/1.html", BASE + "b.html"]


def test_the_quotas_of_a_day_and_a_second(cdn):
    fixed = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)  # 23:30 in Beijing
    cdn.per_day, cdn.clock = 3, lambda: fixed
    c = client(cdn, clock=lambda: fixed)
    c.purge([BASE + "1.html", BASE + "2.html"])
    with pytest.raises(QuotaExceeded) as day:
        c.purge([BASE + "3.html", BASE + "4.html"])
    assert day.value.code == "LimitExceeded.CdnPurgeUrlExceedDayLimit"
    assert day.value.until == datetime(2026, 3, 2, tzinfo=QUOTA_DAY)  # the next Beijing midnight
    c.purge([BASE + "3.html"])  # the day's third URL still fits
    cdn.per_day = 10_000
    for n in range(17):  # 20 requests in this second: 3 above, 17 here
        c.purge([BASE + f"r{n}.html"])
    with pytest.raises(QuotaExceeded) as rate:
        c.purge([BASE + "r.html"])
    assert rate.value.code == "RequestLimitExceeded" and rate.value.until == fixed + timedelta(seconds=1)


# ---------------------------------------------------------------------------------- the website
def test_a_withdrawal_purges_the_page_and_the_listings(tmp_path, cdn, keys):
    ch = site(tmp_path, cdn)
    for i in (1, 2, 3):
        ch.publish(post(i, checklist_item=7), make_ctx(i))
    assert BASE + "items/2.html" in cdn.purged and not owed(ch)
    cdn.purged.clear()
    ch.withdraw(post(2), make_ctx(2))
    purged = set(cdn.purged)
    expected = {
        BASE + "items/2.html",
        BASE + "index.html",
        BASE,  # the home page by its folder's address
        BASE + "feed.xml",
        BASE + "page/1.html",
        BASE + f"categories/{category_slug(post(2).category)}.html",
        BASE + "checklist/7.html",
    }
    assert expected <= purged, expected - purged
    # only what the change wrote or deleted: the other items' pages are not purged
    assert BASE + "items/1.html" not in purged and BASE + "items/3.html" not in purged
    assert not owed(ch)


def test_a_refused_purge_is_kept_and_retried(tmp_path, cdn, keys):
    ch = site(tmp_path, cdn)
    ch.publish(post(1), make_ctx(1))
    cdn.purged.clear()
    cdn.fail_next("internal")
    ch.withdraw(post(1), make_ctx(1))  # the withdrawal itself succeeds: the page is gone
    assert not ch.files.exists("items/1.html") and cdn.purged == []
    rows = {r["url"]: r for r in owed(ch)}
    page = rows[BASE + "items/1.html"]
    assert page["attempts"] == 1 and page["kind"] == "TransientChannelError" and page["code"] == "InternalError"
    # not due yet: the back-off holds it
    assert ch.retry_purges().purged == 0 and cdn.purged == []
    cdn.fail_next("unavailable")
    report = ch.retry_purges(datetime.now(UTC) + timedelta(minutes=1))
    assert report.purged == 0 and isinstance(report.error, TransientChannelError)
    assert {r["attempts"] for r in owed(ch)} == {2}
    report = ch.retry_purges(datetime.now(UTC) + timedelta(hours=2))
    assert report.purged == len(rows) and report.owed == 0 and not owed(ch)
    assert set(cdn.purged) == set(rows)


def test_a_crash_between_the_commit_and_the_purge_loses_nothing(tmp_path, cdn, keys):
    """The change commits the purge it owes with the site's state: a process that dies right after
    (here: the change made without the purge that follows it) leaves it to the next process."""
    first = site(tmp_path, cdn)
    first._write_item(post(5))  # the committed change publish() makes before it purges
    first.store.close()
    assert cdn.purged == []
    after_restart = site(tmp_path, cdn)
    assert BASE + "items/5.html" in {r["url"] for r in owed(after_restart)}
    assert after_restart.retry_purges().purged >= 1
    assert BASE + "items/5.html" in cdn.purged and not owed(after_restart)


def test_refused_credentials_are_kept_typed_and_told_to_the_admins(make_app, tmp_path, cdn, monkeypatch):
    from publisher.pipeline.workflow import outbox
    from publisher.scheduler import periodic_jobs, retry_cdn_purges

    monkeypatch.setenv(ID_ENV, "AKIDrevoked")
    monkeypatch.setenv(KEY_ENV, "whatever")
    table = {"type": "website", "base_url": BASE, "search_cron": "", "cdn": {"endpoint": cdn.base_url}}
    app = make_app(channels={"website": table})
    with app.session() as s:
        outbox.set_pref(s, user="admin", transport="email", address="admin@example.edu.cn", known=["email"])
    ch = app.channels["website"].channel
    assert "cdn-purge:website" in {job.name for job in periodic_jobs(app)}  # every worker retries each minute
    ch.publish(post(1), make_ctx(1))
    row = owed(ch)[0]
    assert (row["kind"], row["code"]) == ("CredentialsRefused", "AuthFailure.SecretIdNotFound")
    assert "check the key" in row["error"] and ch.check_health().ok  # once is not yet "keeps failing"
    later = datetime.now(UTC)
    for _ in range(2):
        later += timedelta(hours=2)
        assert isinstance(ch.retry_purges(later).error, CredentialsRefused)
    health = ch.check_health()
    assert not health.ok and "AuthFailure.SecretIdNotFound" in health.detail
    monkeypatch.setattr("channels.website.purges.datetime", _Later(later + timedelta(hours=2)))
    retry_cdn_purges(app, name="website")
    n = sa.table("notification", sa.column("event"), sa.column("subject"), sa.column("body"))
    with app.engine.connect() as conn:
        told = conn.execute(sa.select(n.c.subject, n.c.body).where(n.c.event == "channel_problem")).all()
    assert told and all("凭据失效" in subject for subject, _ in told)
    assert "AuthFailure.SecretIdNotFound" in told[0].body
    assert cdn.purged == [] and {r["attempts"] for r in owed(ch)} == {4}


class _Later:
    """``datetime`` whose ``now`` is a fixed later moment (the job calls retry_purges without one)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self, tz=None):
        return self.at

    def __getattr__(self, name):
        return getattr(datetime, name)


def test_a_bucket_site_owes_its_purges_in_the_publishers_store(make_app, tmp_path, cdn, keys, monkeypatch):
    """A site in a bucket keeps the owed purges in the publisher's store (migration 0023), shared by
    every host: one host's refused purge is retried by another's channel."""
    from tests.s3server import S3Server, set_keys

    set_keys(monkeypatch)
    with S3Server() as s3:
        table = {
            "type": "website",
            "storage": "s3",
            "base_url": BASE,
            "search_cron": "",
            "s3": s3.bucket(),
            "cdn": {"endpoint": cdn.base_url},
        }
        app = make_app(channels={"website": table})
        host_a = app.channels["website"].channel
        host_a.publish(post(1), make_ctx(1))
        cdn.purged.clear()
        cdn.fail_next("internal")
        host_a.withdraw(post(1), make_ctx(1))
        with app.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT url, attempts, code FROM site_purge WHERE site = 'website'")).all()
        assert (BASE + "items/1.html", 1, "InternalError") in rows
        host_b = WebsiteChannel("website", WebsiteConfig(**{k: v for k, v in table.items() if k != "type"}), host_a.env)
        assert host_b.retry_purges(datetime.now(UTC) + timedelta(hours=2)).purged == len(rows)
        assert BASE + "items/1.html" in cdn.purged
        with app.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM site_purge")).scalar() == 0


def test_the_search_pointer_is_purged_after_a_build_and_a_withdrawal(tmp_path, cdn, keys):
    """A CDN that kept search/current.json would send readers to a bundle about to be deleted (after a
    build) or show a withdrawn item's number as not gone (after a withdrawal)."""
    ch = site(tmp_path, cdn)
    for i in (1, 2):
        ch.publish(post(i), make_ctx(i))
    cdn.purged.clear()
    ch.search_index()
    assert cdn.purged == [BASE + "search/current.json"] and not owed(ch)
    cdn.purged.clear()
    ch.withdraw(post(2), make_ctx(2))
    assert BASE + "search/current.json" in cdn.purged and not owed(ch)
