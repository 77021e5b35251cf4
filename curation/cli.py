"""`akg curate ...`, `akg versions`, `akg diff`: thin commands over the curation package."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from akg.cli import echo_json, progress_enabled
from akg.connect import connect
from akg.hashing import short

TRIPLE_HELP = "Triples are written HEAD|RELATION|TAIL (quote them), e.g. 'dog barking|has parent|dog'."
by_option = click.option("--by", required=True, help="Who decides (recorded in the change log).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


@click.group(epilog=TRIPLE_HELP)
def curate() -> None:
    """Review the AKG's triples: queue, decisions, history, revert, KGE suggestions."""


@curate.command("list")
@click.option("--status", type=click.Choice(["pending", "rejected", "accepted", "any"]), default="pending", show_default=True)
@click.option("--relation", help="Only this relation.")
@click.option("--head", help="Only this head entity.")
@click.option("--verdict", type=click.Choice(["yes", "no"]), help="Only triples the LLM verifier said yes/no to.")
@click.option("--limit", default=50, show_default=True, help="Rows per page.")
@click.option("--offset", default=0, show_default=True, help="Rows to skip (page * limit).")
@click.option("--after", help="Start after this triple (HEAD|RELATION|TAIL, the last row of the previous page): "
                              "no row is skipped when decisions have emptied earlier pages.")
@json_option
def list_(status: str, relation: str | None, head: str | None, verdict: str | None, limit: int, offset: int,
          after: str | None, as_json: bool) -> None:
    """One page of the review queue, with each triple's revision (what a decision is checked against)."""
    from curation.queue import Filters, page
    from curation.triples import parse_triple

    with connect() as graph:
        result = page(graph, Filters(None if status == "any" else status, relation, head, verdict),
                      offset=offset, limit=limit, after=parse_triple(after) if after else None)
    if as_json:
        echo_json(result.as_dict())
        return
    if not result.rows:
        hint = ("; pending triples come from `akg curate suggest`, and `--status rejected` lists the "
                "LLM verifier's rejections") if status == "pending" and result.total == 0 else ""
        click.echo(f"no triples match (total {result.total}){hint}")
        return
    click.echo(f"{len(result.rows)} rows of {result.total}" + (f", after {after}" if after else
                                                              f" (from row {offset + 1})"))
    for r in result.rows:
        extra = f"  score {r['score']:.3f} ({r['suggested_by']})" if r["suggested_by"] else ""
        who = f"  by {r['curated_by']}" if r["curated_by"] else ""
        click.echo(f"{r['head']}|{r['relation']}|{r['tail']}  [{r['status']}, verdict {r['verdict'] or '-'}, "
                   f"rev {r['rev']}]{who}{extra}")
    if len(result.rows) == limit:
        last = result.rows[-1]
        click.echo(f"next page: --after '{last['head']}|{last['relation']}|{last['tail']}'")


def _parsed(texts: tuple[str, ...]) -> list:
    from curation.triples import parse_triple

    return [parse_triple(t) for t in texts]


def _decide(action: str, triples: list, by: str, note: str | None, as_json: bool, **extra) -> None:
    from curation.decide import Decision, decide
    from curation.triples import show

    decisions = [Decision(action, t, note=note, **extra) for t in triples]
    with connect() as graph:
        outcome = decide(graph, decisions, by=by, note=note)
    _report(outcome, as_json)
    for t in outcome.unchanged:
        if not as_json:
            click.echo(f"unchanged (already so): {show(t)}")


def _report(outcome, as_json: bool) -> None:
    from curation.commit import summary_line

    if as_json:
        echo_json(outcome.as_dict())
    elif outcome.committed:
        click.echo(summary_line(outcome.committed))
        for i in outcome.committed.items:
            before = (i.before or {}).get("status", "absent")
            after = (i.after or {}).get("status", "absent")
            click.echo(f"  {i.head}|{i.relation}|{i.tail}: {before} -> {after}")
    else:
        click.echo("nothing changed")


@curate.command(epilog=TRIPLE_HELP)
@click.argument("triples", nargs=-1, required=True)
@by_option
@click.option("--note", help="Why (recorded with the change).")
@json_option
def accept(triples: tuple[str, ...], by: str, note: str | None, as_json: bool) -> None:
    """Accept triples (one change; all or nothing)."""
    _decide("accept", _parsed(triples), by, note, as_json)


