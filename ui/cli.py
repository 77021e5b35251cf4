"""`akg ui`: the explorer, a Streamlit app on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import ipaddress
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click

from akg.errors import InputError

APP = Path(__file__).resolve().parent / "app.py"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def streamlit_command(host: str, port: int) -> list[str]:
    from ui.uploads import MAX_UPLOAD_MB

    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true",                 # no browser from Streamlit, no first-run e-mail prompt
            "--browser.gatherUsageStats", "false",
            "--server.maxUploadSize", str(MAX_UPLOAD_MB),  # MB; the audio page checks it again
            "--server.fileWatcherType", "none",          # an installed app: nothing to reload
            "--global.developmentMode", "false",
            "--client.toolbarMode", "minimal",               # no "Deploy" button
            "--client.showErrorDetails", "type"]             # an unexpected error: its type, never a traceback


_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def check_host(host: str) -> None:
    """An address Streamlit can listen on: an IP address, or a host name (RFC 1123) that resolves
    here. Checked before Streamlit starts, which would otherwise fail with a traceback of its own."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(host):
        raise InputError(f"--host {host!r}: not an IP address or a host name")
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError) as e:
        raise InputError(f"--host {host!r}: the host name does not resolve here ({getattr(e, 'strerror', None) or e})") from None


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60.0) -> bool:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback exposes the graph to the network, to read and to "
                   "change through the Curation page, without a login.")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-browser", is_flag=True, help="Do not open a browser tab.")
def ui(host: str, port: int, no_browser: bool) -> None:
    """The explorer: overview, entity explorer, Cypher console, predictions, audio and curation, in the browser.

    Uses the same graph, models and settings (AKG_HOME, AKG_URI, AKG_CLAP_MODEL...) as the other
    commands; AKG_AUDIO_DIR names a folder of clips for the audio page, AKG_CURATOR the curation
    page's curator. Stop it with Ctrl-C.
    """
    check_host(host)
    url = url_of(host, port)
    if host not in LOOPBACK:
        click.echo(f"warning: listening on {host}: there is no login, so anyone who can reach it can read the graph "
                   "and write to it through the Curation page", err=True)
    process = subprocess.Popen(streamlit_command(host, port))
    # `kill`, `docker stop`: stop Streamlit too, as Ctrl-C does
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if _wait_until_up(url, process):
            click.echo(f"AKG explorer: {url}  (Ctrl-C stops it)")
            if not no_browser:
                import webbrowser

                webbrowser.open(url)
        elif process.poll() is None:
            click.echo(f"warning: the explorer at {url} did not answer its health check within 60 s; "
                       "it is still starting, or stuck (Ctrl-C stops it)", err=True)
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            code = process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        return
    if code:
        raise click.ClickException(f"the explorer stopped with exit status {code} (see the messages above)")
