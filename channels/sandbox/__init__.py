"""Loopback emulators of the external services the channels talk to (used by tests and the demo)."""

from __future__ import annotations
