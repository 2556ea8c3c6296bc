"""Roster files waiting between the import preview and its confirmation.

The file (patients' names and numbers) is kept in a private directory beside the database,
never in the session cookie, under a random token. A preview expires after an hour: a
confirmation later than that is refused, and `prune()` — run by every preview and by the
readiness check's timer — removes abandoned files, so patient data does not stay on disk
because somebody closed the tab.
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from .config import Config

MAX_AGE = 3600


def directory(config: Config) -> Path:
    # Beside the database: the same private directory, never /tmp shared with others.
    path = Path(config.database).parent / "uploads"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _valid(token: str | None) -> bool:
    return bool(token) and len(token) < 64 and token.replace("-", "").replace("_", "").isalnum()


def prune(config: Config, now: float | None = None) -> int:
    """Remove previews older than MAX_AGE; returns how many."""
    # File times are the wall clock, whatever clock the caller's "now" comes from.
    limit = (time.time() if now is None else now) - MAX_AGE
    removed = 0
    for old in directory(config).iterdir():
        try:
            if old.stat().st_mtime < limit:
                old.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # taken by its confirmation meanwhile
    return removed


def save(config: Config, data: bytes) -> str:
    """Keep *data* (mode 0600) and return its token."""
    prune(config)
    token = secrets.token_urlsafe(16)
    fd = os.open(directory(config) / token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return token


def take(config: Config, token: str | None) -> bytes | None:
    """The file for *token*, removed from disk; None when unknown or expired."""
    if not _valid(token):
        return None
    path = directory(config) / token
    try:
        expired = path.stat().st_mtime < time.time() - MAX_AGE
        data = None if expired else path.read_bytes()
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return data


def forget(config: Config, token: str | None) -> None:
    if _valid(token):
        (directory(config) / token).unlink(missing_ok=True)
