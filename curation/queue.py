"""The review queue: triples filtered by status, relation, head and LLM verdict, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass

from akg import queries
from akg.errors import InputError
from akg.graph import Graph
from akg.names import normalise_name
from curation.commit import rev
from curation.triples import resolve_relation

STATUSES = ("pending", "rejected", "accepted")
VERDICTS = ("yes", "no")


@dataclass(frozen=True)
class Filters:
    status: str | None = "pending"
    relation: str | None = None
    head: str | None = None
    verdict: str | None = None

    def params(self) -> dict:
        if self.status is not None and self.status not in STATUSES:
            raise InputError(f"unknown status {self.status!r}: use one of {', '.join(STATUSES)}")
        if self.verdict is not None and self.verdict not in VERDICTS:
            raise InputError(f"unknown verdict {self.verdict!r}: use yes or no")
        return {"status": self.status, "verdict": self.verdict,
                "relation": resolve_relation(self.relation) if self.relation else None,
                "head": normalise_name(self.head) if self.head else None}


@dataclass
class Page:
    total: int
    offset: int
    rows: list[dict]

    def as_dict(self) -> dict:
        return {"total": self.total, "offset": self.offset, "rows": self.rows}


def _row(r: dict) -> dict:
    p = r["props"]
    return {"head": r["head"], "relation": r["relation"], "tail": r["tail"], "status": p.get("status"),
            "verdict": p.get("verdict"), "split": p.get("split"), "sources": p.get("sources") or [],
            "rev": rev(p), "curated_by": p.get("curated_by"), "curated_at": p.get("curated_at"),
            "note": p.get("curation_note"), "suggested_by": p.get("suggested_by"), "score": p.get("score")}


def page(graph: Graph, filters: Filters = Filters(), *, offset: int = 0, limit: int = 50,
         after: tuple[str, str, str] | None = None) -> Page:
    """One page, ordered by head, relation, tail, with the total the filters select (one read).

    `after` (the last triple of the previous page) pages by key: the next page starts right after
    it even when decisions have removed rows before it, and deep pages cost what the first does.
    `offset` skips rows (after `after`, when both are given).
    """
    if offset < 0 or limit < 1:
        raise InputError("the page needs offset >= 0 and limit >= 1")
    params = filters.params()
    keys = {"after_head": None, "after_relation": None, "after_tail": None}
    if after is not None:
        keys = dict(zip(keys, after))
    relation = params.pop("relation")
    # One relation: match its relationship type, not every relationship's `relation` property.
    suffix = "_of_relation" if relation else ""

    def work(run):
        total = run(queries.get("curation_queue_count" + suffix), params, relation)[0]["n"]
        rows = run(queries.get("curation_queue_page" + suffix), {**params, **keys, "skip": offset, "limit": limit},
                   relation)
        return Page(total, offset, [_row(r) for r in rows])

    return graph.read_unit(work, name="curation queue")
