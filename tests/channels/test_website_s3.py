"""The website in an S3-compatible bucket (moto's server on loopback), its state in the publisher's
store (SQLite and PostgreSQL): the same site as in a folder, nothing of the state or a temporary
object in the bucket, and two "hosts" (channels with separate folders) publishing at once without
losing an update. The kill -9 test of whole worker processes is tests/test_site_s3_chaos.py."""

from __future__ import annotations

import errno
import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from channels.website import WebsiteChannel, WebsiteConfig
from channels.website.files import STEPS
from publisher.channel import Catalogue, PermanentChannelError, RelatedLink, TransientChannelError
from publisher.db import make_engine
from publisher.errors import ConfigError, MissingSecret
from publisher.pipeline.sharedsql import EngineSql
from publisher.testing import make_ctx, make_env
from tests.channels.test_website import asset_from
from tests.channels.test_website_scale import check_links, check_site, post
from tests.s3server import KEYS, S3Server, set_keys

BASE = "https://xxgk.example.edu.cn/"


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


@pytest.fixture
def engine(store_url):
    eng = make_engine(store_url)
    yield eng
    eng.dispose()


def bucket_site(tmp_path: Path, engine, table: dict, name: str = "website", **config) -> WebsiteChannel:
    config = {"base_url": BASE, "page_size": 5, "sitemap_urls": 10, "storage": "s3", "s3": table, **config}
    return WebsiteChannel(name, WebsiteConfig(**config), make_env(tmp_path, sql=EngineSql(engine)))


class Mirror:
    """The bucket copied to a folder, seen through check_site (which reads ``folder`` and ``manifest()``)."""

    def __init__(self, ch: WebsiteChannel, s3: S3Server, table: dict, folder: Path) -> None:
        self.folder = s3.mirror(table, folder)
        self._manifest = ch.manifest()

    def manifest(self):
        return self._manifest


def test_a_site_in_a_bucket_is_the_same_site(tmp_path, s3, engine, monkeypatch):
    set_keys(monkeypatch)
    table = s3.bucket()
    ch = bucket_site(tmp_path / "host-a", engine, table)
    Image.new("RGB", (60, 40), (200, 30, 30)).save(tmp_path / "campus.png")
    image = asset_from(tmp_path / "campus.png", "image/png")
    for i in range(1, 24):
        ch.publish(post(i, checklist_item=i % 3 + 1), make_ctx(i))
    ch.publish(post(24, assets=(image,), body_html=f'<p><img src="{image.ref}" alt="校园"></p>'), make_ctx(24))
    ch.withdraw(post(4), make_ctx(4))
    ch.publish(post(7, category="其他", title="改过的标题"), make_ctx(7))
    keys = s3.keys(table)
    assert all(k.startswith("xxgk/") for k in keys)
    # the state is in the publisher's store, not the bucket; no temporary object ever is
    assert not [k for k in keys if "/." in k or "/_" in k], keys
    assert "xxgk/items/4.html" not in keys and "xxgk/items/7.html" in keys
    assert any(k.startswith("xxgk/media/") for k in keys)
    site = Mirror(ch, s3, table, tmp_path / "mirror")
    check_site(site)
    assert "改过的标题" in (site.folder / "items/7.html").read_text("utf-8")
    with engine.connect() as c:
        live = c.execute(sa.text("select count(*) from site_entry where site = 'website' and live = 1")).scalar()
    assert live == 23
    assert not list(tmp_path.rglob(".site.sqlite3"))
    # a rebuild writes lost listing pages back from the state in the store
    s3.client().delete_object(Bucket=table["bucket"], Key="xxgk/page/1.html")
    assert ch.rebuild() == 23
    assert "xxgk/page/1.html" in s3.keys(table)
    # the image goes with the last item that used it
    ch.withdraw(post(24), make_ctx(24))
    assert not [k for k in s3.keys(table) if k.startswith("xxgk/media/")]
    assert ch.check_health().ok


