"""README.md's CLI reference is what the click commands say: cog's check of the generated blocks,
and a few facts read from click directly (not through docs/cli_reference.py), so a generator that
dropped commands or choices would fail too. No command runs and no server starts."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _section(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def _cli_tree() -> dict[str, click.Command]:
    """Every runnable command by its full name ("akg curate list"), straight from click."""
    from akg.cli import cli

    found: dict[str, click.Command] = {}

    def walk(group: click.Group, ctx: click.Context) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            sub = click.Context(command, info_name=name, parent=ctx)
            if isinstance(command, click.Group):
                if command.invoke_without_command and not command.hidden:  # runs by itself too (`akg models`)
                    found[sub.command_path] = command
                walk(command, sub)
            elif not command.hidden:
                found[sub.command_path] = command

    walk(cli, click.Context(cli, info_name="akg"))
    return found


def _table_rows() -> list[str]:
    return [line for line in _section("## CLI reference").splitlines() if line.startswith("| [`akg ")]


def test_readme_cli_reference_is_current():
    run = subprocess.run([sys.executable, "-m", "cogapp", "--check", str(README)],
                         capture_output=True, text=True, cwd=REPO)
    if run.returncode != 0:
        regenerated = subprocess.run([sys.executable, "-m", "cogapp", str(README)],
                                     capture_output=True, text=True, cwd=REPO).stdout
        diff = list(difflib.unified_diff(README.read_text(encoding="utf-8").splitlines(),
                                         regenerated.splitlines(), "README.md", "regenerated", lineterm=""))
        pytest.fail("README.md's CLI reference differs from the akg commands' click help: run `make docs` "
                    f"(cog -r README.md) and commit the result\n{run.stdout}{run.stderr}\n"
                    + "\n".join(diff[:80]), pytrace=False)


def test_table_is_one_markdown_table_naming_every_command():
    section = _section("## CLI reference")
    lines = section.splitlines()
    header = lines.index("| command | what it does |")
    assert lines[header + 1] == "|---|---|"
    body = []
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        body.append(line)
    # One table: every row follows the header with no blank line or text between them.
    assert body == _table_rows() and body, "the CLI table is split or empty"
    for row in body:
        cells = re.split(r"(?<!\\)\|", row)
        assert len(cells) == 4 and cells[0] == "" and cells[-1] == "", f"a pipe is not escaped in: {row}"
    listed = [re.match(r"\| \[`([^`]+)`\]", row).group(1) for row in body]
    tree = _cli_tree()
    assert sorted(listed) == sorted(tree), "the table and the click commands differ"
    from akg.cli import cli

    ctx = click.Context(cli, info_name="akg")
    for name in cli.list_commands(ctx):  # every top-level command (or group) has a row
        assert any(entry == f"akg {name}" or entry.startswith(f"akg {name} ") for entry in listed), name


def _options_block(path: str) -> str:
    section = _section("## CLI reference")
    start = section.index(f"#### `{path}`\n")
    end = section.find("\n#### ", start + 1)
    return section[start:end if end >= 0 else len(section)]


def test_train_preset_choices_are_the_presets():
    from kge.presets import PRESETS

    block = _options_block("akg train")
    match = re.search(r"^- `--preset \[([^\]]*)\]`", block, re.MULTILINE)
    assert match, "akg train's --preset line is missing"
    assert set(match.group(1).split("|")) == set(PRESETS)
    option = next(p for p in _cli_tree()["akg train"].params if p.name == "preset")
    assert set(option.type.choices) == set(PRESETS)


@pytest.mark.parametrize("path", ["akg export", "akg curate list", "akg classify", "akg evaluate"])
def test_choices_and_defaults_come_from_click(path):
    block = _options_block(path)
    for param in _cli_tree()[path].params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        names = ", ".join(param.opts)
        line = next((ln for ln in block.splitlines()
                     if ln.startswith((f"- `{names}`", f"- `{names} "))), None)
        assert line is not None, f"{path} {param.opts[0]} is not in the README"
        if isinstance(param.type, click.Choice):
            assert "[" + "|".join(param.type.choices) + "]" in line
        if not param.is_flag and isinstance(param.default, (int, float, str)) and param.default != "":
            assert f"default `{param.default}`" in line


def test_command_notes_name_real_commands_and_options():
    """The hand-written notes under "What the commands do" name commands and options that exist."""
    tree = _cli_tree()
    notes = _section("## CLI reference").split("### What the commands do", 1)[1].split("\n### ", 1)[0]
    items = re.split(r"\n(?=- \*\*)", notes.strip())
    assert len(items) > 10
    for item in items:
        item = " ".join(item.split())
        named = set()
        for words in re.findall(r"`(akg [a-z][a-z -]*)", item):  # `akg curate add H R T`: the command's words
            parts = words.split()
            while parts and not any(p == " ".join(parts) or p.startswith(" ".join(parts) + " ") for p in tree):
                parts.pop()
            assert len(parts) > 1, f"no command `{words}` (note: {item[:60]}...)"
            prefix = " ".join(parts)
            named |= {p for p in tree if p == prefix or p.startswith(prefix + " ")}
        options = {opt for p in named for param in tree[p].params
                   for opt in (*param.opts, *getattr(param, "secondary_opts", ()))}
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", item):
            assert option in options, f"{option} is no option of {sorted(named)} (note: {item[:60]}...)"
