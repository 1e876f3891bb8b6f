"""No orphan drafts: a ``draft/add`` whose answer is lost never leaves a second, forgotten draft behind.

``draft/add`` has no idempotency key. A chaos run can leave drafts in the box when the retry looks
for the lost draft once, among the 20 newest drafts, by the title and the thumb id then in the
cache, and makes another draft whenever that look misses. Each test below puts the draft where that
look misses it (past the first page, under another thumb id, made after the look, at a page
boundary while the box shifts, behind a crash at the worst moment) and checks that the delivery
publishes once and leaves nothing of its own in the box.
"""

from __future__ import annotations

import contextlib
import json
import time

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from channels.sandbox.wechat import WeChatSandbox
from channels.wechat import WeChatChannel
from publisher.channel import (
    AmbiguousOutcome,
    ChannelError,
    DeliveryContext,
    Published,
    QuotaExceeded,
    TransientChannelError,
)
from publisher.testing import make_ctx, make_post
from tests.channels.contract_wechat import image_asset, make_channel
from tests.channels.test_wechat import run

LOST = (AmbiguousOutcome, TransientChannelError)  # what a lost answer may raise


@pytest.fixture
def sandbox():
    sb = WeChatSandbox(publish_delay=0.05)
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def cover(tmp_path):
    return image_asset(tmp_path, "cover.jpg", size=(900, 383), color=(180, 30, 40), role="cover")


def stuck_deliveries(ch: WeChatChannel, sandbox: WeChatSandbox, cover, n: int, first: int = 100) -> set[str]:
    """``n`` other deliveries that each add a draft and stop before submitting (per-minute quota):
    their drafts stay in the box, newer than any made before. Returns their draft ids."""
    sandbox.inject("quota_minute", path="/cgi-bin/freepublish/submit", times=n)
    ids = set()
    for i in range(first, first + n):
        ctx = make_ctx(i)
        with pytest.raises(QuotaExceeded):
            ch.publish(make_post(i, assets=(cover,)), ctx)
        ids.add(ctx.state["draft_media_id"])
    assert len(sandbox.ledger()["drafts"]) >= n
    return ids


def finish(ch, post, ctx):
    """Attempts as the dispatcher makes them, until an outcome (ambiguous/transient ones retried)."""
    for _ in range(20):
        try:
            return run(ch, post, ctx)
        except (AmbiguousOutcome, TransientChannelError):
            continue
    raise AssertionError("never published")


def test_lost_answer_is_ambiguous_and_the_draft_is_reused(sandbox, tmp_path, cover):
    ch = make_channel(sandbox, tmp_path)
    post, ctx = make_post(1, assets=(cover,)), make_ctx(1)
    sandbox.inject("lost_answer", path="/cgi-bin/draft/add")
    with pytest.raises(AmbiguousOutcome, match="connection broke"):
        ch.publish(post, ctx)
    assert ctx.state["step"] == "drafting" and ctx.state["draft_adds"] == 1
    assert len(sandbox.ledger()["drafts"]) == 1, "the sandbox applied the call before dropping the answer"
    out = run(ch, post, ctx)
    led = sandbox.ledger()
    assert led["calls"]["/cgi-bin/draft/add"] == 1 and led["drafts"] == {}
    assert [a["article_id"] for a in led["articles"]] == [out.remote_id]
    assert not ctx.state.get("drafts_swept"), "one request went out: nothing to sweep"


def test_draft_past_the_first_page_is_found(sandbox, tmp_path, cover):
    ch = make_channel(sandbox, tmp_path)
    post, ctx = make_post(1, assets=(cover,)), make_ctx(1)
    sandbox.inject("lost_answer", path="/cgi-bin/draft/add")
    with pytest.raises(LOST):
        ch.publish(post, ctx)
    others = stuck_deliveries(ch, sandbox, cover, 25)  # while the retry waits, 25 newer drafts
    out = run(ch, post, ctx)
    led = sandbox.ledger()
    assert led["calls"]["/cgi-bin/draft/add"] == 1 + 25, "no second draft for delivery 1"
    assert set(led["drafts"]) == others, "only the stuck deliveries' drafts are left"
    assert [a["article_id"] for a in led["articles"]] == [out.remote_id]


