"""Backups of the one database, and restoring one.

`backup()` uses SQLite's online backup API, so it is consistent while the daemon and the web
UI keep writing; the copy is checked (integrity_check) before it counts, the newest N are
kept, and a copy goes to a USB stick when one is configured and mounted. `restore()` checks
that a file really is a Tsunagu database before it replaces anything, refuses while the
daemon is running (it would keep writing to the old file), moves the current database aside
(a damaged one too) and puts the restored one in its place.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from . import audit, storage
from .config import Config
from .db import connect

PREFIX = "tsunagu-"
REQUIRED_TABLES = {"contacts", "broadcasts", "recipients", "parts", "users", "audit_log"}


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    usb_copy: Path | None
    usb_problem: str | None
    removed: tuple[Path, ...]


def _directory(config: Config) -> Path:
    path = Path(config.backup.directory)
    path.mkdir(parents=True, exist_ok=True)
    return path


def backup(config: Config, *, now: float | None = None, actor: str = "cli",
           ismount=os.path.ismount) -> BackupResult:
    moment = dt.datetime.fromtimestamp(now if now is not None else time.time(), config.zone)
    directory = _directory(config)
    target = directory / f"{PREFIX}{moment:%Y%m%d-%H%M%S}.db"
    partial = target.with_suffix(".db.partial")
    source = connect(config.database)
    try:
        with sqlite3.connect(partial) as copy:
            source.conn.backup(copy)
        check = _integrity(partial)
        if check != "ok":
            raise BackupError(f"the backup copy failed its integrity check: {check}")
        os.replace(partial, target)
        audit.record(source, actor, "backup", path=str(target))
    finally:
        source.conn.close()
        if partial.exists():
            partial.unlink()
    removed = _prune(directory, config.backup.keep)
    usb_copy, problem = _copy_to_usb(config, target, ismount)
    return BackupResult(target, target.stat().st_size, usb_copy, problem, removed)


def _integrity(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def _prune(directory: Path, keep: int) -> tuple[Path, ...]:
    ours = sorted(directory.glob(f"{PREFIX}*.db"))  # names sort by time
    old = ours[:-keep] if keep > 0 else []
    for path in old:
        path.unlink()
    return tuple(old)


def _copy_to_usb(config: Config, target: Path, ismount) -> tuple[Path | None, str | None]:
    usb = config.backup.usb_path
    if usb is None:
        return None, None
    usb = Path(usb)
    # An unmounted stick leaves an empty mount point on the SD card: copying there would
    # fill the SD card and give false comfort.
    if not usb.is_dir() or not ismount(usb):
        return None, f"{usb} is not a mounted USB stick; no copy made"
    if not os.access(usb, os.W_OK):
        return None, f"{usb} is not writable; no copy made"
    destination = usb / target.name
    shutil.copy2(target, destination)
    return destination, None


def backups(config: Config) -> list[Path]:
    return sorted(_directory(config).glob(f"{PREFIX}*.db"), reverse=True)


def check_file(path: Path) -> None:
    """Raise BackupError unless *path* is a sound Tsunagu database."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    try:
        check = _integrity(path)
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not an SQLite database ({exc})") from None
    if check != "ok":
        raise BackupError(f"{path}: damaged ({check})")
    if missing := REQUIRED_TABLES - tables:
        raise BackupError(f"{path}: not a Tsunagu database (missing {', '.join(sorted(missing))})")


def daemon_running(config: Config, now: float) -> bool:
    status = storage.read_daemon_status(config)
    if status is not None and status.alive(now, config.check.heartbeat_max_age):
        return True  # its status file: also when its database cannot be read
    if not Path(config.database).exists():
        return False
    with sqlite3.connect(config.database) as conn:
        try:
            row = conn.execute("SELECT beat_at FROM heartbeat WHERE name = 'daemon'").fetchone()
        except sqlite3.DatabaseError:
            return False
    return row is not None and now - row[0] <= config.check.heartbeat_max_age


def restore(config: Config, source: Path, *, force: bool = False, now: float | None = None,
            actor: str = "cli") -> Path:
    """Replace the database with *source*; returns where the previous one was kept."""
    now = now if now is not None else time.time()
    check_file(source)
    if daemon_running(config, now) and not force:
        raise BackupError("the daemon is running: stop it first (systemctl stop tsunagu-daemon "
                          "tsunagu-web), or use --force")
    database = Path(config.database)
    kept = database.with_name(f"{database.name}.before-restore-"
                              f"{dt.datetime.fromtimestamp(now, config.zone):%Y%m%d-%H%M%S}")
    staging = database.with_name(database.name + ".restoring")
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, \
                sqlite3.connect(staging) as dst:
            src.backup(dst)
    except (sqlite3.Error, OSError) as exc:
        staging.unlink(missing_ok=True)
        raise BackupError(f"cannot write the restored copy {staging}: {exc} (a full disk: "
                          "free space first)") from None
    if database.exists():
        # Moved aside, not copied: byte for byte what was there (a damaged file too, which
        # a copy through SQLite could not read), and no space needed on a full disk. Its
        # write-ahead log goes with it: committed rows may still be there.
        os.replace(database, kept)
        if Path(f"{database}-wal").exists():
            os.replace(f"{database}-wal", f"{kept}-wal")
    Path(f"{database}-shm").unlink(missing_ok=True)  # the old database's index of its log
    os.replace(staging, database)
    restored = connect(database)  # applies newer migrations to an older backup
    audit.record(restored, actor, "restore", source=str(source), previous_kept=str(kept))
    restored.conn.close()
    return kept
