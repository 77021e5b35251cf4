"""Curation: the review queue with filters, accept/reject/edit in place, revert, a triple's history.

Decisions go through the curation package exactly as `akg curate` does: each action is one change
in the graph's change log, made under the name in **Curator**, and checked against the revision of
every triple as the page showed it. A triple that someone else changed meanwhile makes the whole
action a conflict: nothing is written, the page says so and reads the queue again.

Actions run in button callbacks, before the page is drawn again, so that they act on the rows the
table showed (kept in the session) rather than on a re-read that the user has not seen.
"""

from __future__ import annotations


import pandas as pd
import streamlit as st

from akg.config import Settings
from akg.errors import AkgError, ConflictError
from akg.hashing import short
from akg.relations import RELATIONS
from akg.names import normalise_name
from curation.decide import Decision
from curation.triples import parse_triple, show
from ui import common, resources

CURATOR = "curation_curator"              # who decides: kept across pages (a widget's own state is not)
CURATOR_INPUT = "curation_curator_input"  # the text input that edits it
STATUS, RELATION, HEAD, VERDICT, PAGE_SIZE = ("curation_status", "curation_relation", "curation_head",
                                              "curation_verdict", "curation_page_size")
OFFSET = "curation_offset"                # the first row of the page shown
TABLE = "curation_queue"                  # the queue table; its state is the row selection
SHOWN = "curation_shown"                  # the rows the table showed (with their revisions)
NOTE = "curation_note"
NEW_TAIL = "curation_new_tail"
HISTORY = "curation_history"              # HEAD|RELATION|TAIL whose history is shown
HISTORY_OF = "curation_history_of"        # the selected triple last copied into HISTORY
FLASH = "curation_flash"                  # what the last action did (shown once)
LAST_CHANGE = "curation_last_change"      # the change that Revert undoes

ANY_RELATION = "any relation"
STATUSES = ["pending", "rejected", "accepted", "any"]
VERDICTS = ["any", "yes", "no"]
PAGE_SIZES = [25, 50, 100, 200]
NO_CURATOR = ("Fill in **Curator** (your name, recorded with the change in the change log) before "
              "deciding. Nothing was changed.")


def _no_selection() -> dict:
    return {"selection": {"rows": [], "columns": [], "cells": []}}


def _triple(row: dict) -> tuple[str, str, str]:
    return (row["head"], row["relation"], row["tail"])


def _identity(rows: list[dict]) -> list[tuple]:
    return [(*_triple(r), r["rev"]) for r in rows]


# --- callbacks (they run before the page is drawn again) ----------------------------------------

def _keep_curator() -> None:
    st.session_state[CURATOR] = st.session_state[CURATOR_INPUT].strip()


def _curator() -> str | None:
    """Who decides; None (and the refusal shown) when nobody is named."""
    ss = st.session_state
    name = str(ss.get(CURATOR_INPUT, ss.get(CURATOR, "")) or "").strip()
    if not name:
        ss[FLASH] = {"kind": "refused", "text": NO_CURATOR}
        return None
    ss[CURATOR] = name
    return name


def _selected() -> list[dict]:
    """The rows selected in the table, as it showed them."""
    ss = st.session_state
    shown = ss.get(SHOWN) or []
    state = ss.get(TABLE) or _no_selection()
    return [shown[i] for i in state["selection"]["rows"] if 0 <= i < len(shown)]


def _first_page() -> None:
    st.session_state[OFFSET] = 0


def _move(delta: int) -> None:
    st.session_state[OFFSET] = max(0, st.session_state.get(OFFSET, 0) + delta)


def _failed(error: AkgError) -> None:
    st.session_state[FLASH] = {"kind": "error", "error": error}
    if isinstance(error, ConflictError):  # the queue is read again: the old selection means nothing now
        st.session_state[TABLE] = _no_selection()


def _decide(key, action: str) -> None:
    ss = st.session_state
    by = _curator()
    if by is None:
        return
    rows = _selected()
    if not rows:
        ss[FLASH] = {"kind": "refused", "text": "Select rows in the table first. Nothing was changed."}
        return
    note = str(ss.get(NOTE) or "").strip() or None
    if action == "edit":
        if len(rows) != 1:
            ss[FLASH] = {"kind": "refused", "text": "Edit one row at a time. Nothing was changed."}
            return
        new_tail = normalise_name(str(ss.get(NEW_TAIL) or ""))
        if not new_tail:
            ss[FLASH] = {"kind": "refused", "text": "Type the new tail first. Nothing was changed."}
            return
        decisions = [Decision("edit", _triple(rows[0]), new_tail=new_tail, note=note, rev=rows[0]["rev"])]
    else:
        decisions = [Decision(action, _triple(r), note=note, rev=r["rev"]) for r in rows]
    try:
        outcome = resources.curate(key, decisions, by=by, note=note)
    except AkgError as e:
        _failed(e)
        return
    done = outcome.committed
    if done is None:
        ss[FLASH] = {"kind": "info", "text": "Nothing changed: " + ", ".join(show(t) for t in outcome.unchanged)
                     + f" {'is' if len(outcome.unchanged) == 1 else 'are'} {action}ed already."}
    else:
        ss[FLASH] = {"kind": "success", "change": done.change_id, "text": _done_text(action, by, done),
                     "unchanged": [show(t) for t in outcome.unchanged]}
        ss[LAST_CHANGE] = {"id": done.change_id, "what": f"{action} of {len(rows)} row(s) by {by}"}
    ss[TABLE] = _no_selection()
    ss[NOTE] = ""
    ss[NEW_TAIL] = ""


