"""The CLI reference of README.md, generated from the `akg` click commands themselves.

Every command and subcommand of `akg.cli:cli` (the entry points of pyproject.toml included), with
click's one-line help, its usage and its options (name, type or choices, default, help), so the
README cannot list an option, a choice or a default that the code does not have. `make docs`
regenerates README.md's two marked blocks with cog; tests/test_readme_cli.py fails when they and
the commands differ. Run `python docs/cli_reference.py` to print both.

Only click objects are read (no command runs, no server starts), in a fixed order (commands sorted
by name, options in their declared order) and without click's help formatter, so the output does
not depend on the terminal's width.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROG = "akg"
WIDTH = 80  # click's contexts get a fixed width; nothing here wraps text, but nothing reads the terminal either
SUMMARY_LIMIT = 1000  # click's short help: the help's first sentence, never cut at the default 45 characters


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    return click.Context(command, info_name=name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)


def commands() -> Iterator[tuple[str, click.Command, click.Context]]:
    """(full name, command, context) of every runnable command, sorted by name; groups are walked."""
    from akg.cli import cli

    def walk(group: click.Group, ctx: click.Context) -> Iterator[tuple[str, click.Command, click.Context]]:
        for name in sorted(group.list_commands(ctx)):
            command = group.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            sub = _context(command, name, ctx)
            if isinstance(command, click.Group):
                if command.invoke_without_command:  # `akg models` runs by itself too (and has `import`)
                    yield sub.command_path, command, sub
                yield from walk(command, sub)
            else:
                yield sub.command_path, command, sub

    yield from walk(cli, _context(cli, PROG, None))


def _outside_code(text: str, fix) -> str:
    """Apply `fix` to the parts of `text` that are not `code spans`."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(part if part.startswith("`") and part.endswith("`") and len(part) > 1 else fix(part)
                   for part in parts)


def _text(text: str) -> str:
    """Help text as Markdown: one line, and `<TAB>` or `<first file>` shown, not taken for HTML tags."""
    text = " ".join(text.split())
    return _outside_code(text, lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _cell(text: str) -> str:
    """A table cell: pipes escaped (GitHub's tables need it inside code spans too)."""
    return text.replace("|", r"\|")


def anchor(path: str) -> str:
    """The anchor GitHub gives the heading `` #### `akg curate list` ``."""
    return re.sub(r"[^a-z0-9 _-]", "", path.lower()).replace(" ", "-")


def summary(command: click.Command) -> str:
    return command.get_short_help_str(limit=SUMMARY_LIMIT)


def usage(command: click.Command, ctx: click.Context) -> str:
    return " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])


def _is_unset(value) -> bool:
    return value is None or type(value).__name__ == "Sentinel" or value == () or value == ""


def _kind(option: click.Option, ctx: click.Context) -> str:
    """The option's value: its choices, or click's metavar with the range it accepts."""
    if option.is_flag:
        return ""
    kind = option.type
    if isinstance(kind, click.Choice):
        return "[" + "|".join(str(choice) for choice in kind.choices) + "]"
    metavar = option.make_metavar(ctx)
    if isinstance(kind, click.types._NumberRangeBase):
        metavar += f" ({kind._describe_range()})"
    return metavar


def _default(option: click.Option, ctx: click.Context) -> str | None:
    if isinstance(option.show_default, str):
        return option.show_default
    value = option.get_default(ctx, call=False)
    if callable(value):
        return "(dynamic)"
    if option.is_bool_flag and option.secondary_opts:
        if _is_unset(value):
            return None
        return (option.opts if value else option.secondary_opts)[0]
    if option.is_flag or _is_unset(value):
        return None
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def option_line(option: click.Option, ctx: click.Context) -> str:
    names = ", ".join(option.opts) + "".join(f" / {name}" for name in option.secondary_opts)
    kind = _kind(option, ctx)
    facts = []
    if option.required:
        facts.append("required")
    default = _default(option, ctx)
    if default is not None:
        facts.append(f"default `{default}`")
    if option.multiple and "repeatable" not in (option.help or "").lower():
        facts.append("repeatable")
    if option.envvar:
        envvars = [option.envvar] if isinstance(option.envvar, str) else option.envvar
        facts.append("env " + ", ".join(f"`{v}`" for v in envvars))
    line = f"- `{names}{' ' + kind if kind else ''}`"
    if facts:
        line += f" ({'; '.join(facts)})"
    help_text = _text(option.help or "")
    return line + (f": {help_text}" if help_text else "")


def options(command: click.Command) -> list[click.Option]:
    """The command's own options, in declared order (not -h/--help, not hidden ones)."""
    return [p for p in command.params
            if isinstance(p, click.Option) and not p.hidden and p.name != "help"]


def table() -> str:
    """One Markdown table: each command, linked to its options, and click's one-line help."""
    rows = ["| command | what it does |", "|---|---|"]
    for path, command, _ in commands():
        rows.append(f"| [`{_cell(path)}`](#{anchor(path)}) | {_cell(_text(summary(command)))} |")
    return "\n".join(rows) + "\n"


def details() -> str:
    """Each command's usage and options, under a heading the table links to."""
    out: list[str] = []
    for path, command, ctx in commands():
        out += [f"#### `{path}`", "", f"`{usage(command, ctx)}`", ""]
        if command.deprecated:
            out += ["Deprecated.", ""]
        lines = [option_line(option, ctx) for option in options(command)]
        out += [*lines, ""] if lines else ["No options.", ""]
    return "\n".join(out).rstrip() + "\n"


def markdown() -> str:
    """The whole reference: the table, then every command's usage and options."""
    return table() + "\n" + details()


if __name__ == "__main__":
    sys.stdout.write(markdown())
