"""The explorer in a real browser: `streamlit run ui/app.py` as a process on loopback, against the
session's embedded server with the AKG (pruned + test), driven by Debian's Chromium through
Playwright. Overview, then the entity explorer (search, pick, graph, facts), then the Cypher console
(a saved query with parameters). Screenshots of each step go to test-artifacts/ui/."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ui_browser  # noqa: E402
from helpers import LOOPBACK, listening_addresses

if ui_browser.missing():
    pytest.skip(ui_browser.missing(), allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

from akg import queries  # noqa: E402
from akg_loader.explore import facts  # noqa: E402
from akg_loader.ingest import ingest  # noqa: E402
from akg_loader.stats import graph_stats  # noqa: E402
from akg_loader.tsv import read_file  # noqa: E402

ARTIFACTS = ui_browser.REPO / "test-artifacts" / "ui"
WAIT = 30_000  # ms for anything the page shows; the first run of a page imports its libraries
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"  # Streamlit finished running the page


@pytest.fixture(scope="module")
def ui_app(graph, akg_dir, shared_dir, server_env):
    """The AKG (pruned + test) in the session's graph, and the explorer serving it on a free loopback port."""
    graph.write("MATCH (e:Entity) DETACH DELETE e")
    ingest(graph, [read_file(akg_dir / "AKG_pruned.tsv"), read_file(akg_dir / "AKG_test.tsv")])
    env = {"AKG_LABEL_SETS_DIR": str(shared_dir / "label_sets")} if (shared_dir / "label_sets").is_dir() else {}
    with ui_browser.streamlit_app(env) as (url, port, proc):
        yield url, port


@pytest.fixture
def page():
    with ui_browser.chromium() as p:
        p.set_default_timeout(WAIT)
        yield p


def shot(page: Page, name: str, element=None) -> Path:
    """A screenshot of the viewport (after scrolling `element` into view) as a PNG; checked to be one."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if element is not None:
        element.scroll_into_view_if_needed()
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, (path, len(data))
    return path


def settled(page: Page) -> None:
    """Streamlit has run the page to the end, and shows no traceback."""
    expect(page.locator(IDLE)).to_be_attached(timeout=WAIT)
    expect(page.get_by_test_id("stException")).to_have_count(0)


def go_to(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebarNavLink").filter(has_text=title).click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()


def grid_rows(table) -> int:
    """Data rows of a st.dataframe, drawn on its canvas; its accessible grid's aria-rowcount counts the header too."""
    expect(table.locator("canvas").first).to_be_visible()
    grid = table.locator("[role=grid]")
    expect(grid.locator("[role=gridcell]").first).to_be_attached()
    return int(grid.get_attribute("aria-rowcount")) - 1


def test_explorer_in_a_browser(ui_app, page, graph):
    url, port = ui_app
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    # started with --server.address 127.0.0.1: nothing else listens on the port
    addrs = listening_addresses(port)
    assert addrs and addrs <= LOOPBACK, addrs

    # 1. the overview: the graph's numbers
    stats = graph_stats(graph)
    page.goto(url)
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    entities = page.get_by_test_id("stMetric").filter(has_text="Entities")
    expect(entities.get_by_test_id("stMetricValue")).to_have_text(f"{stats['entities']:,}")
    expect(page.get_by_test_id("stMetric").filter(has_text="Triples").get_by_test_id("stMetricValue")).to_have_text("20,387")
    settled(page)
    shot(page, "01-overview.png")

    # 2. the entity explorer: type "dog", pick "dog" among the matches
    go_to(page, "Entity explorer")
    assert page.url.rstrip("/").endswith("/entities")
    search = page.get_by_role("textbox", name="Search an entity")
    search.fill("dog")
    search.press("Enter")
    matches = page.get_by_test_id("stSelectbox").filter(has_text="matching entities")
    expect(matches).to_be_visible()
    matches.get_by_role("combobox").click()
    page.get_by_role("option", name="dog", exact=True).click()
    expect(page.get_by_role("heading", name="dog", level=3)).to_be_visible()
    settled(page)
    shot(page, "02-entity-search.png")

    # its neighbourhood: the graph component drew the nodes the caption counts
    caption = page.get_by_text(re.compile(r"^\d+ entities, \d+ facts"))
    expect(caption).to_be_visible()
    shown_nodes = int(caption.inner_text().split()[0])
    component = page.locator(".st-key-entity_graph iframe")
    expect(component).to_be_visible()
    canvas = page.frame_locator(".st-key-entity_graph iframe").locator("#cy canvas").first
    expect(canvas).to_be_visible()
    frame = component.element_handle().content_frame()
    frame.wait_for_function("n => { const r = document.getElementById('cy')._cyreg;"
                            " return r && r.cy && r.cy.nodes().length === n; }", arg=shown_nodes, timeout=WAIT)
    center = frame.evaluate("() => document.getElementById('cy')._cyreg.cy.nodes('[label = \"center\"]').map(n => n.id())")
    assert center == ["dog"]
    box = component.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 300, box
    shot(page, "03-entity-graph.png", component)

    # and its facts, one row per fact
    table = page.get_by_test_id("stDataFrame").last
    expected = facts(graph, "dog")
    assert grid_rows(table) == len(expected) > 0
    expect(page.get_by_text(f"{len(expected)} facts. → dog is the head")).to_be_visible()
    shot(page, "04-entity-facts.png", table)

    # 3. the Cypher console: a saved query with parameters, run
    go_to(page, "Cypher console")
    saved = page.locator(".st-key-console_saved")
    saved.get_by_role("combobox").click()
    page.keyboard.type("taxonomy_path")
    page.get_by_role("option", name=re.compile(r"^taxonomy_path")).click()
    expect(page.locator(".st-key-console_text textarea")).to_have_value(re.compile(r"HAS_PARENT"))
    params = page.locator(".st-key-console_params textarea")
    expect(params).to_have_value(re.compile(r"\"name\""))
    params.fill(json.dumps({"name": "dog", "depth": 6}))  # the example's entity is "dog barking"
    page.get_by_role("button", name="Run").click()
    rows = graph.read(queries.get("taxonomy_path"), {"name": "dog", "depth": 6})
    assert rows
    expect(page.get_by_text(re.compile(rf"^{len(rows)} row\(s\) in [0-9.]+ s"))).to_be_visible()
    result = page.get_by_test_id("stDataFrame").last
    assert grid_rows(result) == len(rows)
    longest = json.dumps(rows[0]["path"], ensure_ascii=False)  # the first row: the longest chain up from dog
    expect(result.locator("[role=gridcell]", has_text=longest)).to_have_count(1)
    settled(page)
    shot(page, "05-console-result.png", result)

    assert sorted(p.name for p in ARTIFACTS.glob("0*.png")) == [
        "01-overview.png", "02-entity-search.png", "03-entity-graph.png", "04-entity-facts.png", "05-console-result.png"]
