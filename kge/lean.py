"""A lean training loop for RotatE: PyKEEN's model and loss, negatives shared across a batch.

PyKEEN's sLCWA loop scores each negative triple separately: with 64 negatives per positive at
dim 256 that is 1.2 million complex distance computations per epoch and about 14 s per epoch on
2 cores, most of it complex autograd. Here each batch draws K negative entities once, shared by
all of its positives, and scores every (query, negative) pair with one real matrix product:

    ||q - e||^2 = ||q||^2 + ||e||^2 - 2 <q, e>     (q = h*r for tails, q = t*conj(r) for heads)

so one batch gives each positive 2K negatives (K corrupted tails and K corrupted heads) for the
price of two (B x 2d) @ (2d x K) products. The parameters are PyKEEN's (`model.entity_representations`,
`model.relation_representations`), the loss is PyKEEN's (`loss.process_slcwa_scores`, e.g. NSSA,
which weights the hardest negatives most), and `model.post_parameter_update()` keeps relations on
the unit circle after each step, exactly as PyKEEN's own loops do. The trained model is an
ordinary PyKEEN RotatE: it is evaluated, saved and loaded like any other.

A grounded RotatE (kge/grounded.py) trains here too. Its entity representations are computed only
for the batch's entities (heads, tails and the K negatives, each once), since each costs a
projection of its features; the heads and tails lose their structural part with the modality
dropout probability, and each negative is scored twice, fused and from its features alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm import tqdm

from akg.errors import InputError
from kge.grounded import representation
from kge.scoring import cmul as _cmul
from kge.scoring import conj as _conj
from kge.scoring import neg_distances


def train_lean(model, factory, *, epochs: int, batch_size: int, negatives: int, learning_rate: float,
               seed: int, progress: bool = False,
               on_epoch: Callable[[int, float, object], None] | None = None) -> list[float]:
    if type(model).__name__ != "RotatE":
        raise InputError("the lean training loop is written for RotatE; train other models with the slcwa loop")
    device = next(model.parameters()).device
    triples = factory.mapped_triples.to(device)
    n, n_ent = len(triples), model.num_entities
    k = min(negatives, n_ent)
    grounded = representation(model)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    if grounded is not None:
        grounded.generator = gen  # modality dropout draws from the loop's generator: repeatable

    def step(idx: torch.Tensor) -> torch.Tensor:
        batch = triples[idx]
        h, r, t = batch[:, 0], batch[:, 1], batch[:, 2]
        b = len(batch)
        if grounded is None:
            ent = torch.view_as_real(model.entity_representations[0](indices=None))      # (E, d, 2)
            eh, et = ent[h], ent[t]
        else:
            # a grounded representation projects features: only the batch's entities, each once
            # (and its modality dropout drops an entity's structural part for the whole batch)
            cand_idx = torch.randint(0, n_ent, (k,), generator=gen).to(device)
            uniq, inv = torch.unique(torch.cat([h, t, cand_idx]), return_inverse=True)
            s_, p_, missing = grounded.parts(uniq)
            # positives: modality dropout (a dropped entity is its features alone), so that features
            # alone learn to land where the relation points; negatives: each shared negative twice,
            # fused and features alone, so that features alone also learn to stay away from wrong
            # queries (else a new entity, which has nothing but features, outranks true answers)
            emb = torch.view_as_real(grounded.fuse(s_, p_, missing | grounded.dropout_mask(len(uniq))))
            eh, et = emb[inv[:b]], emb[inv[b:2 * b]]
            ci = inv[2 * b:]
            ec = torch.cat([torch.view_as_real(grounded.fuse(s_, p_, missing))[ci],
                            torch.view_as_real(grounded.fuse(s_, p_, torch.ones_like(missing)))[ci]])
        rel = torch.view_as_real(model.relation_representations[0](indices=r))       # (B, d, 2)
        head_query = _cmul(eh, rel)            # h*r: where the tail should be
        tail_query = _cmul(et, _conj(rel))     # t*conj(r): where the head should be
        positive = -(head_query - et).reshape(b, -1).norm(dim=1)
        if grounded is None:
            cand = ent[torch.randint(0, n_ent, (k,), generator=gen).to(device)].reshape(k, -1)
        else:
            cand = ec.reshape(len(ec), -1)
        negative = torch.cat([neg_distances(head_query.reshape(b, -1), cand, floor=1e-12),
                              neg_distances(tail_query.reshape(b, -1), cand, floor=1e-12)], dim=1)
        loss = model.loss.process_slcwa_scores(positive_scores=positive.unsqueeze(1), negative_scores=negative)
        return loss

    try:
        return run_epochs(model, step, n, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                          generator=gen, progress=progress, on_epoch=on_epoch)
    finally:
        if grounded is not None:
            grounded.generator = None


def run_epochs(model, step: Callable[[torch.Tensor], torch.Tensor], n: int, *, epochs: int, batch_size: int,
               learning_rate: float, generator: torch.Generator, progress: bool = False,
               on_epoch: Callable[[int, float, object], None] | None = None) -> list[float]:
    """The epochs of our loops: each shuffles the n examples with `generator`, and for each batch of
    their indices `step` gives the loss, which Adam minimises; after each step the model's
    constraints are applied (`post_parameter_update`, e.g. RotatE's unit relations), as PyKEEN's own
    loops do. The mean loss per example of each epoch is returned, and given to `on_epoch`."""
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    losses = []
    bar = tqdm(range(1, epochs + 1), desc="training", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = step(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.post_parameter_update()
            total += loss.item() * len(idx)
        losses.append(total / n)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if on_epoch:
            on_epoch(epoch, losses[-1], model)
    return losses
