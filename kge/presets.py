"""Training configurations: the paper's config 001 and our fast default, plus user overrides."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from akg.errors import InputError

# Upper bounds far beyond any useful setting (KGE dimensions in use are 50-1000, the AKG has 11k
# entities), low enough that a typo cannot ask for terabytes or run for a year.
MAX_EMBEDDING_DIM = 16_384
MAX_BATCH_SIZE = 10_000_000
MAX_EPOCHS = 1_000_000
MAX_NEGATIVES = 100_000
LOOPS = ("lean", "slcwa", "lcwa", "1vsall")
# "default": the PyKEEN model's own regularizer (e.g. ComplEx's L2); "none": none; "n3": the weighted
# cube of the factors' moduli (Lacroix et al. 2018; in PyKEEN's loops its LpRegularizer with p=3)
REGULARIZERS = ("default", "none", "n3")


def check_whole(value, setting: str, low: int, high: int) -> None:
    """An integer setting in [low, high] (JSON's true/false are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{setting} must be a whole number from {low:,} to {high:,}, got {value!r}")


def check_number(value, setting: str, *, low: float, high: float = math.inf, high_open: bool = False) -> None:
    """A finite number setting in (low, high] or (low, high)."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and low < value and (value < high if high_open else value <= high))
    if not ok:
        bound = "" if high == math.inf else f" and {'<' if high_open else '<='} {high:g}"
        raise InputError(f"{setting} must be a finite number > {low:g}{bound}, got {value!r}")


def check_type(value, setting: str, kinds: tuple, what: str) -> None:
    if not isinstance(value, kinds):
        raise InputError(f"{setting} must be {what}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    model: str = "RotatE"
    embedding_dim: int = 256
    learning_rate: float = 0.001
    batch_size: int = 4096
    epochs: int = 1000
    # "slcwa" (PyKEEN's negative sampling), "lcwa" (PyKEEN's 1-N scoring), "lean" (RotatE, shared
    # negatives, kge/lean.py) or "1vsall" (every entity scored for each triple, kge/onevsall.py)
    training_loop: str = "slcwa"
    negatives: int = 1                    # negatives per positive (slcwa only)
    loss: str | None = None               # None: the model's PyKEEN default (1vsall: cross-entropy)
    loss_kwargs: dict = field(default_factory=dict)
    inverse_triples: bool = False         # reciprocal relations: train on (t, r^-1, h) too, heads answered as its tails
    model_kwargs: dict = field(default_factory=dict)  # PyKEEN model settings, e.g. {"entity_initializer_kwargs": ...}
    regularizer: str = "default"          # one of REGULARIZERS
    regularizer_weight: float = 0.0       # n3 only: the weight of the cubed moduli (per triple of a batch)
    label_smoothing: float = 0.0          # 1vsall and lcwa: the share of each label spread over all entities
    seed: int = 42
    device: str = "cpu"
    preset: str = "custom"
    grounding: dict | None = None         # a grounded model (kge/grounded.py: Grounding.as_dict()); None: plain

    def __post_init__(self):
        # Every config is checked when made: by a preset, `akg train`'s options (with_overrides) or a
        # stored model's config.json, so a bad value is refused before anything is built or allocated.
        self.validate()

    def validate(self) -> TrainConfig:
        """Each setting by name, with the value given; an InputError for the first that is wrong."""
        check_type(self.model, "model", (str,), "a PyKEEN model name")
        check_whole(self.embedding_dim, "embedding dimension", 1, MAX_EMBEDDING_DIM)
        check_number(self.learning_rate, "learning rate", low=0)
        check_whole(self.batch_size, "batch size", 1, MAX_BATCH_SIZE)
        check_whole(self.epochs, "number of epochs", 1, MAX_EPOCHS)
        if self.training_loop not in LOOPS:
            raise InputError(f"training loop must be one of {', '.join(LOOPS)}, got {self.training_loop!r}")
        check_whole(self.negatives, "negatives per positive", 1, MAX_NEGATIVES)
        check_type(self.loss, "loss", (str, type(None)), "a PyKEEN loss name or null")
        check_type(self.loss_kwargs, "loss settings", (dict,), "an object")
        check_type(self.model_kwargs, "model settings", (dict,), "an object")
        reserved = sorted(set(self.model_kwargs) & {"triples_factory", "random_seed", "embedding_dim", "loss"})
        if reserved:
            raise InputError(f"model settings {', '.join(reserved)} are set by the training configuration itself")
        check_type(self.inverse_triples, "inverse triples", (bool,), "true or false")
        if self.regularizer not in REGULARIZERS:
            raise InputError(f"regularizer must be one of {', '.join(REGULARIZERS)}, got {self.regularizer!r}")
        if self.regularizer == "n3":
            check_number(self.regularizer_weight, "regularizer weight", low=0)
        elif self.regularizer_weight != 0:
            raise InputError(f"a regularizer weight applies to the n3 regularizer only (regularizer is {self.regularizer!r})")
        if (isinstance(self.label_smoothing, bool) or not isinstance(self.label_smoothing, (int, float))
                or not 0.0 <= self.label_smoothing < 1.0):
            raise InputError(f"label smoothing must be a number in [0, 1), got {self.label_smoothing!r}")
        if self.label_smoothing and self.training_loop not in ("1vsall", "lcwa"):
            raise InputError(f"label smoothing applies to the 1vsall and lcwa loops only, not {self.training_loop}")
        if self.training_loop == "lean" and (self.inverse_triples or self.regularizer == "n3"):
            raise InputError("the lean loop trains without inverse triples or n3: use the 1vsall loop for them")
        check_whole(self.seed, "seed", 0, 2**32 - 1)  # numpy's range: PyKEEN seeds numpy with it
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise InputError(f"device must be cpu or cuda, got {self.device!r}")
        check_type(self.preset, "preset", (str,), "a name")
        check_type(self.grounding, "grounding", (dict, type(None)), "an object or null")
        if self.grounding is not None:
            from kge.grounded import Grounding

            Grounding.from_dict(self.grounding)  # checks each of its settings
        return self

    def with_overrides(self, **overrides) -> TrainConfig:
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **given)  # validated by __post_init__

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
    # The strongest found by bench/kge_best_sweep.py (bench/RESULTS.md, issue 16): ComplEx trained
    # 1-vs-all (every entity scored for each triple, cross-entropy with label smoothing 0.1;
    # kge/onevsall.py) with reciprocal relations and N3 (weight 0.01), small (xavier) initial
    # embeddings, dim 256 (512 real numbers per entity), 6 epochs (its best validation epoch).
    "best": TrainConfig(model="ComplEx", embedding_dim=256, learning_rate=0.01, batch_size=1024, epochs=6,
                        training_loop="1vsall", inverse_triples=True, regularizer="n3", regularizer_weight=0.01,
                        label_smoothing=0.1,
                        model_kwargs={"entity_initializer": "xavier_normal", "relation_initializer": "xavier_normal"},
                        seed=42, preset="best"),
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


GROUNDING_KEYS = ("encoder", "fusion", "projection", "modality_dropout")


def configure(*, preset_name: str | None = None, model: str | None = None, grounded: str | None = None,
              grounding: dict | None = None, **overrides) -> TrainConfig:
    """The training configuration for what the user asked, the one rule for the CLI and the Python API.

    The preset (default `fast`, or `grounded` when `grounded` names a modality) gives every setting;
    `grounding` (encoder, fusion, projection, modality_dropout) refines a grounded preset's; `model`
    picks any PyKEEN model: RotatE keeps the preset's lean loop, other models train with PyKEEN's own
    sLCWA loop and loss (at most 16 negatives per positive) unless a loop is named in `overrides`;
    `overrides` (embedding_dim, learning_rate, epochs, ...) come last. Every value is checked.
    """
    grounding = {k: v for k, v in (grounding or {}).items() if v is not None}
    unknown = sorted(set(grounding) - set(GROUNDING_KEYS))
    if unknown:
        raise InputError(f"unknown grounding setting(s) {', '.join(unknown)}; use {', '.join(GROUNDING_KEYS)}")
    config = preset(preset_name or ("grounded" if grounded else DEFAULT_PRESET))
    if grounded is None and config.grounding is None:
        if grounding:
            raise InputError(f"{', '.join(sorted(grounding))} only apply to a grounded model: ground it in text "
                             "(a grounded preset, or grounded='text')")
        merged = None
    else:
        from kge.grounded import Grounding

        merged = {**(config.grounding or {}), **({"modality": grounded} if grounded else {}), **grounding}
        merged = Grounding.from_dict(merged).as_dict()  # checks every value: a clear error for a bad one
    config = dataclasses.replace(config, grounding=merged)
    if model:
        from kge.train import model_class

        cls = model_class(model)  # a clear error for an unknown name, before anything runs
        if cls.__name__ != config.model:  # the preset's model settings are its backbone's
            config = dataclasses.replace(config, model_kwargs={})
        config = config.with_overrides(model=cls.__name__)
        if cls.__name__ != "RotatE" and config.training_loop == "lean" and not overrides.get("training_loop"):
            # the lean loop is RotatE's; other models use PyKEEN's own sLCWA loop and loss
            config = dataclasses.replace(config, training_loop="slcwa", negatives=min(config.negatives, 16),
                                         loss=None, loss_kwargs={}, preset=f"{config.preset}-slcwa")
    loop = overrides.get("training_loop")
    if loop and loop != config.training_loop and not overrides.get("loss"):
        # the preset's loss belongs to its loop (the lean loop's NSSA); another loop gets its own default
        config = dataclasses.replace(config, loss=None, loss_kwargs={})
    return config.with_overrides(**{k: v for k, v in overrides.items() if v is not None})  # checks (validate)
