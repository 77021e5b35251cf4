"""The named-query loader (akg.queries.catalogue) refuses a block name defined twice.

`catalogue(package)` reads every `.cypher` file under a package folder; here that package is a
temporary one built by the test (a folder with an `__init__.py` on sys.path), so the real `cypher/`
folder is neither read nor changed.
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import pytest

from akg import queries
from akg.errors import AkgError

_names = itertools.count()


def cypher_package(tmp_path: Path, monkeypatch, files: dict[str, str]) -> str:
    """A throwaway package holding `files` (relative path -> text); returns its importable name.

    Each call gets a new name: `catalogue` caches its answer per package name."""
    name = f"akg_test_cypher_{next(_names)}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("", encoding="utf-8")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)  # and forgotten after the test
    return name


def test_a_clean_folder_loads_every_block_by_name(tmp_path, monkeypatch):
    pkg = cypher_package(tmp_path, monkeypatch, {
        "a.cypher": "// name: one\nRETURN 1 AS n\n\n// name: two\nRETURN 2 AS n\n",
        "sub/b.cypher": "// name: three\nRETURN 3 AS n\n",
    })
    found = queries.catalogue(pkg)
    assert {n: (q.source, q.text) for n, q in found.items()} == {
        "one": ("a.cypher", "RETURN 1 AS n"), "two": ("a.cypher", "RETURN 2 AS n"),
        "three": ("sub/b.cypher", "RETURN 3 AS n")}


@pytest.mark.parametrize("files, message", [
    ({"a.cypher": "// name: stats_total\nRETURN 1 AS n\n\n// name: stats_total\nRETURN 2 AS n\n"},
     "query 'stats_total' is defined twice (a.cypher, a.cypher)"),
    ({"a.cypher": "// name: stats_total\nRETURN 1 AS n\n", "b.cypher": "// name: other\nRETURN 0 AS n\n\n"
      "// name: stats_total\nRETURN 2 AS n\n"},
     "query 'stats_total' is defined twice (a.cypher, b.cypher)"),
    ({"a.cypher": "// name: stats_total\nRETURN 1 AS n\n", "deeper/z.cypher": "// name: stats_total\nRETURN 2 AS n\n"},
     "query 'stats_total' is defined twice (a.cypher, deeper/z.cypher)"),
], ids=["same-file", "two-files", "subfolder"])
def test_a_name_defined_twice_is_refused(tmp_path, monkeypatch, files, message):
    pkg = cypher_package(tmp_path, monkeypatch, files)
    with pytest.raises(AkgError, match=f"^{re.escape(message)}$"):
        queries.catalogue(pkg)


def test_the_real_catalogue_is_untouched():
    """The default still reads the project's cypher/ folder (whose names are unique)."""
    assert queries.catalogue() == queries.catalogue("cypher")
    assert queries.get("ingest_lock").source == "ingest.cypher"
