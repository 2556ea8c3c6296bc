"""`tsunagu user add|list|passwd|deactivate|reset-2fa`: web UI accounts from a shell.

The first admin is made here (`tsunagu user add NAME --role admin`), on the appliance
itself, before anyone can log in to the web UI.
"""
from __future__ import annotations

import datetime as dt
import sys

import click

from .. import wording
from .common import (cli_actor, config_option, friendly_errors, language, load_config_and_db,
                     speak)

PASSWORD_HELP = """
Password: with --password-stdin the first line of standard input is the password; with
--generate (or when standard input is not a terminal) a strong one is generated and
printed once; otherwise you are asked for it twice. At least 12 characters and hard to guess
(a few unrelated words), without the user name.
"""


@click.group("user")
def user_group() -> None:
    """Web UI accounts. Roles: staff (sending, contacts, templates); office (what staff do,
    and the roster's import and export); admin (all that, and users, settings, audit)."""


def _password_options(f):
    f = click.option("--password-stdin", is_flag=True,
                     help="Read the password from the first line of standard input.")(f)
    f = click.option("--generate", is_flag=True,
                     help="Generate a strong password and print it once.")(f)
    return f


def _obtain_password(password_stdin: bool, generate: bool) -> str | None:
    """The password to set, or None when one should be generated."""
    if password_stdin and generate:
        raise click.UsageError(speak("--password-stdin と --generate は一緒に使えません",
                                     "use either --password-stdin or --generate, not both"))
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.ClickException(speak("標準入力にパスワードがありません",
                                             "no password on standard input"))
        return line
    if generate or not sys.stdin.isatty():
        return None
    return click.prompt(speak("パスワード", "Password"), hide_input=True,
                        confirmation_prompt=speak("もう一度", "Repeat"))


def _no_such_user(username: str) -> click.ClickException:
    return click.ClickException(speak(f"「{username}」というアカウントはありません",
                                      f"no such user: {username}"))


def _show_generated(username: str, password: str) -> None:
    click.echo(speak(f"{username} のパスワード：{password}",
                     f"password for {username}: {password}"))
    click.echo(speak("（表示はこの一度だけです。書き留めるか、本人に直接渡してください）",
                     "(shown only now: write it down or hand it over in person)"), err=True)


@user_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "office", "staff"]), required=True,
              help="What the account may do (see `tsunagu user --help`).")
@click.option("--locale", type=click.Choice(["ja", "en"]), default="ja", show_default=True,
              help="The web UI's language for this user.")
@_password_options
@config_option
@friendly_errors
def add_command(username: str, role: str, locale: str, password_stdin: bool,
                generate: bool) -> None:
    """Create an account.\n"""
    from .. import users
    _, db = load_config_and_db()
    password = _obtain_password(password_stdin, generate)
    user, generated = users.create_user(db, username, role, password, actor=cli_actor(),
                                        locale=locale)
    role = wording.word(wording.ROLES, user.role, language())
    click.echo(speak(f"{role}のアカウント {user.username} を作りました",
                     f"created {user.role} {user.username}"))
    if generated:
        _show_generated(user.username, generated)


add_command.help = (add_command.help or "") + PASSWORD_HELP


@user_group.command("passwd")
@click.argument("username")
@_password_options
@config_option
@friendly_errors
def passwd_command(username: str, password_stdin: bool, generate: bool) -> None:
    """Set a new password (every open session of the account ends).\n"""
    from .. import users
    _, db = load_config_and_db()
    if users.get_user(db, username) is None:
        raise _no_such_user(username)
    password = _obtain_password(password_stdin, generate)
    generated = None
    if password is None:
        password = generated = users.generate_password()
    users.set_password(db, username, password, actor=cli_actor())
    click.echo(speak(f"{username} のパスワードを変更しました", f"password changed for {username}"))
    if generated:
        _show_generated(username, generated)


passwd_command.help = (passwd_command.help or "") + PASSWORD_HELP


@user_group.command("list")
@config_option
@friendly_errors
def list_command() -> None:
    """List accounts: name, role, state, second factor, last login."""
    from .. import users
    config, db = load_config_and_db()
    zone = config.zone
    lang = language()
    for u in users.list_users(db):
        state = speak("有効", "active") if u.active else speak("無効", "deactivated")
        if u.two_factor:
            state += speak("・2段階認証あり", ", 2fa")
        if u.last_login_at:
            when = dt.datetime.fromtimestamp(u.last_login_at, zone).strftime("%Y-%m-%d %H:%M")
            last = speak(f"最終ログイン {when}", f"last login {when}")
        else:
            last = speak("ログインなし", "never logged in")
        role = wording.word(wording.ROLES, u.role, lang)
        click.echo(f"{u.username}\t{role}\t{u.locale}\t{state}\t{last}")


@user_group.command("reset-2fa")
@click.argument("username")
@config_option
@friendly_errors
def reset_two_factor_command(username: str) -> None:
    """Remove an account's second factor (a lost phone); it is set up again at next login."""
    from .. import two_factor, users
    _, db = load_config_and_db()
    user = users.get_user(db, username)
    if user is None:
        raise _no_such_user(username)
    two_factor.disable(db, user.id, actor=cli_actor(), action="two_factor_reset")
    click.echo(speak(f"{username} の2段階認証を外しました（次のログインで設定し直します）",
                     f"second factor removed for {username}"))


@user_group.command("deactivate")
@click.argument("username")
@config_option
@friendly_errors
def deactivate_command(username: str) -> None:
    """Disable an account (kept for the audit log); the last admin cannot be disabled."""
    from .. import users
    _, db = load_config_and_db()
    users.deactivate(db, username, actor=cli_actor())
    click.echo(speak(f"{username} のアカウントを無効にしました", f"deactivated {username}"))


