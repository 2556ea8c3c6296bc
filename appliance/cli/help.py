"""`tsunagu … --help` in the configured language: Japanese unless the config says English.

click's help is the commands' docstrings and the options' `help=`, written in English
beside the code they describe. For Japanese, each is looked up in help_ja.HELP (keyed by
the English text, as the web UI's catalog is), and click's own words around them (Usage:,
Options:, [default: …]) are put in Japanese by a help formatter. A test walks every command
and option, so a new one cannot ship without its Japanese.

The help is shown while click parses the arguments, before any command has read its
config, so the language comes from the file named by --config, $TSUNAGU_CONFIG or the
default path, as config errors do (config.spoken_language).
"""
from __future__ import annotations

import inspect
import re
import unicodedata
from collections.abc import Iterator, Sequence

import click

# click's own headings, its own help option (made by click for each page, not one of our
# params) and the bracketed extras of an option, in Japanese.
_HEADINGS = {"Options": "オプション", "Commands": "コマンド", "Arguments": "引数"}
_CLICKS_OWN = {"Show this message and exit.": "このヘルプを表示して終了します。"}
_EXTRAS = [(re.compile(r"\[default: "), "[既定: "), (re.compile(r"\[required\]"), "[必須]"),
           (re.compile(r"; required\]"), "; 必須]"), (re.compile(r"env var: "), "環境変数: ")]

_state = {"language": "ja"}


class HelpFormatter(click.HelpFormatter):
    """click's formatter, with its own words in Japanese while the help is Japanese."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        if _state["language"] == "ja":
            prefix = "使い方: "
        super().write_usage(prog, args, prefix)

    def write_heading(self, heading: str) -> None:
        if _state["language"] == "ja":
            heading = _HEADINGS.get(heading, heading)
        super().write_heading(heading)

    def write_text(self, text: str) -> None:
        if _state["language"] != "ja":
            super().write_text(text)
            return
        indent = " " * self.current_indent
        for line in wrap(text, self.width - self.current_indent):
            self.write(f"{indent}{line}\n" if line else "\n")

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30,
                 col_spacing: int = 2) -> None:
        if _state["language"] != "ja":
            super().write_dl(rows, col_max, col_spacing)
            return
        # click's layout (terms, then their text in a column beside them), with the text
        # wrapped by display width.
        rows = [(term, _extras_ja(_CLICKS_OWN.get(text, text))) for term, text in rows]
        first_col = min(max((width(term) for term, _text in rows), default=0),
                        col_max) + col_spacing
        column = " " * (first_col + self.current_indent)
        for term, text in rows:
            self.write(f"{'':>{self.current_indent}}{term}")
            if not text:
                self.write("\n")
                continue
            if width(term) <= first_col - col_spacing:
                self.write(" " * (first_col - width(term)))
            else:
                self.write("\n" + column)
            lines = wrap(text, max(self.width - first_col - 2, 10))
            self.write(f"{lines[0]}\n" + "".join(f"{column}{line}\n" if line else "\n"
                                                 for line in lines[1:]))


def width(text: str) -> int:
    """Columns *text* takes in a terminal: two for each wide (CJK) character."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


# A run of Latin letters, digits and ASCII marks (a word, an option, a path) or a short
# bracketed extra ([既定: 90.0]) is never cut; Japanese may break between any two
# characters, except before closing punctuation and after opening brackets (kinsoku).
_TOKENS = re.compile(r"\[[^\]\n]{1,40}\]|[!-~]+|\s+|.", re.S)
_NO_LINE_START = set("、。，．）」』】〕］｝〉》・：；！？ー…ぁぃぅぇぉっゃゅょァィゥェォッャュョ")
_NO_LINE_END = set("（「『【〔［｛〈《")


def wrap(text: str, columns: int) -> list[str]:
    """*text* in lines of at most *columns* (display width), its paragraphs kept (a blank
    line between), a paragraph after click's \\b marker as written."""
    lines: list[str] = []
    for i, paragraph in enumerate(re.split(r"\n[ \t]*\n", text.strip("\n"))):
        if i:
            lines.append("")
        if paragraph.startswith("\b"):
            lines.extend(paragraph.split("\n")[1:])
            continue
        lines.extend(_fill(_join(paragraph.splitlines()), columns))
    return lines


def _join(lines: list[str]) -> str:
    """A paragraph's lines as one: Japanese joins with nothing between, Latin with a space."""
    out = ""
    for line in (line.strip() for line in lines):
        if out and line and not (width(out[-1]) == 2 and width(line[0]) == 2):
            out += " "
        out += line
    return out


def _fill(text: str, columns: int) -> list[str]:
    tokens: list[str] = []
    for token in _TOKENS.findall(text):
        if tokens and (token[0] in _NO_LINE_START or tokens[-1][-1] in _NO_LINE_END) \
                and not token.isspace() and not tokens[-1].isspace():
            tokens[-1] += token
        else:
            tokens.append(token)
    lines, line = [], ""
    for token in tokens:
        if line and width(line) + width(token) > columns and not token.isspace():
            lines.append(line.rstrip())
            line = ""
        if not (token.isspace() and not line):
            line += token
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _extras_ja(text: str) -> str:
    for pattern, ja in _EXTRAS:
        text = pattern.sub(ja, text)
    return text


class Context(click.Context):
    formatter_class = HelpFormatter


def walk(command: click.Command) -> Iterator[click.Command]:
    """*command* and every command under it."""
    yield command
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from walk(sub)


def texts(command: click.Command) -> Iterator[tuple[object, str, str]]:
    """(owner, attribute, English text) of every help text under *command*: each
    command's help and short help, each option's help."""
    for cmd in walk(command):
        for attribute in ("help", "short_help"):
            text = _english(cmd, attribute)
            if text:
                yield cmd, attribute, text
        for param in cmd.params:
            text = _english(param, "help")
            if text:
                yield param, "help", text


def _english(owner: object, attribute: str) -> str | None:
    """The English text as written (kept aside the first time it is put in Japanese)."""
    kept = f"_{attribute}_en"
    if not hasattr(owner, kept):
        value = getattr(owner, attribute, None)
        # A docstring as click shows it: dedented, without its leading blank lines.
        setattr(owner, kept, inspect.cleandoc(value) if value else value)
    return getattr(owner, kept)


def speak_help(command: click.Command, language: str) -> None:
    """Put every help text under *command* in *language* (English as written when the
    Japanese is missing) and make its help pages use the formatter above."""
    from .help_ja import HELP
    _state["language"] = language
    for cmd in walk(command):
        cmd.context_class = Context
    for owner, attribute, english in list(texts(command)):
        setattr(owner, attribute, HELP.get(english, english) if language == "ja" else english)
    for cmd in walk(command):
        if _english(cmd, "short_help") is None:
            # click cuts its own summary at the first ". " and at 45 characters: a Japanese
            # help has neither, so its summary is its first sentence.
            cmd.short_help = _first_sentence(cmd.help) if language == "ja" and cmd.help \
                else None


def _first_sentence(text: str) -> str:
    first = text.split("\n\n", 1)[0].replace("\n", "")
    return first.split("。", 1)[0] if "。" in first else first


def help_language(args: Sequence[str]) -> str:
    """The language of the help: the config's, found as click will find the config."""
    from .. import config as config_mod
    path = None
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            path = args[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    return config_mod.spoken_language(path)