def test_draft_made_with_a_thumb_id_no_longer_cached_is_found(sandbox, tmp_path, cover):
    ch = make_channel(sandbox, tmp_path)
    post, ctx = make_post(1, assets=(cover,)), make_ctx(1)
    sandbox.inject("lost_answer", path="/cgi-bin/draft/add")
    with pytest.raises(LOST):
        ch.publish(post, ctx)
    lost_thumb = ctx.state["thumb_media_id"]
    # another worker uploaded the same cover at the same moment and its id won the shared cache
    key = f"{ch._media_prefix}thumb:{cover.sha256}"
    ch.env.kv.delete(key)
    assert ch._thumb(cover)["media_id"] != lost_thumb
    # and the submit's answer is lost too: the article is then looked for by title and thumb
    sandbox.inject("lost_answer", path="/cgi-bin/freepublish/submit")
    out = finish(ch, post, ctx)
    led = sandbox.ledger()
    assert led["calls"]["/cgi-bin/draft/add"] == 1 and led["drafts"] == {}
    assert led["calls"]["/cgi-bin/freepublish/submit"] == 1
    assert [a["article_id"] for a in led["articles"]] == [out.remote_id]
    assert led["articles"][0]["thumb_media_id"] == lost_thumb == ctx.state["thumb_media_id"]


def test_draft_that_lands_after_the_search_is_deleted_before_submit(sandbox, tmp_path, cover):
    """WeChat applies a delayed request after the retry looked (and found nothing)."""
    ch = make_channel(sandbox, tmp_path)
    post, ctx = make_post(1, assets=(cover,)), make_ctx(1)
    adds: list[dict] = []
    real_post = ch.client.post

    def transport(url, **kw):
        if url == "draft/add":
            adds.append(kw["data"])
            if len(adds) == 2:  # the first request, held up on the way, reaches WeChat only now
                real_post(url, data=adds[0])
        return real_post(url, **kw)

    ch.client.post = transport
    sandbox.inject("http500", path="/cgi-bin/draft/add")  # answered 500: it may or may not have been made
    with pytest.raises(LOST):
        ch.publish(post, ctx)
    assert sandbox.ledger()["drafts"] == {}
    sandbox.inject("busy", path="/cgi-bin/draft/delete")  # the first delete fails: swept again next time
    out = finish(ch, post, ctx)
    led = sandbox.ledger()
    assert len(adds) == 2 and led["calls"]["/cgi-bin/draft/add"] == 3  # the late copy, then ours
    assert led["drafts"] == {}, "the late draft was deleted"
    assert [a["article_id"] for a in led["articles"]] == [out.remote_id]
    assert ctx.state["drafts_swept"] and ctx.state["stray_drafts_deleted"] == 1


def test_draft_that_lands_after_the_submit_is_deleted_after_publication(sandbox, tmp_path, cover):
    """Held up even longer: the first request reaches WeChat only once the second draft is submitted."""
    ch = make_channel(sandbox, tmp_path)
    post, ctx = make_post(1, assets=(cover,)), make_ctx(1)
    adds: list[dict] = []
    real_post, real_submit = ch.client.post, ch.client.freepublish.submit

    def transport(url, **kw):
        if url == "draft/add":
            adds.append(kw["data"])
        return real_post(url, **kw)

    def submit(media_id):
        real_post("draft/add", data=adds[0])  # the late copy lands now, after the sweep before submit
        return real_submit(media_id)

    ch.client.post, ch.client.freepublish.submit = transport, submit
    sandbox.inject("http500", path="/cgi-bin/draft/add")
    with pytest.raises(LOST):
        ch.publish(post, ctx)
    out = finish(ch, post, ctx)
    led = sandbox.ledger()
    assert len(adds) == 2 and led["calls"]["/cgi-bin/draft/add"] == 3
    assert led["drafts"] == {}, "the late draft was deleted after publication"
    assert [a["article_id"] for a in led["articles"]] == [out.remote_id]
    assert ctx.state["last_sweep"] and ctx.state["stray_drafts_deleted"] == 1


def test_a_failed_last_sweep_is_logged_and_the_delivery_is_still_published(sandbox, tmp_path, cover, caplog):
    ch = make_channel(sandbox, tmp_path)
    post, ctx = make_post(1, assets=(cover,)), make_ctx(1)
    sandbox.inject("lost_answer", path="/cgi-bin/draft/add")
    with pytest.raises(LOST):
        ch.publish(post, ctx)
    ctx.state["draft_adds"] = 2  # as if a second request had gone out too
    real_submit = ch.client.freepublish.submit

    def submit(media_id):  # from the submit on, the listing is refused
        sandbox.inject("errcode", errcode=48001, path="/cgi-bin/draft/batchget", times=5)
        return real_submit(media_id)

    ch.client.freepublish.submit = submit
    out = run(ch, post, ctx)
    assert isinstance(out, Published) and ctx.state["step"] == "published"
    assert not ctx.state.get("last_sweep")
    assert "surplus drafts could not be looked for" in caplog.text and post.title.strip() in caplog.text


