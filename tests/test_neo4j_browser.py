"""Neo4j Browser, the way users use it: served at /browser by the Neo4j test server (the
org.neo4j.client:neo4j-browser jar on its classpath), driven by Debian's Chromium through Playwright.
It connects over Bolt with the password, sets `:param name => 'dog'`, runs the neighbourhood and
taxonomy-path queries of cypher/explore.cypher after an ingest, and the rows and graph it shows are
checked against what the driver returns for the same queries. Screenshots go to
test-artifacts/neo4j-browser/. Runs under `make test-neo4j` (AKG_TEST_SERVER=neo4j)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ui_browser  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.neo4j_only

ARTIFACTS = ui_browser.REPO / "test-artifacts" / "neo4j-browser"
WAIT = 30_000  # ms


@pytest.fixture(scope="module")
def loaded(graph, akg_dir):
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from helpers import wipe

    wipe(graph)
    ingest(graph, [read_file(akg_dir / "AKG_pruned.tsv"), read_file(akg_dir / "AKG_test.tsv")])
    return graph


@pytest.fixture
def browser_page(graph_server):
    problem = ui_browser.missing()
    assert problem is None, problem  # a Neo4j test is never skipped: .ci/run installs Chromium
    with ui_browser.chromium() as page:
        page.set_default_timeout(WAIT)
        yield page


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run(page, text: str, showing: str | None = None) -> tuple[str, str]:
    """Type a command or query into the editor, run it; the text of the frame it made, and of its status
    bar, once the frame shows `showing` (results are drawn after the status bar appears)."""
    frames = page.locator('[data-testid="frame"]')
    before = frames.count()
    page.locator('[data-testid="activeEditor"]').first.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(" ".join(text.split()))  # one line: Enter in the editor would run it early
    page.click('[data-testid="editor-Run"]')
    expect(frames).to_have_count(before + 1)  # (the Browser's CSP forbids evaluating page scripts)
    frame = frames.first  # the newest frame is on top
    if showing:
        expect(frame).to_contain_text(showing)
    status = frame.locator('[data-testid="frameStatusbar"]')
    return frame.inner_text(), status.first.inner_text() if status.count() else ""


def cells(value) -> str:
    """A value as the Browser's table shows it (JSON)."""
    return json.dumps(value, ensure_ascii=False)


def test_neo4j_browser_shows_the_explore_queries(loaded, browser_page, graph_server):
    from akg import queries

    kind, server = graph_server
    assert kind == "neo4j"
    page = browser_page
    bolt = server.bolt_uri.split("://", 1)[1]
    page.goto(f"{server.http_url}/browser/?connectURL=bolt://neo4j@{bolt}", wait_until="networkidle")
    page.fill('[data-testid="password"]', server.password)
    page.click('[data-testid="connect"]')
    page.get_by_text("You are connected as user").wait_for()
    shot(page, "01-connected.png")

    run(page, ":param name => 'dog'")
    run(page, ":param limit => 50")
    run(page, ":param depth => 6")

    # the neighbourhood as rows: every row the driver gets, in order, and nothing else
    hood = queries.get("entity_neighbourhood")
    expected = loaded.read(hood, {"name": "dog", "limit": 50})
    assert len(expected) == 50
    shown, status = run(page, hood.text, showing=cells(expected[-1]["other"]))
    assert f"{len(expected)} records" in status, status
    shot(page, "02-neighbourhood-table.png")
    rows = [line.strip().split("\t") for line in shown.splitlines() if line.strip().startswith('"')]
    want = [[cells(r[k]) for k in ("direction", "relation", "other", "status", "split", "sources", "verdict")]
            for r in expected]
    assert rows == want

    # the taxonomy path of `dog barking`: each chain up `has parent`, as the driver finds them
    run(page, ":param name => 'dog barking'")
    path = queries.get("taxonomy_path")
    expected = loaded.read(path, {"name": "dog barking", "depth": 6})
    assert expected and any("dog" in r["path"] for r in expected)
    shown, _ = run(page, path.text, showing=cells(expected[-1]["path"][-1]))
    shot(page, "03-taxonomy-path.png")
    for r in expected:
        assert re.search(re.escape(cells(r["path"])).replace(",\\ ", r",\s*") + r"\s+" + str(r["hops"]), shown), r

    # the whole neighbourhood as a graph. The Browser's default "connect result nodes" then fetches every
    # relationship between the nodes it shows, so the overview settles on the relationships among those
    # nodes (not only those touching `dog`); it draws the returned ones first, so wait for the final count.
    run(page, ":param name => 'dog'")
    run(page, ":param limit => 1000")
    returned = loaded.read("MATCH (:Entity {name: 'dog'})-[r]-(other:Entity) "
                           "RETURN collect(DISTINCT other.name) AS names, count(DISTINCT r) AS rels")[0]
    nodes = sorted({"dog", *returned["names"]})
    assert 10 < len(nodes) < 300  # fewer than the Browser's display limit (300 nodes)
    among = loaded.read("MATCH (a:Entity)-[r]->(b:Entity) WHERE a.name IN $names AND b.name IN $names "
                        "RETURN count(r) AS n", {"names": nodes})[0]["n"]
    assert among > returned["rels"]  # the AKG links dog's neighbours to each other too
    first_type = loaded.read("MATCH (e:Entity {name: 'dog'})-[r]-(:Entity) RETURN type(r) AS t ORDER BY t LIMIT 1")[0]["t"]
    run(page, queries.get("entity_neighbourhood_graph").text, showing="Relationship types")
    frame = page.locator('[data-testid="frame"]').first
    # the graph view's overview: "Node labels * (N) Entity (N)", "Relationship types * (M) TYPE (k)..."
    expect(frame).to_contain_text(re.compile(r"Relationship types\s*\*\s*\(" + str(among) + r"\)"))
    shown = frame.inner_text()
    shot(page, "04-neighbourhood-graph.png")
    labels = re.search(r"Node labels\s+\*\s*\((\d+)\)\s*Entity\s*\((\d+)\)", shown)
    assert labels, shown[:500]
    assert (int(labels.group(1)), int(labels.group(2))) == (len(nodes), len(nodes))
    assert re.search(re.escape(first_type) + r"\s*\(\d+\)", shown)  # the AKG's types name the relationships
