"""The contract every channel meets, run against each channel's sandbox.

A channel joins the contract suite by adding ``tests/channels/contract_<name>.py`` with a function
``make_harness(tmp_path) -> Harness`` that starts its sandbox and builds a configured channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from publisher.channel import Channel


@dataclass
class Harness:
    channel: Channel
    #: how many live (not withdrawn) publications the remote side now holds
    live_count: Callable[[], int]
    #: make the remote side fail the next call: "transient" or "permanent"
    inject: Callable[[str], None]
    close: Callable[[], None] = field(default=lambda: None)
    #: optional: fetch the published body/text the remote side holds for a remote id (for update tests)
    remote_text: Callable[[str], str] | None = None
