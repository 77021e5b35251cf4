"""1-vs-all training: each triple's true answer against every entity, with PyKEEN's models and losses.

For each training triple (h, r, t) the model scores every entity as the tail of (h, r, ?) and as
the head of (?, r, t), and the loss (PyKEEN's, by default its cross-entropy over the softmax of
all ~4,300 scores) pushes the true answer up against all others at once: no negatives are drawn,
so no epoch is wasted on easy ones. With reciprocal relations (`inverse_triples`, PyKEEN's
create_inverse_triples) heads are asked as the tails of (t, r^-1, ?), so every query is a tail
query. This is the "1vsAll" training of Lacroix et al. (2018) and Ruffinelli et al. (2020).

Why not PyKEEN's LCWATrainingLoop (`training_loop="lcwa"`, kept): it scores all tails through the
generic interaction, which for DistMult broadcasts (batch x entities x dim) tensors (several GB,
over a minute an epoch on 2 cores); here the scores of RotatE, ComplEx and DistMult are one
matrix product each (kge/scoring.py), other models use PyKEEN's own score_t/score_h.

Regularisation: the model's own PyKEEN regularizer (collected as PyKEEN's loops collect it), or
N3 (`regularizer="n3"`): weight x the sum over the batch's factors (head, relation, tail
embeddings) of their moduli cubed, divided by the batch size, as Lacroix et al. define it.
Label smoothing is PyKEEN's (the loss's process_lcwa_scores). The model stays an ordinary PyKEEN
model: it is evaluated, saved, loaded and asked like any other.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from pykeen.losses import CrossEntropyLoss

from kge.lean import run_epochs
from kge.scoring import query_ids, reciprocal, scores, tables


def _queries(model, triples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every training query as (row, is_head): a reciprocal model's rows are all tail queries
    (h, 2r, t) and (t, 2r+1, h); another's are each triple twice, as a tail and as a head query."""
    if reciprocal(model):
        rows = torch.cat([query_ids(model, triples, "tail"), query_ids(model, triples, "head")])
        return rows, torch.zeros(len(rows), dtype=torch.bool)
    rows = torch.cat([triples, triples])
    return rows, torch.arange(len(rows)) >= len(triples)


def n3(model, rows: torch.Tensor) -> torch.Tensor:
    """Sum over the rows' head, relation and tail embeddings of their moduli cubed, per row."""
    ent, rel = tables(model)
    parts = (ent[rows[:, 0]], rel[rows[:, 1]], ent[rows[:, 2]])
    return sum(p.abs().pow(3).reshape(len(rows), -1).sum(1) for p in parts)


def _loss(loss, predicted: torch.Tensor, answer: torch.Tensor, label_smoothing: float, n_ent: int) -> torch.Tensor:
    """The loss of each row's scores against its one true answer. PyKEEN's cross-entropy is torch's
    with one-hot labels (smoothed as torch smooths them: 1 - e for the answer plus e / n for every
    entity); it is computed here from the answers' indices, the same value without the dense
    (batch x entities) label matrix. Any other PyKEEN loss gets that matrix."""
    if type(loss) is CrossEntropyLoss and loss.reduction == "mean":
        return torch.nn.functional.cross_entropy(predicted, answer, label_smoothing=label_smoothing)
    labels = torch.zeros_like(predicted)
    labels[torch.arange(len(answer), device=predicted.device), answer] = 1.0
    return loss.process_lcwa_scores(predictions=predicted, labels=labels, label_smoothing=label_smoothing or None,
                                    num_entities=n_ent)


def train_1vsall(model, factory, *, epochs: int, batch_size: int, learning_rate: float, seed: int,
                 label_smoothing: float = 0.0, n3_weight: float = 0.0, progress: bool = False,
                 on_epoch: Callable[[int, float, object], None] | None = None) -> list[float]:
    device = next(model.parameters()).device
    rows, is_head = _queries(model, factory.mapped_triples)
    rows, is_head = rows.to(device), is_head.to(device)
    n_ent = model.num_entities

    def step(idx: torch.Tensor) -> torch.Tensor:
        batch, heads = rows[idx], is_head[idx]
        model.collect_regularization_term()  # drop anything left from outside this step
        parts, answers = [], []
        for side, mask in (("tail", ~heads), ("head", heads)):
            if bool(mask.any()):
                parts.append(scores(model, batch[mask], side))
                answers.append(batch[mask][:, 2 if side == "tail" else 0])
        loss = _loss(model.loss, torch.cat(parts), torch.cat(answers), label_smoothing, n_ent)
        loss = loss + model.collect_regularization_term()
        if n3_weight:
            loss = loss + n3_weight * n3(model, batch).mean()
        return loss

    return run_epochs(model, step, len(rows), epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                      generator=torch.Generator(device="cpu").manual_seed(seed), progress=progress, on_epoch=on_epoch)
