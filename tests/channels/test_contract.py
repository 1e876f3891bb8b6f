"""The contract every channel meets, run against each channel's sandbox.

Every ``tests/channels/contract_*.py`` found next to this file joins: it provides
``make_harness(tmp_path) -> Harness`` (see harness.py) and may provide ``make_post(tmp_path, item_id)``
when the channel needs more than the default post (e.g. an image). Discovery is by file name, so a
new channel joins by adding its file; nothing here names a channel.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import replace
from pathlib import Path

import pytest

from publisher.channel import (
    AmbiguousOutcome,
    InProgress,
    PermanentChannelError,
    Published,
    TransientChannelError,
)
from publisher.testing import make_ctx
from publisher.testing import make_post as default_make_post

MODULES = sorted(p.stem for p in Path(__file__).parent.glob("contract_*.py"))


@pytest.fixture(params=MODULES)
def contract(request, tmp_path):
    module = importlib.import_module(f"{__package__}.{request.param}")
    harness = module.make_harness(tmp_path)
    factory = getattr(module, "make_post", None)
    make = (lambda item_id=1, **kw: factory(tmp_path, item_id, **kw)) if factory else default_make_post
    yield harness, make
    harness.close()


def drive(call, post, ctx, *, rounds: int = 20):
    """Call ``publish``/``update`` until the channel says Published (InProgress is not a failure)."""
    for _ in range(rounds):
        out = call(post, ctx)
        if isinstance(out, Published):
            return out
        assert isinstance(out, InProgress)
        time.sleep(min(out.check_again_in.total_seconds(), 0.05))
    raise AssertionError(f"still in progress after {rounds} rounds")


def again(ctx, out=None):
    """The context the core builds for the next attempt of the same delivery."""
    return make_ctx(
        ctx.delivery_id,
        state=dict(ctx.state),
        attempt=ctx.attempt + 1,
        remote_id=out.remote_id if out else ctx.remote_id,
        url=out.url if out else ctx.url,
    )


def test_publish(contract):
    h, make_post = contract
    out = drive(h.channel.publish, make_post(1), make_ctx(11))
    assert isinstance(out, Published)
    assert h.live_count() == 1


def test_update_in_place(contract):
    h, make_post = contract
    if not h.channel.supports_update:
        pytest.skip(f"{h.channel.type_name} does not support update")
    post = make_post(2)
    ctx = make_ctx(12)
    out = drive(h.channel.publish, post, ctx)
    edited = replace(
        post, title=post.title + "（更正）", body_html=post.body_html + "<p>更正：时间有调整。</p>", version=2
    )
    out2 = drive(h.channel.update, edited, again(ctx, out))
    assert h.live_count() == 1
    assert out2.remote_id == out.remote_id
    if h.remote_text is not None:
        assert "更正" in h.remote_text(out2.remote_id)


def test_withdraw(contract):
    h, make_post = contract
    if not h.channel.supports_withdraw:
        pytest.skip(f"{h.channel.type_name} does not support withdraw")
    post = make_post(3)
    ctx = make_ctx(13)
    out = drive(h.channel.publish, post, ctx)
    assert h.live_count() == 1
    h.channel.withdraw(post, again(ctx, out))
    assert h.live_count() == 0


def test_transient_failure_then_success(contract):
    h, make_post = contract
    post, ctx = make_post(4), make_ctx(14)
    h.inject("transient")
    with pytest.raises(TransientChannelError):
        drive(h.channel.publish, post, ctx)
    assert h.live_count() == 0
    drive(h.channel.publish, post, again(ctx))
    assert h.live_count() == 1


def test_permanent_failure_keeps_the_reason(contract):
    h, make_post = contract
    h.inject("permanent")
    with pytest.raises(PermanentChannelError) as info:
        drive(h.channel.publish, make_post(5), make_ctx(15))
    assert str(info.value).strip(), "the reason must be stored on the delivery row"
    assert h.live_count() == 0


def test_retry_after_success_does_not_publish_twice(contract):
    h, make_post = contract
    post, ctx = make_post(6), make_ctx(16)
    out = drive(h.channel.publish, post, ctx)
    # the worker died before recording the outcome: the same delivery runs again from its saved state
    out2 = drive(h.channel.publish, post, again(ctx))
    assert h.live_count() == 1
    assert out2.remote_id == out.remote_id


def test_retry_after_ambiguous_failure_does_not_publish_twice(contract):
    h, make_post = contract
    try:
        h.inject("ambiguous")
    except (ValueError, KeyError, NotImplementedError):
        pytest.skip("this harness cannot inject an ambiguous failure")
    post, ctx = make_post(7), make_ctx(17)
    with pytest.raises(AmbiguousOutcome):
        drive(h.channel.publish, post, ctx)
    drive(h.channel.publish, post, again(ctx))
    assert h.live_count() == 1
