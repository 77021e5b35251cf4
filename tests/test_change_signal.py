"""Warm answers (known tails, facts, neighbourhoods) follow the graph: a change made from this
AKG_HOME shows in the next answer, one made from elsewhere within AKG_REMOTE_CHANGES_WITHIN seconds.

"Elsewhere" is a second connection to the same real server whose AKG_HOME is another folder (as a
curator on another machine sharing a Neo4j by AKG_URI): its writes reach the graph but cannot
renew this home's signal file.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

import akg
from akg.api import KnowledgeGraph
from akg.change_signal import signal_path
from akg.connect import connect

sys.path.insert(0, str(Path(__file__).parent))
from test_api import TEST, TRAIN, write_akg  # noqa: E402

PAIR = ("dog", "occurs in")
FACT = ("dog", "occurs in", "park")


@pytest.fixture
def small(server_env, graph, tmp_path):
    from helpers import wipe

    wipe(graph)
    with akg.open() as kg:
        kg.ingest([write_akg(tmp_path / "small_pruned.tsv", TRAIN), write_akg(tmp_path / "small_test.tsv", TEST)])
    yield server_env


def view(settings, *, within: float, home: Path | None = None) -> KnowledgeGraph:
    """A KnowledgeGraph on the session's server; `home` another AKG_HOME for its signal file."""
    s = dataclasses.replace(settings, remote_changes_within=within)
    g = connect(s)
    if home is not None:
        g.home = home
    return KnowledgeGraph(s, g)


def status_of_park(kg: KnowledgeGraph) -> str:
    return next(f["status"] for f in kg.facts("dog").data if (f["relation"], f["other"]) == ("occurs in", "park"))


def parks(kg: KnowledgeGraph) -> bool:
    return "park" in kg.known_tails(*PAIR)


def test_a_change_from_this_home_shows_at_once_even_with_a_long_bound(small):
    with view(small, within=3600) as reader, view(small, within=3600) as writer:
        assert parks(reader) and status_of_park(reader) == "accepted"
        before = reader.neighbourhood("dog").data
        writer.curate.reject(FACT, by="test")
        assert not parks(reader) and status_of_park(reader) == "rejected"
        assert reader.neighbourhood("dog").data != before
        writer.curate.accept(FACT, by="test")
        assert parks(reader) and status_of_park(reader) == "accepted"
        assert reader.neighbourhood("dog").data == before


def test_a_change_from_elsewhere_shows_within_the_bound(small, tmp_path):
    elsewhere = tmp_path / "another-home"
    elsewhere.mkdir()
    with view(small, within=3600) as patient, view(small, within=0) as strict, \
            view(small, within=3600, home=elsewhere) as remote:
        assert parks(patient) and parks(strict)
        remote.curate.reject(FACT, by="remote curator")
        assert signal_path(elsewhere, remote.graph.database).exists()  # it renewed its own home's file only
        assert not parks(strict)   # bound 0: the change log's head is read on every call
        assert parks(patient)      # bound an hour: this home's file did not move, the answer is the kept one
        patient._known.watch.recheck = 0.0  # the bound passing
        assert not parks(patient)
        remote.curate.accept(FACT, by="remote curator")


def test_an_unwritable_signal_falls_back_to_reading_the_head(small, tmp_path):
    locked = tmp_path / "no-signal"
    locked.mkdir()
    signal_path(locked, small.database).mkdir()  # where the file should be, a folder: it can be neither read nor replaced
    with view(small, within=3600, home=locked) as kg, view(small, within=3600) as writer:
        assert parks(kg)
        writer.curate.reject(FACT, by="test")
        assert not parks(kg)  # no token to trust: the head is read every time
        writer.curate.accept(FACT, by="test")
