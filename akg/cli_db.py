"""`akg db start|stop|status`: manage the embedded graph server."""

from __future__ import annotations

import click

from akg.cli import echo_json
from akg.config import Settings
from akg.connect import embedded_server


def _settings_for_embedded() -> Settings:
    settings = Settings.from_env()
    if settings.external:
        raise click.ClickException(f"AKG_URI is set ({settings.uri}): that server is managed outside akg; "
                                   "unset AKG_URI to manage the embedded server")
    return settings


@click.group()
def db() -> None:
    """Start, stop or inspect the embedded graph server."""


@db.command()
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the server to answer.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def start(timeout: float, as_json: bool) -> None:
    """Start the embedded server (or report the one already running)."""
    server = embedded_server(_settings_for_embedded())
    already = server.status()
    state = already or server.start(timeout=timeout)
    info = {"running": True, "already_running": already is not None, "pid": state.pid, "bolt": state.bolt_uri,
            "console": state.console_url, "home": str(server.home)}
    if as_json:
        echo_json(info)
    else:
        verb = "already running" if already else "started"
        click.echo(f"embedded graph server {verb}: {state.bolt_uri} (pid {state.pid}); web console {state.console_url}")
        click.echo(f"data and credentials under {server.home}")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def stop(as_json: bool) -> None:
    """Stop the embedded server cleanly."""
    server = embedded_server(_settings_for_embedded())
    stopped = server.stop()
    if as_json:
        echo_json({"stopped": stopped})
    else:
        click.echo("embedded graph server stopped" if stopped else "embedded graph server was not running")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(as_json: bool) -> None:
    """Say whether the embedded server runs, where, and where its data lives."""
    server = embedded_server(_settings_for_embedded())
    state = server.status()
    info = {"running": state is not None, "home": str(server.home)}
    if state:
        info.update(pid=state.pid, bolt=state.bolt_uri, console=state.console_url, started_at=state.started_at)
    if as_json:
        echo_json(info)
    elif state:
        click.echo(f"running: {state.bolt_uri} (pid {state.pid}, since {state.started_at}); "
                   f"web console {state.console_url}; data under {server.home}")
    else:
        click.echo(f"not running (data under {server.home}); any akg command starts it, or `akg db start`")
