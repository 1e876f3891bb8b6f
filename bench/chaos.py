"""Chaos and fault run: many deliveries, injected faults, workers killed, connections cut, a restart.

    python bench/chaos.py                                   # 10,000 deliveries, 3 workers, 50 kills
    python bench/chaos.py --restart-postgres                # ... and restart the PostgreSQL server once
    python bench/chaos.py -n 2000 --kills 20 --workers 2    # a shorter run

Run it by hand only: ``--restart-postgres`` restarts the shared server on 127.0.0.1:5432, which
other people's tests use. Everything else touches only a fresh database made for the run.

What happens:

* ``--site-items`` items go to the website *and* the webhook, ``--wechat-items`` to the WeChat
  Official Account sandbox and the webhook, ``--cms-items`` to the WordPress sandbox and the
  webhook, the rest of the deliveries to the webhook only. The shares keep the full run near five
  minutes: the website fsyncs every page and index (~60 ms a publish, so 10,000 website publishes
  alone would take ten minutes); a WeChat publish is a draft, a submit and at least one poll of
  the publish job half a second later, a per-minute quota fault (45011) defers it to the next
  minute, and a submit left unconfirmed pages through the published list before it may be sent
  again, so the slowest WeChat deliveries take minutes under 20 % faults: 200 WeChat items made a
  341 s run, hence 150; the CMS is one create a post (a slug lookup first after an unanswered one),
  1,000 items fit easily;
* the webhook sink answers ``--fault-rate`` of the requests with a fault: 503 busy, 429 with
  Retry-After (a quota deferral), 500, or a hang longer than the channel's timeout (the request
  still takes effect: the retry must be absorbed by the Idempotency-Key);
* the WeChat sandbox (its own process) answers ``--fault-rate`` of the business calls with -1
  (system busy), 45011 (per-minute quota, "api freq"), HTTP 500, an answer later than the channel's
  timeout or no answer at all (the call took effect: a submit then has to be reconciled, never
  re-sent blindly; a draft found again or deleted), or expires every access token under the caller
  (42001; 40001 for a token no longer the latest).
  The daily quota (45009) is left out: it defers a delivery to Beijing midnight by design, so the
  run would end with it pending;
* the WordPress sandbox (its own process) answers ``--fault-rate`` of the writes with 503 busy,
  429 with Retry-After 1 s, 500 (WordPress's critical-error answer), or a late answer after the
  post was made (found again by its slug). Application passwords do not expire: no token fault;
* ``--workers`` real ``publisher run`` processes work the queue; ``--kills`` times, every
  ``--kill-every`` seconds on average (0.5-1.5 × at random), one that holds deliveries (or has been
  up 20 s) is killed with SIGKILL and started again; every
  ``--cut-every`` seconds every connection to the run's database is cut with ``pg_terminate_backend``;
  with ``--restart-postgres`` the server is restarted once, 15 s in.

Channels are pluggable (a :class:`Plugin`: a settings table, and a check that each item arrived
exactly once at its remote end); the website's fault injection is in-process only, so its faults
here are the kills and the database cuts. The run prints lost (done in the store but not at the
remote end, or missing), duplicated (done twice at the remote end), orphans (left half-made at the
remote end: WeChat drafts never published), still pending, and the recovery time after each kill
(from the kill until every delivery the killed worker held was taken up again or finished).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    SECRET,
    SandboxProcess,
    counts,
    drop_pg_database,
    fresh_store,
    pg_database,
    seed_deliveries,
    settings_data,
    start_worker,
    terminate_backends,
    write_settings,
)

# ----------------------------------------------------------------------------------------- plugins
#: items on WeChat (+ the webhook) and on the CMS (+ the webhook) in a full run: sized so that the
#: 10,000-delivery run stays near five minutes on two cores (see the module docstring)
WECHAT_ITEMS = 150
CMS_ITEMS = 1000


@dataclass
class Plugin:
    """A channel in the chaos run: how it is configured and how its remote end is checked."""

    name: str
    settings: dict[str, Any]
    #: (lost, duplicated, detail) given the rows (id, item_id, title, remote_id) of the deliveries
    #: marked done in the store
    check: Any
    stop: Any = None
    #: environment the workers need (the channel's secrets)
    environ: dict[str, str] = field(default_factory=dict)
    #: (count, detail) of what the run left behind at the remote end that no delivery owns, e.g.
    #: WeChat drafts never published; None for a channel that leaves nothing half-made
    orphans: Any = None


def webhook_plugin(fault_rate: float) -> Plugin:
    from channels.sandbox.sink import Sink

    sink = Sink(secret=SECRET, latency_ms=2)
    sink.start()
    feeder = _FaultFeeder(sink, fault_rate)
    feeder.start()

    def check(rows: list[Any]) -> tuple[int, int, str]:
        done_ids = {r.id for r in rows}
        led = sink.ledger()
        keys = {int(k.removeprefix("delivery-")) for k in led["by_key"]}
        lost = len(done_ids - keys)
        dup = sum(1 for v in led["by_key"].values() if v > 1)
        return (
            lost,
            dup,
            (
                f"accepted {led['accepted']}, idempotent replays {led['duplicates']}, "
                f"faults served {led['faulted']} of {led['requests']} requests"
            ),
        )

    def stop() -> None:
        feeder.stopped.set()
        sink.stop()

    return Plugin("hook", {"type": "webhook", "url": sink.hook_url, "timeout": 1.0}, check, stop)


def website_plugin(tmp: Path) -> Plugin:
    def check(rows: list[Any]) -> tuple[int, int, str]:
        item_ids_done = {r.item_id for r in rows}
        states = list(tmp.glob("**/.site.sqlite3"))
        if not states:
            return len(item_ids_done), 0, "no site"
        folder = states[0].parent
        # what readers see: every item listed on the numbered pages of the whole-site listing
        ids = Counter(
            int(i)
            for p in folder.glob("page/*.html")
            for i in re.findall(r'href="\.\./items/(\d+)\.html"', p.read_text("utf-8"))
        )
        pages = {int(p.stem) for p in (folder / "items").glob("*.html")}
        lost = len({i for i in item_ids_done if i not in ids or i not in pages})
        dup = sum(1 for n in ids.values() if n > 1)
        return lost, dup, f"{len(ids)} items listed, {len(pages)} pages"

    return Plugin("site", {"type": "website"}, check)


WECHAT_APPID = "wx5a9d0c0e0c0ffee0"


def wechat_plugin(
    tmp: Path,
    fault_rate: float,
    *,
    mix: str = "",
    hang_s: float = 1.5,
    timeout: float = 1.0,
    publish_delay: float = 0.3,
    grace: float = 5.0,
    seed: int = 7,
) -> Plugin:
    """The WeChat Official Account sandbox as its own process, drawing faults at ``fault_rate``.

    ``mix`` is the sandbox's ``--fault-mix`` (default: busy, quota_minute, http500, timeout, lost_answer,
    expire_token).
    """
    from PIL import Image

    secret = "chaos-" + os.urandom(12).hex()
    sandbox = SandboxProcess(
        "channels.sandbox.wechat",
        "--appid",
        WECHAT_APPID,
        "--secret",
        secret,
        "--publish-delay",
        str(publish_delay),
        "--fault-rate",
        str(fault_rate),
        "--hang-seconds",
        str(hang_s),
        "--seed",
        str(seed),
        *(["--fault-mix", mix] if mix else []),
    )
    cover = tmp / "cover.jpg"
    Image.new("RGB", (900, 383), (180, 30, 40)).save(cover, "JPEG", quality=85)
    settings = {
        "type": "wechat",
        "appid": WECHAT_APPID,
        "secret_env": "PUBLISHER_CHAOS_WECHAT_SECRET",
        "api_base": sandbox.url,
        "timeout": timeout,
        "default_cover": str(cover),
        # the sandbox finishes a publish job in 0.3 s: poll soon, and give an unconfirmed submit 5 s
        # (not WeChat's 15 minutes) to show up before a re-submit
        "poll_intervals": [publish_delay + 0.2, 1.0, 2.0],
        "reconcile_grace": grace,
        "max_concurrency": 4,
        "rate_per_minute": 6000,
    }

    def check(rows: list[Any]) -> tuple[int, int, str]:
        led = sandbox.get("/__sandbox__/ledger")
        live = [a for a in led["articles"] if not a["deleted"]]
        per_title = Counter(a["title"] for a in live)
        title_of = {a["article_id"]: a["title"] for a in live}
        # the item's title is its marker on WeChat (every item has its own); the store's remote_id
        # must name an article of that title
        lost = sum(1 for r in rows if per_title[r.title] == 0 or title_of.get(r.remote_id) != r.title)
        dup = sum(1 for n in per_title.values() if n > 1)
        served = led["faults_served"]
        return (
            lost,
            dup,
            (
                f"{len(live)} articles published, {len(led['jobs'])} publish jobs, "
                f"{len(led['drafts'])} drafts left in the box; {sum(led['calls'].values())} calls, "
                f"faults served {sum(served.values())} {served}"
            ),
        )

    def orphans() -> tuple[int, str]:
        # once every delivery is done no draft should be left: a published draft leaves the box, and a
        # draft made by a draft/add whose answer was lost must have been adopted or deleted
        drafts = sandbox.get("/__sandbox__/ledger")["drafts"]
        titles = sorted(news[0]["title"] for news in drafts.values())
        return len(drafts), f"orphan drafts {len(drafts)}" + (f" {titles[:10]}" if titles else "")

    return Plugin("wechat", settings, check, sandbox.stop, {"PUBLISHER_CHAOS_WECHAT_SECRET": secret}, orphans)


def cms_plugin(
    fault_rate: float,
    *,
    mix: str = "transient,quota,http500,timeout",
    hang_s: float = 1.5,
    timeout: float = 1.0,
    seed: int = 11,
) -> Plugin:
    """The WordPress sandbox as its own process, drawing faults at ``fault_rate`` of the writes."""
    password = "chaos aaaa bbbb cccc dddd eeee"
    sandbox = SandboxProcess(
        "channels.sandbox.wordpress",
        "--app-password",
        password,
        "--fault-rate",
        str(fault_rate),
        "--fault-mix",
        mix,
        "--hang-seconds",
        str(hang_s),
        "--seed",
        str(seed),
    )
    settings = {
        "type": "cms",
        "base_url": sandbox.url,
        "username": "editor",
        "password_env": "PUBLISHER_CHAOS_CMS_PASSWORD",
        "default_category": 1,
        "timeout": timeout,
        "max_concurrency": 4,
    }

    def check(rows: list[Any]) -> tuple[int, int, str]:
        snap = sandbox.get("/__sandbox__/ledger")
        # the slug publisher-d<delivery id> is the marker; WordPress makes a second one ...-2
        per_delivery: Counter[int] = Counter()
        for p in snap["posts"]:
            m = re.fullmatch(r"publisher-d(\d+)(?:-\d+)?", p["slug"])
            if m and p["status"] == "publish":
                per_delivery[int(m.group(1))] += 1
        lost = sum(1 for r in rows if per_delivery[r.id] == 0)
        dup = sum(1 for n in per_delivery.values() if n > 1)
        faults = snap["faults"]
        return (
            lost,
            dup,
            (
                f"{sum(per_delivery.values())} posts published, {len(snap['ledger'])} writes recorded; "
                f"faults served {sum(faults['served'].values())} of {faults['checked']} writes "
                f"{faults['served']}"
            ),
        )

    return Plugin("cms", settings, check, sandbox.stop, {"PUBLISHER_CHAOS_CMS_PASSWORD": password})


class _FaultFeeder(threading.Thread):
    """Keeps about ``rate`` of the sink's requests faulty, in a mix of kinds."""

    KINDS = [("503", {}), ("429", {"retry_after": 1}), ("500", {}), ("timeout", {"hang_s": 1.5})]

    def __init__(self, sink: Any, rate: float) -> None:
        super().__init__(daemon=True, name="faults")
        self.sink, self.rate = sink, rate
        self.stopped = threading.Event()
        self.injected = 0

    def run(self) -> None:
        rnd = random.Random(7)
        while not self.stopped.wait(0.02):
            with self.sink.state.lock:
                seen = self.sink.state.requests
                queued = len(self.sink.state.faults)
            want = int((seen + 50) * self.rate) - self.injected
            if want > 0 and queued < 5:
                for _ in range(min(want, 5)):
                    kind, kw = rnd.choice(self.KINDS)
                    self.sink.fail_next(kind, 1, **kw)
                    self.injected += 1


