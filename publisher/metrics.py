"""Operations: Prometheus metrics and JSON logs.

Two sources, one exposition:

* **the database**, read at every scrape, so any worker's scrape shows the whole installation:
  deliveries by channel and state, the queue depth and the oldest overdue delivery, and attempts by
  channel and outcome across every worker;
* **in-process counters** of a worker (:class:`WorkerMetrics`, fed by the Dispatcher's
  ``on_outcome``/``on_start`` hooks): its outcomes, retries, quota deferrals and the scheduling
  lateness histogram (how long after its due time a delivery was started).

``publisher run --metrics-port N`` serves :func:`metrics_text` with the worker's counters (:func:`serve`);
the web app (``publisher serve``) serves no /metrics: it would be a route without a log-in.
Each call site builds its own :class:`~prometheus_client.CollectorRegistry`;
nothing is registered in prometheus_client's global registry, so tests and several apps in one
process never collide.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from publisher.db import read_only
from publisher.models import Delivery, DeliveryAttempt, DeliveryStatus, owed, status_literal, utcnow

D = Delivery.__table__  # type: ignore[attr-defined]
A = DeliveryAttempt.__table__  # type: ignore[attr-defined]

#: outcomes after which the delivery is tried again (see publisher.pipeline.outcome)
RETRIED = {"transient", "ambiguous", "error"}
#: lateness buckets, seconds: the office cares about "on the minute", the worker about sub-second
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)

__all__ = ["CONTENT_TYPE_LATEST", "JsonFormatter", "StoreCollector", "WorkerMetrics", "metrics_text", "serve"]


class StoreCollector(Collector):
    """Metrics read from the database at each scrape (the whole installation, every worker).

    Only indexed, small reads per scrape, so a store of millions of deliveries scrapes in
    milliseconds: the owed and failed deliveries (the partial indexes ix_delivery_owed and
    ix_delivery_failed, which hold exactly those rows), and the attempts counted
    incrementally — the first scrape of a process counts them all, later ones only the attempt rows
    added since (by primary key), so the counter is exact and cheap.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = read_only(engine)
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str, str], int] = {}
        self._last_attempt_id = 0

    def _count_attempts(self, conn: Any) -> dict[tuple[str, str], int]:
        with self._lock:
            last = self._last_attempt_id
            top = conn.execute(sa.select(sa.func.max(A.c.id))).scalar() or 0
            if top > last:
                for channel, outcome, n in conn.execute(
                    sa.select(D.c.channel, A.c.outcome, sa.func.count())
                    .select_from(A.join(D, D.c.id == A.c.delivery_id))
                    .where(A.c.id > last, A.c.id <= top)
                    .group_by(D.c.channel, A.c.outcome)
                ):
                    self._attempts[(channel, outcome)] = self._attempts.get((channel, outcome), 0) + n
                self._last_attempt_id = top
            return dict(self._attempts)

    def collect(self) -> Iterator[Any]:
        now = utcnow()
        up = GaugeMetricFamily("publisher_store_up", "1 when the database answered this scrape")
        try:
            with self.engine.connect() as conn:
                # each read lies within one partial index (migration 0007), its statuses written as
                # literals so that the planner can tell: with bound statuses SQLite walked every delivery
                # through the channel index instead (~2 s a scrape on a million items). The owed ones
                # are read once: all of them, and those due and not started (a claimed one is in a
                # worker's hands)
                is_due = sa.and_(D.c.due_at <= now, D.c.status != DeliveryStatus.CLAIMED.value)
                owed_rows = conn.execute(
                    sa.select(
                        D.c.channel,
                        D.c.status,
                        sa.func.count(),
                        sa.func.count().filter(is_due),
                        sa.func.min(D.c.due_at).filter(is_due),
                    )
                    .where(owed(D.c.status))
                    .group_by(D.c.channel, D.c.status)
                ).all()
                failed = conn.execute(
                    sa.select(D.c.channel, sa.func.count())
                    .where(D.c.status == status_literal(DeliveryStatus.FAILED))
                    .group_by(D.c.channel)
                ).all()
                attempts = self._count_attempts(conn)
                conn.rollback()
        except sa.exc.SQLAlchemyError:
            logging.getLogger("publisher.metrics").warning("metrics: the database did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        deliveries = GaugeMetricFamily(
            "publisher_deliveries",
            "Deliveries still owed (pending, claimed, waiting) or failed, by channel "
            "and state (done ones: publisher_delivery_attempts_total)",
            labels=["channel", "status"],
        )
        depth = GaugeMetricFamily(
            "publisher_queue_depth", "Deliveries still owed (pending, claimed, waiting) by channel", labels=["channel"]
        )
        rows = [(channel, status, n) for channel, status, n, _, _ in owed_rows] + [(c, "failed", n) for c, n in failed]
        for channel, status, n in sorted(rows):
            deliveries.add_metric([channel, status], n)
        queued: dict[str, int] = {}
        due: dict[str, tuple[int, datetime]] = {}
        for channel, _status, n, n_due, oldest in owed_rows:
            queued[channel] = queued.get(channel, 0) + n
            if n_due:
                count, first = due.get(channel, (0, oldest))
                due[channel] = (count + n_due, min(first, oldest))
        for channel, n in sorted(queued.items()):
            depth.add_metric([channel], n)
        due_now = GaugeMetricFamily(
            "publisher_queue_due", "Deliveries due now and not started, by channel", labels=["channel"]
        )
        overdue = GaugeMetricFamily(
            "publisher_queue_oldest_due_seconds",
            "Age of the oldest due delivery not yet started, by channel",
            labels=["channel"],
        )
        for channel, (n, oldest) in sorted(due.items()):
            due_now.add_metric([channel], n)
            overdue.add_metric([channel], max(0.0, (now - oldest).total_seconds()))
        tried = CounterMetricFamily(
            "publisher_delivery_attempts",
            "Delivery attempts recorded by every worker, by channel and outcome",
            labels=["channel", "outcome"],
        )
        for (channel, outcome), n in sorted(attempts.items()):
            tried.add_metric([channel, outcome], n)
        yield from (deliveries, depth, due_now, overdue, tried)


