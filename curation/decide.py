"""Curators' decisions (accept, reject, edit, add) turned into effects and committed as one change.

Semantics, chosen so that nothing a curator or the LLM said is ever lost:
- accept/reject set the triple's status and mark it curated (`curated_at`, `curated_by`, and the
  note as `curation_note`); ingest never overrides a curated status.
- edit H|R|T --tail NEW rejects H|R|T (noting `edited_to`) and accepts H|R|NEW, creating it if
  needed (source `curator`, same split, `edited_from`).
- add H R T creates an accepted triple (source `curator`, split train: it joins the training set).
A decision that would change nothing (accepting an accepted triple) is left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from akg.changelog import now_iso
from akg.errors import ConflictError, InputError
from akg.graph import Graph
from curation.commit import Committed, Effect, commit, rev
from curation.triples import Triple, check_names, read_properties, show, unknown_triple

ACTIONS = ("accept", "reject", "edit", "add")
STATUS_OF = {"accept": "accepted", "reject": "rejected"}


@dataclass(frozen=True)
class Decision:
    action: str
    triple: Triple
    new_tail: str | None = None
    note: str | None = None
    rev: int | None = None          # the revision the curator saw (from a listing), when known
    file: str | None = None
    line: int | None = None


@dataclass
class Outcome:
    committed: Committed | None
    unchanged: list[Triple]

    def as_dict(self) -> dict:
        return {**(self.committed.as_dict() if self.committed else {"change": None}),
                "unchanged": [show(t) for t in self.unchanged]}


def _curation(by: str, note: str | None, stamp: str) -> dict:
    """What every decision writes on a triple: who and when (and why, when said)."""
    return {"curated_at": stamp, "curated_by": by, "updated_at": stamp, **({"curation_note": note} if note else {})}


def _curated(props: dict, status: str, by: str, note: str | None, stamp: str) -> dict:
    kept = {k: v for k, v in props.items() if k != "curation_note"}  # a decision's note replaces the last one
    return {**kept, "status": status, **_curation(by, note, stamp)}


def _new_triple(triple: Triple, split: str, by: str, note: str | None, stamp: str, **extra) -> dict:
    return {"relation": triple[1], "sources": ["curator"], "source_files": [], "status": "accepted",
            "split": split, "created_at": stamp, **_curation(by, note, stamp), **extra}


def plan(run, decisions: list[Decision], by: str) -> tuple[list[Effect], list[Triple]]:
    """The effects of these decisions on the graph as it is now (read through `run`)."""
    touched = [d.triple for d in decisions] + [(d.triple[0], d.triple[1], d.new_tail)
                                               for d in decisions if d.action == "edit"]
    current = read_properties(run, touched)
    stamp = now_iso()
    effects: dict[Triple, Effect] = {}
    unchanged: list[Triple] = []

    def put(effect: Effect, d: Decision) -> None:
        if effect.triple in effects:
            raise InputError(f"{show(effect.triple)} is changed by two decisions", file=d.file, line=d.line)
        effects[effect.triple] = effect

    for d in decisions:
        props = current.get(d.triple)
        if d.action in ("add", "edit"):  # these may create a triple, so names that keep the rules
            check_names(d.triple if d.action == "add" else (d.triple[0], d.triple[1], d.new_tail or ""),
                        file=d.file, line=d.line)
        if d.action == "add":
            if props is not None:
                raise InputError(f"{show(d.triple)} is already in the graph (status {props.get('status')}): "
                                 f"use accept", file=d.file, line=d.line)
            put(Effect(d.triple, None, _new_triple(d.triple, "train", by, d.note, stamp)), d)
            continue
        if props is None:
            raise unknown_triple(run, d.triple, file=d.file, line=d.line)
        if d.rev is not None and d.rev != rev(props):
            raise ConflictError(f"conflict, nothing was changed: {show(d.triple)} is at revision {rev(props)} "
                                f"(status {props.get('status')}, by {props.get('curated_by', 'ingest')}), "
                                f"the decision was made at revision {d.rev}")
        if d.action in STATUS_OF:
            if props.get("status") == STATUS_OF[d.action] and props.get("curated_at"):
                unchanged.append(d.triple)
                continue
            put(Effect(d.triple, props, _curated(props, STATUS_OF[d.action], by, d.note, stamp)), d)
            continue
        # edit: reject the old tail, accept (or create) the new one
        new = (d.triple[0], d.triple[1], d.new_tail)
        if d.new_tail == d.triple[2]:
            raise InputError(f"edit of {show(d.triple)}: the new tail is the old one", file=d.file, line=d.line)
        put(Effect(d.triple, props, {**_curated(props, "rejected", by, d.note, stamp), "edited_to": d.new_tail}), d)
        target = current.get(new)
        if target is None:
            after = _new_triple(new, props.get("split", "train"), by, d.note, stamp, edited_from=d.triple[2])
        else:
            after = {**_curated(target, "accepted", by, d.note, stamp), "edited_from": d.triple[2]}
        put(Effect(new, target, after), d)
    return list(effects.values()), unchanged


def decide(graph: Graph, decisions: list[Decision], *, by: str, note: str | None = None,
           action: str | None = None) -> Outcome:
    """Apply decisions as one change (all or nothing); `action` names the change (default: the decisions')."""
    by = (by or "").strip()
    if not by:
        raise InputError("say who decides: the curator's name is empty")
    if not decisions:
        raise InputError("no decisions given")
    # Judged against one consistent read; commit() checks that nothing moved since.
    effects, unchanged = graph.read_unit(lambda run: plan(run, decisions, by), name="curation (read)")
    if not effects:
        return Outcome(None, unchanged)
    kinds = sorted({d.action for d in decisions})
    change = {"action": action or (kinds[0] if len(kinds) == 1 else "apply"), "by": by}
    if note:
        change["note"] = note
    return Outcome(commit(graph, effects, change), unchanged)

