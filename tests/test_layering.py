"""The packages depend in one direction: core <- loader <- kge <- curation, reasoning <- API <- UI, CLI and service.

Every import in every module (including those inside functions, which run later but still tie the
code together) is read from the source with `ast` and checked against the intended layers; a test
fails naming the module, its line and the import that goes against the direction.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("akg", "akg_loader", "kge", "curation", "reasoning", "retrieval", "ui", "service")
# Layer numbers: a module may import its own layer's modules and lower ones only. curation and
# reasoning share a layer and may not import each other (suggestions and classification are independent).
# retrieval builds on reasoning (its fusion and fact gathering), so it sits one layer above it.
CORE, LOADER, KGE, USES_KGE, RETRIEVAL, API, FRONT = range(7)
LAYER = {"akg": CORE, "akg_loader": LOADER, "kge": KGE, "curation": USES_KGE, "reasoning": USES_KGE,
         "retrieval": RETRIEVAL, "ui": FRONT, "service": FRONT}  # service: `akg serve`, the HTTP API (a front like the explorer)


def layer_of(module: str) -> int:
    """The layer of a dotted module name: CLI modules (`cli`, `cli_*`) and the explorer are the front."""
    parts = module.split(".")
    if parts[0] == "akg" and len(parts) > 1 and parts[1] == "api":
        return API
    if parts[0] == "akg" and len(parts) == 1:
        return API  # `import akg` / `from akg import X`: the package's public face (see akg/__init__.py)
    if parts[-1] == "cli" or parts[-1].startswith("cli_"):
        return FRONT
    return LAYER[parts[0]]


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every project import in the file; `from X import name` yields X.name
    when X.name is a module of the project, else X."""
    found = []
    package = module.rsplit(".", 1)[0] if not path.name == "__init__.py" else module
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.append((node.lineno, sub if module_path(sub) else base))
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def module_path(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def project_modules() -> list[tuple[str, Path]]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append((".".join(parts), path))
    return out


def test_every_import_follows_the_layers():
    wrong = []
    for module, path in project_modules():
        if module == "akg":
            continue  # the package's __init__ re-exports the API lazily (checked below)
        mine = layer_of(module)
        for line, target in imports(path, module):
            theirs = layer_of(target)
            same_package = target.split(".")[0] == module.split(".")[0]
            if theirs > mine or (theirs == mine == USES_KGE and not same_package):
                wrong.append(f"{path.relative_to(REPO)}:{line}: imports {target} (layer {theirs} > {mine})")
    assert not wrong, "imports against the intended direction:\n" + "\n".join(wrong)


def test_the_layer_rule_catches_a_wrong_import(tmp_path):
    """The checker itself: a core module importing the loader, and reasoning importing curation, are caught."""
    bad = tmp_path / "m.py"
    bad.write_text("from akg_loader.ingest import ingest\nimport curation.queue\n")
    got = imports(bad, "akg.m")
    assert got == [(1, "akg_loader.ingest"), (2, "curation.queue")]
    assert layer_of("akg_loader.ingest") > layer_of("akg.graph")
    assert layer_of("curation.queue") == layer_of("reasoning.refine") == USES_KGE
    assert layer_of("kge.cli") == layer_of("ui.app") == layer_of("service.app") == FRONT
    assert layer_of("akg.api") < layer_of("service.app")


@pytest.mark.parametrize("name", ["akg.names", "akg.graph_state", "akg.encoders", "akg.audio", "akg.config"])
def test_core_rules_live_in_the_core(name):
    """Name normalisation, graph versions, settings and the CLAP encoders are core modules."""
    assert module_path(name) is not None and layer_of(name) == CORE


def test_no_environment_reads_outside_settings():
    """Only akg/config.py reads AKG_* variables (os.environ.get / os.getenv / os.environ[...])."""
    readers = []
    for module, path in project_modules():
        if path == REPO / "akg" / "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "getenv"):
                target = ast.unparse(node.func.value)
                if target in ("os.environ", "os") and node.args and "AKG_" in ast.unparse(node.args[0]):
                    readers.append(f"{path.relative_to(REPO)}:{node.lineno}")
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ" and "AKG_" in ast.unparse(node.slice):
                readers.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not readers, "AKG_* read outside akg.config.Settings: " + ", ".join(readers)
