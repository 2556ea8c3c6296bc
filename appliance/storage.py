"""Storage faults: a full disk, a read-only filesystem (the usual way an SD card fails) and
a damaged database — recognised, told to staff, and survived.

- `fault_of(exc)` says whether an error from SQLite or the filesystem is one of these, and
  which (`Fault`); everything else is somebody else's error.
- `Reserve`: disk space kept in a file beside the database (`<database>.reserve`). When a
  write finds the disk full, the process that met it deletes the file, so the appliance's
  own writes (the states that must be written before a part is sent) have room while staff
  free space; the daemon makes it again once there is room.
- The daemon's status file, `<runtime_directory>/daemon.json`, on a RAM filesystem
  (/run/tsunagu): written at every heartbeat whether or not the database can be written, so
  `tsunagu check`, the web UI and the LEDs can tell "the daemon is alive but cannot write"
  (it says which fault) from "the daemon stopped".
- `disk(config)`: the free space of the database's filesystem, whether it is mounted
  read-only, and whether the reserve is there.

Every fault comes with what is wrong and what to do, in Japanese and English (`advice()`),
for `tsunagu check`; the web UI says the same in its own catalogue.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import Config

log = logging.getLogger(__name__)

FULL = "full"              # no space left for a write
READ_ONLY = "read_only"    # the filesystem refuses writes (an SD card remounted read-only)
IO_ERROR = "io_error"      # the card answered a read or write with an error
DAMAGED = "damaged"        # the database file is not a sound SQLite database

STATUS_FILE = "daemon.json"

_SQLITE_KINDS = {
    "SQLITE_FULL": FULL,
    "SQLITE_IOERR_SHMSIZE": FULL,      # the -shm file could not be made: no space for it
    "SQLITE_READONLY": READ_ONLY,
    "SQLITE_CORRUPT": DAMAGED,
    "SQLITE_NOTADB": DAMAGED,
}
_ERRNO_KINDS = {errno.ENOSPC: FULL, errno.EDQUOT: FULL, errno.EROFS: READ_ONLY,
                errno.EIO: IO_ERROR}


@dataclass(frozen=True)
class Fault:
    """A storage fault: its kind (FULL, READ_ONLY, IO_ERROR, DAMAGED) and what was said."""
    kind: str
    detail: str


def fault_of(exc: BaseException, directory: Path | None = None) -> Fault | None:
    """The storage fault behind *exc*, or None when it is not one.

    SQLite reports a write the filesystem refused as a generic I/O error (an ext4 card
    that has just remounted itself read-only answers EIO first, EROFS after), and one it
    could not even open as "unable to open": with *directory* (where the database lives)
    the filesystem itself is asked which it is.
    """
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", None) or ""
        primary = "_".join(name.split("_")[:2])  # SQLITE_CORRUPT_INDEX -> SQLITE_CORRUPT
        kind = _SQLITE_KINDS.get(name) or _SQLITE_KINDS.get(primary)
        if kind is None and primary in ("SQLITE_IOERR", "SQLITE_CANTOPEN"):
            kind = _ask_filesystem(directory) or (IO_ERROR if primary == "SQLITE_IOERR"
                                                  else None)
        return Fault(kind, str(exc)) if kind else None
    if isinstance(exc, OSError) and exc.errno in _ERRNO_KINDS:
        return Fault(_ERRNO_KINDS[exc.errno], str(exc))
    return None


def _ask_filesystem(directory: Path | None) -> str | None:
    """FULL or READ_ONLY when the filesystem at *directory* is so, else None."""
    if directory is None:
        return None
    try:
        stat = os.statvfs(directory)
    except OSError:
        return None
    if stat.f_flag & os.ST_RDONLY:
        return READ_ONLY
    if stat.f_bavail == 0:
        return FULL
    return _write_probe(directory)


def _write_probe(directory: Path) -> str | None:
    """Try to write a byte in *directory*: what the filesystem answers, as a kind."""
    probe = directory / f".tsunagu-write-test.{os.getpid()}.{threading.get_ident()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as exc:
        return _ERRNO_KINDS.get(exc.errno)
    return None


# -- the reserve -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reserve:
    """Space kept aside for the appliance's own writes: `<database>.reserve`."""
    path: Path
    size: int

    @classmethod
    def of(cls, config: Config) -> Reserve:
        database = Path(config.database)
        return cls(database.with_name(database.name + ".reserve"),
                   config.daemon.reserve_mb * 1024 * 1024)

    @property
    def present(self) -> bool:
        return self.path.exists()

    def ensure(self) -> bool:
        """Make the reserve when it is missing and the disk has room for it and as much
        again; True when it is there now."""
        if self.size <= 0 or self.present:
            return self.present
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            if shutil.disk_usage(self.path.parent).free < 2 * self.size:
                return False
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                # Real blocks, not a sparse file: deleting it must give space back.
                os.posix_fallocate(fd, 0, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(partial, self.path)
        except OSError as exc:
            log.warning("cannot make the disk reserve %s: %s", self.path, exc)
            try:
                partial.unlink(missing_ok=True)
            except OSError:
                pass  # a read-only disk: there is no partial file to remove either
            return False
        log.info("disk reserve of %d MB kept in %s", self.size // (1024 * 1024), self.path)
        return True

    def release(self) -> bool:
        """Give the reserve's space back (the disk is full); True when there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:  # a read-only disk: nothing to give back
            log.warning("cannot delete the disk reserve %s: %s", self.path, exc)
            return False
        log.error("the disk is full: the %d MB reserve %s was given back so that sending "
                  "goes on; free space now", self.size // (1024 * 1024), self.path)
        return True


# -- the disk ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Disk:
    free_mb: int
    read_only: bool
    reserve_mb: int            # configured
    reserve_present: bool

    @property
    def reserve_used(self) -> bool:
        """The reserve was given back and there is not room to make it again."""
        return bool(self.reserve_mb) and not self.reserve_present and \
            self.free_mb < 2 * self.reserve_mb

    @property
    def full(self) -> bool:
        """Less room than the reserve (at least 1 MB): the next writes may fail."""
        return self.free_mb < max(1, self.reserve_mb)


def disk(config: Config) -> Disk:
    directory = Path(config.database).parent
    stat = os.statvfs(directory)
    reserve = Reserve.of(config)
    return Disk(free_mb=stat.f_bavail * stat.f_frsize // (1024 * 1024),
                read_only=bool(stat.f_flag & os.ST_RDONLY),
                reserve_mb=config.daemon.reserve_mb, reserve_present=reserve.present)


# -- the daemon's status file --------------------------------------------------------------

@dataclass(frozen=True)
class DaemonStatus:
    """What the daemon last said about itself, from its status file."""
    pid: int
    started_at: float
    beat_at: float
    fault: Fault | None          # the storage fault its writes meet now
    fault_since: float | None
    failed_writes: int           # writes refused since the daemon started
    reserve_released_at: float | None

    def alive(self, now: float, max_age: float) -> bool:
        return now - self.beat_at <= max_age


def status_path(config: Config) -> Path:
    return Path(config.daemon.runtime_directory) / STATUS_FILE


def read_daemon_status(config: Config) -> DaemonStatus | None:
    """The daemon's status for this database, or None (no daemon wrote one, or it was for
    another database). Whether it is fresh is the reader's to ask (DaemonStatus.alive)."""
    try:
        data = json.loads(status_path(config).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("database") != str(config.database):
        return None
    fault = data.get("fault")
    return DaemonStatus(pid=data["pid"], started_at=data["started_at"],
                        beat_at=data["beat_at"],
                        fault=Fault(fault["kind"], fault["detail"]) if fault else None,
                        fault_since=data.get("fault_since"),
                        failed_writes=data.get("failed_writes", 0),
                        reserve_released_at=data.get("reserve_released_at"))


class Watch:
    """The daemon's view of its storage, shared by its threads (thread-safe).

    `met(exc)` is told of every error a write met: a storage fault is logged (once, then
    once a minute), makes the reserve go on a full disk, and is written to the status file;
    `beat()` writes the status file at every heartbeat, whether the database works or not.
    """

    LOG_EVERY = 60.0

    def __init__(self, config: Config, *, clock=time.time) -> None:
        self.config = config
        self.clock = clock
        self.started_at = clock()
        self.reserve = Reserve.of(config)
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._since: float | None = None
        self._last_met = 0.0
        self._logged_at = 0.0
        self._failed = 0
        self._released_at: float | None = None
        self._path = status_path(config)
        self._can_write_status = True

    def met(self, exc: BaseException, where: str) -> Fault | None:
        """An error a write (or an open) met; the storage fault it is, or None."""
        fault = fault_of(exc, Path(self.config.database).parent)
        if fault is None:
            return None
        now = self.clock()
        with self._lock:
            self._failed += 1
            new = self._fault is None or self._fault.kind != fault.kind
            if self._fault is None:
                self._since = now
            self._fault, self._last_met = fault, now
            loud = new or now - self._logged_at >= self.LOG_EVERY
            if loud:
                self._logged_at = now
        if loud:
            log.error("%s: cannot write the database (%s: %s); %s", where, fault.kind,
                      fault.detail, "retrying")
        if fault.kind == FULL and self.reserve.release():
            with self._lock:
                self._released_at = now
        self.beat(now)
        return fault

    @property
    def fault(self) -> Fault | None:
        return self._fault

    def beat(self, now: float | None = None) -> None:
        """Write the status file: the daemon is alive, and how its storage is."""
        now = self.clock() if now is None else now
        with self._lock:
            data = {"database": str(self.config.database), "pid": os.getpid(),
                    "started_at": self.started_at, "beat_at": now,
                    "fault": asdict(self._fault) if self._fault else None,
                    "fault_since": self._since, "failed_writes": self._failed,
                    "reserve_released_at": self._released_at}
        self._write(data)

    def recovered(self, began_at: float) -> None:
        """A write begun at *began_at* went through: unless another failed since it
        began, the fault is over."""
        with self._lock:
            if self._fault is None or self._last_met >= began_at:
                return
            log.warning("the database can be written again (after %s)", self._fault.kind)
            self._fault = self._since = None
        self.beat()

    def keep_reserve(self) -> None:
        """Make the reserve again when the disk has room (the daemon's timer calls it)."""
        if self.reserve.ensure():
            with self._lock:
                self._released_at = None

    def _write(self, data: dict) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # Each thread its own: the workers and the main thread may write at once.
            temporary = self._path.with_name(
                f".{self._path.name}.{os.getpid()}.{threading.get_ident()}")
            temporary.write_text(json.dumps(data), encoding="utf-8")
            os.replace(temporary, self._path)
        except OSError as exc:
            if self._can_write_status:
                log.warning("cannot write the status file %s (%s): check and the web UI "
                            "cannot tell a storage fault from a stopped daemon", self._path,
                            exc)
            self._can_write_status = False
        else:
            self._can_write_status = True

    def close(self) -> None:
        """The daemon stops: its status file goes with it."""
        try:
            self._path.unlink(missing_ok=True)
        except OSError as exc:
            log.info("cannot remove the status file %s: %s", self._path, exc)


# -- what staff are told -----------------------------------------------------------------------

RESERVE_USED = "reserve_used"   # not a fault of the writes: the disk is running on the reserve

_ADVICE = {
    FULL: ("SDカードの空き容量がありません（残り{free} MB）。記録できない間は送信を止めます。"
           "不要なファイル（古いバックアップ {backups} など）を削除して空き容量を作ってください。",
           "the SD card is full ({free} MB free): nothing is sent while it cannot be "
           "recorded. Delete files that are not needed (old backups in {backups}, …) to "
           "free space."),
    RESERVE_USED: ("SDカードの空き容量がなくなり、予備領域（{reserve} MB）を使って送信を続けて"
                   "います。すぐに不要なファイル（古いバックアップ {backups} など）を削除して"
                   "空き容量を作ってください。",
                   "the SD card filled up: sending goes on in the {reserve} MB reserve. "
                   "Delete files that are not needed (old backups in {backups}, …) now."),
    READ_ONLY: ("SDカードが読み取り専用になり、記録できません（SDカードの故障の可能性）。"
                "送信は止まっています。電話連絡に切り替えてください。管理者はSDカードを交換し、"
                "tsunagu restore でバックアップから戻してください。",
                "the SD card has become read-only (it may be failing): nothing can be "
                "recorded, so nothing is sent. Phone the patients. Replace the SD card and "
                "bring the database back with tsunagu restore."),
    IO_ERROR: ("SDカードの読み書きでエラーが起きています（故障の可能性）。送信は止まって"
               "います。電話連絡に切り替えてください。管理者はSDカードを交換し、tsunagu "
               "restore でバックアップから戻してください。",
               "the SD card fails to read or write (it may be failing): nothing is sent. "
               "Phone the patients. Replace the SD card and bring the database back with "
               "tsunagu restore."),
    DAMAGED: ("データベースが壊れています。送信は止まっています。電話連絡に切り替えてください。"
              "管理者はサービスを止め（systemctl stop tsunagu-web tsunagu-daemon）、tsunagu "
              "restore でバックアップから戻してください（壊れたファイルは残ります）。",
              "the database is damaged: nothing is sent. Phone the patients. Stop the "
              "services (systemctl stop tsunagu-web tsunagu-daemon) and bring the database "
              "back from a backup with tsunagu restore (the damaged file is kept)."),
}


_RESERVE_GONE = ("予備領域（{reserve} MB）も使い切りました。", "The {reserve} MB reserve is used up too.")


def advice(kind: str, lang: str, config: Config, disk: Disk | None = None) -> str:
    """What is wrong and what to do, in one line for `tsunagu check` (ja or en)."""
    ja, en = _ADVICE[kind]
    text = ja if lang == "ja" else en
    if kind == FULL and disk is not None and disk.reserve_mb and not disk.reserve_present:
        text += _RESERVE_GONE[0] if lang == "ja" else " " + _RESERVE_GONE[1]
    return text.format(free="?" if disk is None else disk.free_mb,
                       reserve=config.daemon.reserve_mb, backups=config.backup.directory)