def test_two_hosts_publishing_at_once_lose_no_update(tmp_path, s3, engine, monkeypatch):
    """Two channels with their own folders (two hosts), one bucket, one store, two threads each."""
    set_keys(monkeypatch)
    table = s3.bucket()
    hosts = [bucket_site(tmp_path / f"host-{h}", engine, table) for h in "ab"]
    errors: list[BaseException] = []

    def work(ch: WebsiteChannel, first: int) -> None:
        try:
            for i in range(first, first + 40, 4):
                ch.publish(post(i, checklist_item=i % 4 + 1), make_ctx(i))
                if i % 3 == 0:
                    ch.withdraw(post(i), make_ctx(i))
        except BaseException as exc:  # reported below, with the thread's cause
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(hosts[n % 2], 1 + n * 100 + n % 4)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    expected = {i for n in range(4) for i in range(1 + n * 100 + n % 4, 41 + n * 100 + n % 4, 4) if i % 3}
    live = {int(k) for k in hosts[0].manifest()}
    assert live == expected
    site = Mirror(hosts[1], s3, table, tmp_path / "mirror")
    assert {int(p.stem) for p in (site.folder / "items").glob("*.html")} == expected
    check_site(site)


def test_bucket_errors_say_what_to_fix(tmp_path, s3, engine, monkeypatch):
    set_keys(monkeypatch)
    missing = {**s3.bucket(), "bucket": "no-such-bucket-here"}
    ch = bucket_site(tmp_path, engine, missing)
    with pytest.raises(PermanentChannelError, match="NoSuchBucket"):
        ch.publish(post(1), make_ctx(1))
    health = ch.check_health()
    assert not health.ok and "no-such-bucket-here" in health.detail
    down = {**s3.bucket(), "endpoint_url": "http://127.0.0.1:9"}  # nothing listens on the discard port
    with pytest.raises(TransientChannelError, match="will retry"):
        bucket_site(tmp_path, engine, down).publish(post(1), make_ctx(1))
    with pytest.raises(ConfigError, match="base_url"):
        bucket_site(tmp_path, engine, missing, base_url=None)
    monkeypatch.delenv("PUBLISHER_S3_SECRET_ACCESS_KEY")
    with pytest.raises(MissingSecret, match="PUBLISHER_S3_SECRET_ACCESS_KEY"):
        bucket_site(tmp_path, engine, missing)


