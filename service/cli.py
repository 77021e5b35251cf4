"""`akg serve` (the HTTP API on uvicorn) and `akg tokens` (who may write through it)."""

from __future__ import annotations

import errno
import ipaddress
import socket

import click

from akg.cli import echo_json
from akg.config import Settings
from akg.errors import ConfigError


def is_loopback(host: str) -> bool:
    """Whether `host` binds loopback only (127.0.0.0/8, ::1, localhost); 0.0.0.0 and names are not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def check_binding(host: str, any_tokens: bool, allow_public_reads: bool) -> str | None:
    """Refuse to listen beyond loopback with no token configured, unless reads were allowed for everyone;
    returns a note for what is allowed."""
    if is_loopback(host):
        return None
    if not any_tokens and not allow_public_reads:
        raise ConfigError(f"--host {host} listens beyond this machine and no token is configured: make one with "
                          "`akg tokens add NAME` (writes need it), or pass --allow-public-reads to serve reads to "
                          "anyone who can reach it (writes stay refused)")
    return (f"listening on {host}: reads are open to anyone who can reach it; writes need a token"
            if any_tokens else f"listening on {host} with no token: reads only, for anyone who can reach it")


def check_listen(host: str, port: int) -> None:
    """Refuse, in one line and before models load or a graph server starts, an address this machine
    cannot listen on: the port in use (another `akg serve`?), a name that does not resolve, an address
    that is not this machine's, a port below 1024 without the right. uvicorn would start the app
    first and then stop with its own log lines and exit status 3. (Bound with SO_REUSEADDR as uvicorn
    binds, so a port left in TIME_WAIT by a service just stopped is not taken for one in use.)"""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (OSError, UnicodeError) as e:
        raise ConfigError(f"--host {host}: not an address of this machine ({getattr(e, 'strerror', None) or e})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            hint = ": another program listens there (another `akg serve`?); choose another --port" \
                if e.errno == errno.EADDRINUSE else ""
            raise ConfigError(f"cannot listen on {host} port {port} ({e.strerror or e}){hint}") from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; beyond loopback needs a token (or --allow-public-reads).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes (uvicorn restarts one that dies); each holds its own models.")
@click.option("--allow-public-reads", is_flag=True,
              help="Listen beyond loopback although no token is configured (reads only).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, workers: int, allow_public_reads: bool, log_level: str) -> None:
    """Serve the HTTP/JSON API: OpenAPI at /openapi.json, docs at /docs.

    \b
    akg serve                                  # http://127.0.0.1:8000/docs
    akg tokens add alice && akg serve --host 0.0.0.0 --workers 2
    """
    import uvicorn

    from service.tokens import TokenStore

    settings = Settings.from_env()
    note = check_binding(host, TokenStore(settings.home).any(), allow_public_reads)
    check_listen(host, port)
    if note:
        click.echo(f"note: {note}", err=True)
    uvicorn.run("service.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, server_header=False, timeout_graceful_shutdown=10)


@click.group()
def tokens() -> None:
    """Bearer tokens for the API's writes, stored hashed in AKG_HOME/tokens.json (0600)."""


@tokens.command("add")
@click.argument("name")
def add(name: str) -> None:
    """Make a token for NAME (the curator its writes are recorded under); it is printed once, never stored."""
    from service import tokens as T

    token = T.add(Settings.from_env().home, name)
    click.echo(token)
    click.echo(f"token for {name!r}: send `Authorization: Bearer <token>`; it is not shown again", err=True)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def list_(as_json: bool) -> None:
    """The tokens' names and when they were made (the tokens themselves are not kept)."""
    from service import tokens as T

    entries = T.load(T.tokens_path(Settings.from_env().home))
    if as_json:
        echo_json([{"name": e.name, "created_at": e.created_at} for e in entries])
        return
    if not entries:
        click.echo("no tokens: `akg tokens add NAME` makes one")
    for e in entries:
        click.echo(f"{e.name}  (made {e.created_at})")


@tokens.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Remove NAME's token: its next request is refused."""
    from service import tokens as T

    T.remove(Settings.from_env().home, name)
    click.echo(f"removed the token of {name!r}")