@curate.command(epilog=TRIPLE_HELP)
@click.argument("triples", nargs=-1, required=True)
@by_option
@click.option("--note", help="Why (recorded with the change).")
@json_option
def reject(triples: tuple[str, ...], by: str, note: str | None, as_json: bool) -> None:
    """Reject triples (one change; all or nothing)."""
    _decide("reject", _parsed(triples), by, note, as_json)


@curate.command(epilog=TRIPLE_HELP)
@click.argument("triple")
@click.option("--tail", "new_tail", required=True, help="The correct tail.")
@by_option
@click.option("--note", help="Why (recorded with the change).")
@json_option
def edit(triple: str, new_tail: str, by: str, note: str | None, as_json: bool) -> None:
    """Correct a triple's tail: the old triple is rejected, HEAD|RELATION|NEW accepted (created if needed)."""
    from akg.names import normalise_name

    _decide("edit", _parsed((triple,)), by, note, as_json, new_tail=normalise_name(new_tail))


@curate.command()
@click.argument("head")
@click.argument("relation")
@click.argument("tail")
@by_option
@click.option("--note", help="Why (recorded with the change).")
@json_option
def add(head: str, relation: str, tail: str, by: str, note: str | None, as_json: bool) -> None:
    """Add an accepted triple (training split); new entities are created."""
    from curation.triples import make_triple

    _decide("add", [make_triple(head, relation, tail)], by, note, as_json)


@curate.command()
@click.argument("decisions", type=click.Path(path_type=Path))
@by_option
@click.option("--note", help="Why (recorded with the change).")
@json_option
def apply(decisions: Path, by: str, note: str | None, as_json: bool) -> None:
    """Apply a decisions file in one change: TSV head, relation, tail, decision[, new_tail, note, rev].

    The whole file is checked first (syntax, relations, that each triple exists, revisions);
    any problem names the line and nothing is written.
    """
    from curation.decide import decide
    from curation.decisions_file import read_decisions

    parsed = read_decisions(decisions)
    with connect() as graph:
        outcome = decide(graph, parsed, by=by, note=note or f"decisions from {decisions.name}", action="apply")
    if as_json:
        echo_json(outcome.as_dict())
        return
    if outcome.committed:
        from curation.commit import summary_line

        click.echo(summary_line(outcome.committed))
    click.echo(f"{len(parsed)} decisions: {len(outcome.committed.items) if outcome.committed else 0} triples changed, "
               f"{len(outcome.unchanged)} already so")


