"""Curation against the real embedded server: decisions, the audit trail, reverts, conflicts,
bad input, versions and diffs, and KGE suggestions closing the loop."""

from __future__ import annotations

import json
import threading

import pytest

from akg.errors import ConflictError, InputError
from akg_loader.ingest import ingest
from akg_loader.tsv import read_file
from curation import history, versions
from curation.commit import commit
from curation.decide import Decision, decide, plan
from curation.queue import Filters, page

REJECTED = ("a capella", "event composed of", "acoustic instruments")   # 'No.' in AKG_raw
ACCEPTED = ("a capella", "belongs to class", "music")                   # 'Yes.' in AKG_raw


@pytest.fixture
def small(empty_graph, akg_dir, tmp_path):
    """The first 1,500 rows of AKG_raw (accepted and rejected triples) in an empty graph."""
    lines = (akg_dir / "AKG_raw.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:1501]
    path = tmp_path / "AKG_raw.tsv"
    path.write_text("".join(lines), encoding="utf-8")
    ingest(empty_graph, [read_file(path)])
    return empty_graph


def props(graph, triple) -> dict | None:
    h, r, t = triple
    from curation.triples import read_properties

    return graph.read_unit(lambda run: read_properties(run, [triple])).get((h, r, t))


def change_count(graph) -> int:
    return graph.read("MATCH (c:Change) RETURN count(c) AS n")[0]["n"]


def bar(t) -> str:
    return "|".join(t)


def test_accept_reject_are_recorded_with_who_when_before_after_note(small, run_cli):
    before_version = versions.verify(small)["recorded"]
    res = run_cli("curate", "accept", bar(REJECTED), "--by", "alice", "--note", "heard it in a choir")
    assert res.exit_code == 0, res.output
    p = props(small, REJECTED)
    assert (p["status"], p["curated_by"], p["curation_note"]) == ("accepted", "alice", "heard it in a choir")
    assert p["rev"] == versions.list_versions(small)[-1]["seq"] > 0   # the change's sequence number
    assert p["sources"] == ["raw"] and p["verdict"] == "no"   # the LLM's provenance stays

    rows = history.triple_history(small, REJECTED)
    assert [(r["action"], r["by"], r["before"], r["after"], r["note"]) for r in rows] == [
        ("accept", "alice", "rejected", "accepted", "heard it in a choir")]
    assert rows[0]["before_props"]["status"] == "rejected" and rows[0]["at"]

    check = versions.verify(small)
    assert check["consistent"] and check["recorded"] != before_version
    # Accepting again changes nothing and records nothing.
    n = change_count(small)
    res = run_cli("curate", "accept", bar(REJECTED), "--by", "alice")
    assert res.exit_code == 0 and "unchanged" in res.output and change_count(small) == n
    # Over time: the CLI lists the change, newest first, with --since.
    out = json.loads(run_cli("curate", "history", "--since", "2000-01-01", "--json").stdout)
    assert out[0]["action"] == "accept" and out[-1]["action"] == "ingest"
    assert json.loads(run_cli("curate", "history", "--since", "2999-01-01", "--json").stdout) == []


def test_edit_then_revert_restores_exactly_and_is_recorded(small, run_cli):
    old = ACCEPTED
    new = (old[0], old[1], "choral music")
    original = props(small, old)
    res = run_cli("curate", "edit", bar(old), "--tail", "Choral_Music", "--by", "bob", "--json")
    assert res.exit_code == 0, res.output
    change = json.loads(res.stdout)["change"]
    assert props(small, old)["status"] == "rejected" and props(small, old)["edited_to"] == "choral music"
    created = props(small, new)
    assert (created["status"], created["sources"], created["edited_from"]) == ("accepted", ["curator"], "music")

    res = run_cli("curate", "revert", change, "--by", "carol", "--note", "music was right")
    assert res.exit_code == 0, res.output
    restored = props(small, old)
    assert {k: v for k, v in restored.items() if k != "rev"} == {k: v for k, v in original.items() if k != "rev"}
    assert props(small, new) is None
    assert versions.verify(small)["consistent"]
    actions = [r["action"] for r in history.triple_history(small, old)]
    assert actions == ["ingest", "edit", "revert"]   # ingest logged it becoming accepted
    change_rec, _ = history.get_change(small, change)
    assert change_rec["reverted_by"]
    # Twice is refused; reverting the revert redoes the edit.
    again = run_cli("curate", "revert", change, "--by", "carol")
    assert again.exit_code == 1 and "already reverted" in again.output
    redo = run_cli("curate", "revert", change_rec["reverted_by"], "--by", "carol")
    assert redo.exit_code == 0, redo.output
    assert props(small, new)["status"] == "accepted" and props(small, old)["status"] == "rejected"


def test_revert_refused_when_the_triple_moved_since(small):
    first = decide(small, [Decision("accept", REJECTED)], by="alice").committed
    decide(small, [Decision("reject", REJECTED)], by="bob")
    n = change_count(small)
    with pytest.raises(ConflictError, match="changed by bob"):
        history.revert(small, first.change_id, by="carol")
    assert props(small, REJECTED)["curated_by"] == "bob" and change_count(small) == n


def test_add_creates_entities_and_grows_the_training_set(small, run_cli):
    from akg_loader.export import export_triples

    n_train = len(export_triples(small).triples)
    res = run_cli("curate", "add", "puppy yelping", "has parent", "dog", "--by", "dana")
    assert res.exit_code == 0, res.output
    assert props(small, ("puppy yelping", "has parent", "dog"))["split"] == "train"
    assert len(export_triples(small).triples) == n_train + 1
    dup = run_cli("curate", "add", "puppy yelping", "has parent", "dog", "--by", "dana")
    assert dup.exit_code == 1 and "already in the graph" in dup.output


def test_bad_input_is_a_clear_error_and_changes_nothing(small, run_cli, tmp_path):
    state = versions.verify(small)["recorded"], change_count(small)

    def refused(*args, match):
        res = run_cli(*args)
        assert res.exit_code == 1 and match in res.output, res.output
        assert (versions.verify(small)["recorded"], change_count(small)) == state

    refused("curate", "accept", "a capella|belongs to class|no such tail", "--by", "x", match="not in the graph")
    refused("curate", "accept", "a capela|belongs to class|music", "--by", "x", match="'a capella'")
    refused("curate", "reject", "a capella|belongs to klass|music", "--by", "x", match="did you mean 'belongs to class'")
    refused("curate", "accept", "a capella, music", "--by", "x", match="HEAD|RELATION|TAIL")
    # One bad triple among good ones: the good ones are not applied either.
    refused("curate", "accept", bar(REJECTED), "a capella|belongs to class|nope", "--by", "x", match="nope")

    def decisions(text):
        path = tmp_path / "decisions.tsv"
        path.write_text(text, encoding="utf-8")
        return str(path)

    good = f"{REJECTED[0]}\t{REJECTED[1]}\t{REJECTED[2]}\taccept\n"
    refused("curate", "apply", decisions(good + "a capella\tbelongs to class\tmusic\tmaybe\n"), "--by", "x",
            match="line 2: unknown decision 'maybe'")
    refused("curate", "apply", decisions(good + "a capella\tbelongs to class\n"), "--by", "x", match="line 2: expected 4")
    refused("curate", "apply", decisions("# comment\n" + good + good), "--by", "x", match="line 3:")
    refused("curate", "apply", decisions(good + "a capella\tbelongs to class\tmusic\tedit\n"), "--by", "x",
            match="line 2: an edit needs the new tail")
    refused("curate", "apply", decisions(good + "a capella\tbelongs to class\tzzz\treject\n"), "--by", "x",
            match="decisions.tsv, line 2: unknown triple")
    refused("curate", "apply", decisions("head\trelation\ttail\tverdict\n" + good), "--by", "x", match="line 1: unknown column")
    refused("curate", "apply", str(tmp_path / "missing.tsv"), "--by", "x", match="no such file")
    refused("curate", "apply", str(tmp_path), "--by", "x", match="is a directory, not a decisions file")
    refused("curate", "revert", "c-nope", "--by", "x", match="unknown change")
    refused("diff", "abcdef", match="unknown version")


def test_bulk_apply_with_header_any_column_order_and_revisions(small, run_cli, tmp_path):
    queue = page(small, Filters(status="rejected", head="a capella"), limit=10).rows
    assert len(queue) >= 3
    a, b, c = queue[:3]
    path = tmp_path / "decisions.tsv"
    # Saved by a spreadsheet: a UTF-8 byte-order mark before the header.
    path.write_text("\ufeffhead\trelation\ttail\trev\tdecision\tnote\tnew_tail\n"
                    f"{a['head']}\t{a['relation']}\t{a['tail']}\t{a['rev']}\taccept\tok\t\n"
                    f"{b['head']}\t{b['relation']}\t{b['tail']}\t{b['rev']}\treject\t\t\n"
                    f"{c['head']}\t{c['relation']}\t{c['tail']}\t\tedit\tbetter\tchoir\n", encoding="utf-8")
    res = run_cli("curate", "apply", str(path), "--by", "erin", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    # b was rejected by the LLM, not yet by a curator: rejecting it records the decision.
    assert len(out["triples"]) == 4 and out["unchanged"] == []
    assert props(small, (a["head"], a["relation"], a["tail"]))["status"] == "accepted"
    assert props(small, (c["head"], c["relation"], "choir"))["status"] == "accepted"
    assert [h["action"] for h in history.triple_history(small, (a["head"], a["relation"], a["tail"]))] == ["apply"]
    # The same file again: the revisions have moved, so it is a conflict and nothing is written.
    n = change_count(small)
    again = run_cli("curate", "apply", str(path), "--by", "erin")
    assert again.exit_code == 1 and "conflict" in again.output and change_count(small) == n


def test_two_curators_at_once_one_wins_the_other_gets_a_conflict(small):
    """Both read the triple, then both commit at the same moment on the real server."""
    for round_ in range(3):
        target = page(small, Filters(status="rejected"), offset=round_, limit=1).rows[0]
        triple = (target["head"], target["relation"], target["tail"])
        plans = [small.read_unit(lambda run, a=action, w=who: (plan(run, [Decision(a, triple)], w), w, a))
                 for action, who in (("accept", "alice"), ("reject", "bob"))]
        start = threading.Barrier(2)
        results: dict[str, object] = {}

        def go(planned):
            (effects, _), who, action = planned
            start.wait()
            try:
                results[who] = commit(small, effects, {"action": action, "by": who})
            except ConflictError as e:
                results[who] = e

        threads = [threading.Thread(target=go, args=(p,)) for p in plans]
        [t.start() for t in threads]
        [t.join(timeout=60) for t in threads]
        errors = {w: r for w, r in results.items() if isinstance(r, ConflictError)}
        assert len(results) == 2 and len(errors) == 1, results
        loser = next(iter(errors))
        winner = "bob" if loser == "alice" else "alice"
        assert "since you read it" in str(errors[loser]) and f"by {winner}" in str(errors[loser])
        final = props(small, triple)
        assert final["curated_by"] == winner and final["rev"] > target["rev"]
        assert [h["by"] for h in history.triple_history(small, triple)] == [winner]
    assert versions.verify(small)["consistent"]


def test_concurrent_changes_to_different_triples_all_land(small):
    rows = page(small, Filters(status="rejected"), limit=6).rows
    start = threading.Barrier(len(rows))
    errors = []

    def go(row, i):
        start.wait()
        try:
            decide(small, [Decision("accept", (row["head"], row["relation"], row["tail"]))], by=f"c{i}")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=go, args=(r, i)) for i, r in enumerate(rows)]
    [t.start() for t in threads]
    [t.join(timeout=60) for t in threads]
    assert not errors
    assert all(props(small, (r["head"], r["relation"], r["tail"]))["status"] == "accepted" for r in rows)
    assert versions.verify(small)["consistent"]


