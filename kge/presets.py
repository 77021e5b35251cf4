"""Training configurations: the paper's config 001 and our fast default, plus user overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from akg.errors import InputError


@dataclass(frozen=True)
class TrainConfig:
    model: str = "RotatE"
    embedding_dim: int = 256
    learning_rate: float = 0.001
    batch_size: int = 4096
    epochs: int = 1000
    training_loop: str = "slcwa"          # "slcwa" (negative sampling) or "lcwa" (1-N scoring)
    negatives: int = 1                    # negatives per positive (slcwa only)
    loss: str | None = None               # None: the model's PyKEEN default
    loss_kwargs: dict = field(default_factory=dict)
    inverse_triples: bool = False         # train on (t, r^-1, h) too, so head prediction is 1-N as well
    seed: int = 42
    device: str = "cpu"
    preset: str = "custom"
    grounding: dict | None = None         # a grounded model (kge/grounded.py: Grounding.as_dict()); None: plain

    def with_overrides(self, **overrides) -> TrainConfig:
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **given)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, TrainConfig] = {
    # The default: the same PyKEEN RotatE (dim 256), trained by the lean loop (kge/lean.py) with
    # 256 batch-shared negatives and PyKEEN's self-adversarial loss. Chosen by bench/kge_sweep.py
    # (bench/RESULTS.md): it passes the paper config's MRR in 25-30 epochs, about 20 s on 2 cores.
    "fast": TrainConfig(model="RotatE", embedding_dim=256, learning_rate=0.01, batch_size=512, epochs=30,
                        training_loop="lean", negatives=256, loss="nssa",
                        loss_kwargs={"margin": 9.0, "adversarial_temperature": 1.0}, seed=42, preset="fast"),
    # The fast preset grounded in the entities' names (kge/grounded.py): text features of all-MiniLM-L6-v2
    # (or CLAP's text tower when one is configured), averaged with the structural embedding, trained
    # with modality dropout 0.15 for 80 epochs (fused embeddings converge more slowly than plain ones).
    # Chosen with bench/grounded_bench.py (bench/RESULTS.md, docs/decisions.md).
    "grounded": TrainConfig(model="RotatE", embedding_dim=256, learning_rate=0.01, batch_size=512, epochs=80,
                            training_loop="lean", negatives=256, loss="nssa",
                            loss_kwargs={"margin": 9.0, "adversarial_temperature": 1.0}, seed=42, preset="grounded",
                            grounding={"modality": "text", "encoder": "auto", "fusion": "average",
                                       "projection": "linear", "modality_dropout": 0.15}),
    # iKnow-audio's KGE_training/config.py, experiment 001 (PyKEEN pipeline defaults otherwise:
    # sLCWA, one uniform negative per positive, margin ranking loss, Adam).
    "paper": TrainConfig(model="RotatE", embedding_dim=256, learning_rate=0.001, batch_size=4096, epochs=1000,
                         seed=42, preset="paper"),
}


DEFAULT_PRESET = "fast"


def preset(name: str) -> TrainConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose from {', '.join(sorted(PRESETS))}") from None
