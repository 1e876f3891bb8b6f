"""The example channel in docs/channels.md runs as printed."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from publisher.channel import Published, TransientChannelError, validate_channel_config
from publisher.testing import make_ctx, make_env, make_post

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "channels.md"


@pytest.fixture
def outbox_module():
    code = re.search(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S).group(1)
    assert 30 <= len(code.strip().splitlines()) <= 60
    module = types.ModuleType("outbox_example")
    exec(compile(code, str(GUIDE), "exec"), module.__dict__)
    return module


def test_the_guide_example_publishes_updates_and_withdraws(tmp_path, outbox_module):
    cls = outbox_module.OutboxChannel
    folder = tmp_path / "outbox"
    folder.mkdir()
    ch = cls("outbox", validate_channel_config(cls, "outbox", {"folder": str(folder)}), make_env(tmp_path))
    ctx = make_ctx(9)
    out = ch.publish(make_post(1), ctx)
    assert isinstance(out, Published) and (folder / "delivery-9.json").exists()
    assert ch.publish(make_post(1), ctx) == out  # a retry rewrites the same file
    ch.update(make_post(1, title="新标题"), ctx)
    assert "新标题" in (folder / "delivery-9.json").read_text(encoding="utf-8")
    ch.withdraw(make_post(1), ctx)
    assert list(folder.iterdir()) == []
    assert ch.validate(make_post(1, title="长" * 101))


def test_the_guide_example_translates_errors(tmp_path, outbox_module):
    cls = outbox_module.OutboxChannel
    not_a_folder = tmp_path / "share.txt"
    not_a_folder.write_text("")
    ch = cls("outbox", cls.Config(folder=str(not_a_folder)), make_env(tmp_path))
    with pytest.raises(TransientChannelError, match="cannot write"):
        ch.publish(make_post(1), make_ctx(1))
