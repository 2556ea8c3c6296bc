"""/metrics text: modem health, queue depth and totals counted from the database."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from appliance import config as config_mod, metrics
from appliance.db import connect, write


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "t.db"\n[[modem]]\nname = "m0"\nport = "/dev/null"\n'
                    'daily_limit = 100\n', encoding="utf-8")
    config = config_mod.load(path)
    return config, connect(config.database)


def samples(text: bytes) -> dict:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_report_modem_health_queue_and_part_totals(setup):
    config, db = setup
    now = 1_800_000_000.0
    with write(db) as conn:
        conn.execute("INSERT INTO heartbeat VALUES ('daemon', 1, ?, ?, '0')", [now - 60, now - 2])
        conn.execute("INSERT INTO modem_status (name, port, ready, signal_dbm, checked_at) "
                     "VALUES ('m0', '/dev/null', 1, -71, ?)", [now - 5])
        conn.execute("INSERT INTO broadcasts (title, text, created_by, created_at) VALUES "
                     "('t', 't', 'a', ?)", [now])
        conn.execute("INSERT INTO recipients (broadcast_id, name, phone, text, parts_count, state) "
                     "VALUES (1, 'a', '+819012345678', 't', 1, 'queued'), "
                     "(1, 'b', '+819012345679', 't', 1, 'submitted')")
        conn.execute("INSERT INTO parts (recipient_id, seq, state, modem, sending_at, submitted_at)"
                     " VALUES (2, 1, 'submitted', 'm0', ?, ?)", [now - 10, now - 10])
    got = samples(metrics.render(lambda: db.conn, config, clock=lambda: now))
    assert got[("tsunagu_modem_ready", (("modem", "m0"),))] == 1
    assert got[("tsunagu_modem_signal_dbm", (("modem", "m0"),))] == -71
    assert got[("tsunagu_modem_budget_remaining_parts", (("modem", "m0"),))] == 99
    assert got[("tsunagu_queue_depth", ())] == 1
    assert got[("tsunagu_parts_total", (("modem", "m0"), ("state", "submitted")))] == 1
    assert got[("tsunagu_can_send", ())] == 1