def test_draft_at_a_page_boundary_is_found_while_the_box_shifts(sandbox, tmp_path, cover):
    ch = make_channel(sandbox, tmp_path)
    post, ctx = make_post(1, assets=(cover,)), make_ctx(1)
    sandbox.inject("lost_answer", path="/cgi-bin/draft/add")
    with pytest.raises(LOST):
        ch.publish(post, ctx)
    stuck_deliveries(ch, sandbox, cover, 20)  # ours is 21st: the first drafts of page two
    real = ch.client.draft.batchget
    pages: list[int] = []

    def batchget(offset=0, count=20, no_content=0):
        res = real(offset, count, no_content)
        if not pages:  # between the first and second page, other workers' drafts leave the box
            tok = ch.client.access_token
            for it in res["item"][:3]:
                requests.post(
                    f"{sandbox.base_url}/cgi-bin/draft/delete",
                    params={"access_token": tok},
                    data=json.dumps({"media_id": it["media_id"]}),
                )
        pages.append(offset)
        return res

    ch.client.draft.batchget = batchget
    out = run(ch, post, ctx)
    led = sandbox.ledger()
    assert len(pages) >= 2 and led["calls"]["/cgi-bin/draft/add"] == 1 + 20
    assert len(led["drafts"]) == 17 and len(led["articles"]) == 1 == len(sandbox.live_articles())
    assert led["articles"][0]["article_id"] == out.remote_id


class Killed(BaseException):
    """The worker process dies here (nothing after this line of the attempt runs)."""


@pytest.mark.parametrize("moment", ["drafting saved, request not sent", "draft made, id not recorded"])
def test_kill_at_the_worst_moment_then_a_busy_box(sandbox, tmp_path, cover, moment):
    store: dict = {}

    def saver(state):
        if moment.startswith("draft made") and state.get("draft_media_id") and not store.get("draft_media_id"):
            raise Killed  # draft/add answered; the process dies before the id is committed
        store.clear()
        store.update(json.loads(json.dumps(state)))
        if moment.startswith("drafting saved") and state.get("step") == "drafting":
            raise Killed  # committed, then died before the request left

    ch = make_channel(sandbox, tmp_path)
    post = make_post(1, assets=(cover,))
    with pytest.raises(Killed):
        ch.publish(post, DeliveryContext(delivery_id=1, attempt=1, state={}, _saver=saver))
    assert store["step"] == "drafting"
    made = len(sandbox.ledger()["drafts"])
    assert made == (1 if moment.startswith("draft made") else 0)
    others = stuck_deliveries(ch, sandbox, cover, 25)
    restarted = make_channel(sandbox, tmp_path, env=ch.env)  # a new worker, the same database
    out = run(restarted, post, make_ctx(1, state=dict(store)))
    led = sandbox.ledger()
    assert led["calls"]["/cgi-bin/draft/add"] == 1 + 25
    assert set(led["drafts"]) == others and [a["article_id"] for a in led["articles"]] == [out.remote_id]


