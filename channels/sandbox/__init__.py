"""Emulators of the services the channels talk to, shipped with the package for tests and the demo.

Each is a real server on loopback, startable in-process (``base = XSandbox(...).start()``, then
``.stop()``) or as a process (``python -m channels.sandbox.<service> --port N``). Each follows the
service's own documentation for its answers, errors and limits, can be told to fail the next call
(``fail_next("transient" | "permanent" | "ambiguous" | ...)``) and keeps a ledger of what it was
sent, so a test can assert that an item went out exactly once.
"""

from __future__ import annotations
