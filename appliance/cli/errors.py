"""click's own words around an error (Error:, Usage:, Invalid value for …, Aborted!) in the
configured language, so that a Japanese office manager meets one language at a time.

click writes these through the standard gettext with no Japanese catalog and picks the
language from the process's locale, not from Tsunagu's config; the `tsunagu` group runs
each command without click's standalone handling and shows the error itself. The message
inside (ours, from speak()/error_text()) is already in the configured language; click's
own type checks ("'x' is not a valid integer.") are put in Japanese from click's wording.
"""
from __future__ import annotations

import re
import sys
from typing import Any

import click

from .common import forget_language, language


def _hint(exc: click.BadParameter) -> str | None:
    if exc.param_hint is not None:
        hint = exc.param_hint
        return hint if isinstance(hint, str) else " / ".join(repr(h) for h in hint)
    if exc.param is not None:
        return exc.param.get_error_hint(exc.ctx)
    return None


# click's type checks (click/types.py), as click 8 words them, and the same in Japanese; a
# message that matches none is shown as click wrote it.
_CLICK_CHECKS_JA = [(re.compile(pattern), ja) for pattern, ja in [
    (r"^(?P<v>.+) is not one of (?P<c>.+)\.$", "{v} は選べません（選べるのは {c}）"),
    (r"^(?P<v>.+) is not (?P<c>'[^']*')\.$", "{v} は選べません（選べるのは {c}）"),
    (r"^(?P<v>.+) is not a valid integer(?: range)?\.$", "{v} は整数ではありません"),
    (r"^(?P<v>.+) is not a valid float(?: range)?\.$", "{v} は数ではありません"),
    (r"^(?P<v>.+) is not a valid boolean\..*$", "{v} は true か false で指定してください"),
    (r"^(?P<v>.+) is not in the range (?P<c>.+)\.$", "{v} は範囲の外です（{c}）"),
    (r"^(?P<v>.+) does not match the formats? (?P<c>.+)\.$", "{v} の書き方が違います（{c}）"),
    (r"^(?:File|Directory|Path) (?P<v>.+) does not exist\.$", "{v} がありません"),
    (r"^(?:File|Directory|Path) (?P<v>.+) is a directory\.$",
     "{v} はフォルダーです。ファイルを指定してください"),
    (r"^(?:File|Directory|Path) (?P<v>.+) is a file\.$",
     "{v} はファイルです。フォルダーを指定してください"),
    (r"^(?:File|Directory|Path) (?P<v>.+) is not readable\.$", "{v} を読めません"),
    (r"^(?:File|Directory|Path) (?P<v>.+) is not writable\.$", "{v} に書き込めません"),
]]


def _click_check_ja(message: str) -> str:
    for pattern, ja in _CLICK_CHECKS_JA:
        found = pattern.match(message)
        if found:
            return ja.format(**found.groupdict())
    return message


def message_ja(exc: click.ClickException) -> str:
    """What click would say after 'Error:', in Japanese."""
    if isinstance(exc, click.MissingParameter):
        hint = _hint(exc)
        return f"{hint} を指定してください。" if hint else "指定が足りません。"
    if isinstance(exc, click.BadParameter):
        hint = _hint(exc)
        said = _click_check_ja(exc.message)
        return f"{hint} の値が正しくありません：{said}" if hint else \
            f"値が正しくありません：{said}"
    if isinstance(exc, click.NoSuchOption):
        return f"そのようなオプションはありません：{exc.option_name}"
    return exc.format_message()


# click 8.2+: a group run with no command raises this, its message the group's help page.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def show(exc: click.ClickException) -> None:
    """*exc* as click shows it, in the configured language."""
    if language() == "en":
        exc.show()
        return
    if isinstance(exc, _NO_ARGS_IS_HELP):
        # A group run without its command: click's answer is the help page itself.
        click.echo(exc.format_message(), err=True)
        return
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        usage = exc.ctx.get_usage().replace("Usage:", "使い方:", 1)
        click.echo(f"{usage}\n詳しくは '{exc.ctx.command_path} --help' を見てください。\n",
                   err=True)
    click.echo(f"エラー: {message_ja(exc)}", err=True)


class TsunaguGroup(click.Group):
    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        forget_language()
        from .help import help_language, speak_help
        speak_help(self, help_language(sys.argv[1:] if args is None else list(args)))
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            show(exc)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!" if language() == "en" else "中止しました。", err=True)
            sys.exit(1)
        # click returns an Exit's status (e.g. --help, --version) instead of raising it.
        sys.exit(result if isinstance(result, int) else 0)