def test_versions_exports_and_diff(small, run_cli, tmp_path):
    v0 = json.loads(run_cli("versions", "--json").stdout)["versions"][-1]["version"]
    run_cli("export", "-o", str(tmp_path / "a.tsv"))
    assert json.loads((tmp_path / "a.tsv.meta.json").read_text())["graph_version"] == v0
    decide(small, [Decision("accept", REJECTED)], by="alice")
    decide(small, [Decision("reject", ACCEPTED)], by="alice")
    res = run_cli("versions", "--verify")
    assert res.exit_code == 0 and "verified" in res.output
    listed = json.loads(run_cli("versions", "--json").stdout)["versions"]
    v2 = listed[-1]["version"]
    assert [v["cause"] for v in listed[-2:]] == ["accept by alice", "reject by alice"]
    run_cli("export", "-o", str(tmp_path / "b.tsv"))
    assert json.loads((tmp_path / "b.tsv.meta.json").read_text())["graph_version"] == v2

    d = json.loads(run_cli("diff", v0[:10], v2[:10], "--json").stdout)
    assert (d["added"], d["removed"]) == ([list(REJECTED)], [list(ACCEPTED)])
    back = json.loads(run_cli("diff", v2[:10], v0[:10], "--json").stdout)
    assert (back["added"], back["removed"]) == ([list(ACCEPTED)], [list(REJECTED)])
    assert "+ " + bar(REJECTED) in run_cli("diff", v0[:8]).output
    # Files from the two exports differ by exactly those triples.
    a = set((tmp_path / "a.tsv").read_text().splitlines())
    b = set((tmp_path / "b.tsv").read_text().splitlines())
    assert (b - a, a - b) == ({"\t".join(REJECTED)}, {"\t".join(ACCEPTED)})


