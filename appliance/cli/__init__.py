"""The `tsunagu` command: thin click commands over the Python API.

Each command family lives in its own module and is registered below. Library errors
become click.ClickException at this edge so people see one clear line, not a traceback.
"""
from __future__ import annotations

import click

from .errors import TsunaguGroup


@click.group(cls=TsunaguGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tsunagu")
def main() -> None:
    """Tsunagu (つなぐ): SMS broadcasts over a cellular modem, for when the internet is down."""


def _register() -> None:
    # Imported here so `tsunagu --help` stays fast and each family is one module.
    # Register commands (one line each):
    from .sim import sim, sim_ctl; main.add_command(sim); main.add_command(sim_ctl)  # noqa: E702
    from .modem import modem_group; main.add_command(modem_group)  # noqa: E702
    from .broadcast import broadcast_group, inbox; main.add_command(broadcast_group); main.add_command(inbox)  # noqa: E702,E501
    from .daemon import daemon_command; main.add_command(daemon_command)  # noqa: E702
    from .check import check_command; main.add_command(check_command)  # noqa: E702
    from .schedule import schedule_group; main.add_command(schedule_group)  # noqa: E702
    from .web import web_command; main.add_command(web_command)  # noqa: E702
    from .backup import backup_command, restore_command; main.add_command(backup_command); main.add_command(restore_command)  # noqa: E702,E501
    from .demo import demo; main.add_command(demo)  # noqa: E702
    from .contacts import contacts_group; main.add_command(contacts_group)  # noqa: E702
    from .user import user_group; main.add_command(user_group)  # noqa: E702
    from .emergency import emergency_group; main.add_command(emergency_group)  # noqa: E702
    from .audit import audit_group; main.add_command(audit_group)  # noqa: E702
    from .api import api_token_group; main.add_command(api_token_group)  # noqa: E702
    from .reminders import reminders_group; main.add_command(reminders_group)  # noqa: E702


_register()