def _revert(key) -> None:
    ss = st.session_state
    by = _curator()
    last = ss.get(LAST_CHANGE)
    if by is None or not last:
        return
    try:
        done = resources.revert(key, last["id"], by=by)
    except AkgError as e:
        _failed(e)
        return
    ss[FLASH] = {"kind": "success", "change": done.change_id,
                 "text": _done_text(f"revert of change `{last['id']}`", by, done)}
    ss[LAST_CHANGE] = None
    ss[TABLE] = _no_selection()


def _done_text(what: str, by: str, done) -> str:
    lines = [f"Change `{done.change_id}` ({what}, by {by}): {len(done.items)} triple(s); graph version "
             f"{short(done.version)} ({done.accepted:,} accepted triples)"]
    for i in done.items[:20]:
        before = (i.before or {}).get("status", "absent")
        after = (i.after or {}).get("status", "absent")
        lines.append(f"- {i.head} | {i.relation} | {i.tail}: {before} → {after}")
    if len(done.items) > 20:
        lines.append(f"- … and {len(done.items) - 20} more")
    return "\n".join(lines)


def _show_flash() -> None:
    flash = st.session_state.pop(FLASH, None)
    if not flash:
        return
    if flash["kind"] == "success":
        st.success(flash["text"])
        if flash.get("unchanged"):
            st.caption("Already so, left out: " + ", ".join(flash["unchanged"]))
    elif flash["kind"] == "info":
        st.info(flash["text"])
    elif flash["kind"] == "refused":
        st.error(flash["text"])
    elif isinstance(flash["error"], ConflictError):
        st.error(str(flash["error"]))
        st.info("Someone else changed these triples since the page showed them. The queue has been read again: "
                "check the rows as they are now, and decide again if you still want to.")
    else:
        with common.shown_errors():
            raise flash["error"]


# --- the page -----------------------------------------------------------------------------------

st.title("Curation")
st.caption("Review the AKG's triples: accept, reject or edit them in place. Each action is one change in the "
           "graph's change log, as with `akg curate`, and can be reverted.")
key = common.require_graph()
ss = st.session_state

if CURATOR not in ss:
    ss[CURATOR] = Settings.from_env().curator
ss[CURATOR_INPUT] = ss[CURATOR]
st.columns([2, 3])[0].text_input(
    "Curator", key=CURATOR_INPUT, on_change=_keep_curator, placeholder="your name",
    help="Recorded with every decision you make here (the `--by` of `akg curate`). Defaults to $AKG_CURATOR.")

