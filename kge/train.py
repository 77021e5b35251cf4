"""Training with PyKEEN's models, losses and training loops, on triples from the graph."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from pykeen.losses import BCEWithLogitsLoss, CrossEntropyLoss, loss_resolver
from pykeen.models import model_resolver
from pykeen.training import LCWATrainingLoop, SLCWATrainingLoop
from pykeen.training.callbacks import TrainingCallback
from pykeen.triples import TriplesFactory
from pykeen.utils import set_random_seed

from akg.errors import InputError
from kge.presets import TrainConfig


def model_class(name: str):
    try:
        return model_resolver.lookup(name)
    except (KeyError, ValueError):
        from akg.relations import suggest

        choices = sorted(model_resolver.lookup_dict)
        raise InputError(f"unknown model {name!r}{suggest(name.lower(), choices)}; PyKEEN offers: {', '.join(choices)}") from None


def build_model(config: TrainConfig, kg_info, *, seed: int | None = None, features=None):
    """A fresh PyKEEN model for this config; `kg_info` gives the entity and relation counts.

    A grounded config (kge/grounded.py) also needs `features`, one row per entity id (a tensor, or
    kge.grounded.Features with audio); without them
    (a stored model about to receive its weights) the feature buffer is allocated empty, at the
    recorded feature dimension, and filled by the state dict.
    """
    cls = model_class(config.model)
    kwargs = {"triples_factory": kg_info, "random_seed": seed}
    if config.embedding_dim:
        kwargs["embedding_dim"] = config.embedding_dim
    loss = config.loss or ("crossentropy" if config.training_loop == "1vsall" else None)
    if loss:
        try:
            kwargs["loss"] = loss_resolver.make(loss, config.loss_kwargs or None)
        except (KeyError, ValueError, TypeError) as e:  # an unknown loss, or settings it does not take
            raise InputError(f"loss {loss!r} with settings {config.loss_kwargs}: {e}") from None
    kwargs.update(config.model_kwargs)
    kwargs.update(_regularizer_kwargs(config, cls))
    try:
        model = cls(**kwargs)
    except (TypeError, ValueError, KeyError) as e:  # settings the PyKEEN model does not take
        if not config.model_kwargs:
            raise
        raise InputError(f"{cls.__name__} with model settings {config.model_kwargs}: {e}") from None
    if config.grounding:
        from kge.grounded import Grounding, ground

        ground(model, features, Grounding.from_dict(config.grounding))  # features None: buffers, filled by the weights
    return model


def _regularizer_kwargs(config: TrainConfig, cls) -> dict:
    """The model's regularizer settings for `config.regularizer`: its PyKEEN default (nothing
    passed), none, or N3. The 1vsall loop computes N3 itself on each batch's factors, so the model
    gets none; PyKEEN's loops get the model's LpRegularizer with p=3 (models that take one)."""
    if config.regularizer == "default":
        return {}
    takes = "regularizer" in inspect.signature(cls.__init__).parameters
    if config.regularizer == "none" or config.training_loop == "1vsall":
        return {"regularizer": None} if takes else {}
    if not takes:
        raise InputError(f"PyKEEN's {cls.__name__} takes no regularizer: train it with the 1vsall loop for n3")
    return {"regularizer": "lp", "regularizer_kwargs": {"p": 3.0, "weight": config.regularizer_weight, "normalize": False}}


def blueprint(config: TrainConfig, kg_info, *, features: torch.Tensor | None = None):
    """The model `config` describes, built on the meta device: every tensor's name, shape and dtype,
    and no memory allocated, whatever the dimension. A stored model's weights are checked against
    it before anything is loaded; training checks that it fits before building the real one."""
    with torch.device("meta"):
        return build_model(config, kg_info, seed=config.seed, features=features)


def check_fits(config: TrainConfig, kg_info, *, features: torch.Tensor | None = None) -> None:
    """Refuse a model whose parameters, with their gradients and Adam's two moments (four copies),
    exceed the memory of the device it would train on, before any of it is allocated."""
    needed = 4 * sum(p.numel() * p.element_size() for p in blueprint(config, kg_info, features=features).parameters())
    if config.device.startswith("cuda"):
        available = torch.cuda.get_device_properties(torch.device(config.device)).total_memory
    else:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows): nothing to compare with
            return
    if needed > available:
        raise InputError(f"a {config.model} of embedding dimension {config.embedding_dim} over {kg_info.num_entities:,} "
                         f"entities needs about {needed / 2**30:.1f} GiB to train (parameters, gradients and optimizer "
                         f"state), more than the {available / 2**30:.1f} GiB of {config.device}: lower the dimension")


class _EpochHook(TrainingCallback):
    def __init__(self, hook: Callable[[int, float, object], None]):
        super().__init__()
        self.hook = hook

    def post_epoch(self, epoch: int, epoch_loss: float, **kwargs) -> None:
        self.hook(epoch, epoch_loss, self.model)


@dataclass
class TrainResult:
    model: object
    losses: list[float]
    seconds: float


def train(config: TrainConfig, factory: TriplesFactory, *, progress: bool = False,
          on_epoch: Callable[[int, float, object], None] | None = None,
          features: torch.Tensor | None = None) -> TrainResult:
    """Train a model for `config` on `factory`'s triples; a grounded config needs `features`
    (one row per entity id of the factory, kge/features.py)."""
    config.validate()
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device cuda: no CUDA device is available here (use the cpu)")
    if config.grounding and features is None:
        raise InputError("a grounded model needs the features of its entities")
    check_fits(config, factory, features=features)
    set_random_seed(config.seed)
    model = build_model(config, factory, seed=config.seed, features=features).to(config.device)
    if config.label_smoothing and not isinstance(model.loss, (CrossEntropyLoss, BCEWithLogitsLoss)):
        raise InputError(f"label smoothing needs the crossentropy or bcewithlogits loss, not {type(model.loss).__name__}")
    if config.training_loop == "lean":
        from kge.lean import train_lean

        started = time.perf_counter()
        losses = train_lean(model, factory, epochs=config.epochs, batch_size=config.batch_size,
                            negatives=config.negatives, learning_rate=config.learning_rate, seed=config.seed,
                            progress=progress, on_epoch=on_epoch)
        return TrainResult(model, losses, time.perf_counter() - started)
    if config.training_loop == "1vsall":
        from kge.onevsall import train_1vsall

        started = time.perf_counter()
        losses = train_1vsall(model, factory, epochs=config.epochs, batch_size=config.batch_size,
                              learning_rate=config.learning_rate, seed=config.seed,
                              label_smoothing=config.label_smoothing,
                              n3_weight=config.regularizer_weight if config.regularizer == "n3" else 0.0,
                              progress=progress, on_epoch=on_epoch)
        return TrainResult(model, losses, time.perf_counter() - started)
    common = dict(model=model, triples_factory=factory, optimizer="adam",
                  optimizer_kwargs={"lr": config.learning_rate})
    if config.training_loop == "slcwa":
        loop = SLCWATrainingLoop(**common, negative_sampler="basic",
                                 negative_sampler_kwargs={"num_negs_per_pos": config.negatives})
    else:
        loop = LCWATrainingLoop(**common)
    started = time.perf_counter()
    losses = loop.train(triples_factory=factory, num_epochs=config.epochs, batch_size=config.batch_size,
                        use_tqdm=progress, use_tqdm_batch=False,
                        **({"label_smoothing": config.label_smoothing} if config.label_smoothing else {}),
                        callbacks=[_EpochHook(on_epoch)] if on_epoch else None)
    return TrainResult(model, list(losses or []), time.perf_counter() - started)
