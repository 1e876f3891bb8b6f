"""Loopback emulators of the external services the channels talk to (used by tests and the demo).

Each emulator follows the service's *documentation*, not our client: where the two disagree, the
client is what changes. Each runs in-process (``XSandbox(...).start()`` → base URL, ``.stop()``) or
as a process (``python -m channels.sandbox.<service> --port N``), injects faults, and keeps a ledger
of what was published so a test can assert "each item exactly once".
"""

from __future__ import annotations