def test_ingest_keeps_curators_decisions_and_the_version_consistent(small, akg_dir, tmp_path):
    decide(small, [Decision("reject", ACCEPTED)], by="alice")
    lines = (akg_dir / "AKG_raw.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:3001]
    bigger = tmp_path / "more" / "AKG_raw.tsv"
    bigger.parent.mkdir()
    bigger.write_text("".join(lines), encoding="utf-8")
    summary = ingest(small, [read_file(bigger)])
    assert summary.triples_created == 1500 and summary.change_id
    assert props(small, ACCEPTED)["status"] == "rejected"
    assert versions.verify(small)["consistent"]
    change, items = history.get_change(small, summary.change_id)
    assert change["action"] == "ingest" and json.loads(change["summary"])["triples_created"] == 1500
    assert items and all(i.after["status"] == "accepted" for i in items)
    with pytest.raises(InputError, match="is an ingest"):
        history.revert(small, summary.change_id, by="x")


def test_queue_filters_and_pages(small, run_cli):
    everything = page(small, Filters(status=None), limit=5000)
    rejected = page(small, Filters(status="rejected"), limit=5000)
    assert everything.total == 1500 and 0 < rejected.total < 1500
    assert all(r["status"] == "rejected" and r["verdict"] == "no" for r in rejected.rows)
    assert page(small, Filters(status=None, verdict="no"), limit=1).total == rejected.total
    one_rel = page(small, Filters(status=None, relation="BELONGS_TO_CLASS"), limit=5000)
    assert one_rel.total and {r["relation"] for r in one_rel.rows} == {"belongs to class"}
    head = page(small, Filters(status=None, head="A_Capella"), limit=5000)
    assert head.total and {r["head"] for r in head.rows} == {"a capella"}
    first, second = (page(small, Filters(status="rejected"), offset=o, limit=7) for o in (0, 7))
    assert [r["tail"] for r in first.rows + second.rows] == [r["tail"] for r in rejected.rows[:14]]
    out = json.loads(run_cli("curate", "list", "--status", "rejected", "--limit", "3", "--json").stdout)
    assert out["total"] == rejected.total and len(out["rows"]) == 3 and out["rows"][0]["rev"] == 0
    assert run_cli("curate", "list", "--relation", "nope").exit_code == 1


def test_suggestions_are_queued_pending_and_accepting_them_makes_models_stale(graph, akg_dir, server_env, run_cli):
    from akg_loader.export import export_triples
    from helpers import load_akg_with_small_kge
    from kge import store
    from kge.workflows import current_train_hash, staleness

    root = load_akg_with_small_kge(graph, akg_dir, server_env.home, name="small", evaluate_after=False)
    stored = store.resolve("small", root)
    assert staleness(stored, current_train_hash(graph)) is None
    n_train = len(export_triples(graph).triples)

    res = run_cli("curate", "suggest", "--model", "small", "--top", "25", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["queued"] and len(out["suggestions"]) == 25
    scores = [s["score"] for s in out["suggestions"]]
    assert scores == sorted(scores, reverse=True)
    queued = page(graph, Filters(status="pending"), limit=100)
    assert queued.total == 25
    assert all(r["suggested_by"] == "small" and r["score"] is not None and r["sources"] == ["kge"] for r in queued.rows)
    assert {(r["head"], r["relation"], r["tail"]) for r in queued.rows} == {
        (s["head"], s["relation"], s["tail"]) for s in out["suggestions"]}
    # Suggesting again proposes none of those (they are in the graph now, pending).
    again = json.loads(run_cli("curate", "suggest", "--model", "small", "--top", "25", "--dry-run", "--json").stdout)
    assert not again["queued"]
    assert not {(s["head"], s["relation"], s["tail"]) for s in again["suggestions"]} & {
        (s["head"], s["relation"], s["tail"]) for s in out["suggestions"]}

    picked = queued.rows[:5]
    decide(graph, [Decision("accept", (r["head"], r["relation"], r["tail"]), rev=r["rev"]) for r in picked], by="alice")
    assert len(export_triples(graph).triples) == n_train + 5
    assert "retrain" in staleness(stored, current_train_hash(graph))
    models = json.loads(run_cli("models", "--json").stdout)
    assert any(m.get("stale") for m in (models if isinstance(models, list) else models["models"]))
    # Reverting the suggestion batch is refused now (five of them were decided since) ...
    with pytest.raises(ConflictError):
        history.revert(graph, out["change"], by="alice")
    assert page(graph, Filters(status="pending"), limit=100).total == 20


def test_keyset_paging_skips_nothing_while_decisions_empty_the_queue(small, run_cli):
    everything = page(small, Filters(status="rejected"), limit=5000).rows
    first = page(small, Filters(status="rejected"), limit=5).rows
    assert first == everything[:5]
    decide(small, [Decision("accept", (r["head"], r["relation"], r["tail"])) for r in first[:3]], by="alice")
    after = (first[-1]["head"], first[-1]["relation"], first[-1]["tail"])
    nxt = page(small, Filters(status="rejected"), limit=5, after=after).rows
    assert nxt == everything[5:10]          # by offset 5 it would have skipped three rows
    one = page(small, Filters(status="rejected", relation="event composed of"), limit=2).rows
    more = page(small, Filters(status="rejected", relation="event composed of"), limit=2,
                after=(one[-1]["head"], one[-1]["relation"], one[-1]["tail"])).rows
    alike = [r for r in page(small, Filters(status="rejected"), limit=5000).rows if r["relation"] == "event composed of"]
    assert one + more == alike[:4] and page(small, Filters(status="rejected", relation="event composed of")).total == len(alike)
    out = run_cli("curate", "list", "--status", "rejected", "--limit", "5", "--after", "|".join(after))
    assert out.exit_code == 0 and out.output.splitlines()[1].startswith("|".join(
        (everything[5]["head"], everything[5]["relation"], everything[5]["tail"])))
    assert "next page: --after" in out.output


def test_revisions_are_never_reused_and_undoing_a_revert_frees_the_original(small):
    """A triple deleted by a revert and added again is a new revision: a decision about the old
    one is a conflict. Reverting a revert puts the original change back in force."""
    t = ("puppy yelping", "has parent", "dog")
    added = decide(small, [Decision("add", t)], by="bob").committed
    seen = props(small, t)["rev"]
    undo = history.revert(small, added.change_id, by="bob")
    assert props(small, t) is None
    decide(small, [Decision("add", t)], by="carol")
    assert props(small, t)["rev"] > seen
    with pytest.raises(ConflictError):
        decide(small, [Decision("reject", t, rev=seen)], by="alice")
    with pytest.raises(ConflictError):      # carol's add moved the triple since bob's revert
        history.revert(small, undo.change_id, by="bob")

    first = decide(small, [Decision("accept", REJECTED)], by="alice").committed
    undo = history.revert(small, first.change_id, by="alice")
    redo = history.revert(small, undo.change_id, by="alice")     # redo: accepted again
    assert props(small, REJECTED)["status"] == "accepted"
    assert not history.get_change(small, first.change_id)[0].get("reverted_by")   # in force again
    with pytest.raises(ConflictError, match="since you read it"):  # the triple's latest write is the redo
        history.revert(small, first.change_id, by="alice")
    history.revert(small, redo.change_id, by="alice")
    assert props(small, REJECTED)["status"] == "rejected"
    assert versions.verify(small)["consistent"]
