"""What every service call takes besides its session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from publisher.pipeline.registry import ChannelSpec
from publisher.settings import Settings


@dataclass
class Context:
    """What a service call needs besides the session: settings and the configured channels."""

    settings: Settings
    channels: Mapping[str, ChannelSpec]
