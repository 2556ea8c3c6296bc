"""`tsunagu web`: the staff web UI, served by waitress (a production WSGI server)."""
from __future__ import annotations

import logging

import click

from .common import config_option, friendly_errors, load_config


@click.command("web")
@config_option
@click.option("--host", help="Address to listen on (default: [web] host in the config).")
@click.option("--port", type=int, help="Port (default: [web] port in the config).")
@click.option("--threads", default=8, show_default=True, help="Worker threads.")
@friendly_errors
def web_command(host: str | None, port: int | None, threads: int) -> None:
    """Serve the web UI (log in with an account made by `tsunagu user add`)."""
    import waitress

    from webui import create_app
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config()
    app = create_app(config)
    host, port = host or config.web.host, port or config.web.port
    click.echo(f"Tsunagu web UI on http://{host}:{port}/", err=True)
    waitress.serve(app, host=host, port=port, threads=threads, ident="tsunagu")
