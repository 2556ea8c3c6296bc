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
    waitress.serve(app, host=host, port=port, threads=threads, ident="tsunagu",
                   **proxy_settings(config.web.trusted_proxy))


def proxy_settings(trusted_proxy: str) -> dict:
    """waitress's settings for the HTTPS proxy in front of it: the client's address (the
    login throttle and the audit log need it) and the scheme come from X-Forwarded-* — but
    only from the proxy's own address; from anyone else those headers are dropped, so a
    device on the LAN cannot claim to be another."""
    if not trusted_proxy:
        return {"clear_untrusted_proxy_headers": True}
    return {"trusted_proxy": trusted_proxy, "trusted_proxy_count": 1,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
            "clear_untrusted_proxy_headers": True}
