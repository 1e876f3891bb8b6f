"""Uploaded media in an S3-compatible bucket (``[media] storage = "s3"``, moto's server): a file stored
on one host is found, whole and checked by its hash, by a worker on another host with its own
folder, and ends up in the post that worker hands its channels (SQLite and PostgreSQL stores)."""

from __future__ import annotations

import pytest
from PIL import Image

from publisher.app import open_app
from publisher.errors import ConfigError
from publisher.objectstore import ObjectStoreError
from publisher.pipeline import content, workflow
from publisher.settings import Settings, load_settings
from tests.s3server import S3Server, set_keys


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


def test_a_file_stored_on_one_host_reaches_a_worker_on_another(make_app, tmp_path, s3, monkeypatch):
    set_keys(monkeypatch)
    table = s3.bucket(prefix="media/")
    media = {"storage": "s3", "s3": table}
    host_a = make_app(media=media)
    (tmp_path / "campus.png").parent.mkdir(exist_ok=True)
    Image.new("RGB", (40, 30), (10, 120, 200)).save(tmp_path / "campus.png")
    (tmp_path / "a.md").write_text(
        "---\ntitle: 校园开放日\ncategory: 公告公示\nchannels: [mem]\n---\n![校园](campus.png)\n", encoding="utf-8"
    )
    with host_a.session() as s:
        draft = content.read_item_file(
            tmp_path / "a.md",
            media_dir=host_a.settings.media_dir,
            max_body_bytes=10**6,
            max_asset_bytes=10**6,
            remote=host_a.settings.media_store(),
        )
        item = workflow.create_item(host_a.ctx, s, author=workflow.get_user(s, "ed"), draft=draft)
    (sha,) = [a.sha256 for a in draft.assets]
    assert s3.keys(table) == [f"media/{sha[:2]}/{sha}"]
    # host B: the same store and bucket, its own working folder with no media in it
    other = tmp_path / "host-b"
    other.mkdir()
    host_b = open_app(Settings(**{**host_a.settings.model_dump(exclude={"source"}), "data_dir": str(other)}))
    try:
        assert not content.media_path(host_b.settings.media_dir, sha).exists()
        with host_b.session() as s:
            post = workflow.build_post(host_b.ctx, s, workflow.get_item(s, item.id))
        (asset,) = post.assets
        assert asset.path.is_relative_to(other) and asset.path.read_bytes() == (tmp_path / "campus.png").read_bytes()
    finally:
        host_b.close()


def test_a_bucket_copy_that_does_not_match_its_hash_is_refused(tmp_path, s3, monkeypatch):
    set_keys(monkeypatch)
    table = s3.bucket(prefix="media/")
    sha = "0" * 64
    s3.client().put_object(Bucket=table["bucket"], Key=f"media/00/{sha}", Body=b"not what was stored")
    settings = Settings(data_dir=str(tmp_path), media={"storage": "s3", "s3": table})
    with pytest.raises(ObjectStoreError, match="does not match its hash"):
        content.local_media(settings.media_dir, sha, settings.media_store())
    assert not content.media_path(settings.media_dir, sha).exists()


def test_media_in_a_bucket_needs_its_table(tmp_path):
    (tmp_path / "settings.toml").write_text('[media]\nstorage = "s3"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[media.s3\]"):
        load_settings(tmp_path / "settings.toml")
