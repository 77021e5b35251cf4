"""The explorer's Curation page (ui/views/curate.py), run by Streamlit's AppTest against the real
embedded server: the queue with its filters and paging, accept/reject/edit in place, revert, a
triple's history, conflicts with another curator, and the refusal without a curator's name.

The graph holds AKG_test plus the rows of AKG_raw whose head is "dog" (as source raw: "No." rows
arrive rejected). Each test works on its own relation of dog's rejected triples, so the tests do
not depend on one another's order.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from akg_loader.ingest import ingest
from akg_loader.tsv import read_file

streamlit = pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from helpers import wipe  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
UI = REPO / "ui"
TIMEOUT = 60
CURATOR_INPUT = "curation_curator_input"


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def dog_raw(akg_dir: Path, dest: Path) -> Path:
    """The rows of AKG_raw whose head is "dog" (194: 134 "No.", 60 "Yes."), with the header."""
    lines = (akg_dir / "AKG_raw.tsv").read_text(encoding="utf-8").splitlines()
    dest.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ln.split("\t")[1] == "dog"]) + "\n",
                    encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def curation_graph(graph, akg_dir, server_env, tmp_path_factory):
    wipe(graph)
    raw = dog_raw(akg_dir, tmp_path_factory.mktemp("curation") / "dog_raw.tsv")
    ingest(graph, [read_file(raw, source="raw"), read_file(akg_dir / "AKG_test.tsv")])
    yield graph
    from ui import resources

    streamlit.cache_data.clear()
    streamlit.cache_resource.clear()
    resources.forget_graph()


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """No cached query results from an earlier test, and no curator from the environment."""
    streamlit.cache_data.clear()
    monkeypatch.delenv("AKG_CURATOR", raising=False)
    yield


def row(graph, head: str, relation: str, tail: str) -> dict | None:
    """The triple as the queue reads it (status, rev, curated_by, note...), None if absent."""
    from curation.queue import Filters, page

    rows = page(graph, Filters(None, relation, head), limit=500).rows
    return next((r for r in rows if r["tail"] == tail), None)


def open_page() -> AppTest:
    at = AppTest.from_file(str(UI / "views" / "curate.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def show_queue(at: AppTest, status: str = "rejected", head: str = "dog", relation: str | None = None) -> None:
    at.selectbox(key="curation_status").select(status).run()
    at.text_input(key="curation_head").input(head).run()
    if relation:
        at.selectbox(key="curation_relation").select(relation).run()
    assert not at.exception, at.exception


def queue(at: AppTest):
    return next(d for d in at.dataframe if d.key == "curation_queue").value


def history(at: AppTest):
    """The history table (a table without selection has no key in AppTest: found by its columns)."""
    return next(d.value for d in at.dataframe if d.key != "curation_queue" and "change" in d.value.columns)


def select(at: AppTest, *rows: int) -> None:
    """Tick rows of the queue table, as a click on their boxes does (the table's selection state)."""
    at.session_state["curation_queue"] = {"selection": {"rows": list(rows), "columns": []}}
    at.run()
    assert not at.exception, at.exception


def test_the_app_navigates_to_the_curation_page(curation_graph):
    at = AppTest.from_file(str(UI / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    at.switch_page("views/curate.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Curation"
    assert at.selectbox(key="curation_status").value == "pending"  # the queue starts at what awaits review
    assert "No triples match these filters." in texts(at.info)
    # the curator's name outlives a visit to another page (a widget's own state would not)
    at.text_input(key=CURATOR_INPUT).input("erin").run()
    at.switch_page("views/overview.py").run()
    assert at.title[0].value == "Overview"
    at.switch_page("views/curate.py").run()
    assert at.text_input(key=CURATOR_INPUT).value == "erin"


def test_filters_and_paging_match_the_library(curation_graph):
    from curation.queue import Filters, page

    at = open_page()
    show_queue(at)
    total = page(curation_graph, Filters("rejected", None, "dog")).total
    assert total > 100
    assert f"rows 1–50 of {total}" in texts(at.caption)
    table = queue(at)
    assert len(table) == 50 and set(table["status"]) == {"rejected"} and set(table["head"]) == {"dog"}
    assert set(table.columns) >= {"head", "relation", "tail", "status", "verdict", "sources", "rev", "curated_by",
                                  "suggested_by", "score"}
    assert list(table["sources"].unique()) == ["raw"]
    first_page = list(zip(table["relation"], table["tail"]))
    assert first_page == sorted(first_page)

    at.button(key="curation_next").click().run()
    assert f"rows 51–100 of {total}" in texts(at.caption)
    second = queue(at)
    assert not set(zip(second["relation"], second["tail"])) & set(first_page)
    at.button(key="curation_prev").click().run()
    assert f"rows 1–50 of {total}" in texts(at.caption)
    at.button(key="curation_next").click().run()
    at.selectbox(key="curation_page_size").select(25).run()  # a new filter or size starts at the first page
    assert f"rows 1–25 of {total}" in texts(at.caption)

    at.selectbox(key="curation_relation").select("has subtype").run()
    expected = page(curation_graph, Filters("rejected", "has subtype", "dog")).rows
    assert list(queue(at)["tail"]) == [r["tail"] for r in expected] and expected
    at.selectbox(key="curation_status").select("any").run()
    at.selectbox(key="curation_verdict").select("yes").run()
    expected = page(curation_graph, Filters(None, "has subtype", "dog", "yes")).rows
    assert list(queue(at)["tail"]) == [r["tail"] for r in expected] and expected
    assert set(queue(at)["verdict"]) == {"yes"}


def test_accept_in_place_then_history_then_revert(curation_graph):
    triple = ("dog", "belongs to class", "animal")
    assert row(curation_graph, *triple)["status"] == "rejected"
    at = open_page()
    show_queue(at, relation="belongs to class")
    table = queue(at)
    assert list(table["tail"]) == ["animal", "domesticated animal", "pet"]
    at.text_input(key=CURATOR_INPUT).input("alice").run()
    select(at, 0)
    assert "1 selected" in texts(at.markdown)
    assert at.text_input(key="curation_history").value == "dog|belongs to class|animal"  # the selected row's

    at.text_input(key="curation_note").input("a dog is an animal")
    at.button(key="curation_accept").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    message = texts(at.success)
    now = row(curation_graph, *triple)
    assert now["status"] == "accepted" and now["curated_by"] == "alice" and now["note"] == "a dog is an animal"
    from curation.history import triple_history

    (change,) = triple_history(curation_graph, triple)
    assert change["action"] == "accept" and change["by"] == "alice"
    assert f"Change `{change['id']}`" in message and "rejected → accepted" in message
    # the queue is read again: the accepted row left the rejected queue, and nothing is selected
    assert list(queue(at)["tail"]) == ["domesticated animal", "pet"]
    assert "selected**" not in texts(at.markdown)
    # the triple's history on the page
    shown = history(at)
    assert list(shown["change"]) == [change["id"]] and list(shown["action"]) == ["accept"]
    assert list(shown["by"]) == ["alice"] and list(shown["status"]) == ["rejected → accepted"]
    assert list(shown["note"]) == ["a dog is an animal"]
    assert at.text_input(key="curation_note").value == ""

    # revert the change just made
    at.button(key="curation_revert").click().run()
    assert not at.exception, at.exception
    back = row(curation_graph, *triple)
    assert back["status"] == "rejected" and back["curated_by"] is None
    changes = triple_history(curation_graph, triple)
    assert [c["action"] for c in changes] == ["accept", "revert"]
    assert f"Change `{changes[1]['id']}`" in texts(at.success) and changes[0]["id"] in texts(at.success)
    assert list(queue(at)["tail"]) == ["animal", "domesticated animal", "pet"]
    shown = history(at)
    assert list(shown["action"]) == ["accept", "revert"] and shown["reverted by"][0] == changes[1]["id"]
    assert not [b for b in at.button if b.key == "curation_revert"]  # nothing left to revert

    # any triple's history, typed
    at.text_input(key="curation_history").input("dog | Belongs_to_class | Animal").run()
    assert list(history(at)["action"]) == ["accept", "revert"]
    at.text_input(key="curation_history").input("dog|belongs to class").run()
    assert "HEAD|RELATION|TAIL" in texts(at.error)


def test_a_change_behind_the_pages_back_is_a_conflict(curation_graph):
    from curation.decide import Decision, decide

    at = open_page()
    show_queue(at, relation="affects")
    assert list(queue(at)["tail"]) == ["behavior", "hearing", "mood"]
    at.text_input(key=CURATOR_INPUT).input("alice").run()
    select(at, 0, 1)
    assert "2 selected" in texts(at.markdown)

    # another curator accepts "behavior" meanwhile (the CLI, another browser)
    decide(curation_graph, [Decision("accept", ("dog", "affects", "behavior"))], by="bob")
    at.button(key="curation_reject").click().run()
    assert not at.exception, at.exception
    error = texts(at.error)
    assert "conflict, nothing was changed" in error and "dog|affects|behavior" in error and "bob" in error
    assert not at.success
    # the graph keeps bob's decision, and the other selected row was not written either
    assert row(curation_graph, "dog", "affects", "behavior")["curated_by"] == "bob"
    assert row(curation_graph, "dog", "affects", "behavior")["status"] == "accepted"
    hearing = row(curation_graph, "dog", "affects", "hearing")
    assert hearing["status"] == "rejected" and hearing["curated_by"] is None
    # the queue shows the graph as it is now, with nothing selected
    assert list(queue(at)["tail"]) == ["hearing", "mood"]
    assert "selected**" not in texts(at.markdown)

    # decided again on the fresh rows, it goes through
    select(at, 0)
    at.button(key="curation_reject").click().run()
    assert not at.error, texts(at.error)
    assert row(curation_graph, "dog", "affects", "hearing")["curated_by"] == "alice"


def test_decisions_are_refused_without_a_curator(curation_graph):
    at = open_page()
    assert at.text_input(key=CURATOR_INPUT).value == ""
    show_queue(at, relation="associated with event")
    before = queue(at)
    select(at, 0)
    for button in ("curation_accept", "curation_reject"):
        at.button(key=button).click().run()
        assert not at.exception, at.exception
        assert "Fill in **Curator**" in texts(at.error) and "Nothing was changed" in texts(at.error)
    triple = ("dog", "associated with event", before["tail"][0])
    now = row(curation_graph, *triple)
    assert now["status"] == "rejected" and now["curated_by"] is None and now["rev"] == before["rev"][0]
    from curation.history import triple_history

    assert triple_history(curation_graph, triple) == []
    # a name (spaces alone are none) lets it through
    at.text_input(key=CURATOR_INPUT).input("   ").run()
    at.button(key="curation_accept").click().run()
    assert "Fill in **Curator**" in texts(at.error)
    at.text_input(key=CURATOR_INPUT).input("dana").run()
    at.button(key="curation_accept").click().run()
    assert not at.error, texts(at.error)
    assert row(curation_graph, *triple)["curated_by"] == "dana"


def test_edit_in_place_with_the_curator_from_the_environment(curation_graph, monkeypatch):
    monkeypatch.setenv("AKG_CURATOR", "carol")
    at = open_page()
    assert at.text_input(key=CURATOR_INPUT).value == "carol"
    show_queue(at, relation="associated with environment")
    assert list(queue(at)["tail"]) == ["beach", "city", "forest", "house"]
    select(at, 0, 1)
    assert next(b for b in at.button if b.key == "curation_edit").disabled  # one row at a time
    select(at, 0)
    at.text_input(key="curation_new_tail").input("  Sea_Shore ")
    at.button(key="curation_edit").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    old = row(curation_graph, "dog", "associated with environment", "beach")
    new = row(curation_graph, "dog", "associated with environment", "sea shore")
    assert old["status"] == "rejected" and old["curated_by"] == "carol"
    assert new["status"] == "accepted" and new["curated_by"] == "carol" and new["sources"] == ["curator"]
    assert "sea shore" in texts(at.success) and "absent → accepted" in texts(at.success)
    assert list(history(at)["action"]) == ["edit"]  # of the edited row, still in the history box


def test_the_page_says_plainly_when_the_graph_is_unreachable(server_env, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AKG_URI", f"bolt://127.0.0.1:{port}")
    monkeypatch.setenv("AKG_PASSWORD", "x")
    at = open_page()
    assert "The graph is not reachable" in texts(at.error)
    assert not at.dataframe and not at.button


# --- in a real browser ---------------------------------------------------------------------------

def browser_missing() -> str | None:
    import ui_browser

    return ui_browser.missing()


@pytest.mark.skipif(bool(browser_missing()), reason=str(browser_missing()))
def test_accept_a_row_in_a_real_browser(curation_graph):
    """`streamlit run` (as `akg ui`) and Debian's Chromium: the queue renders, a click on a row's box
    selects it, Accept writes it under $AKG_CURATOR, and the page shows the change and its history."""
    import re

    import ui_browser
    from playwright.sync_api import expect

    idle = "[data-testid=stApp][data-test-script-state=notRunning]"
    artifacts = ui_browser.REPO / "test-artifacts" / "ui"
    artifacts.mkdir(parents=True, exist_ok=True)
    triple = ("dog", "invites action", row_tails(curation_graph, "invites action")[0])

    with ui_browser.streamlit_app({"AKG_CURATOR": "browser curator"}) as (url, _, _), ui_browser.chromium() as page:
        page.set_default_timeout(30_000)
        page.goto(f"{url}/curation")
        expect(page.get_by_role("heading", name="Curation", level=1)).to_be_visible()
        expect(page.get_by_role("textbox", name="Curator")).to_have_value("browser curator")
        page.locator(".st-key-curation_status").get_by_role("combobox").click()
        page.get_by_role("option", name="rejected", exact=True).click()
        head = page.get_by_role("textbox", name="Head")
        head.fill("dog")
        head.press("Enter")
        page.locator(".st-key-curation_relation").get_by_role("combobox").click()
        page.keyboard.type("invites action")
        page.get_by_role("option", name="invites action", exact=True).click()
        expect(page.get_by_text("rows 1–3 of 3")).to_be_visible()
        expect(page.locator(idle)).to_be_attached()
        table = page.locator(".st-key-curation_queue")
        expect(table.locator("[role=gridcell]", has_text=triple[2]).first).to_be_attached()

        # the first row's box: the row-marker column at the left of the canvas, below the 35 px header
        canvas = table.locator("canvas").first
        expect(canvas).to_be_visible()
        box = canvas.bounding_box()
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
        expect(page.get_by_text("1 selected")).to_be_visible()
        expect(page.get_by_role("textbox", name="Triple")).to_have_value("|".join(triple))
        page.get_by_role("button", name="Accept").click()
        expect(page.get_by_text(re.compile(r"^Change c-\d{8}-\d{6}-[0-9a-f]{6} \(accept"))).to_be_visible()
        expect(page.get_by_text("rows 1–2 of 2")).to_be_visible()
        expect(page.locator(idle)).to_be_attached()
        expect(page.get_by_test_id("stException")).to_have_count(0)

        now = row(curation_graph, *triple)
        assert now["status"] == "accepted" and now["curated_by"] == "browser curator"
        from curation.history import triple_history

        (change,) = triple_history(curation_graph, triple)
        history_table = page.get_by_test_id("stDataFrame").last
        expect(history_table.locator("[role=gridcell]", has_text=change["id"])).to_have_count(1)
        history_table.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "curation-accepted.png"))


def row_tails(graph, relation: str) -> list[str]:
    """The tails of dog's rejected triples of one relation, in the queue's order."""
    from curation.queue import Filters, page

    return [r["tail"] for r in page(graph, Filters("rejected", relation, "dog")).rows]
