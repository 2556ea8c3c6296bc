"""The daemon on the worst day for its SD card: `tsunagu daemon` and `tsunagu sim` as
subprocesses, the database on a real full, read-only or failing filesystem, or damaged
(tests/storage_faults.py).

The daemon must stay up, send only what it could record first ("write the state before the
AT command that may send", docs/crash-safety.md), say what is wrong where staff look (its
status file on a RAM disk, `tsunagu check`), and send the rest as soon as it can write again.
"""
from __future__ import annotations

import contextlib
import json
import subprocess

import pytest

from appliance import broadcasts, storage
from appliance.db import connect
from tests.daemon_harness import (Rig, all_final, messages_per_number, seed_patients,
                                  tsunagu_command, wait_until)
from tests.storage_faults import damage, failing_card, fill, read_only, small_filesystem


def run_check(rig: Rig) -> tuple[int, str]:
    result = subprocess.run([*tsunagu_command(), "check", "--json", "--config",
                             str(rig.config_path)], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    return result.returncode, "\n".join(r["message"] for r in report["results"]
                                        if r["status"] == 2)


def storage_fault(rig: Rig) -> storage.Fault | None:
    status = storage.read_daemon_status(rig.config)
    return status.fault if status is not None else None


def wait_for_retries(rig: Rig, count: int = 2) -> None:
    """Until the daemon has met the fault *count* more times: it is retrying, not dead."""
    first = storage.read_daemon_status(rig.config).failed_writes
    wait_until(lambda: storage.read_daemon_status(rig.config).failed_writes
               >= first + count or not rig.daemon.alive(), 30, "the daemon retrying")
    assert rig.daemon.alive(), rig.daemon.stderr()[-3000:]


def assert_up_and_waiting(rig: Rig, kinds: tuple[str, ...], remedy: str) -> None:
    """The daemon alive and reporting one of *kinds*, retrying and sending nothing, and
    `tsunagu check` critical with *remedy* in its words."""
    wait_until(lambda: storage_fault(rig) is not None or not rig.daemon.alive(), 30,
               f"the daemon to report {kinds}")
    assert rig.daemon.alive(), rig.daemon.stderr()[-3000:]
    assert storage_fault(rig).kind in kinds
    wait_for_retries(rig)  # a part that was on the air has reached the network by now
    sent = submits(rig)
    wait_for_retries(rig)
    assert submits(rig) == sent  # nothing goes out that could not be recorded first
    assert_every_send_was_recorded_first(rig)
    status, critical = run_check(rig)
    assert status == 2 and remedy in critical, critical


def submits(rig: Rig) -> int:
    return len(rig.sims[0].events("submit"))


def assert_every_send_was_recorded_first(rig: Rig) -> None:
    """Each part the network saw is a part the database has as handed to the modem."""
    sent = submits(rig)
    if sent:  # none sent: nothing to look up (and the database may be closed or damaged)
        recorded = rig.db.conn.execute("SELECT count(*) FROM parts WHERE state != 'queued'"
                                       ).fetchone()[0]
        assert sent <= recorded


@pytest.fixture
def disk_rig(tmp_path):
    """make(mount=…): a rig whose database lives at tmp_path/disk, on the filesystem
    *mount* mounts there (None: the test's own); the daemon is stopped before the unmount."""
    with contextlib.ExitStack() as stack:
        def make(mount=None, **kw) -> Rig:
            (tmp_path / "disk").mkdir(exist_ok=True)
            if mount is not None:
                stack.enter_context(mount)
            rig = Rig(tmp_path, database="disk/tsunagu.db", **kw)
            stack.callback(rig.close)
            return rig
        yield make


def test_on_a_full_disk_the_daemon_gives_back_its_reserve_and_sends_everyone_once(
        tmp_path, disk_rig):
    # A reserve as large as SQLite's write-ahead log grows between two checkpoints (~4 MB).
    rig = disk_rig(small_filesystem(tmp_path / "disk", 16), send_delay=0.02,
                   daemon={"reserve_mb": 4})
    group = seed_patients(rig.db, 20)
    bid = rig.broadcast(group, choices=["来院できる", "来院できない"])
    assert storage.Reserve.of(rig.config).ensure()
    rig.daemon.start()
    wait_until(lambda: submits(rig) >= 4, 30, "the broadcast under way")
    filler = fill(tmp_path / "disk")
    states = rig.wait_final(bid)
    assert states["submitted"] + states["delivered"] == 20, states
    assert max(messages_per_number(rig.sims).values()) == 1
    reserve = storage.Reserve.of(rig.config).path
    assert not reserve.exists()
    status, critical = run_check(rig)
    assert status == 2 and "予備" in critical
    filler.unlink()  # staff free space: the daemon keeps a reserve again
    wait_until(reserve.exists, 30, "the reserve made again")
    status, critical = run_check(rig)
    assert "予備" not in critical and "空き容量" not in critical, critical


def test_on_a_disk_full_to_the_last_byte_the_daemon_waits_then_resumes_when_space_is_freed(
        tmp_path, disk_rig):
    rig = disk_rig(small_filesystem(tmp_path / "disk", 8), send_delay=0.02,
                   daemon={"reserve_mb": 0})
    group = seed_patients(rig.db, 20)
    bid = rig.broadcast(group, choices=["来院できる", "来院できない"])
    rig.daemon.start()
    wait_until(lambda: submits(rig) >= 4, 30, "the broadcast under way")
    filler = fill(tmp_path / "disk")
    assert_up_and_waiting(rig, (storage.FULL,), "空き容量")
    filler.unlink()
    states = rig.wait_final(bid)
    assert states["submitted"] + states["delivered"] == 20, states
    assert max(messages_per_number(rig.sims).values()) == 1
    wait_until(lambda: storage_fault(rig) is None, 30, "the daemon to say it can write")


def test_a_reply_that_arrives_on_a_full_disk_is_saved_once_there_is_room_without_a_restart(
        tmp_path, disk_rig):
    rig = disk_rig(small_filesystem(tmp_path / "disk", 8), daemon={"reserve_mb": 0})
    rig.daemon.start()
    wait_until(lambda: rig.db.conn.execute("SELECT count(*) FROM modem_status WHERE ready = 1"
                                           ).fetchone()[0], 30, "the modem ready")
    filler = fill(tmp_path / "disk")
    # It cannot be saved: it stays in the modem's storage (deleted there only once saved).
    rig.sims[0].control().inject_sms(sender="+819010000003", text="１ 行けます")
    wait_until(lambda: storage_fault(rig) is not None, 30, "the daemon to meet the full disk")
    wait_for_retries(rig)
    filler.unlink()
    wait_until(lambda: rig.db.conn.execute("SELECT text FROM inbound_messages").fetchall(),
               30, "the reply saved")
    assert [r[0] for r in rig.db.conn.execute("SELECT text FROM inbound_messages")] == \
        ["１ 行けます"]


def test_when_the_sd_card_fails_the_daemon_stays_up_sends_nothing_unrecorded_and_says_so(
        tmp_path, disk_rig):
    with failing_card(tmp_path / "disk") as card:
        rig = disk_rig(send_delay=0.02)
        group = seed_patients(rig.db, 20)
        bid = rig.broadcast(group, choices=["来院できる", "来院できない"])
        before = {r["id"] for r in broadcasts.recipients(rig.db.conn, bid)}
        rig.daemon.start()
        wait_until(lambda: submits(rig) >= 4, 30, "the broadcast under way")
        card.fail()
        assert_up_and_waiting(rig, (storage.READ_ONLY, storage.IO_ERROR), "SDカード")
        assert rig.daemon.stop() == 0  # a clean stop, even with nothing writable
        rig.db.conn.close()
    # The card is replaced by a copy of it (here: the same image, checked and mounted again).
    subprocess.run(["e2fsck", "-fy", str(tmp_path / "disk.img")], capture_output=True)
    with failing_card(tmp_path / "disk", fresh=False):
        rig.db = connect(rig.config.database)
        assert rig.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert {r["id"] for r in broadcasts.recipients(rig.db.conn, bid)} == before
        rig.daemon.start()
        states = rig.wait_final(bid)
        # Routine: a message that was on the air when the card failed is left for staff.
        assert states["submitted"] + states["delivered"] + states["uncertain"] == 20, states
        assert states["uncertain"] <= 1
        assert max(messages_per_number(rig.sims).values()) == 1
        rig.close()


def test_a_daemon_started_on_a_read_only_disk_waits_and_sends_once_it_is_writable(
        tmp_path, disk_rig):
    rig = disk_rig()
    group = seed_patients(rig.db, 5)
    bid = rig.broadcast(group)
    rig.db.conn.close()
    with read_only(tmp_path / "disk"):
        rig.daemon.start()
        assert_up_and_waiting(rig, (storage.READ_ONLY,), "読み取り専用")
        assert submits(rig) == 0
    rig.db = connect(rig.config.database)
    states = rig.wait_final(bid)
    assert states["submitted"] + states["delivered"] == 5


def test_a_damaged_database_keeps_the_daemon_up_and_check_says_tsunagu_restore(
        tmp_path, disk_rig):
    rig = disk_rig()
    group = seed_patients(rig.db, 5)
    bid = rig.broadcast(group)
    backup = tmp_path / "backup.db"
    with connect(backup).conn as copy:
        rig.db.conn.backup(copy)
    rig.db.conn.close()
    damage(rig.config.database)
    rig.daemon.start()
    assert_up_and_waiting(rig, (storage.DAMAGED,), "tsunagu restore")
    restore = [*tsunagu_command(), "restore", str(backup), "--yes", "--config",
               str(rig.config_path)]
    refused = subprocess.run(restore, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "daemon" in refused.stderr  # it is running
    assert rig.daemon.stop() == 0
    assert subprocess.run(restore, capture_output=True, text=True, timeout=60).returncode == 0
    rig.db = connect(rig.config.database)
    rig.daemon.start()
    states = rig.wait_final(bid)
    assert states["submitted"] + states["delivered"] == 5
    assert all_final(rig.db, bid)