# ------------------------------------------------------------------------------------------ the run
@dataclass
class Kill:
    at: float
    owner_pid: int
    held: set[int]
    recovered_after: float | None = None


@dataclass
class Run:
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    cuts: int = 0
    restarts: int = 0


def _held_by(engine: Any, pid: int) -> set[int]:
    with engine.connect() as c:
        return set(
            c.execute(
                sa.text("select id from delivery where status='claimed' and lease_owner like :o"), {"o": f"%:{pid}:%"}
            ).scalars()
        )


def _watch_recovery(engine: Any, kill: Kill, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            left = _held_by(engine, kill.owner_pid) & kill.held if kill.held else set()
        except sa.exc.SQLAlchemyError:
            time.sleep(0.2)
            continue
        if not left:
            kill.recovered_after = time.monotonic() - kill.at
            return
        time.sleep(0.05)


def delivery_rows(engine: Any) -> list[Any]:
    """Every delivery with what the plugins' checks need: id, item_id, channel, status, remote_id, title."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "select d.id, d.item_id, d.channel, d.status, d.remote_id, i.title "
                "from delivery d join item i on i.id = d.item_id"
            )
        ).all()


def _report_progress(engine: Any, at: float, kills: int) -> None:
    try:
        with engine.connect() as c:
            rows = c.execute(sa.text("select channel, status, count(*) from delivery group by channel, status")).all()
    except sa.exc.SQLAlchemyError:
        return
    owed = Counter()
    done = 0
    for channel, status, n in rows:
        if status == "done":
            done += n
        elif status in ("pending", "claimed", "waiting"):
            owed[channel] += n
    print(f"  {at:4.0f} s: {done} done, {kills} kills; still owed {dict(owed)}", flush=True)


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM: stop the workers and the sandboxes on the way out


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10_000, help="deliveries in all (default 10,000)")
    p.add_argument("--site-items", type=int, default=500, help="items that go to the website and the webhook")
    p.add_argument("--wechat-items", type=int, default=WECHAT_ITEMS, help="items that go to WeChat and the webhook")
    p.add_argument("--cms-items", type=int, default=CMS_ITEMS, help="items that go to the CMS and the webhook")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--kill-every", type=float, default=4.0, help="mean seconds between kills")
    p.add_argument("--fault-rate", type=float, default=0.2)
    p.add_argument("--cut-every", type=float, default=8.0, help="seconds between pg_terminate_backend rounds")
    p.add_argument("--restart-postgres", action="store_true", help="restart the PostgreSQL server once")
    p.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--keep-db", action="store_true", help="keep the run's database to look into afterwards")
    args = p.parse_args(argv)
    on_two = 2 * (args.site_items + args.wechat_items + args.cms_items)
    if on_two > args.n:
        p.error(f"-n {args.n} is fewer than the {on_two} deliveries of the items on two channels each")
    os.environ.setdefault("PUBLISHER_WEBHOOK_SECRET", SECRET)

    tmp = Path(tempfile.mkdtemp(prefix="chaos-"))
    db_url = pg_database(args.db)
    plugins: dict[str, Plugin] = {}
    try:
        plugins.update(
            hook=webhook_plugin(args.fault_rate),
            site=website_plugin(tmp),
            wechat=wechat_plugin(tmp, args.fault_rate),
            cms=cms_plugin(args.fault_rate),
        )
        for pl in plugins.values():
            os.environ.update(pl.environ)  # the workers inherit it
        return _run(args, tmp, db_url, plugins)
    finally:
        for pl in plugins.values():
            if pl.stop:
                pl.stop()


def _run(args: argparse.Namespace, tmp: Path, db_url: str, plugins: dict[str, Plugin]) -> int:
    channels = {name: pl.settings for name, pl in plugins.items()}
    worker_settings = {
        "poll_seconds": 0.2,
        "backoff_base_seconds": 0.2,
        "backoff_cap_seconds": 2.0,
        "lease_seconds": 30,
        "max_attempts": 25,
    }
    app = fresh_store(tmp, db_url, channels, threads=args.threads, **worker_settings)
    shares = {"site": args.site_items, "wechat": args.wechat_items, "cms": args.cms_items}
    seeded = 0
    for name, count in shares.items():
        if count:
            seed_deliveries(app, count, ["hook", name], start=seeded)  # every item its own title
            seeded += count
    rest = args.n - 2 * seeded
    if rest:
        seed_deliveries(app, rest, ["hook"], start=seeded)
        seeded += rest
    settings = write_settings(
        tmp / "settings.toml", settings_data(tmp, db_url, channels, args.threads, **worker_settings)
    )
    print(
        f"chaos: {args.n} deliveries (items on hook and site {shares['site']}, wechat {shares['wechat']}, "
        f"cms {shares['cms']}), {args.workers} workers × {args.threads} threads, {args.fault_rate:.0%} "
        f"faults, {args.kills} kills, db {db_url}",
        flush=True,
    )

    run = Run()
    stop = threading.Event()
    logs = tmp / "logs"
    logs.mkdir()
    run.workers = [
        start_worker(settings, "--threads", str(args.threads), log=logs / f"w{i}.log") for i in range(args.workers)
    ]
    t0 = time.monotonic()
    started = [t0] * args.workers
    rnd = random.Random(42)
    watchers: list[threading.Thread] = []
    next_cut = t0 + args.cut_every
    restart_at = t0 + 15 if args.restart_postgres else None
    next_report = t0 + 15
    next_kill = t0 + rnd.uniform(0.5, 1.5) * args.kill_every
    try:
        while time.monotonic() - t0 < args.timeout:
            try:
                c = counts(app.engine)
            except sa.exc.SQLAlchemyError:
                time.sleep(0.5)
                continue
            owed = sum(c.get(s, 0) for s in ("pending", "claimed", "waiting"))
            if owed == 0 and len(run.kills) >= args.kills:
                break
            if owed == 0:
                # the queue ran dry before all the kills: top it up so the rest land mid-work too
                seed_deliveries(app, 200, ["hook"], start=seeded)
                seeded += 200
                print("  (queue drained before the last kills: 200 more deliveries added)", flush=True)
                continue
            now = time.monotonic()
            if now >= next_report:
                _report_progress(app.engine, now - t0, len(run.kills))
                next_report = now + 15
            # a victim that has been up a while, so the kill lands in the middle of its work rather
            # than while it is still importing
            ready = [i for i, at in enumerate(started) if now - at > rnd.uniform(2.5, 5.0)]
            victim = None
            if len(run.kills) < args.kills and ready and now >= next_kill:
                i = rnd.choice(ready)
                try:
                    held = _held_by(app.engine, run.workers[i].pid)
                except sa.exc.SQLAlchemyError:
                    held = set()
                # a worker that holds nothing yet is most likely still starting (3-4 s of imports on
                # a loaded machine): spare it until it works, or has been up a while
                if held or now - started[i] > 20:
                    victim = run.workers[i]
            if victim is not None:
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                k = Kill(at=time.monotonic(), owner_pid=victim.pid, held=held)
                run.kills.append(k)
                w = threading.Thread(target=_watch_recovery, args=(app.engine, k, stop), daemon=True)
                w.start()
                watchers.append(w)
                run.workers[i] = start_worker(settings, "--threads", str(args.threads), log=logs / f"w{i}.log")
                started[i] = time.monotonic()
                next_kill = started[i] + rnd.uniform(0.5, 1.5) * args.kill_every
            if now >= next_cut:
                run.cuts += terminate_backends(db_url)
                next_cut = now + args.cut_every
            if restart_at is not None and now >= restart_at:
                _restart_postgres()
                run.restarts += 1
                restart_at = None
            time.sleep(rnd.uniform(0.2, 0.8))
        else:
            print("TIMEOUT: the queue was not empty in time", flush=True)
    finally:
        took = time.monotonic() - t0
        for w in run.workers:
            w.send_signal(signal.SIGTERM)
        for w in run.workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
        for w in watchers:
            w.join(timeout=5)
        stop.set()

    rows = delivery_rows(app.engine)
    with app.engine.connect() as conn:
        attempts = conn.execute(sa.text("select outcome, count(*) from delivery_attempt group by outcome")).all()
    final = Counter(r.status for r in rows)
    pending = sum(final.get(s, 0) for s in ("pending", "claimed", "waiting"))
    total_lost = total_dup = total_orphans = 0
    print(f"\nran {took:.0f} s; deliveries: {dict(final)}; attempts: {dict(attempts)}")
    for name, pl in plugins.items():
        done = [r for r in rows if r.channel == name and r.status == "done"]
        lost, dup, detail = pl.check(done)
        total_lost += lost
        total_dup += dup
        if pl.orphans is not None:
            orphaned, what = pl.orphans()
            total_orphans += orphaned
            detail += f"; {what}"
        print(f"  {name}: {len(done)} done in the store; lost {lost}, duplicated {dup}; {detail}")
    busy_kills = [k for k in run.kills if k.held]
    rec = sorted(k.recovered_after for k in busy_kills if k.recovered_after is not None)
    unrec = sum(1 for k in busy_kills if k.recovered_after is None)
    print(
        f"kills {len(run.kills)} (SIGKILL; {len(busy_kills)} while the worker held deliveries), "
        f"connection cuts {run.cuts}, server restarts {run.restarts}"
    )
    if rec:

        def pct(q: float) -> float:
            return rec[min(len(rec) - 1, int(q * len(rec)))]

        print(
            f"recovery after a kill (until every delivery it held was taken up again or done): "
            f"p50 {pct(0.5):.2f} s, p95 {pct(0.95):.2f} s, max {rec[-1]:.2f} s; "
            f"{sum(len(k.held) for k in busy_kills)} deliveries held at the kills"
            + (f"; {unrec} not recovered" if unrec else "")
        )
        print(
            "  per kill (s):",
            " ".join(f"{k.recovered_after:.2f}" if k.recovered_after is not None else "-" for k in busy_kills),
        )
    print(
        f"RESULT lost {total_lost}, duplicated {total_dup}, orphans {total_orphans}, still pending {pending}, "
        f"failed {final.get('failed', 0)}"
    )
    app.close()
    if args.keep_db:
        print(f"database kept: {db_url}")
    else:
        drop_pg_database(db_url)
    return 0 if total_lost == 0 and total_dup == 0 and total_orphans == 0 and pending == 0 else 1


def _restart_postgres() -> None:
    versions = sorted(os.listdir("/etc/postgresql"))
    print(f"  restarting PostgreSQL {versions[-1]} ...", flush=True)
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"], check=True)


if __name__ == "__main__":
    raise SystemExit(main())
