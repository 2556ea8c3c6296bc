"""Real storage faults for the tests: a small filesystem filled up, a read-only one, an SD
card that fails (ext4 that remounts itself read-only on an error, as Raspberry Pi OS mounts
its root), and a damaged database file.

Mounting needs root: the development container and CI run the tests as root; elsewhere the
tests that need a mount are skipped with the reason. Every mount is made under the test's
own tmp_path and undone at the end, also when the test fails.
"""
from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small filesystem (CI and the dev container run "
                    "the tests as root)")


def _mount(*args: str) -> None:
    result = _run("mount", *args)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({' '.join(args)}): {result.stderr.strip()}")


def _unmount(path: Path) -> None:
    if _run("umount", str(path)).returncode != 0:
        # Something still holds a file there (a process the test failed to stop): detach the
        # mount so that the next test is not left with it.
        _run("umount", "-l", str(path))


@contextlib.contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of *size_mb* at *path*: a disk that can really fill up."""
    need_root()
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        _unmount(path)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write a file in *directory* until the filesystem is full; returns the file."""
    filler = directory / name
    chunk = b"\0" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[:len(chunk) // 2]  # the last blocks, to the very end
    finally:
        os.close(fd)
    return filler


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """*path* made read-only (a read-only bind mount over it) until the block ends.

    Files opened for writing through the mount keep it writable (the kernel refuses the
    remount while any is open): use it for processes started on a read-only disk, and
    failing_card() for one that goes read-only under a running process.
    """
    need_root()
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield path
    finally:
        _unmount(path)


class FailingCard:
    """An ext4 filesystem in a file, mounted errors=remount-ro like an SD card's root."""

    def __init__(self, path: Path, device: str) -> None:
        self.path = path
        self.device = device

    def fail(self) -> None:
        """The card reports an error: ext4 stops every write from now on (EROFS/EIO)."""
        trigger = Path(f"/sys/fs/ext4/{self.device}/trigger_fs_error")
        if not trigger.exists():
            pytest.skip("this kernel has no ext4 trigger_fs_error to fail a filesystem")
        trigger.write_text("tsunagu test: the SD card failed\n")


@contextlib.contextmanager
def failing_card(path: Path, size_mb: int = 16, *, fresh: bool = True
                 ) -> Iterator[FailingCard]:
    """An ext4 image beside *path* (`<path>.img`) mounted at *path*; *fresh*: made anew,
    else the image of an earlier failing_card() mounted again (the card put back)."""
    need_root()
    image = path.with_name(path.name + ".img")
    if fresh:
        with open(image, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        made = _run("mkfs.ext4", "-q", "-F", str(image))
        if made.returncode != 0:
            pytest.skip(f"cannot make an ext4 filesystem: {made.stderr.strip()}")
    path.mkdir(parents=True, exist_ok=True)
    _mount("-o", "loop,errors=remount-ro", str(image), str(path))
    try:
        source = _run("findmnt", "-n", "-o", "SOURCE", str(path)).stdout.strip()
        yield FailingCard(path, Path(source).name)
    finally:
        _unmount(path)


def damage(database: Path, *, header: bool = False) -> None:
    """Damage a database file as a failing SD card does: a run of garbage over its pages
    (*header*: over the first page too, so it is no longer recognised as a database)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    size = database.stat().st_size
    with open(database, "r+b") as f:
        if header:
            f.write(b"\xa5" * 100)
        else:
            # Leave page 1 (the schema) readable: the tables are found, their pages are not.
            f.seek(4096)
            f.write(bytes((i * 7 + 3) % 256 for i in range(size - 4096)))