PG_ONLY = pytest.mark.parametrize("store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


@PG_ONLY
@pytest.mark.parametrize("step", STEPS)
def test_a_change_stopped_at_any_step_in_a_bucket_is_finished_by_its_retry(tmp_path, s3, engine, monkeypatch, step):
    """As a crash would stop it (the transaction rolled back, what was uploaded left): a listing never
    links to a missing page, and the retry finishes the publish, then the withdrawal."""
    set_keys(monkeypatch)
    table = s3.bucket()
    ch = bucket_site(tmp_path, engine, table)
    for i in range(1, 7):
        ch.publish(post(i), make_ctx(i))
    ch.inject_os_error(errno.EIO, step=step)
    with pytest.raises(TransientChannelError):
        ch.publish(post(7), make_ctx(7))
    check_links(Mirror(ch, s3, table, tmp_path / "after-publish"))
    ch.publish(post(7), make_ctx(7, attempt=2))
    ch.inject_os_error(errno.EIO, step=step)
    with pytest.raises(TransientChannelError):
        ch.withdraw(post(3), make_ctx(3))
    check_links(Mirror(ch, s3, table, tmp_path / "after-withdrawal"))
    ch.withdraw(post(3), make_ctx(3, attempt=2))
    site = Mirror(ch, s3, table, tmp_path / "finished")
    assert set(site.manifest()) == {"1", "2", "4", "5", "6", "7"}
    check_site(site)


def test_related_items_the_guide_the_reports_and_search_in_a_bucket(tmp_path, s3, engine, monkeypatch):
    """Main's pages beside the listings go into the bucket: an older page's related section is
    rewritten from its object when a newer related item comes and goes (the link kept in the store's
    state, on both engines); the guide, the reports page and the rules library are objects too. So is
    the search: the index is built from the pages in the bucket into the bucket, a withdrawal takes
    the item's text out of it at once, and the next build leaves one bundle there."""
    set_keys(monkeypatch)
    table = s3.bucket()
    ch = bucket_site(tmp_path / "host-a", engine, table)
    assert ch.search_cron == "*/30 * * * *"  # the default job runs for a bucket too
    rule = post(1, title="学生管理规定", catalogue=Catalogue(validity="现行有效"))
    ch.publish(rule, make_ctx(1))
    ch.publish(post(2, title="2025-2026学年信息公开工作年度报告", category="年度报告"), make_ctx(2))
    reading = RelatedLink("解读的文件", 1, "学生管理规定", back_label="政策解读")
    ch.publish(post(3, title="《学生管理规定》政策解读", catalogue=Catalogue(related=(reading,))), make_ctx(3))
    site = Mirror(ch, s3, table, tmp_path / "published")
    older = (site.folder / "items/1.html").read_text("utf-8")
    assert '政策解读：<a href="../items/3.html">《学生管理规定》政策解读</a>' in older
    assert "学生管理规定" in (site.folder / "rules.html").read_text("utf-8")
    assert "items/2.html" in (site.folder / "reports.html").read_text("utf-8")
    assert (site.folder / "guide.html").is_file()
    assert (site.folder / "search.html").is_file() and (site.folder / "search.js").is_file()
    assert 'role="search"' in older
    with engine.connect() as c:
        data = c.execute(sa.text("select data from site_entry where site = 'website' and item_id = 1")).scalar()
    assert [link["item_id"] for link in json.loads(data)["related"]] == [3]

    build = ch.search_index()
    assert build.indexed == 3 and build.dropped == 0
    site = Mirror(ch, s3, table, tmp_path / "indexed")
    current = json.loads((site.folder / "search/current.json").read_text("utf-8"))
    docs = {
        int(f.stem): json.loads(f.read_text("utf-8"))["url"]
        for f in (site.folder / "search" / current["bundle"] / "doc").glob("*.json")
    }
    assert sorted(docs.values()) == ["items/1.html", "items/2.html", "items/3.html"]
    assert current["gone"] == []

    ch.withdraw(post(3), make_ctx(3))
    site = Mirror(ch, s3, table, tmp_path / "withdrawn")
    assert "items/3.html" not in (site.folder / "items/1.html").read_text("utf-8")
    check_site(site)
    (number,) = [n for n, url in docs.items() if url == "items/3.html"]
    assert json.loads((site.folder / "search/current.json").read_text("utf-8"))["gone"] == [number]
    assert not (site.folder / "search" / current["bundle"] / "doc" / f"{number}.json").exists(), "its text is gone"

    second = ch.search_index()
    assert second.indexed == 2
    bundles = {k.split("/")[2] for k in s3.keys(table) if k.startswith("xxgk/search/") and k.count("/") > 2}
    assert bundles == {second.bundle}, "the old bundle is deleted from the bucket"


def test_publisher_site_search_index_on_a_bucket_site(tmp_path, s3, monkeypatch):
    from publisher.db import migrate
    from tests.clirun import SETTINGS, Cli

    set_keys(monkeypatch)
    table = s3.bucket()
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    s3_lines = "".join(f'{k} = "{v}"\n' for k, v in table.items())
    settings = SETTINGS.format(data_dir=tmp_path) + (
        f'[channels.site]\ntype = "website"\nbase_url = "{BASE}"\nstorage = "s3"\n[channels.site.s3]\n{s3_lines}'
    )
    cli = Cli(tmp_path, url, settings)
    cli.env.update(KEYS)  # Cli passes on no PUBLISHER_* variable of its own accord
    engine = make_engine(url)
    ch = bucket_site(tmp_path / "host", engine, table, name="site")  # the CLI's channel, the same store
    for i in (1, 2):
        ch.publish(post(i), make_ctx(i))
    engine.dispose()
    r = cli.ok("site", "search-index")
    assert "site: 2 pages indexed" in r.out, r.out
    assert any(k.startswith("xxgk/search/b") for k in s3.keys(table))
