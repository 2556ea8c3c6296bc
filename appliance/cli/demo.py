"""`tsunagu demo prepare`: the demo's configuration, database, seed data and login."""
from __future__ import annotations

import secrets
from pathlib import Path

import click

DEMO_CONFIG = """\
# Written by `tsunagu demo prepare` for ./scripts/demo. A simulated modem stands in for the
# real one; see docs/config.example.toml for every key.
database = "tsunagu.db"
clinic_name = "つなぐ透析クリニック"
timezone = "Asia/Tokyo"
language = "ja"

[web]
host = "{host}"
port = {port}
secret_key_file = "secret_key"
session_timeout_minutes = 60

[daemon]
poll_interval = 15
heartbeat_interval = 3
runtime_directory = "run"   # the daemon's status file; the appliance keeps it on a RAM disk

[gpio]
enabled = false

[backup]
directory = "backups"

[[modem]]
name = "modem0"
port = "modem0"
pace = 30
daily_limit = 200
request_status_reports = true
"""


@click.group()
def demo() -> None:
    """The demo set-up used by ./scripts/demo."""


@demo.command("prepare")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("var/demo"), show_default=True,
              help="Where the demo's config, database and logs go.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address the demo's web UI listens on.")
@click.option("--port", default=8080, show_default=True, type=int,
              help="The port the demo's web UI listens on.")
def prepare(directory: Path, host: str, port: int) -> None:
    """Write the demo config (once), migrate and seed the database, reset the demo login."""
    from .. import config as config_mod
    from .. import db as db_mod
    from .. import seed, users

    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "tsunagu.toml"
    if not config_path.exists():
        config_path.write_text(DEMO_CONFIG.format(host=host, port=port), encoding="utf-8")
    cfg = config_mod.load(config_path)
    database = db_mod.connect(cfg.database)
    done = seed.seed_demo(database, cfg.clinic_name)
    click.echo(f"==> demo database {cfg.database}: {done}")
    # A fresh password each start: the demo never keeps a plaintext password on disk. The
    # nurse is who the demo is for (she sends); the office manager, an admin, must set up a
    # second factor with an authenticator app at her first login, as on the appliance.
    logins = []
    for username, role in (("admin", "admin"), ("nurse", "staff")):
        password = secrets.token_urlsafe(9)
        if database.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            users.set_password(database, username, password, actor="demo")
        else:
            users.create_user(database, username, role, password=password, actor="demo")
        logins.append(f"{username} / {password}")
    click.echo(f"==> office manager (管理者; 初回に認証アプリで2段階認証を設定): {logins[0]}")
    click.echo(f"==> log in as  {logins[1]}")
