"""What every `tsunagu` command shares: --config, opening the database, clear errors.

Usage in a command module::

    from .common import config_option, friendly_errors, load_config_and_db

    @group.command()
    @config_option
    @friendly_errors
    def thing():
        config, db = load_config_and_db()

`--config FILE` (or $TSUNAGU_CONFIG) is remembered on the click context, so commands do
not take it as a parameter. `friendly_errors` turns the library's own errors (a bad config
value, a refused number, an import problem…) into one clear line and exit status 1
instead of a traceback.
"""
from __future__ import annotations

import functools
import getpass
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..wording import say   # the commands pick their sentences with it (re-exported)

F = TypeVar("F", bound=Callable[..., Any])
_CONFIG_KEY = "tsunagu.config_path"
_LANG_KEY = "tsunagu.language"


def _remember_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[_CONFIG_KEY] = value


def config_option(f: F) -> F:
    """Add `--config FILE` (default: $TSUNAGU_CONFIG) to a command."""
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
        envvar="TSUNAGU_CONFIG", expose_value=False, callback=_remember_config,
        help="Configuration file (TOML; default: $TSUNAGU_CONFIG, else "
             "/etc/tsunagu/tsunagu.toml). "
             "See docs/config.example.toml.")(f)


def config_path(ctx: click.Context | None = None) -> Path | None:
    ctx = ctx or click.get_current_context()
    return ctx.meta.get(_CONFIG_KEY)


def load_config(ctx: click.Context | None = None):
    """The checked configuration, or a ClickException naming the key and the file."""
    from .. import config as config_mod
    ctx = ctx or click.get_current_context()
    try:
        config = config_mod.load(config_path(ctx))
    except config_mod.ConfigError as exc:
        raise click.ClickException(error_text(exc)) from None
    ctx.meta[_LANG_KEY] = config.language  # errors from here on speak it too
    _spoken["language"] = config.language
    return config


def load_config_and_db(ctx: click.Context | None = None):
    """(Config, sqlite_utils.Database) with migrations applied."""
    from .. import db as db_mod
    config = load_config(ctx)
    try:
        database = db_mod.connect(config.database)
    except OSError as exc:
        raise click.ClickException(f"cannot open the database {config.database}: {exc}") \
            from None
    return config, database


# The language of the command being run, for what is said after its context is gone (an
# error shown by the `tsunagu` group itself): set by load_config, reset at each command.
_spoken = {"language": "ja"}


def language() -> str:
    """The language this command speaks: the config's `language`. A command that has not
    read the config (one that opens a modem's port itself) asks it here, once; without a
    readable config it speaks Japanese."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return _spoken["language"]
    if _LANG_KEY not in ctx.meta:
        from .. import config as config_mod
        try:
            spoken = config_mod.load(config_path(ctx)).language
        except config_mod.ConfigError:
            # A config with a mistake still says which language to tell it in; none here
            # (a technician's laptop): the default language.
            spoken = config_mod.spoken_language(config_path(ctx))
        ctx.meta[_LANG_KEY] = _spoken["language"] = spoken
    return ctx.meta[_LANG_KEY]


def forget_language() -> None:
    """A new command starts in Japanese until it has read its config."""
    _spoken["language"] = "ja"


def speak(ja: str, en: str) -> str:
    """*ja* or *en*, as this command's configured language says (see language())."""
    return say(language(), ja, en)


# Control characters (an ESC starts a terminal escape sequence), C1 controls, and invisible or
# bidirectional characters: text from a file or the database is shown with these escaped, so
# a roster cannot move the cursor, retitle the window or display a name reversed.
_UNSAFE_ON_A_TERMINAL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
                                   "\u2060-\u2064\u2066-\u2069\ufeff]")


def terminal_safe(text: object) -> str:
    """*text* with every character that could act on a terminal written as an escape."""
    def escape(match: re.Match) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code <= 0xff else f"\\u{code:04x}"
    return _UNSAFE_ON_A_TERMINAL.sub(escape, str(text))


def cli_actor() -> str:
    """Who the audit log names for a command run from a shell: 'cli:<login name>'."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def user_errors() -> tuple[type[BaseException], ...]:
    """The library errors that mean "your input is wrong", not "the program is broken"."""
    from .. import config, contacts, phone, templates, users
    from ..roster_csv import CsvFileError
    return (config.ConfigError, phone.PhoneError, contacts.ContactsError, CsvFileError,
            templates.TemplateError, users.UserError, users.LoginRefused)


def error_text(exc: BaseException) -> str:
    """The error's message in the configured language (Japanese before the config is read)."""
    from ..wording import error_text as in_language
    return in_language(exc, language())


def friendly_errors(f: F) -> F:
    """Turn the library's input errors into click.ClickException (one line, exit 1)."""
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except user_errors() as exc:
            raise click.ClickException(error_text(exc)) from None
    return wrapper  # type: ignore[return-value]


def field_errors(*error_types: type[Exception]) -> Callable[[F], F]:
    """Like friendly_errors, for library errors that carry a `field`: 'field: message'."""
    def decorate(f: F) -> F:
        @functools.wraps(f)
        @friendly_errors
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return f(*args, **kwargs)
            except error_types as exc:
                field = getattr(exc, "field", None)
                raise click.ClickException(f"{field + ': ' if field else ''}{error_text(exc)}") from None
        return wrapper  # type: ignore[return-value]
    return decorate
