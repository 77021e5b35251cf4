"""Scores of every candidate entity at once, as a matrix product where the model allows it.

PyKEEN's generic `model.predict` broadcasts (batch, entities, dim) tensors, several GB for RotatE at
dim 256 on the AKG, and spends almost all of evaluation's time there. For RotatE, ComplEx and
DistMult the scores against all entities have closed forms built on one matrix product:

- RotatE:   -||q - e||  with  q = h*r (tails) or q = t*conj(r) (heads, |r| = 1), and
            ||q - e||^2 = ||q||^2 + ||e||^2 - 2 Re<q, e>   (computed in float64 for exact ranks)
- ComplEx:  Re<h*r, conj(e)> (tails) and Re<e, r*conj(t)> (heads)
- DistMult: <h*r, e> (tails) and <e, r*t> (heads)

Other models use PyKEEN's `score_t`/`score_h`. A test checks that both paths give the same scores
and the same metrics as PyKEEN's evaluator.

Models trained with reciprocal (inverse) relations hold two relation rows per relation, 2r (forward)
and 2r+1 (inverse), and answer (?, r, t) as the tails of (t, r^-1, ?), as PyKEEN's `predict_h`
does; relation ids given here are always the plain ones of relations.json, mapped by
`query_ids` with the model's own relation inverter.
"""

from __future__ import annotations

import torch


def _entities(model) -> torch.Tensor:
    return model.entity_representations[0](indices=None)


def neg_distances(q: torch.Tensor, cand: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """-||q_i - c_j|| for all pairs via ||q||^2 + ||c||^2 - 2 q.c; q (B, D), cand (K, D) -> (B, K).

    `floor` keeps the square root away from 0 where gradients are needed (training).
    """
    sq = (q * q).sum(1, keepdim=True) + (cand * cand).sum(1).unsqueeze(0) - 2.0 * q @ cand.T
    return -sq.clamp_min(floor).sqrt()


def cmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Complex product on real views (..., d, 2): autograd through real tensors, several times
    cheaper on the CPU than through complex ones."""
    re = a[..., 0] * b[..., 0] - a[..., 1] * b[..., 1]
    im = a[..., 0] * b[..., 1] + a[..., 1] * b[..., 0]
    return torch.stack((re, im), dim=-1)


def conj(a: torch.Tensor) -> torch.Tensor:
    return torch.stack((a[..., 0], -a[..., 1]), dim=-1)


def _real(x: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(x.resolve_conj())


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def tables(model) -> tuple[torch.Tensor, torch.Tensor]:
    """All entity and all relation embeddings, each read once: rows are then picked by indexing,
    which is far cheaper than PyKEEN's per-index lookup (a sort for unique indices) in training."""
    return _entities(model), model.relation_representations[0](indices=None)


def _rotate(model, batch, side, precise=True):
    ent, rel = (_real(x) for x in tables(model))
    r = rel[batch[:, 1]]
    if side == "tail":
        q = cmul(ent[batch[:, 0]], r)
    else:
        q = cmul(ent[batch[:, 2]], conj(r))
    q, e = _flat(q), _flat(ent)
    if precise:
        q, e = q.double(), e.double()
    return neg_distances(q, e, floor=0.0 if precise else 1e-12)  # a floor keeps training's gradients finite


def _complex(model, batch, side, precise=True):
    ent, rel = (_real(x) for x in tables(model))
    r = rel[batch[:, 1]]
    if side == "tail":
        q = cmul(ent[batch[:, 0]], r)                  # Re<q, conj(e)> = real(q) . real(e)
    else:
        q = conj(cmul(r, conj(ent[batch[:, 2]])))      # Re<e, q'> with q' = r conj(t)
    return _flat(q) @ _flat(ent).T


def _distmult(model, batch, side, precise=True):
    ent, rel = tables(model)
    return (ent[batch[:, 0] if side == "tail" else batch[:, 2]] * rel[batch[:, 1]]) @ ent.T


FAST = {"RotatE": _rotate, "ComplEx": _complex, "DistMult": _distmult}


def has_fast_path(model) -> bool:
    return type(model).__name__ in FAST


def reciprocal(model) -> bool:
    """Whether the model was trained with inverse relations (PyKEEN's create_inverse_triples)."""
    return bool(getattr(model, "use_inverse_triples", False))


def query_ids(model, batch: torch.Tensor, side: str) -> torch.Tensor:
    """(h, r, t) rows with plain relation ids -> rows with the model's own relation rows for
    predicting `side`: for a reciprocal model, tails of (h, 2r) and, for heads, tails of (t, 2r+1)
    written as (t, 2r+1, h); other models' rows unchanged."""
    if not reciprocal(model):
        return batch
    if side == "tail":
        return model.relation_inverter.map(batch=batch, index=1)
    return model.relation_inverter.map(batch=batch, index=1, invert=True).flip(1)


def scores(model, batch: torch.Tensor, side: str, *, precise: bool = False) -> torch.Tensor:
    """(batch, num_entities) scores with gradients, for rows whose relation ids are the model's own
    (`query_ids`): the closed forms where the model has them, else PyKEEN's score_t/score_h."""
    if has_fast_path(model):
        return FAST[type(model).__name__](model, batch, side, precise)
    if side == "tail":
        return model.score_t(hr_batch=batch[:, :2])
    return model.score_h(rt_batch=batch[:, 1:])


def score_all(model, batch: torch.Tensor, side: str, *, precise: bool = True) -> torch.Tensor:
    """(batch, num_entities) scores for the `side` ('head' or 'tail') of each (h, r, t) in `batch`
    (plain relation ids).

    `precise` (evaluation) computes RotatE distances in float64 so that near-ties rank exactly as
    PyKEEN ranks them; prediction only needs the top few and uses float32, four times cheaper.
    """
    with torch.inference_mode():
        if reciprocal(model):  # heads of (r, t) are the tails of (t, r^-1), as in PyKEEN's predict_h
            return scores(model, query_ids(model, batch, side), "tail", precise=precise)
        if has_fast_path(model):
            return scores(model, batch, side, precise=precise)
        return model.predict(hrt_batch=batch, target=side)
