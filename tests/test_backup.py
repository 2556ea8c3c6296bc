"""Backups while running, generations, the USB copy, and a restore that finds every contact
and broadcast again — and refuses what is not a sound Tsunagu database."""
from __future__ import annotations

import os
import sqlite3
import stat
import time

import pyrage
import pytest

from appliance import audit, backup, broadcasts, config as config_mod, seed
from appliance.db import connect, write

NOW = 1_800_000_000.0


@pytest.fixture
def config(tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    path = tmp_path / "tsunagu.toml"
    path.write_text(f'database = "data/t.db"\n[backup]\ndirectory = "backups"\nkeep = 3\n'
                    f'usb_path = "{usb}"\n[test]\ngroup = "テスト"\n'
                    '[[modem]]\nname = "m0"\nport = "/dev/null"\n', encoding="utf-8")
    return config_mod.load(path)


@pytest.fixture
def db(config):
    database = connect(config.database)
    seed.seed_demo(database, config.clinic_name)
    with write(database) as conn:
        p = broadcasts.plan(conn, config, text="訓練です", drill=True, now=NOW)
        broadcasts.create(conn, p, title="訓練", actor="t", now=NOW)
    return database


def snapshot(path) -> tuple[list, list]:
    with sqlite3.connect(path) as conn:
        return (conn.execute("SELECT name, phone FROM contacts ORDER BY id").fetchall(),
                conn.execute("SELECT id, title FROM broadcasts ORDER BY id").fetchall())


def test_a_restored_backup_has_every_contact_and_broadcast(config, db):
    before = snapshot(config.database)
    result = backup.backup(config, now=NOW)
    with write(db) as conn:  # later damage: contacts deleted, a broadcast altered
        conn.execute("DELETE FROM contact_groups")
        conn.execute("DELETE FROM contacts")
        conn.execute("UPDATE broadcasts SET title = 'changed'")
    db.conn.close()
    kept = backup.restore(config, result.path, now=NOW + 60)
    assert snapshot(config.database) == before and len(before[0]) > 200
    assert snapshot(kept)[0] == []  # the damaged one is kept aside, not lost


def test_only_the_newest_generations_are_kept(config, db):
    made = [backup.backup(config, now=NOW + i * 3600).path for i in range(5)]
    assert backup.backups(config) == sorted(made[-3:], reverse=True)


def test_a_usb_path_that_is_not_a_mounted_stick_is_a_warning_not_a_copy(config, db):
    result = backup.backup(config, now=NOW)
    assert result.usb_copy is None and "not a mounted USB stick" in result.usb_problem
    mounted = backup.backup(config, now=NOW + 1, ismount=lambda path: True)
    assert mounted.usb_copy.read_bytes() == mounted.path.read_bytes()
    assert stat.S_IMODE(mounted.usb_copy.stat().st_mode) == 0o600


@pytest.mark.parametrize("content, message", [
    (b"hello, not a database" * 100, "not an SQLite database"),
    (None, "not a Tsunagu database"),
])
def test_a_file_that_is_not_a_tsunagu_database_is_refused_and_nothing_replaced(
        config, db, tmp_path, content, message):
    bad = tmp_path / "bad.db"
    if content is None:
        with sqlite3.connect(bad) as conn:
            conn.execute("CREATE TABLE other (x)")
    else:
        bad.write_bytes(content)
    before = snapshot(config.database)
    with pytest.raises(backup.BackupError, match=message):
        backup.restore(config, bad, now=NOW)
    assert snapshot(config.database) == before


def test_restore_refuses_while_the_daemon_is_running(config, db):
    result = backup.backup(config, now=NOW)
    with write(db) as conn:
        conn.execute("INSERT INTO heartbeat VALUES ('daemon', 1, ?, ?, '0')", [NOW, NOW])
    with pytest.raises(backup.BackupError, match="daemon is running"):
        backup.restore(config, result.path, now=NOW + 5)


def test_backup_and_restore_commands(config, db):
    from click.testing import CliRunner

    from appliance.cli import main
    runner = CliRunner()
    made = runner.invoke(main, ["backup", "--config", str(config.path)])
    assert made.exit_code == 0 and "バックアップを作りました" in made.output
    path = backup.backups(config)[0]
    restored = runner.invoke(main, ["restore", str(path), "--yes", "--config", str(config.path)])
    assert restored.exit_code == 0 and "それまでのデータベースは" in restored.output
    refused = runner.invoke(main, ["restore", str(config.path), "--yes", "--config",
                                   str(config.path)])
    assert refused.exit_code == 1 and "データベースのファイルではありません" in refused.output


# -- issue 12, finding 8: encrypted, private, single-file backups -----------------------------

def test_a_backup_cannot_be_read_without_the_key_and_restores_with_it(config, db, tmp_path):
    before = snapshot(config.database)
    made = backup.backup(config, now=NOW, ismount=lambda path: True)
    for copy in (made.path, made.usb_copy):
        data = copy.read_bytes()
        assert data.startswith(b"age-encryption.org/v1") and b"SQLite format 3" not in data
        for name, number in before[0][:20]:
            assert name.encode() not in data and number.encode() not in data
    other_key = tmp_path / "other.key"
    other_key.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    with pytest.raises(backup.BackupError, match="cannot be decrypted"):
        backup.restore(config, made.usb_copy, now=NOW + 60, key=other_key)
    assert snapshot(config.database) == before, "nothing replaced by a failed restore"
    with write(db) as conn:
        conn.execute("DELETE FROM contact_groups")
        conn.execute("DELETE FROM contacts")
    db.conn.close()
    backup.restore(config, made.usb_copy, now=NOW + 60)
    assert snapshot(config.database) == before


def test_a_backup_and_its_key_are_private_files(config, db):
    made = backup.backup(config, now=NOW)
    for path in (made.path, backup.key_file(config), made.path.with_name(
            made.path.name.replace(".db.age", ".audit-head"))):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert backup.key_file(config).parent == config.database.parent


def test_a_backup_is_one_file_and_leaves_no_partial_or_wal_files(config, db):
    backups_dir = config.backup.directory
    backups_dir.mkdir(parents=True, exist_ok=True)
    stale = [backups_dir / "tsunagu-20200101-000000.db.partial-wal",
             backups_dir / "tsunagu-20200101-000000.db.partial-shm",
             backups_dir / "tsunagu-20200101-000000.db.partial"]
    for path in stale:
        path.write_bytes(b"names and numbers")
        old = time.time() - 2 * backup.STALE_PARTIAL_SECONDS    # file times: the wall clock
        os.utime(path, (old, old))
    made = backup.backup(config, now=NOW)
    left = {p.name for p in backups_dir.iterdir()}
    assert left == {made.path.name, made.path.name.replace(".db.age", ".audit-head")}


def test_each_backup_saves_the_audit_chain_head_and_copies_it_to_usb(config, db):
    made = backup.backup(config, now=NOW, ismount=lambda path: True)
    saved = audit.Head.from_json(
        made.path.with_name(made.path.name.replace(".db.age", ".audit-head")).read_text())
    assert saved == made.head == audit.head(db)
    assert audit.entries(db, limit=1)[0].action == "backup"
    assert (config.backup.usb_path / made.path.name.replace(".db.age", ".audit-head")).exists()
