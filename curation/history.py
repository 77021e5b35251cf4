"""Reading the change log (per triple or over time) and reverting a change."""

from __future__ import annotations

from datetime import date, datetime, timezone

from akg import changelog, queries
from akg.errors import InputError
from akg.graph import Graph
from curation.commit import Committed, Effect, commit
from curation.triples import Triple, show


def triple_history(graph: Graph, triple: Triple) -> list[dict]:
    """Every recorded change of one triple, oldest first: who, when, what, note, status before/after."""
    rows = graph.read(queries.get("history_of_triple"), {"key": changelog.triple_key(*triple)})
    out = []
    for r in rows:
        item = changelog.item_from_record(r["item"])
        out.append({**_change_fields(r["change"]), "before": (item.before or {}).get("status"),
                    "after": (item.after or {}).get("status"), "before_props": item.before, "after_props": item.after})
    return out


def _change_fields(change: dict) -> dict:
    keys = ("id", "seq", "at", "by", "action", "note", "reverts", "reverted_by", "triples", "summary")
    return {k: change.get(k) for k in keys}


def parse_since(text: str) -> str:
    """A date or date-time (ISO 8601) as the lower bound the change log's `at` strings compare with."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:  # the change log's times are UTC
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat()
    except ValueError:
        raise InputError(f"a start date must look like 2026-11-22 or 2026-11-22T09:30, got {text!r}") from None


def changes_since(graph: Graph, since: str | None = None, limit: int = 100) -> list[dict]:
    rows = graph.read(queries.get("history_since"), {"since": parse_since(since) if since else "", "limit": limit})
    return [_change_fields(r["change"]) for r in rows]


def get_change(graph: Graph, change_id: str) -> tuple[dict, list[changelog.Item]]:
    rows = graph.read(queries.get("change_by_id"), {"id": change_id})
    if not rows or rows[0]["change"] is None:
        raise InputError(f"unknown change {change_id!r}: see `akg curate history` for change ids")
    return rows[0]["change"], [changelog.item_from_record(i) for i in rows[0]["items"]]


def revert(graph: Graph, change_id: str, *, by: str, note: str | None = None) -> Committed:
    """Undo a change exactly (each triple back to its properties before it), recorded as a change.

    Refused, writing nothing, if any triple the change touched has changed since (revert the later
    change first), if the change was reverted already, or if it was an ingest (its log keeps only
    the triples whose accepted-ness changed, not enough to undo it).
    """
    if not by or not by.strip():
        raise InputError("say who reverts: the curator's name is empty")
    change, items = get_change(graph, change_id)
    if change.get("action") == "ingest":
        raise InputError(f"change {change_id} is an ingest; its triples can be rejected with `akg curate reject`")
    if change.get("reverted_by"):
        raise InputError(f"change {change_id} was already reverted by change {change['reverted_by']}")
    if not items:
        raise InputError(f"change {change_id} touched no triple")
    effects = [Effect(item.triple, item.after, item.before) for item in items]  # rev stamped by commit()

    def mark(run, new_id: str) -> None:
        run(queries.get("change_mark_reverted"), {"id": change_id, "by": new_id})
        if change.get("reverts"):  # undoing a revert puts the original change back in force
            run(queries.get("change_mark_reverted"), {"id": change["reverts"], "by": None})

    record = {"action": "revert", "by": by.strip(), "reverts": change_id}
    if note:
        record["note"] = note
    return commit(graph, effects, record, also=mark)


def describe(triple: Triple, history: list[dict]) -> list[str]:
    lines = [f"history of {show(triple)}:"]
    for h in history:
        what = f"{h['before'] or 'absent'} -> {h['after'] or 'absent'}"
        note = f"  \"{h['note']}\"" if h.get("note") else ""
        lines.append(f"  {h['at']}  {h['id']}  {h['action']:7s} by {h['by']}: {what}{note}")
    return lines
