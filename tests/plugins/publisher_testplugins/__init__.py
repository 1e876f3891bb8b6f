"""A channel whose publications are observable from another process: one file per delivery.

Only importable with ``PYTHONPATH=tests/plugins``, where the ``.dist-info`` folder next to this
package registers it in the ``publisher.channels`` entry-point group (importlib.metadata finds
dist-info folders on sys.path, so the test needs no installation).

Like a real remote service it is idempotent by delivery id: the first call creates
``published/<delivery id>`` with O_EXCL and appends one line to ``ledger.log``; a repeated call for
the same delivery (a worker killed after the remote side took the item but before the store
recorded it) finds the marker, appends to ``recalls.log`` instead and answers as the first call did.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from publisher.channel import Channel, ChannelConfig, DeliveryContext, Post, Published, env_secret


class FileLogConfig(ChannelConfig):
    folder: str
    #: seconds slept before "publishing", so a test can kill the worker mid-batch
    delay: float = 0.0
    #: an optional secret, to test the missing-variable message
    secret_env: str | None = None


class FileLogChannel(Channel):
    type_name = "filelog"
    label = "File log (tests)"
    Config = FileLogConfig
    default_max_concurrency = 8

    def __init__(self, name, config, env):
        super().__init__(name, config, env)
        if config.secret_env:
            env_secret(config.secret_env, what=f"channel {name} secret")
        self.folder = Path(config.folder)
        (self.folder / "published").mkdir(parents=True, exist_ok=True)

    def _append(self, log: str, line: str) -> None:
        fd = os.open(self.folder / log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def publish(self, post: Post, ctx: DeliveryContext) -> Published:
        if self.config.delay:
            time.sleep(self.config.delay)
        try:
            fd = os.open(self.folder / "published" / str(ctx.delivery_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            self._append("recalls.log", f"{ctx.delivery_id} {post.item_id} {os.getpid()}")
        else:
            os.close(fd)
            self._append("ledger.log", f"{ctx.delivery_id} {post.item_id} {os.getpid()}")
        return Published(url=f"file://{self.folder}/published/{ctx.delivery_id}", remote_id=str(ctx.delivery_id))
