"""Backups of the one database, encrypted, and restoring one.

`backup()` uses SQLite's online backup API, so it is consistent while the daemon and the web
UI keep writing; the copy is checked (integrity_check) and made a single self-contained file
(no WAL side files), then encrypted with age (pyrage) to the appliance's backup key and
written with mode 0600 as `tsunagu-YYYYmmdd-HHMMSS.db.age`. Beside it, the audit log's chain
head (`….audit-head`: the last row's id and hash) is saved, so that `tsunagu audit verify`
can later tell whether rows were cut off the log's end. The newest N are kept, partial files
left by an interrupted run are removed, and both files go to a USB stick when one is
configured and mounted: a stick that is lost or taken home holds nothing readable without
the key. The plain copy exists only in the private backup directory, for the seconds it
takes to check and encrypt it.

The key (`[backup] key_file`, an age X25519 identity, created with mode 0600 on first use)
must be kept apart as well — printed and sealed with the emergency codes: without it no
backup can be restored. `restore()` decrypts, checks that the file really is a Tsunagu
database before it replaces anything, refuses while the daemon is running (it would keep
writing to the old file), moves the current database aside (a damaged one too, byte for
byte) and replaces it atomically.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyrage

from . import audit, storage
from .config import Config
from .db import connect

PREFIX = "tsunagu-"
SUFFIX = ".db.age"
HEAD_SUFFIX = ".audit-head"
AGE_MAGIC = b"age-encryption.org/v1"
STALE_PARTIAL_SECONDS = 3600     # a partial file this old belongs to no running backup
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
    head: audit.Head | None = None


def _directory(config: Config) -> Path:
    path = Path(config.backup.directory)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


# -- the key --------------------------------------------------------------------------------

def key_file(config: Config) -> Path:
    return Path(config.backup.key_file)


def load_identity(path: Path) -> pyrage.x25519.Identity:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise BackupError(f"the backup key {path} does not exist: restore needs the key the "
                          "backup was made with (--key FILE, from the sealed printout) / "
                          f"バックアップの鍵 {path} がありません。復元にはバックアップを作った"
                          "ときの鍵が必要です（封をした印刷から --key FILE で指定）") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"cannot read the backup key {path}: {exc} / "
                          f"バックアップの鍵 {path} を読めません：{exc}") from None
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("#")]
    try:
        return pyrage.x25519.Identity.from_str(lines[0])
    except (IndexError, pyrage.IdentityError, ValueError):
        raise BackupError(f"{path} is not an age key (a line AGE-SECRET-KEY-1…) / "
                          f"{path} はバックアップの鍵（AGE-SECRET-KEY-1… の行）ではありません") from None


def ensure_key(config: Config) -> pyrage.x25519.Identity:
    """The backup key, created (mode 0600) on first use; two processes agree on one."""
    path = key_file(config)
    if path.exists():
        return load_identity(path)
    identity = pyrage.x25519.Identity.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write("# Tsunagu backup key: without it no backup can be restored. Print it and\n"
                  f"# keep it sealed with the emergency codes. public key: "
                  f"{identity.to_public()}\n{identity}\n")
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made one first: theirs is the key
    finally:
        temporary.unlink(missing_ok=True)
    return load_identity(path)


# -- making a backup ------------------------------------------------------------------------

def _private_file(path: Path, data: bytes) -> None:
    """Write *data* to a new file that only the service's user can read (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


def backup(config: Config, *, now: float | None = None, actor: str = "cli",
           ismount=os.path.ismount) -> BackupResult:
    moment = dt.datetime.fromtimestamp(now if now is not None else time.time(), config.zone)
    directory = _directory(config)
    identity = ensure_key(config)
    stem = f"{PREFIX}{moment:%Y%m%d-%H%M%S}"
    target = directory / f"{stem}{SUFFIX}"
    head_path = directory / f"{stem}{HEAD_SUFFIX}"
    _prune_partials(directory, time.time())
    source = connect(config.database)
    plain = directory / f"{stem}.db.partial"
    try:
        audit.record(source, actor, "backup", path=str(target))
        head = audit.head(source)  # the backup's own row is in the copy and in the head
        _copy_plain(source.conn, plain)
        data = pyrage.encrypt(plain.read_bytes(), [identity.to_public()])
        partial = target.with_name(target.name + ".partial")
        _private_file(partial, data)
        os.replace(partial, target)
        _private_file(head_path, head.to_json().encode() if head else b"{}")
    finally:
        source.conn.close()
        for leftover in (plain, Path(f"{plain}-wal"), Path(f"{plain}-shm"),
                         Path(f"{plain}-journal")):
            leftover.unlink(missing_ok=True)
    removed = _prune(directory, config.backup.keep)
    usb_copy, problem = _copy_to_usb(config, (target, head_path), ismount)
    return BackupResult(target, target.stat().st_size, usb_copy, problem, removed, head)


def _copy_plain(source: sqlite3.Connection, plain: Path) -> None:
    """A checked, self-contained copy: the live database's WAL mode would leave -wal/-shm
    files beside any connection to the copy, so the copy is switched to a rollback journal."""
    fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    copy = sqlite3.connect(plain, isolation_level=None)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode = DELETE")
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        copy.close()
    if check != "ok":
        raise BackupError(f"the backup copy failed its integrity check: {check} / "
                          f"バックアップの写しが検査で不合格になりました：{check}")


def _prune_partials(directory: Path, now: float) -> None:
    for path in directory.glob(f"{PREFIX}*.partial*"):
        try:
            if path.stat().st_mtime < now - STALE_PARTIAL_SECONDS:
                path.unlink()
        except FileNotFoundError:
            continue  # removed meanwhile by another run: what we wanted


