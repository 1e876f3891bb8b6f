"""Every channel is found through its entry point, and every sandbox runs as a process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from publisher.channel import Channel, ChannelConfig, available_channel_types

CHANNELS = ["cms", "weibo", "email", "manual", "douyin"]


@pytest.mark.parametrize("name", CHANNELS)
def test_entry_point(name):
    cls = available_channel_types()[name]
    assert issubclass(cls, Channel) and cls.type_name == name and cls.label
    assert issubclass(cls.Config, ChannelConfig)


@pytest.mark.parametrize("service", ["wordpress", "weibo", "douyin", "smtp"])
def test_sandbox_runs_as_a_process(service):
    proc = subprocess.Popen(
        [sys.executable, "-m", f"channels.sandbox.{service}", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "listening on" in line, line
        address = line.split("listening on ", 1)[1].split()[0]
        if address.startswith("http://"):
            assert requests.get(address + "/nowhere", timeout=5).status_code >= 200  # it answers
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
