"""Training and test triples for the KGE, taken from the graph (never from TSV files directly).

Training: accepted triples of the train split. Test: accepted triples of the test split. Both are
exported through `akg_loader.export`, so they carry the content hash that a model records.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pykeen.triples import TriplesFactory
from pykeen.triples.triples_factory import create_relation_mapping

from akg.errors import AkgError

Triple = tuple[str, str, str]


@dataclass
class Split:
    triples: list[Triple]
    sha256: str


@dataclass
class Dataset:
    train: Split
    test: Split
    graph_version: str


def from_graph(graph, *, need_test: bool = True) -> Dataset:
    """Accepted train and test triples, and the graph's version, from one consistent read."""
    from akg_loader.export import split_triples  # the graph side, imported only when used

    train, test = split_triples(graph)
    if not train.triples:
        raise AkgError("the graph has no accepted training triples: ingest the AKG first (akg ingest AKG_pruned.tsv)")
    if need_test and not test.triples:
        raise AkgError("the graph has no test split: ingest a test file first (akg ingest AKG_test.tsv)")
    return Dataset(Split(train.triples, train.sha256), Split(test.triples, test.sha256), train.graph_version)


def training_factory(triples: list[Triple], *, inverse: bool = False) -> TriplesFactory:
    """PyKEEN's factory from id-mapped triples, with the id maps `from_labeled_triples` would make.

    `from_labeled_triples` takes a numpy string array, whose every cell is as wide as the longest
    name: one 100,000-character entity name would make 20,000 triples cost 24 GB. Here memory grows
    with the number of triples, not with name lengths. Everything is built as PyKEEN builds it
    (entities: sorted unique heads and tails; relations: its own `create_relation_mapping`;
    triples: distinct id rows, sorted), so models and seeds give the same results as before.
    (PyKEEN would also drop relations ending in "_inverse"; the AKG's allowlist has none.)
    """
    entity_to_id = {name: i for i, name in enumerate(sorted({h for h, _, _ in triples} | {t for _, _, t in triples}))}
    relation_to_id = create_relation_mapping({r for _, r, _ in triples})
    mapped = torch.tensor([(entity_to_id[h], relation_to_id[r], entity_to_id[t]) for h, r, t in triples],
                          dtype=torch.long).reshape(-1, 3)
    mapped = torch.unique(mapped, dim=0)  # as PyKEEN's mapping does: distinct rows, sorted by (head, relation, tail)
    return TriplesFactory(mapped_triples=mapped, entity_to_id=entity_to_id, relation_to_id=relation_to_id,
                          create_inverse_triples=inverse)


@dataclass
class MappedTest:
    """Test triples as ids; `unknown` counts those whose head, relation or tail the model never saw."""
    mapped: torch.Tensor   # (n_known, 3) long
    known: list[Triple]
    unknown: list[Triple]

    @property
    def total(self) -> int:
        return len(self.known) + len(self.unknown)


def map_test(triples: list[Triple], entity_to_id: dict[str, int], relation_to_id: dict[str, int]) -> MappedTest:
    known, unknown, rows = [], [], []
    for h, r, t in triples:
        if h in entity_to_id and t in entity_to_id and r in relation_to_id:
            known.append((h, r, t))
            rows.append((entity_to_id[h], relation_to_id[r], entity_to_id[t]))
        else:
            unknown.append((h, r, t))
    mapped = torch.as_tensor(rows, dtype=torch.long).reshape(-1, 3)
    return MappedTest(mapped, known, unknown)
