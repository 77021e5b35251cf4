"""The `akg` command group.

Commands are thin: they parse options, call one library function and print. They are registered
as entry points (`akg.commands` in pyproject.toml) and imported only when called, so this core
package never imports the packages built on it and `akg --help` stays quick. Library errors
(`AkgError`) become clean one-line messages with exit status 1, never tracebacks; so does anything
unforeseen (with AKG_DEBUG=1 it shows its traceback).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from importlib.metadata import entry_points
from typing import Any

import click

from akg import __version__
from akg.config import debug_enabled
from akg.errors import AkgError


def _registered() -> dict:
    return {ep.name: ep for ep in entry_points(group="akg.commands")}


class AkgGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_registered()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None and name in _registered():
            cmd = _registered()[name].load()
        return cmd

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AkgError as e:
            raise click.ClickException(one_line(str(e))) from e
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.ClickException("interrupted") from None
        except BrokenPipeError:  # `akg ... | head`: the reader left; nothing to say to it
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            sys.exit(0)
        except MemoryError:
            raise click.ClickException("out of memory: the input or a setting is far larger than this machine "
                                       "can hold") from None
        except Exception as e:  # a bug or a case nobody foresaw: still one line, never a traceback
            if debug_enabled():
                raise
            where = f"akg {ctx.invoked_subcommand}" if ctx.invoked_subcommand else "akg"
            raise click.ClickException(one_line(f"unexpected {type(e).__name__} in `{where}`: {e} (AKG_DEBUG=1 shows "
                                                "where; please report it)")) from None


def one_line(message: str) -> str:
    """Errors are one line: a multi-line message (a server's, a log's) is joined with '; '."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip()) or "failed"


@click.group(cls=AkgGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="akg")
def cli() -> None:
    """AKG knowledge service: the Audio-centric Knowledge Graph in a graph database.

    Without AKG_URI the embedded graph server is used (started on first use, on 127.0.0.1);
    with AKG_URI, AKG_USER, AKG_PASSWORD (and AKG_DATABASE) a Neo4j 5 server.
    """


def max_seconds_checked(ctx: click.Context, param: click.Parameter, value):
    """--max-seconds's callback: akg.audio's bounds, checked as the command starts (before a model loads)."""
    from akg.audio import check_max_seconds

    try:
        return check_max_seconds(value)
    except AkgError as e:
        raise click.ClickException(one_line(str(e))) from None


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def progress_enabled() -> bool:
    """Progress bars go to stderr, and only when a person watches it."""
    return sys.stderr.isatty()


def main() -> None:
    cli(prog_name="akg")


@contextlib.contextmanager
def stop_on_ctrl_c(what: str):
    """A long job that stops between its steps: the first Ctrl-C asks it to stop (it yields a function
    that says whether one was asked), a second stops it at once. Interrupting a driver call half-way can
    leave its connection waiting on a half-read answer; between steps nothing is in flight."""
    asked = threading.Event()

    def handler(signum, frame):
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()
        click.echo(f"stopping {what} after the current step (Ctrl-C again to stop at once)", err=True)

    if threading.current_thread() is not threading.main_thread():
        yield asked.is_set
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield asked.is_set
    finally:
        signal.signal(signal.SIGINT, previous)