selected: list[dict] = []
with common.shown_errors():
    c1, c2, c3, c4, c5 = st.columns([1, 2, 2, 1, 1])
    status = c1.selectbox("Status", STATUSES, key=STATUS, on_change=_first_page)
    relation = c2.selectbox("Relation", [ANY_RELATION, *sorted(RELATIONS)], key=RELATION, on_change=_first_page)
    head = c3.text_input("Head", key=HEAD, on_change=_first_page, placeholder="an entity's name, e.g. dog",
                         help="The exact head entity (names are matched as the AKG writes them).")
    verdict = c4.selectbox("LLM verdict", VERDICTS, key=VERDICT, on_change=_first_page,
                           help="The LLM verifier's answer when the AKG was generated.")
    size = int(c5.selectbox("Rows per page", PAGE_SIZES, index=1, key=PAGE_SIZE, on_change=_first_page))

    filters = (None if status == "any" else status, None if relation == ANY_RELATION else relation,
               head.strip() or None, None if verdict == "any" else verdict)
    offset = int(ss.get(OFFSET, 0))
    queue = resources.curation_queue(key, *filters, offset, size, resources.curation_generation())
    total = queue["total"]
    if total and offset >= total:  # the queue shrank (decisions move rows out of it): its last page
        offset = ss[OFFSET] = (total - 1) // size * size
        queue = resources.curation_queue(key, *filters, offset, size, resources.curation_generation())
    rows = queue["rows"]
    if _identity(rows) != _identity(ss.get(SHOWN) or []):  # other rows now: a selection would point elsewhere
        ss[TABLE] = _no_selection()
    ss[SHOWN] = rows

    p1, p2, p3 = st.columns([6, 1, 1])
    p1.caption(f"rows {offset + 1:,}–{offset + len(rows):,} of {total:,}" if rows else f"no rows (of {total:,})")
    p2.button("Previous", key="curation_prev", on_click=_move, args=(-size,), disabled=offset == 0,
              width="stretch")
    p3.button("Next", key="curation_next", on_click=_move, args=(size,), disabled=offset + len(rows) >= total,
              width="stretch")

    if not rows:
        st.info("No triples match these filters." if total == 0 else "This page is empty.")
    else:
        table = pd.DataFrame([{
            "head": r["head"], "relation": r["relation"], "tail": r["tail"], "status": r["status"],
            "verdict": r["verdict"], "split": r["split"], "sources": ", ".join(r["sources"] or []), "rev": r["rev"],
            "curated_by": r["curated_by"], "note": r["note"], "suggested_by": r["suggested_by"], "score": r["score"],
        } for r in rows])
        event = st.dataframe(
            table, key=TABLE, on_select="rerun", selection_mode="multi-row", hide_index=True,
            column_config={
                "head": st.column_config.TextColumn("head", width="medium"),
                "relation": st.column_config.TextColumn("relation", width="medium"),
                "tail": st.column_config.TextColumn("tail", width="medium"),
                "rev": st.column_config.NumberColumn("rev", help="The triple's revision: a decision is checked "
                                                     "against it, so a triple changed meanwhile is a conflict."),
                "verdict": st.column_config.TextColumn("verdict", help="The LLM verifier's answer."),
                "score": st.column_config.NumberColumn("score", format="%.3f", help="The KGE model's score of a "
                                                       "suggested triple."),
            })
        selected = [rows[i] for i in event.selection.rows if 0 <= i < len(rows)]

    st.markdown(f"**{len(selected)} selected**" if selected else
                "Select rows (the boxes at the left of the table) to accept, reject or edit them.")
    st.text_input("Note (optional)", key=NOTE, placeholder="why: recorded with the change")
    b1, b2, b3, b4 = st.columns([1, 1, 3, 1], vertical_alignment="bottom")
    b1.button("Accept", key="curation_accept", type="primary", on_click=_decide, args=(key, "accept"),
              disabled=not selected, width="stretch")
    b2.button("Reject", key="curation_reject", on_click=_decide, args=(key, "reject"), disabled=not selected,
              width="stretch")
    b3.text_input("New tail (edit one row)", key=NEW_TAIL, placeholder="e.g. domestic animal",
                  help="Edit rejects the selected triple and accepts HEAD|RELATION|NEW TAIL (created if needed).")
    b4.button("Edit", key="curation_edit", on_click=_decide, args=(key, "edit"), disabled=len(selected) != 1,
              width="stretch")
    if not ss.get(CURATOR):
        st.caption("Decisions need a name in **Curator** above.")

    _show_flash()
    last = ss.get(LAST_CHANGE)
    if last:
        r1, r2 = st.columns([5, 1], vertical_alignment="center")
        r1.caption(f"Last change from this page: `{last['id']}` ({last['what']}).")
        r2.button("Revert", key="curation_revert", on_click=_revert, args=(key,), width="stretch",
                  help="Undo that change exactly (recorded as a change of its own).")

st.subheader("History of a triple")
if selected:
    first = show(_triple(selected[0]))
    if ss.get(HISTORY_OF) != first:
        ss[HISTORY] = ss[HISTORY_OF] = first
else:
    ss[HISTORY_OF] = None
text = st.text_input("Triple", key=HISTORY, placeholder="HEAD|RELATION|TAIL, e.g. dog|has parent|animal",
                     help="The selected row's triple, or any other one.")
if text.strip():
    with common.shown_errors():
        triple = parse_triple(text)
        history = resources.triple_history(key, triple, resources.curation_generation())
        if not history:
            st.info(f"No recorded change of {show(triple)}: it is as ingest left it (or not in the graph).")
        else:
            st.dataframe(pd.DataFrame([{
                "at (UTC)": (h["at"] or "")[:19].replace("T", " "), "change": h["id"], "action": h["action"],
                "by": h["by"], "status": f"{h['before'] or 'absent'} → {h['after'] or 'absent'}", "note": h["note"],
                "reverted by": h["reverted_by"],
            } for h in history]), key="curation_history_table", hide_index=True)
            st.caption(f"{len(history)} change(s) of {show(triple)}, oldest first.")
