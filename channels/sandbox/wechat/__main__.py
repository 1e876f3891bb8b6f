"""``python -m channels.sandbox.wechat``: the WeChat sandbox as a process."""

from __future__ import annotations

import argparse
import os
import time

from channels.sandbox.wechat.sandbox import WeChatSandbox
from channels.sandbox.wechat.state import DEFAULT_FAULT_MIX


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="WeChat Official Account API sandbox")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--appid", default="wx5a9d0c0e0c0ffee0")
    p.add_argument("--secret", default=os.environ.get("PUBLISHER_WECHAT_SECRET", "sandbox-app-secret-0123456789abcd"))
    p.add_argument("--publish-delay", type=float, default=2.0)
    p.add_argument("--callback-url")
    p.add_argument("--callback-token")
    p.add_argument("--encoding-aes-key")
    p.add_argument("--callback-mode", choices=["plain", "aes"], default="plain")
    p.add_argument("--token-ttl", type=int, default=7200)
    p.add_argument("--unverified", action="store_true", help="answer 48001 to freepublish and mass send")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of business calls answered with a fault")
    p.add_argument(
        "--fault-mix",
        default=",".join(DEFAULT_FAULT_MIX),
        help="comma-separated kinds drawn at --fault-rate (busy, quota_minute, quota_daily, errcode:N, lost_answer, "
        "http500, timeout, expire_token)",
    )
    p.add_argument("--hang-seconds", type=float, default=3.0, help="how long a drawn timeout holds its answer")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault draw")
    p.add_argument(
        "--daily-quota",
        action="append",
        default=[],
        metavar="PATH=N",
        help="e.g. /cgi-bin/freepublish/get=100 (repeatable)",
    )
    args = p.parse_args(argv)
    quotas = {k: int(v) for k, v in (q.rsplit("=", 1) for q in args.daily_quota)}
    sb = WeChatSandbox(
        args.appid,
        args.secret,
        host=args.host,
        port=args.port,
        publish_delay=args.publish_delay,
        callback_url=args.callback_url,
        callback_token=args.callback_token,
        encoding_aes_key=args.encoding_aes_key,
        callback_mode=args.callback_mode,
        token_ttl=args.token_ttl,
        verified=not args.unverified,
        daily_quotas=quotas,
        fault_rate=args.fault_rate,
        fault_mix=tuple(k for k in args.fault_mix.split(",") if k),
        hang_seconds=args.hang_seconds,
        seed=args.seed,
    )
    url = sb.start()
    print(f"WeChat sandbox for appid {args.appid} on {url} (admin: {url}/__sandbox__/ledger)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sb.stop()


if __name__ == "__main__":
    main()