def _prune(directory: Path, keep: int) -> tuple[Path, ...]:
    ours = sorted(list(directory.glob(f"{PREFIX}*{SUFFIX}"))
                  + list(directory.glob(f"{PREFIX}*.db")))   # names sort by time
    old = ours[:-keep] if keep > 0 else []
    for path in old:
        path.unlink()
        Path(str(path).removesuffix(SUFFIX).removesuffix(".db") + HEAD_SUFFIX).unlink(
            missing_ok=True)
    return tuple(old)


def _copy_to_usb(config: Config, files: tuple[Path, ...], ismount
                 ) -> tuple[Path | None, str | None]:
    usb = config.backup.usb_path
    if usb is None:
        return None, None
    usb = Path(usb)
    # An unmounted stick leaves an empty mount point on the SD card: copying there would
    # fill the SD card and give false comfort.
    if not usb.is_dir() or not ismount(usb):
        return None, (f"{usb} is not a mounted USB stick; no copy made / "
                      f"{usb} にUSBメモリがつながっていないため、写しを作りませんでした")
    if not os.access(usb, os.W_OK):
        return None, (f"{usb} is not writable; no copy made / "
                      f"{usb} に書き込めないため、写しを作りませんでした")
    for path in files:
        destination = usb / path.name
        partial = usb / (path.name + ".partial")
        shutil.copyfile(path, partial)
        try:
            os.chmod(partial, 0o600)
        except PermissionError:
            pass  # FAT sticks have no modes; the file is encrypted either way
        os.replace(partial, destination)
    return usb / files[0].name, None


def backups(config: Config) -> list[Path]:
    directory = _directory(config)
    return sorted(list(directory.glob(f"{PREFIX}*{SUFFIX}"))
                  + list(directory.glob(f"{PREFIX}*.db")), reverse=True)


# -- restoring --------------------------------------------------------------------------------

def is_encrypted(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(AGE_MAGIC)) == AGE_MAGIC


def decrypt(path: Path, identity: pyrage.x25519.Identity, out: Path) -> None:
    try:
        data = pyrage.decrypt(path.read_bytes(), [identity])
    except pyrage.DecryptError:
        raise BackupError(f"{path}: cannot be decrypted with this key (a backup made with "
                          "another key, or a damaged file) / "
                          f"{path}：この鍵では復号できません（別の鍵で作ったバックアップか、"
                          "壊れたファイルです）") from None
    _private_file(out, data)


def check_file(path: Path) -> None:
    """Raise BackupError unless *path* is a sound (decrypted) Tsunagu database."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file / {path}：ファイルがありません")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not an SQLite database ({exc}) / "
                          f"{path}：データベースのファイルではありません（{exc}）") from None
    if check != "ok":
        raise BackupError(f"{path}: damaged ({check}) / {path}：壊れています（{check}）")
    if missing := REQUIRED_TABLES - tables:
        raise BackupError(f"{path}: not a Tsunagu database (missing {', '.join(sorted(missing))}) "
                          f"/ {path}：つなぐのデータベースではありません")


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
            actor: str = "cli", key: Path | None = None) -> Path:
    """Replace the database with *source* (an encrypted backup, decrypted with *key* or the
    configured key; or an older plain one); returns where the previous one was kept."""
    now = now if now is not None else time.time()
    if not Path(source).is_file():
        raise BackupError(f"{source}: no such file / {source}：ファイルがありません")
    database = Path(config.database)
    with tempfile.TemporaryDirectory(dir=database.parent, prefix=".restore-") as scratch:
        plain = Path(source)
        if is_encrypted(plain):
            plain = Path(scratch) / "backup.db"
            decrypt(Path(source), load_identity(key or key_file(config)), plain)
        check_file(plain)
        if daemon_running(config, now) and not force:
            raise BackupError("the daemon is running: stop it first (systemctl stop "
                              "tsunagu-daemon tsunagu-web), or use --force / "
                              "送信デーモンが動いています。先に止めてください（systemctl stop "
                              "tsunagu-daemon tsunagu-web）。または --force を付けます")
        kept = database.with_name(f"{database.name}.before-restore-"
                                  f"{dt.datetime.fromtimestamp(now, config.zone):%Y%m%d-%H%M%S}")
        staging = database.with_name(database.name + ".restoring")
        try:
            with sqlite3.connect(f"file:{plain}?mode=ro", uri=True) as src, \
                    sqlite3.connect(staging) as dst:
                src.backup(dst)
        except (sqlite3.Error, OSError) as exc:
            staging.unlink(missing_ok=True)
            raise BackupError(f"cannot write the restored copy {staging}: {exc} (a full "
                              "disk: free space first) / 復元した写し "
                              f"{staging} を書けません：{exc}（ディスクがいっぱいなら、先に空きを"
                              "作ってください）") from None
    if database.exists():
        # Moved aside, not copied: byte for byte what was there (a damaged file too, which
        # a copy through SQLite could not read), and no space needed on a full disk. Its
        # write-ahead log goes with it: committed rows may still be there.
        os.replace(database, kept)
        os.chmod(kept, 0o600)
        if Path(f"{database}-wal").exists():
            os.replace(f"{database}-wal", f"{kept}-wal")
    Path(f"{database}-shm").unlink(missing_ok=True)  # the old database's index of its log
    os.replace(staging, database)
    restored = connect(database)  # applies newer migrations to an older backup
    audit.record(restored, actor, "restore", source=str(source), previous_kept=str(kept))
    restored.conn.close()
    return kept
