"""``publisher serve``'s ``/site/`` for a website in a bucket (moto's S3 server on loopback): the web app
under uvicorn, spoken to over real HTTP (http.client, which sends a path exactly as written, so a
step up or an encoded dot reaches the server as an attacker would send it)."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from publisher.testing import make_ctx
from tests.channels.test_website import asset_from
from tests.channels.test_website_scale import post
from tests.s3server import S3Server, set_keys
from tests.web.signin_helpers import free_socket, live_server


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


def get(base: str, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()


def test_a_bucket_site_is_served_from_the_bucket(make_app, tmp_path, s3, monkeypatch):
    set_keys(monkeypatch)
    table = s3.bucket()
    site = {"type": "website", "storage": "s3", "base_url": "https://xxgk.example.edu.cn/", "search_cron": ""}
    app = make_app(channels={"website": {**site, "s3": table}})
    ch = app.channels["website"].channel
    Image.new("RGB", (40, 30), (10, 120, 30)).save(tmp_path / "campus.png")
    image = asset_from(tmp_path / "campus.png", "image/png")
    ch.publish(post(1, title="停水通知"), make_ctx(1))
    ch.publish(post(2, assets=(image,), body_html=f'<p><img src="{image.ref}" alt="校园"></p>'), make_ctx(2))
    client, bucket = s3.client(), table["bucket"]
    # objects the channel never writes, put there by hand: still never served
    for key in (".site.sqlite3", "_manifest.json", "items/.secret.html"):
        client.put_object(Bucket=bucket, Key="xxgk/" + key, Body=b"titles of withdrawn items")
    assert not (tmp_path / "site").exists()  # no folder to serve instead: every answer is the bucket's

    with live_server(app, free_socket()) as base:
        status, h, body = get(base, "/site/items/1.html")
        assert status == 200 and "停水通知" in body.decode("utf-8")
        assert h["content-type"] == "text/html; charset=utf-8"
        assert h["cache-control"] == "no-cache" and h["etag"] and h["last-modified"].endswith(" GMT")
        # the ETag is the bucket's: the same GET asked again with it is answered 304, without the page
        stored = client.head_object(Bucket=bucket, Key="xxgk/items/1.html")["ETag"]
        assert h["etag"] == stored
        status, h2, body = get(base, "/site/items/1.html", headers={"If-None-Match": stored})
        assert status == 304 and body == b"" and h2["etag"] == stored
        status, _, body = get(base, "/site/items/1.html", "HEAD")
        assert status == 200 and body == b""

        status, h, body = get(base, "/site/")
        assert status == 200 and "停水通知" in body.decode("utf-8") and h["content-type"].startswith("text/html")
        assert get(base, "/site/style.css")[1]["content-type"] == "text/css; charset=utf-8"
        assert get(base, "/site/feed.xml")[1]["content-type"] == "application/xml; charset=utf-8"
        media = [k for k in s3.keys(table) if k.startswith("xxgk/media/")]
        status, h, body = get(base, "/site/" + media[0].removeprefix("xxgk/"))
        assert status == 200 and h["content-type"] == "image/png" and body.startswith(b"\x89PNG")

        assert get(base, "/site/items/99.html")[0] == 404
        for path in (
            "/site/.site.sqlite3",
            "/site/_manifest.json",
            "/site/items/.secret.html",
            "/site/items/../.site.sqlite3",
            "/site/items/%2e%2e/.site.sqlite3",
            "/site/%2esite.sqlite3",
            "/site/%5fmanifest.json",
            "/site/items/..%2f.site.sqlite3",
        ):
            status, _, body = get(base, path)
            assert status == 404 and b"withdrawn" not in body, path
        assert get(base, "/site/items/1.html", "POST")[0] in (403, 405)

        # a withdrawal deletes the object: the next request is a 404, not a copy kept by the server
        ch.withdraw(post(1), make_ctx(1))
        assert get(base, "/site/items/1.html")[0] == 404
        assert "停水通知" not in get(base, "/site/")[2].decode("utf-8")
