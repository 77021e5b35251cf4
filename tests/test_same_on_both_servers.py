"""The same answers from either graph server (run by `make test` on the embedded server and by `make
test-neo4j` on Neo4j): every expected value here is worked out from the AKG's TSV files in Python,
with no server, so both servers meeting them means both give the same version hash, export bytes
and trained model."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import torch

from akg.hashing import set_version, tsv_lines
from akg.names import normalise_name
from akg.relations import normalise_relation
from kge.data import training_factory
from kge.presets import TrainConfig
from kge.train import train

FILES = ("AKG_pruned.tsv", "AKG_raw.tsv", "AKG_test.tsv")
SMALL = TrainConfig(model="RotatE", embedding_dim=16, learning_rate=0.01, batch_size=512, epochs=2,
                    training_loop="lean", negatives=32, loss="nssa",
                    loss_kwargs={"margin": 9.0, "adversarial_temperature": 1.0}, seed=7, preset="test")


def from_files(akg_dir) -> dict[tuple[str, str, str], tuple[str, str]]:
    """Each triple's (status, split), from the files alone: accepted if any file accepts it (pruned and
    test rows, 'Yes.' rows), test if a test file has it."""
    state: dict[tuple[str, str, str], tuple[str, str]] = {}
    for name in FILES:
        df = pd.read_csv(akg_dir / name, sep="\t", dtype=str, keep_default_na=False)
        for head, relation, tail, response in zip(df["head"], df["relation"], df["tail"], df["response"]):
            triple = (normalise_name(head), normalise_relation(relation), normalise_name(tail))
            accepted = "pruned" in name or "test" in name or response.strip().lower().rstrip(".") == "yes"
            old_status, old_split = state.get(triple, ("rejected", "train"))
            state[triple] = ("accepted" if accepted or old_status == "accepted" else "rejected",
                             "test" if "test" in name or old_split == "test" else "train")
    return state


def test_version_export_and_model_equal_what_the_files_give(empty_graph, akg_dir, run_cli, tmp_path):
    assert run_cli("ingest", *(str(akg_dir / f) for f in FILES)).exit_code == 0
    expected = from_files(akg_dir)
    accepted = [t for t, (status, _) in expected.items() if status == "accepted"]
    train_rows = sorted(t for t, (status, split) in expected.items() if (status, split) == ("accepted", "train"))
    assert (len(expected), len(accepted), len(train_rows)) == (51254, 20387, 18348)

    # the graph's version: the hash of its accepted triples, recorded by the change log and recomputed
    listed = json.loads(run_cli("versions", "--verify", "--json").stdout)
    assert listed["verify"]["consistent"]
    assert listed["versions"][-1]["version"] == set_version(accepted)

    # the export: the same bytes as the sorted TSV of the files' accepted training triples
    out = tmp_path / "train.tsv"
    assert run_cli("export", "-o", str(out)).exit_code == 0
    assert out.read_bytes() == "".join(tsv_lines(train_rows)).encode("utf-8")
    meta = json.loads((tmp_path / "train.tsv.meta.json").read_text())
    assert meta["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert meta["graph_version"] == set_version(accepted)

    # the model: trained from the graph, it equals the one trained from the files' triples (same seed)
    from kge.data import from_graph

    data = from_graph(empty_graph)
    assert data.train.triples == train_rows
    from_graph_weights = train(SMALL, training_factory(data.train.triples)).model.state_dict()
    from_files_weights = train(SMALL, training_factory(train_rows)).model.state_dict()
    assert from_graph_weights.keys() == from_files_weights.keys()
    assert all(torch.equal(from_graph_weights[k], from_files_weights[k]) for k in from_files_weights)
