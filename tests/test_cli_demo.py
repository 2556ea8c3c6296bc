"""`tsunagu demo prepare`, the first step of ./scripts/demo."""
from __future__ import annotations

import re

from click.testing import CliRunner

from appliance import config, db, users
from appliance.cli import main


def test_demo_prepare_is_idempotent_and_prints_a_working_login(tmp_path):
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "prepare", "--dir", str(tmp_path)])
    assert first.exit_code == 0, first.output
    second = runner.invoke(main, ["demo", "prepare", "--dir", str(tmp_path)])
    assert second.exit_code == 0, second.output
    assert "contacts +0" in second.output

    password = re.search(r"log in as  nurse / (\S+)", second.output).group(1)
    manager = re.search(r"office manager.*: admin / (\S+)", second.output).group(1)
    cfg = config.load(tmp_path / "tsunagu.toml")
    database = db.connect(cfg.database)
    assert users.verify_login(database, "nurse", password).role == "staff"
    assert users.verify_login(database, "admin", manager).role == "admin"
    assert database.execute("SELECT count(*) FROM contacts").fetchone()[0] == 203
