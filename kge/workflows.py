"""The KGE workflows behind `akg train|evaluate|predict|models` (and the explorer): graph in, results out."""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from akg import queries
from akg.errors import InputError
from akg.graph import Graph
from kge import store
from kge.data import Dataset, from_graph, map_test, training_factory
from kge.evaluate import evaluate
from kge.features import default_cache_dir
from kge.presets import TrainConfig
from kge.train import train


def _progress_bar(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, unit="triple", disable=not enabled, file=sys.stderr)


def evaluate_on(model, entity_to_id: dict, relation_to_id: dict, data: Dataset, *, progress: bool = False,
                device: str = "cpu", feature_cache: Path | None = None, grounder=None) -> dict:
    """Filtered metrics on the graph's test split: 'known' (triples whose entities the model was
    trained on), 'new' (triples with an entity it never saw) and 'all', and 'per_relation' (each
    relation's 'known' and 'all'). A plain model can only miss
    the 'new' ones; a grounded model (kge/grounded.py) scores them, its candidates being the
    training entities plus the test's new entities, represented from their names' features."""
    from contextlib import ExitStack

    from kge import grounded

    train_mapped = map_test(data.train.triples, entity_to_id, relation_to_id).mapped
    new_names = sorted({x for h, _, t in data.test.triples for x in (h, t) if x not in entity_to_id})
    with ExitStack() as stack:
        ids = entity_to_id
        if new_names and grounded.is_grounded(model):
            grounder = grounder or grounded.Grounder.of(model, feature_cache, device=device)
            first = stack.enter_context(grounded.extended(model, grounder.features(new_names)))
            ids = {**entity_to_id, **{name: first + i for i, name in enumerate(new_names)}}
        test = map_test(data.test.triples, ids, relation_to_id)
        is_new = torch.tensor([h not in entity_to_id or t not in entity_to_id for h, _, t in test.known], dtype=torch.bool)
        new_unknown = sum(1 for h, _, t in test.unknown if h not in entity_to_id or t not in entity_to_id)
        filter_triples = torch.cat([train_mapped, test.mapped]).to(device)
        with _progress_bar(2 * len(test.known), "evaluate", progress) as bar:
            metrics = evaluate(model, test.mapped.to(device), filter_triples, unknown=len(test.unknown), new=is_new,
                               new_unknown=new_unknown, relations=[r for _, r, _ in test.known],
                               unknown_relations=[r for _, r, _ in test.unknown], progress=bar.update)
    unseen = int(is_new.sum()) + new_unknown
    metrics["test_triples"] = {"total": test.total, "known": metrics["known"]["triples"], "unseen_entities": unseen,
                               "scored": len(test.known), "new_entities": len(new_names)}
    return metrics


@dataclass
class Trained:
    path: Path
    metrics: dict | None
    train_seconds: float
    config: TrainConfig
    notes: list[str] = field(default_factory=list)   # for the user: e.g. example clips left unused


def train_from_graph(graph: Graph, config: TrainConfig, *, models_root: Path, name: str | None = None,
                     evaluate_after: bool = True, progress: bool = False, audio=None) -> Trained:
    """Train on the graph's accepted training triples, evaluate, save. `audio` (kge.grounded.AudioExamples,
    from reasoning.audio_grounding) gives an audio-grounded config its entities' example clips."""
    if name is not None:
        store.check_new_name(name, models_root)  # before minutes of training, not after
    data = from_graph(graph, need_test=False)
    factory = training_factory(data.train.triples, inverse=config.inverse_triples)
    features, feature_cache = None, default_cache_dir(Path(models_root).parent)  # models_root is AKG_HOME/models
    if config.grounding or audio is not None:  # the encoder resolved and recorded, the features computed or cached
        from kge.grounded import prepare

        if not config.grounding:
            raise InputError("example clips only apply to a model grounded in audio (--grounded text,audio)")
        config, features = prepare(config, sorted(factory.entity_to_id, key=factory.entity_to_id.get), feature_cache,
                                   audio=audio)
    result = train(config, factory, progress=progress, features=features)
    metrics = None
    if evaluate_after and data.test.triples:
        metrics = evaluate_on(result.model, factory.entity_to_id, factory.relation_to_id, data,
                              progress=progress, device=config.device, feature_cache=feature_cache)
    trained_on = {"train_sha256": data.train.sha256, "train_triples": len(data.train.triples),
                  "test_sha256": data.test.sha256, "graph_version": data.graph_version,
                  "entities": factory.num_entities, "relations": factory.num_relations}
    path = store.save(result.model, config, factory.entity_to_id, factory.relation_to_id, root=models_root,
                      name=name, metrics=metrics, losses=result.losses, trained_on=trained_on,
                      train_seconds=result.seconds)
    return Trained(path, metrics, result.seconds, config, list(getattr(features, "notes", [])))


def current_train_hash(graph: Graph) -> str:
    """The hash a model trained now would record: of the graph's accepted training triples."""
    from akg_loader.export import export_triples

    return export_triples(graph, split="train", status="accepted").sha256


def staleness(stored: store.StoredModel, current_train_sha256: str) -> str | None:
    """A warning when the graph's accepted training triples (their hash, from `current_train_hash`)
    differ from what the model saw."""
    now = current_train_sha256
    then = stored.trained_on.get("train_sha256")
    if then and now != then:
        return (f"the graph has changed since model {stored.name} was trained (its training triples "
                f"{then[:12]}…, the graph's now {now[:12]}…): retrain with `akg train`")
    return None


def known_tails(graph: Graph, head: str, relation: str) -> list[str]:
    return graph.read(queries.get("known_tails"), {"head": head, "relation": relation}, relation=relation)[0]["tails"]


def all_known(graph: Graph) -> dict[tuple[str, str], list[str]]:
    """Every accepted (head, relation) -> tails, for batch prediction."""
    from akg_loader.export import export_triples

    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for h, r, t in export_triples(graph, split=None, status="accepted").triples:
        out[(h, r)].append(t)
    return out