class WorkerMetrics:
    """A worker's own counters; pass ``on_outcome``/``on_start`` to the Dispatcher."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.outcomes = Counter(
            "publisher_worker_outcomes",
            "Outcomes recorded by this worker",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.retries = Counter(
            "publisher_worker_retries",
            "Attempts this worker will retry (transient, ambiguous)",
            ["channel"],
            registry=self.registry,
        )
        self.quota = Counter(
            "publisher_worker_quota_deferrals",
            "Deliveries deferred until a quota resets",
            ["channel"],
            registry=self.registry,
        )
        self.lateness = Histogram(
            "publisher_schedule_lateness_seconds",
            "Seconds between a delivery's due time and the start of its attempt",
            ["channel"],
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )

    def on_outcome(self, channel: str, outcome: str) -> None:
        self.outcomes.labels(channel, outcome).inc()
        if outcome in RETRIED:
            self.retries.labels(channel).inc()
        elif outcome == "quota":
            self.quota.labels(channel).inc()

    def on_start(self, channel: str, lateness_seconds: float) -> None:
        self.lateness.labels(channel).observe(max(0.0, lateness_seconds))


_collectors: dict[int, tuple[Engine, CollectorRegistry]] = {}
_collectors_lock = threading.Lock()


def metrics_text(engine: Engine, worker: WorkerMetrics | None = None) -> str:
    """The Prometheus exposition text (content type :data:`CONTENT_TYPE_LATEST`) for a /metrics route.

    One store collector per engine is kept for the process (it carries the incremental attempt
    count); pass the same engine at every scrape.
    """
    with _collectors_lock:
        held = _collectors.get(id(engine))
        if held is None or held[0] is not engine:
            reg = CollectorRegistry()
            reg.register(StoreCollector(engine))
            _collectors[id(engine)] = held = (engine, reg)
    text = generate_latest(held[1]).decode("utf-8")
    if worker is not None:
        text = generate_latest(worker.registry).decode("utf-8") + text
    return text


class MetricsServer:
    """A running /metrics endpoint (``publisher run --metrics-port``); ``close()`` stops it."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self.port: int = server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve(engine: Engine, worker: WorkerMetrics | None, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve /metrics on ``addr:port`` (0: any free port) in a background thread."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = metrics_text(engine, worker).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((addr, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return MetricsServer(server)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the ids a log line carries (item, delivery, channel...) are fields."""

    FIELDS = ("item_id", "delivery_id", "channel", "outcome", "worker")

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for f in self.FIELDS:
            v = getattr(record, f, None)
            if v is not None:
                doc[f] = v
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def use_json_logs(level: int = logging.INFO) -> None:
    """Send every log line to stderr as JSON (``publisher run --log-json``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # the schema check at start-up narrates its plugins at INFO; nothing an operator needs
    logging.getLogger("alembic").setLevel(logging.WARNING)
