"""Named Cypher queries from the `cypher/` folder, loaded by name (after aiosql).

A file holds one or more blocks; each block starts with a `// name:` line and may carry
`// description:` and `// example:` (JSON parameters that the test suite runs it with).
Values are always `$params`. A relationship type cannot be a parameter, so a query that needs one
writes the placeholder `__REL__`, which `Query.render` replaces with an allowlisted, backticked
type from `akg.relations` and nothing else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from akg.errors import AkgError
from akg.relations import cypher_type

REL_PLACEHOLDER = "__REL__"
_HEADER = re.compile(r"//\s*(name|description|example)\s*:\s*(.*)")


@dataclass(frozen=True)
class Query:
    name: str
    text: str
    source: str
    description: str = ""
    example: dict = field(default_factory=dict)

    @property
    def needs_relation(self) -> bool:
        return REL_PLACEHOLDER in self.text

    def render(self, relation: str | None = None) -> str:
        if not self.needs_relation:
            return self.text
        if relation is None:
            raise AkgError(f"query {self.name!r} needs a relation")
        return self.text.replace(REL_PLACEHOLDER, cypher_type(relation))


def parse(text: str, source: str) -> list[Query]:
    blocks: list[dict] = []
    for line in text.splitlines():
        m = _HEADER.fullmatch(line.strip())
        if m and m.group(1) == "name":
            blocks.append({"name": m.group(2).strip(), "lines": [], "description": "", "example": {}})
        elif not blocks:
            continue  # a file comment before the first block
        elif m and m.group(1) == "description":
            blocks[-1]["description"] = m.group(2).strip()
        elif m and m.group(1) == "example":
            blocks[-1]["example"] = json.loads(m.group(2))
        else:
            blocks[-1]["lines"].append(line)
    queries = []
    for b in blocks:
        body = "\n".join(b["lines"]).strip()
        if not body:
            raise AkgError(f"{source}: query {b['name']!r} is empty")
        queries.append(Query(b["name"], body, source, b["description"], b["example"]))
    return queries


@cache
def catalogue(package: str = "cypher") -> dict[str, Query]:
    """Every named query under the package folder (and its subfolders), by name."""
    found: dict[str, Query] = {}

    def walk(node, prefix: str) -> None:
        for entry in sorted(node.iterdir(), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith("__"):
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".cypher"):
                for q in parse(entry.read_text(encoding="utf-8"), prefix + entry.name):
                    if q.name in found:
                        raise AkgError(f"query {q.name!r} is defined twice ({found[q.name].source}, {q.source})")
                    found[q.name] = q

    walk(resources.files(package), "")
    return found


def get(name: str) -> Query:
    try:
        return catalogue()[name]
    except KeyError:
        raise AkgError(f"no query named {name!r} in cypher/") from None
