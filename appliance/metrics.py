"""Prometheus metrics, read from the database at each scrape (the web UI serves /metrics).

A custom collector rather than counters kept in a process: the daemon sends, the web UI
serves, and the database is the one place both see; after a restart the totals are still
right because they are counted from the rows themselves.
"""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import health as health_mod
from .config import Config

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class TsunaguCollector:
    def __init__(self, connect, config: Config, clock=time.time) -> None:
        self._connect = connect     # () -> sqlite3.Connection, per scrape
        self._config = config
        self._clock = clock

    def collect(self):
        conn = self._connect()
        h = health_mod.read_health(conn, self._config, self._clock())
        up = GaugeMetricFamily("tsunagu_modem_ready", "1 when the modem can send now",
                               labels=["modem"])
        signal = GaugeMetricFamily("tsunagu_modem_signal_dbm", "Signal strength (dBm)",
                                   labels=["modem"])
        remaining = GaugeMetricFamily("tsunagu_modem_budget_remaining_parts",
                                      "SMS parts the SIM may still send in 24 hours",
                                      labels=["modem"])
        for m in h.modems:
            up.add_metric([m.name], 1 if m.ready else 0)
            if m.signal_dbm is not None:
                signal.add_metric([m.name], m.signal_dbm)
            remaining.add_metric([m.name], m.remaining)
        yield up
        yield signal
        yield remaining
        yield GaugeMetricFamily("tsunagu_daemon_heartbeat_age_seconds",
                                "Seconds since the daemon's last heartbeat",
                                value=h.heartbeat_age if h.heartbeat_age is not None else -1)
        yield GaugeMetricFamily("tsunagu_queue_depth", "Recipient messages queued or sending",
                                value=h.queue_depth)
        yield GaugeMetricFamily("tsunagu_uncertain_messages",
                                "Messages that may or may not have been sent", value=h.uncertain)
        yield GaugeMetricFamily("tsunagu_can_send", "1 when something queued now would go out",
                                value=1 if h.can_send else 0)
        parts = CounterMetricFamily("tsunagu_parts", "SMS parts by final state",
                                    labels=["modem", "state"])
        for modem, state, n in conn.execute(
                "SELECT coalesce(modem, ''), state, count(*) FROM parts GROUP BY 1, 2"):
            parts.add_metric([modem, state], n)
        yield parts
        recipients = CounterMetricFamily("tsunagu_recipients", "Recipient messages by state",
                                         labels=["state"])
        for state, n in conn.execute("SELECT state, count(*) FROM recipients GROUP BY state"):
            recipients.add_metric([state], n)
        yield recipients
        inbound = conn.execute("SELECT count(*) FROM inbound_messages").fetchone()[0]
        yield CounterMetricFamily("tsunagu_inbound_messages", "SMS received", value=inbound)
        last = conn.execute("SELECT status, at FROM check_runs ORDER BY id DESC LIMIT 1").fetchone()
        if last is not None:
            yield GaugeMetricFamily("tsunagu_check_status", "Last readiness check: 0 ok, "
                                    "1 warning, 2 critical", value=last[0])


def render(connect, config: Config, clock=time.time) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TsunaguCollector(connect, config, clock))
    return generate_latest(registry)
