"""The website channel in the contract suite: a site folder under tmp_path.

The website has no remote service to fail, so faults are the file system's: "transient" is a full
disk (ENOSPC), "permanent" a permission error (EACCES), raised where the real ones would surface.
"""

from __future__ import annotations

import errno

from channels.website import WebsiteChannel, WebsiteConfig
from publisher.channel import site_page_path
from publisher.testing import make_env
from tests.channels.harness import Harness


def make_harness(tmp_path) -> Harness:
    channel = WebsiteChannel("website", WebsiteConfig(base_url="https://xxgk.example.edu.cn/"), make_env(tmp_path))

    def inject(kind: str) -> None:
        channel.inject_os_error({"transient": errno.ENOSPC, "permanent": errno.EACCES}[kind])

    def remote_text(remote_id: str) -> str:
        page = channel.folder / site_page_path(int(remote_id))
        return page.read_text("utf-8") if page.is_file() else ""

    return Harness(channel=channel, live_count=lambda: len(channel.manifest()), inject=inject, remote_text=remote_text)
