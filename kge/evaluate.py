"""Filtered rank-based link-prediction metrics, the same numbers as PyKEEN's RankBasedEvaluator, fast.

For every test triple, the model scores all candidate tails for (h, r) and all candidate heads for
(r, t) in large batches. Other known true answers (from the filter triples: train plus test) are
excluded from the ranking, as PyKEEN does by setting them to NaN; ties are ranked realistically
(the mean of the optimistic and pessimistic rank). MRR and Hits@k are averaged over both sides.
What PyKEEN spends its time on is per-batch Python bookkeeping and sparse filter construction;
here the filter is built once for all test triples as flat index arrays.

Test triples with an entity the model never saw can only be missed by a plain model: `known`
excludes them, `all` counts them as misses on both sides (reciprocal rank 0, no hits), and `new`
reports them alone. A grounded model (kge/grounded.py) scores them, with the new entities added to
the candidates, so its `known`, `new` and `all` are all ranks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import torch

from kge.scoring import score_all

KS = (1, 3, 5, 10)


def _filter_index(queries: torch.Tensor, answers: torch.Tensor, pos_keys: torch.Tensor, pos_answers: torch.Tensor):
    """For each query (a key), the answers that are true in the filter set, as (query row, answer) pairs.

    `queries` (n,) keys of the evaluated triples; `pos_keys`/`pos_answers` (m,) all true triples.
    Implemented with a sort and searchsorted: no Python loop over triples.
    """
    order = torch.argsort(pos_keys)
    keys_sorted, answers_sorted = pos_keys[order], pos_answers[order]
    start = torch.searchsorted(keys_sorted, queries, right=False)
    end = torch.searchsorted(keys_sorted, queries, right=True)
    counts = end - start
    rows = torch.repeat_interleave(torch.arange(len(queries)), counts)
    offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    cols = answers_sorted[torch.repeat_interleave(start, counts) + offsets]
    keep = cols != answers[rows]  # the evaluated triple itself stays
    return rows[keep], cols[keep]


def ranks(model, mapped: torch.Tensor, filter_triples: torch.Tensor, *, batch_size: int = 512,
          progress: Callable[[int], None] | None = None) -> dict[str, torch.Tensor]:
    """Realistic filtered ranks of every triple of `mapped`, per side: {'head': (n,), 'tail': (n,)}."""
    model.eval()
    device = next(model.parameters()).device
    mapped, filter_triples = mapped.cpu(), filter_triples.cpu()  # index work on the CPU, scoring on the model's device
    n_ent = model.num_entities
    out = {}
    h, r, t = mapped[:, 0], mapped[:, 1], mapped[:, 2]
    fh, fr, ft = filter_triples[:, 0], filter_triples[:, 1], filter_triples[:, 2]
    n_rel = int(max(int(fr.max()), int(r.max()) if len(r) else 0)) + 1
    for side, query_key, answer, pos_key, pos_answer in (
        ("tail", h * n_rel + r, t, fh * n_rel + fr, ft),
        ("head", t * n_rel + r, h, ft * n_rel + fr, fh),
    ):
        frow, fcol = _filter_index(query_key, answer, pos_key, pos_answer)
        result = torch.empty(len(mapped), dtype=torch.float64)
        with torch.inference_mode():
            for start in range(0, len(mapped), batch_size):
                stop = min(start + batch_size, len(mapped))
                batch = mapped[start:stop].to(device)
                scores = score_all(model, batch, side)
                idx = torch.arange(stop - start, device=scores.device)
                true = scores[idx, answer[start:stop].to(device)].unsqueeze(1)
                sel = (frow >= start) & (frow < stop)
                scores[(frow[sel] - start).to(device), fcol[sel].to(device)] = float("nan")
                optimistic = (scores > true).sum(dim=1) + 1
                pessimistic = (scores >= true).sum(dim=1)
                result[start:stop] = ((optimistic + pessimistic).double() * 0.5).cpu()
                if progress:
                    progress(stop - start)
        out[side] = result
    assert n_ent == model.num_entities
    return out


def metrics_from_ranks(side_ranks: dict[str, torch.Tensor], *, misses: int = 0) -> dict[str, float]:
    """MRR and Hits@k over both sides; `misses` extra triples count as misses on both sides."""
    both = torch.cat([side_ranks["head"], side_ranks["tail"]])
    n = len(both) + 2 * misses
    if n == 0:
        return {"mrr": 0.0, **{f"hits@{k}": 0.0 for k in KS}, "triples": 0}
    result = {"mrr": float((1.0 / both).sum() / n)}
    for k in KS:
        result[f"hits@{k}"] = float((both <= k).double().sum() / n)
    result["triples"] = n // 2
    return result


def evaluate(model, mapped: torch.Tensor, filter_triples: torch.Tensor, *, unknown: int = 0,
             new: torch.Tensor | None = None, new_unknown: int | None = None,
             relations: Sequence[str] | None = None, unknown_relations: Sequence[str] = (),
             batch_size: int = 512, progress: Callable[[int], None] | None = None) -> dict:
    """{'known': metrics over the scorable triples that involve no new entity, 'new': over those that
    do, 'all': over every triple, with the `unknown` ones that could not be scored counted as misses}.

    `new` (bool, one per row of `mapped`) marks scored triples with an entity unseen in training (a
    grounded model scores them); `new_unknown` of the unscored triples involve one (default: all).
    With `relations` (the relation name of each row of `mapped`) and `unknown_relations` (of each
    unscored triple), 'per_relation' gives each relation's 'known' and 'all' metrics too.
    """
    side_ranks = ranks(model, mapped, filter_triples, batch_size=batch_size, progress=progress)
    if new is None:
        new = torch.zeros(len(mapped), dtype=torch.bool)
    new = new.cpu()
    known_ranks = {side: r[~new] for side, r in side_ranks.items()}
    new_ranks = {side: r[new] for side, r in side_ranks.items()}
    out = {"known": metrics_from_ranks(known_ranks), "all": metrics_from_ranks(side_ranks, misses=unknown),
           "new": metrics_from_ranks(new_ranks, misses=unknown if new_unknown is None else new_unknown)}
    if relations is not None:
        out["per_relation"] = per_relation(side_ranks, relations, new, unknown_relations)
    return out


def per_relation(side_ranks: dict[str, torch.Tensor], relations: Sequence[str], new: torch.Tensor,
                 unknown_relations: Sequence[str] = ()) -> dict[str, dict[str, dict[str, float]]]:
    """relation -> {'known': metrics over its scored triples without a new entity, 'all': over all
    its triples, the unscored ones counted as misses}, relations in name order."""
    if len(relations) != len(new):
        raise ValueError(f"{len(relations)} relation names for {len(new)} ranked triples")
    misses = Counter(unknown_relations)
    out = {}
    for name in sorted(set(relations) | set(misses)):
        rows = torch.tensor([r == name for r in relations], dtype=torch.bool)
        known = rows & ~new
        out[name] = {"known": metrics_from_ranks({side: r[known] for side, r in side_ranks.items()}),
                     "all": metrics_from_ranks({side: r[rows] for side, r in side_ranks.items()}, misses=misses[name])}
    return out


def per_relation_rows(table: dict) -> list[dict]:
    """`per_relation` metrics as flat rows (relation; known triples, MRR, Hits@10; all triples, MRR,
    Hits@10), the lowest known MRR first, relations without a known test triple last (MRR None):
    the table `akg evaluate --per-relation` prints and the explorer's model card shows."""
    rows = []
    for name, m in table.items():
        k, a = m["known"], m["all"]
        rows.append({"relation": name, "known triples": k["triples"], "MRR known": k["mrr"] if k["triples"] else None,
                     "Hits@10 known": k["hits@10"] if k["triples"] else None, "all triples": a["triples"],
                     "MRR all": a["mrr"], "Hits@10 all": a["hits@10"]})
    return sorted(rows, key=lambda r: (r["MRR known"] is None, r["MRR known"] or 0.0, r["relation"]))