# the faults a draft/add, the draft listing and a delete can meet; each attempt meets its own
FAULTS = st.lists(
    st.tuples(
        st.sampled_from(["/cgi-bin/draft/add", "/cgi-bin/draft/batchget", "/cgi-bin/draft/delete"]),
        st.sampled_from(["lost_answer", "http500", "busy"]),
    ),
    max_size=6,
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(faults=FAULTS, crowd=st.integers(0, 30))
@example(faults=[("/cgi-bin/draft/add", "lost_answer")], crowd=25)
@example(faults=[("/cgi-bin/draft/add", "http500"), ("/cgi-bin/draft/add", "lost_answer")], crowd=0)
def test_any_faults_leave_one_article_and_no_draft_of_ours(sandbox, tmp_path, cover, faults, crowd):
    sandbox.reset()
    ch = make_channel(sandbox, tmp_path)
    post, ctx = make_post(1, assets=(cover,)), make_ctx(1)
    for path, kind in faults:
        sandbox.inject(kind, path=path)
    others: set[str] = set()
    out = None
    for attempt in range(30):
        try:
            out = run(ch, post, ctx)
            break
        except ChannelError:
            if attempt == 0 and crowd:  # other deliveries fill the box while this one waits
                sandbox.inject("quota_minute", path="/cgi-bin/freepublish/submit", times=crowd)
                others = set()
                for i in range(100, 100 + crowd):
                    c = make_ctx(i)
                    with contextlib.suppress(ChannelError):
                        ch.publish(make_post(i, assets=(cover,)), c)
                    if c.state.get("draft_media_id"):
                        others.add(c.state["draft_media_id"])
    assert isinstance(out, Published)
    led = sandbox.ledger()
    ours = {m for m, news in led["drafts"].items() if news[0]["title"] == post.title.strip()}
    assert ours == set(), f"drafts of delivery 1 left in the box after {faults}"
    assert [a["article_id"] for a in led["articles"] if a["title"] == post.title.strip()] == [out.remote_id]


def test_worker_killed_waiting_for_the_draft_add_answer_then_a_busy_box(sandbox, tmp_path, cover):
    """A real process, SIGKILLed after WeChat made its draft and before the answer came back."""
    import dataclasses
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from publisher.testing import make_env
    from tests.channels.contract_wechat import SECRET_ENV, FileKV
    from tests.channels.test_wechat import WORKER

    os.environ[SECRET_ENV] = sandbox.secret
    sandbox.inject("timeout", path="/cgi-bin/draft/add", seconds=30)  # the draft is made; no answer
    cover_json = json.dumps({**dataclasses.asdict(cover), "path": str(cover.path)})
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path), sandbox.base_url, sandbox.appid, cover_json], cwd=repo
    )
    state_file = tmp_path / "state.json"
    deadline = time.monotonic() + 20
    try:
        while not (
            sandbox.ledger()["drafts"]
            and state_file.exists()
            and json.loads(state_file.read_text()).get("step") == "drafting"
        ):
            assert proc.poll() is None and time.monotonic() < deadline, "the worker never sent draft/add"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    state = json.loads(state_file.read_text())
    assert "draft_media_id" not in state
    ch = make_channel(sandbox, tmp_path, env=make_env(tmp_path, kv=FileKV(tmp_path / "kv.json")))
    others = stuck_deliveries(ch, sandbox, cover, 25)
    post = make_post(5, assets=(cover,))
    out = run(ch, post, DeliveryContext(delivery_id=5, attempt=2, state=state))
    led = sandbox.ledger()
    assert led["calls"]["/cgi-bin/draft/add"] == 1 + 25
    assert set(led["drafts"]) == others and [a["article_id"] for a in led["articles"]] == [out.remote_id]


def test_unconfirmed_submit_of_a_known_draft_is_found_after_the_cached_thumb_changed(sandbox, tmp_path, cover):
    """The chaos run's "no published article can be found": the draft carries the thumb of its own
    draft/add, but an attempt after it (here: the submit answered busy) put the thumb then in the
    shared cache into the state, and the lost submit's article was looked for under that one."""
    ch = make_channel(sandbox, tmp_path, reconcile_grace=1.0)
    post, ctx = make_post(1, assets=(cover,)), make_ctx(1)
    sandbox.inject("busy", path="/cgi-bin/freepublish/submit")  # answered: nothing submitted
    with pytest.raises(TransientChannelError):
        ch.publish(post, ctx)
    assert ctx.state["step"] == "drafted"
    drafted_thumb = ctx.state["thumb_media_id"]
    # meanwhile another worker uploaded the same cover and its id won the shared cache
    ch.env.kv.delete(f"{ch._media_prefix}thumb:{cover.sha256}")
    assert ch._thumb(cover)["media_id"] != drafted_thumb
    sandbox.inject("lost_answer", path="/cgi-bin/freepublish/submit")  # published, answer lost
    with pytest.raises(AmbiguousOutcome):
        ch.publish(post, ctx)
    time.sleep(0.3)  # the publish job finishes: the draft leaves the box
    out = finish(ch, post, ctx)
    led = sandbox.ledger()
    assert led["calls"]["/cgi-bin/freepublish/submit"] == 2 and led["drafts"] == {}
    assert [a["article_id"] for a in led["articles"]] == [out.remote_id]
    assert led["articles"][0]["thumb_media_id"] == drafted_thumb == ctx.state["thumb_media_id"]


def test_resubmit_that_meets_the_still_running_job_of_the_lost_submit_makes_no_second_article(sandbox, tmp_path, cover):
    """The grace ran out while WeChat was still publishing the unconfirmed submit's draft: the
    re-submit is refused (40007, the draft is in a running job). That is not "the draft left the box
    without a submit of ours": making a new draft then published the item twice."""
    ch = make_channel(sandbox, tmp_path, reconcile_grace=0.2)
    sandbox.configure(publish_delay=1.5)
    post, ctx = make_post(1, assets=(cover,)), make_ctx(1)
    sandbox.inject("lost_answer", path="/cgi-bin/freepublish/submit")
    with pytest.raises(AmbiguousOutcome):
        ch.publish(post, ctx)
    time.sleep(0.3)  # the grace runs out; the job is still running
    out = finish(ch, post, ctx)
    led = sandbox.ledger()
    assert [a["article_id"] for a in led["articles"]] == [out.remote_id]
    assert led["calls"]["/cgi-bin/draft/add"] == 1 and led["drafts"] == {}