@curate.command(epilog=TRIPLE_HELP)
@click.argument("triple", required=False)
@click.option("--since", help="Only changes at or after this date (2026-11-22 or 2026-11-22T09:30).")
@click.option("--limit", default=100, show_default=True, help="Most changes to list (without TRIPLE).")
@json_option
def history(triple: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """The change log: of one triple (oldest first), or every change (newest first)."""
    from curation.history import changes_since, describe, parse_since, triple_history
    from curation.triples import parse_triple

    with connect() as graph:
        if triple:
            parsed = parse_triple(triple)
            rows = triple_history(graph, parsed)
            if since:
                rows = [r for r in rows if r["at"] >= parse_since(since)]
        else:
            rows = changes_since(graph, since, limit)
    if as_json:
        echo_json(rows)
    elif triple:
        click.echo("\n".join(describe(parsed, rows)) if rows else f"no recorded change of {triple}")
    elif not rows:
        click.echo("no changes recorded" + (f" since {since}" if since else ""))
    else:
        for c in rows:
            flags = f"  (reverted by {c['reverted_by']})" if c.get("reverted_by") else ""
            flags += f"  (reverts {c['reverts']})" if c.get("reverts") else ""
            note = f"  \"{c['note']}\"" if c.get("note") else ""
            click.echo(f"{c['at']}  {c['id']}  {c['action']:7s} by {c['by']}: {c.get('triples') or 0} triple(s){note}{flags}")


@curate.command()
@click.argument("change_id")
@by_option
@click.option("--note", help="Why (recorded with the revert).")
@json_option
def revert(change_id: str, by: str, note: str | None, as_json: bool) -> None:
    """Undo a change exactly; the revert is itself a change (and can be reverted)."""
    from curation.commit import summary_line
    from curation.history import revert as run_revert

    with connect() as graph:
        done = run_revert(graph, change_id, by=by, note=note)
    if as_json:
        echo_json({**done.as_dict(), "reverts": change_id})
    else:
        click.echo(f"reverted {change_id}: {summary_line(done)}")


@curate.command()
@click.option("--model", help="Model name or folder (default: the latest).")
@click.option("--top", default=500, show_default=True, help="How many suggestions to queue.")
@click.option("--relation", "relations", multiple=True, help="Only these relations (repeatable).")
@click.option("--by", help="Recorded as the suggester (default: kge:MODEL).")
@click.option("--dry-run", is_flag=True, help="Show the suggestions without queueing them.")
@json_option
def suggest(model: str | None, top: int, relations: tuple[str, ...], by: str | None, dry_run: bool, as_json: bool) -> None:
    """Queue a KGE model's best new triples as pending, with the model's name and score."""
    from tqdm import tqdm

    from akg.config import Settings
    from curation.suggest import candidates, queue
    from curation.triples import resolve_relation
    from kge import store
    from kge.predict import Predictor
    from kge.workflows import current_train_hash, staleness

    stored = store.resolve(model, store.models_root(Settings.from_env().home))
    for skipped in stored.notes:  # newer models that are broken, passed over for the latest usable one
        click.echo(f"warning: {skipped}", err=True)
    wanted = {resolve_relation(r) for r in relations} or None
    with connect() as graph:
        warning = staleness(stored, current_train_hash(graph))
        if warning:
            click.echo(f"warning: {warning}", err=True)
        predictor = Predictor(stored)
        with tqdm(desc="suggest", unit="pair", disable=not progress_enabled(), file=sys.stderr) as bar:
            found = candidates(graph, predictor, top=top, relations=wanted, progress=bar.update)
        done = None if dry_run or not found else queue(graph, found, model=stored.name, by=by or f"kge:{stored.name}")
    rows = [{"head": h, "relation": r, "tail": t, "score": round(s, 6)} for (h, r, t), s in found]
    if as_json:
        echo_json({"model": stored.name, "queued": bool(done), "change": done.change_id if done else None,
                   "suggestions": rows})
        return
    for row in rows[:20]:
        click.echo(f"{row['score']:10.4f}  {row['head']}|{row['relation']}|{row['tail']}")
    if len(rows) > 20:
        click.echo(f"... and {len(rows) - 20} more")
    if done:
        click.echo(f"queued {len(rows)} suggestions as pending in change {done.change_id} "
                   f"(review with `akg curate list --status pending`)")
    elif not rows:
        click.echo("no new triples to suggest")


@click.command()
@click.option("--verify", is_flag=True, help="Recompute the current version from the triples and compare.")
@json_option
def versions(verify: bool, as_json: bool) -> None:
    """The graph's versions (hash of the accepted triples), oldest first, with the change behind each."""
    from curation.versions import list_versions
    from curation.versions import verify as run_verify

    with connect() as graph:
        rows = list_versions(graph)
        check = run_verify(graph) if verify else None
    if as_json:
        echo_json({"versions": rows, **({"verify": check} if check else {})})
    else:
        for v in rows:
            click.echo(f"{short(v['version'])}  {v['at']}  {v['accepted']:6d} accepted  {v['cause']}"
                       + (f"  [{v['change']}]" if v.get("change") else ""))
        if check:
            click.echo("verified: the recorded version matches the triples" if check["consistent"] else
                       f"MISMATCH: recorded {short(check['recorded'])}, computed {short(check['computed'])}: "
                       "the graph was changed around the change log")
    if check and not check["consistent"]:
        sys.exit(1)


@click.command()
@click.argument("old")
@click.argument("new", default="current")
@json_option
def diff(old: str, new: str, as_json: bool) -> None:
    """Triples accepted in NEW but not OLD (+) and the reverse (-); versions by prefix, NEW default current."""
    from curation.versions import diff as run_diff

    with connect() as graph:
        d = run_diff(graph, old, new)
    if as_json:
        echo_json(d.as_dict())
        return
    click.echo(f"{short(d.old['version'])} -> {short(d.new['version'])}: "
               f"{len(d.added)} added, {len(d.removed)} removed")
    for t in d.added:
        click.echo("+ " + "|".join(t))
    for t in d.removed:
        click.echo("- " + "|".join(t))