# -- staff phones: commands by SMS (appliance.sms_commands) ----------------------------------

@user_group.group("phone")
def phone_group() -> None:
    """Staff phones that may command the appliance by SMS (状況, 送信, 中止, ヘルプ), each
    with a command PIN of 4 to 8 digits."""


def _obtain_pin(pin_stdin: bool) -> str:
    if pin_stdin:
        line = sys.stdin.readline().strip()
        if not line:
            raise click.ClickException(speak("標準入力に暗証番号がありません",
                                             "no PIN on standard input"))
        return line
    if not sys.stdin.isatty():
        raise click.UsageError(speak("暗証番号は --pin-stdin で渡してください（標準入力が端末では"
                                     "ありません）",
                                     "give the PIN with --pin-stdin (standard input is not a "
                                     "terminal)"))
    return click.prompt(speak("暗証番号（4〜8桁）", "Command PIN, 4-8 digits"), hide_input=True,
                        confirmation_prompt=speak("もう一度", "Repeat"))


def _staff_phone(db, number: str):
    from .. import phone, staff_phones
    try:
        found = staff_phones.find(db.conn, phone.normalise_mobile(number))
    except phone.PhoneError as exc:
        raise click.ClickException(f"{number}: {speak(exc.message_ja, exc.message_en)}"
                                   ) from None
    if found is None:
        raise click.ClickException(speak(f"{number} は登録されていません（tsunagu user phone list）",
                                         f"no staff phone {number} (tsunagu user phone list)"))
    return found


@phone_group.command("add")
@click.argument("username")
@click.argument("number")
@click.option("--pin-stdin", is_flag=True, help="Read the PIN from standard input.")
@click.option("--on-call/--not-on-call", default=True, show_default=True,
              help="Asked to confirm the prepared broadcast after an earthquake or tsunami "
                   "warning.")
@config_option
@friendly_errors
def phone_add_command(username: str, number: str, pin_stdin: bool, on_call: bool) -> None:
    """Register NUMBER as USERNAME's phone, with its command PIN."""
    import time

    from .. import staff_phones
    _, db = load_config_and_db()
    added = staff_phones.add(db, username, number, _obtain_pin(pin_stdin), actor=cli_actor(),
                             on_call=on_call, now=time.time())
    click.echo(speak(f"{added.phone} を {added.username} の携帯として登録しました",
                     f"registered {added.phone} for {added.username}")
               + (speak("（当番）", " (on call)") if added.on_call else ""))


@phone_group.command("list")
@config_option
@friendly_errors
def phone_list_command() -> None:
    """Staff phones: number, user, on call, state (disabled after wrong PINs)."""
    from .. import staff_phones
    _, db = load_config_and_db()
    phones = staff_phones.all_phones(db)
    if not phones:
        click.echo(speak("登録された携帯はありません（tsunagu user phone add で登録）",
                         "no staff phones (tsunagu user phone add registers one)"), err=True)
    for p in phones:
        state = (speak("停止中（暗証番号の誤り）: tsunagu user phone enable ",
                       "disabled (wrong PINs): tsunagu user phone enable ") + p.phone
                 if p.disabled_at is not None else
                 speak("アカウント無効", "user deactivated") if not p.user_active else
                 speak("操作できます", "obeyed"))
        on_call = speak("当番", "on call") if p.on_call else "-"
        click.echo(f"{p.phone}\t{p.username}\t{on_call}\t{state}")


@phone_group.command("remove")
@click.argument("number")
@config_option
@friendly_errors
def phone_remove_command(number: str) -> None:
    """Forget a staff phone: its SMS are replies like anyone's again."""
    from .. import staff_phones
    _, db = load_config_and_db()
    removed = staff_phones.remove(db, _staff_phone(db, number).id, actor=cli_actor())
    click.echo(speak(f"{removed.phone}（{removed.username}）の登録を削除しました",
                     f"removed {removed.phone} ({removed.username})"))


@phone_group.command("pin")
@click.argument("number")
@click.option("--pin-stdin", is_flag=True, help="Read the PIN from standard input.")
@config_option
@friendly_errors
def phone_pin_command(number: str, pin_stdin: bool) -> None:
    """Set a new command PIN for a staff phone."""
    import time

    from .. import staff_phones
    _, db = load_config_and_db()
    found = _staff_phone(db, number)
    staff_phones.set_pin(db, found.id, _obtain_pin(pin_stdin), actor=cli_actor(),
                         now=time.time())
    click.echo(speak(f"{found.phone} の暗証番号を変更しました", f"PIN changed for {found.phone}"))


@phone_group.command("on-call")
@click.argument("number")
@click.argument("value", type=click.Choice(["on", "off"]))
@config_option
@friendly_errors
def phone_on_call_command(number: str, value: str) -> None:
    """Whether a staff phone is asked after an earthquake or tsunami warning."""
    import time

    from .. import staff_phones
    _, db = load_config_and_db()
    found = staff_phones.set_on_call(db, _staff_phone(db, number).id, value == "on",
                                     actor=cli_actor(), now=time.time())
    click.echo(f"{found.phone}: " + (speak("当番", "on call") if found.on_call
                                      else speak("当番ではない", "not on call")))


@phone_group.command("enable")
@click.argument("number")
@config_option
@friendly_errors
def phone_enable_command(number: str) -> None:
    """Obey a staff phone again after its commands were stopped by wrong PINs."""
    import time

    from .. import staff_phones
    _, db = load_config_and_db()
    found = staff_phones.enable(db, _staff_phone(db, number).id, actor=cli_actor(),
                                now=time.time())
    click.echo(speak(f"{found.phone} からの操作を再開しました",
                     f"commands from {found.phone} are obeyed again"))
