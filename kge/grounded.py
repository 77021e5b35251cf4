"""Grounded KGE: each entity's structural embedding fused with a projection of frozen text features.

After VL-KGE: an entity's representation combines a structural embedding s (learnt per entity, as
in any KGE) with p = P(f), a learnt projection of the frozen features f of the entity's name
(kge/features.py: all-MiniLM-L6-v2, or CLAP's text tower). An entity that training never saw has
no s, but it has a name, so it gets a representation from p alone: the model scores triples about
new sound events.

`GroundedRepresentation` is a PyKEEN `Representation`. It replaces the backbone's entity
representation (`model.entity_representations[0]`), so the model stays PyKEEN's RotatE (or
ComplEx, DistMult, TransE...) with its interaction, relation representations, losses and training
loops; the lean RotatE loop (kge/lean.py) and our evaluator use it as they use a plain embedding.

Fusion modes (d: the backbone's entity dimension, complex for RotatE and ComplEx):
- `average`: e = (s + p) / 2, with s and p both of dimension d;
- `weighted`: e = w_s s + w_p p, (w_s, w_p) = softmax of two learnt logits (initially 1/2 each);
- `concat`:  e = [s ; p], s of dimension d - d/2 and p of dimension d/2.
A missing structural part (an entity never seen in training, or one whose structural part is
dropped in training) is handled per mode: `average` and `weighted` fuse over the modalities
present, so e = p; `concat` puts a learnt "missing" vector m (initially 0) in the structural half,
e = [m ; p].

Modality dropout: in training, each entity in a batch loses its structural part with probability
`modality_dropout`, so that p alone is trained to be a good embedding: that is what new entities get.

Complex backbones: P outputs 2 d_p real numbers, read as d_p (real, imaginary) pairs (consecutive
numbers, the layout of `torch.view_as_complex`), so the imaginary part is learnt by the projection
like the real part, from the same features; nothing is assumed about phases.

Audio as a second feature modality (`modality="text,audio"`, VL-KGE's idea with sound for images): an
entity with example clips also has a = A(g), g its clips' CLAP audio embeddings pooled (mean, unit
length). With a CLAP text encoder the text and audio features share CLAP's joint space, so A is P
(one projection, `shared_projection`): what P learns from every entity's name applies to a clip.
With another text encoder (MiniLM) the two spaces differ, and A is a projection of its own, learnt
from the entities that have clips only. The modalities present are fused, the weights renormalised
over them: `average` e = mean of the present ones among s, p, a; `weighted` e = sum of softmax(3
learnt logits) restricted to the present ones and renormalised; `concat` e = [s or m ; mean of the
present ones among p, a]. When modality dropout drops an entity's structural part and it has both
text and audio, one of them goes too (either, with probability 1/2), so that audio alone, what a
clip that is no entity has, is trained as text alone is. A clip is an extra entity with audio alone
(`extended(model, None, audio=...)`). docs/decisions.md says why.

Frozen features are a buffer of the representation, so they are saved with the weights: a stored
model needs no encoder for the entities it was trained on. New entities are added for a while with
`extended(model, features)` (a non-persistent buffer, candidates with ids after the training ones).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from pykeen.nn.representation import Embedding, Representation
from torch import nn

from akg.errors import InputError

FUSIONS = ("average", "concat", "weighted")
PROJECTIONS = ("linear", "mlp")
MODALITIES = ("text", "text,audio")


@dataclass(frozen=True)
class Grounding:
    """How a model is grounded; `encoder` is resolved (`auto` -> `minilm`/`clap`) before training, and
    `encoder_id`, `feature_dim` (and `clap`, the CLAP encoder's settings) recorded with the model."""

    modality: str = "text"
    encoder: str = "auto"
    fusion: str = "average"
    projection: str = "linear"
    hidden: int = 512                 # mlp only
    modality_dropout: float = 0.15
    encoder_id: str | None = None
    feature_dim: int | None = None
    clap: dict | None = None
    # audio grounding (modality "text,audio"): the CLAP that embedded the clips, as recorded
    audio_encoder_id: str | None = None
    audio_dim: int | None = None
    audio_clap: dict | None = None
    shared_projection: bool | None = None   # text and audio in one (CLAP's joint) space: one projection

    def __post_init__(self):
        from kge.features import ENCODERS

        if self.modality not in MODALITIES:
            raise InputError(f"grounding modality {self.modality!r}: use {' or '.join(map(repr, MODALITIES))}")
        if self.encoder not in ENCODERS:
            raise InputError(f"unknown encoder {self.encoder!r}: use {', '.join(ENCODERS)}")
        if self.fusion not in FUSIONS:
            raise InputError(f"unknown fusion {self.fusion!r}: use {', '.join(FUSIONS)}")
        if self.projection not in PROJECTIONS:
            raise InputError(f"unknown projection {self.projection!r}: use {', '.join(PROJECTIONS)}")
        from kge.presets import check_type, check_whole

        dropout = self.modality_dropout
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise InputError(f"modality dropout must be a number in [0, 1), got {dropout!r}")
        check_whole(self.hidden, "hidden size of the projection", 1, 65_536)
        if self.feature_dim is not None:
            check_whole(self.feature_dim, "feature dimension", 1, 65_536)
        check_type(self.encoder_id, "encoder id", (str, type(None)), "a text or null")
        check_type(self.clap, "CLAP settings", (dict, type(None)), "an object or null")
        if self.audio_dim is not None:
            check_whole(self.audio_dim, "audio feature dimension", 1, 65_536)
        check_type(self.audio_encoder_id, "audio encoder id", (str, type(None)), "a text or null")
        check_type(self.audio_clap, "audio CLAP settings", (dict, type(None)), "an object or null")
        check_type(self.shared_projection, "shared projection", (bool, type(None)), "true, false or null")

    @property
    def audio(self) -> bool:
        return "audio" in self.modality.split(",")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Grounding:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Features:
    """Frozen features of the training entities, one row per id: text (every entity has a name) and,
    for audio grounding, pooled audio with `has_audio` saying which rows hold clips."""

    text: torch.Tensor
    audio: torch.Tensor | None = None
    has_audio: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)   # for the user: e.g. clips of entities not trained on


class Projected(NamedTuple):
    """The feature modalities of a batch of entities, projected, and which of them each entity has."""

    text: torch.Tensor
    audio: torch.Tensor
    has_text: torch.Tensor
    has_audio: torch.Tensor


class GroundedRepresentation(Representation):
    """Structural embeddings fused with projected frozen features (see the module's docstring)."""

    def __init__(self, *, structural: Representation, features: torch.Tensor, grounding: Grounding,
                 complex_: bool, shape: int, structural_dim: int, audio: torch.Tensor | None = None,
                 has_audio: torch.Tensor | None = None):
        n = int(features.shape[0])
        super().__init__(max_id=n, shape=shape, unique=True)
        self.grounding = grounding
        self.fusion = grounding.fusion
        self.is_complex = complex_
        self.structural = structural
        self.structural_dim = structural_dim
        self.projected_dim = shape - structural_dim if grounding.fusion == "concat" else shape
        self.register_buffer("features", features.float().contiguous())
        self.register_buffer("extra_features", torch.zeros(0, features.shape[1]), persistent=False)
        out = self.projected_dim * (2 if complex_ else 1)
        f = int(features.shape[1])
        if grounding.projection == "linear":
            self.projection = nn.Linear(f, out)
        else:
            self.projection = nn.Sequential(nn.Linear(f, grounding.hidden), nn.GELU(), nn.Linear(grounding.hidden, out))
        self.audio = grounding.audio
        self.audio_projection = None
        if self.audio:
            self.register_buffer("audio_features", audio.float().contiguous())
            self.register_buffer("has_audio", has_audio.bool().contiguous())
            for name, like in (("extra_audio", audio[:0].float()), ("extra_has_text", has_audio[:0].bool()),
                               ("extra_has_audio", has_audio[:0].bool())):
                self.register_buffer(name, like.clone(), persistent=False)
            if not grounding.shared_projection:  # two spaces (e.g. MiniLM text, CLAP audio): two projections
                a = int(audio.shape[1])
                self.audio_projection = (nn.Linear(a, out) if grounding.projection == "linear" else
                                         nn.Sequential(nn.Linear(a, grounding.hidden), nn.GELU(),
                                                       nn.Linear(grounding.hidden, out)))
        if self.fusion == "weighted":
            self.mix = nn.Parameter(torch.zeros(3 if self.audio else 2))
        if self.fusion == "concat":
            self.missing = nn.Parameter(torch.zeros(structural_dim, 2) if complex_ else torch.zeros(structural_dim))
        self.modality_dropout = grounding.modality_dropout
        self.generator: torch.Generator | None = None   # the training loop's, for repeatable dropout
        self._cache: torch.Tensor | None = None

    @property
    def num_known(self) -> int:
        return int(self.features.shape[0])

    def reset_parameters(self) -> None:  # sub-modules reset themselves (PyKEEN visits every module)
        if self.fusion == "weighted":
            nn.init.zeros_(self.mix)
        if self.fusion == "concat":
            nn.init.zeros_(self.missing)
        self._cache = None

    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs):
        self._cache = None
        return super()._load_from_state_dict(*args, **kwargs)

    def _apply(self, *args, **kwargs):  # .to(device), .float(): the cached matrix would be stale
        self._cache = None
        return super()._apply(*args, **kwargs)

    def weights(self) -> tuple[float, ...]:
        """(structural, text[, audio]) weights of the fusion when every modality is present (weighted
        mode; equal for average; concat keeps the parts side by side)."""
        k = 3 if self.audio else 2
        if self.fusion == "weighted":
            return tuple(float(w) for w in torch.softmax(self.mix.detach(), 0))
        return (1.0 / k,) * k if self.fusion == "average" else (1.0,) * k

    def project(self, feats: torch.Tensor, projection: nn.Module | None = None) -> torch.Tensor:
        out = (projection or self.projection)(feats)
        if self.is_complex:
            out = torch.view_as_complex(out.reshape(*out.shape[:-1], self.projected_dim, 2).contiguous())
        return out

    def parts(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | Projected, torch.Tensor]:
        """(s, p, missing) for 1-d entity ids: the structural part (any value where missing), the
        projected features, and which ids have no structural part (not trained on). For audio
        grounding p is a `Projected` (text and audio, and which each entity has)."""
        n = self.num_known
        all_feats = self.features if len(self.extra_features) == 0 else torch.cat([self.features, self.extra_features])
        p = self.project(all_feats[flat])
        s = self.structural(indices=flat.clamp(max=n - 1))
        if not self.audio:
            return s, p, flat >= n
        audio = torch.cat([self.audio_features, self.extra_audio])[flat]
        has_audio = torch.cat([self.has_audio, self.extra_has_audio])[flat]
        has_text = torch.cat([torch.ones_like(self.has_audio), self.extra_has_text])[flat]
        # only the few entities with clips are projected (0 stands for the others' absent audio)
        rows = has_audio.nonzero().squeeze(1)
        a = torch.zeros_like(p).index_put((rows,), self.project(audio[rows], self.audio_projection))
        return s, Projected(p, a, has_text, has_audio), flat >= n

    def _fuse_present(self, s: torch.Tensor, p: Projected, missing: torch.Tensor) -> torch.Tensor:
        """Fusion over the modalities each entity has, the weights renormalised over them (VL-KGE).

        In training, an entity without its structural part (modality dropout, or a features-alone
        negative) that has both text and audio keeps one of them, either with probability 1/2: the
        inputs met later are all modalities (a training entity), text alone (a new name) and audio
        alone (a clip), and each of them is trained."""
        if self.training:
            coin = self.dropout_mask(len(missing), 0.5)
            both = missing & p.has_text & p.has_audio
            p = p._replace(has_text=p.has_text & ~(both & coin), has_audio=p.has_audio & ~(both & ~coin))
        def col(mask):
            return mask.to(s.real.dtype if s.is_complex() else s.dtype).view(-1, *([1] * (s.dim() - 1)))

        if self.fusion == "concat":
            m = torch.view_as_complex(self.missing) if self.is_complex else self.missing
            wt, wa = col(p.has_text), col(p.has_audio)
            feats = (wt * p.text + wa * p.audio) / (wt + wa).clamp(min=1.0)
            gone = missing.view(-1, *([1] * (s.dim() - 1)))
            return torch.cat([torch.where(gone, m.expand_as(s), s), feats], dim=-1)
        w = torch.softmax(self.mix, 0) if self.fusion == "weighted" else torch.full((3,), 1 / 3, device=s.device)
        ws, wt, wa = w[0] * col(~missing), w[1] * col(p.has_text), w[2] * col(p.has_audio)
        total = (ws + wt + wa).clamp(min=1e-12)
        return (ws * s + wt * p.text + wa * p.audio) / total  # an absent modality's weight is 0

    def fuse(self, s: torch.Tensor, p: torch.Tensor | Projected, missing: torch.Tensor) -> torch.Tensor:
        if isinstance(p, Projected):
            return self._fuse_present(s, p, missing)
        gone = missing.view(-1, *([1] * (s.dim() - 1)))
        if self.fusion == "average":
            return torch.where(gone, p, 0.5 * (s + p))
        if self.fusion == "weighted":
            w = torch.softmax(self.mix, 0)
            return torch.where(gone, p, w[0] * s + w[1] * p)
        m = torch.view_as_complex(self.missing) if self.is_complex else self.missing
        return torch.cat([torch.where(gone, m.expand_as(s), s), p], dim=-1)

    def dropout_mask(self, n: int, rate: float | None = None) -> torch.Tensor:
        """Which of n entities lose their structural part in this training step (modality dropout)."""
        rate = self.modality_dropout if rate is None else rate
        device = self.features.device
        if rate <= 0:
            return torch.zeros(n, dtype=torch.bool, device=device)
        draw = (torch.rand(n, generator=self.generator).to(device) if self.generator is not None
                else torch.rand(n, device=device))
        return draw < rate

    def _plain_forward(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        use_cache = indices is None and not self.training and not torch.is_grad_enabled()
        if use_cache and self._cache is not None and self._cache.shape[0] == self.max_id:
            return self._cache
        if indices is None:
            indices = torch.arange(self.max_id, device=self.features.device)
        flat = indices.reshape(-1)
        s, p, missing = self.parts(flat)
        if self.training:
            missing = missing | self.dropout_mask(len(flat))
        e = self.fuse(s, p, missing)
        e = e.reshape(*indices.shape, *e.shape[1:])
        if use_cache:
            self._cache = e
        return e

    @contextlib.contextmanager
    def extended(self, features: torch.Tensor | None, audio: torch.Tensor | None = None):
        """Entities from features alone, with ids num_known, num_known + 1, ... while the block runs:
        text features (a name), audio features (a clip: audio grounding only), or both."""
        if features is None and audio is None:
            raise InputError("an entity needs text or audio features")
        if audio is not None and not self.audio:
            raise InputError("this model is grounded in text only: it cannot represent a clip")
        m = len(features if features is not None else audio)
        device = self.features.device
        names = ("extra_features", "extra_audio", "extra_has_text", "extra_has_audio")
        saved = ({k: getattr(self, k) for k in names if hasattr(self, k)}, self.max_id)
        self.extra_features = (features.float().to(device) if features is not None
                               else torch.zeros(m, self.features.shape[1], device=device))
        if self.audio:
            self.extra_audio = (audio.float().to(device) if audio is not None
                                else torch.zeros(m, self.audio_features.shape[1], device=device))
            self.extra_has_text = torch.full((m,), features is not None, dtype=torch.bool, device=device)
            self.extra_has_audio = torch.full((m,), audio is not None, dtype=torch.bool, device=device)
        self.max_id = self.num_known + m
        self._cache = None
        try:
            yield self.num_known
        finally:
            for k, v in saved[0].items():
                setattr(self, k, v)
            self.max_id = saved[1]
            self._cache = None


def representation(model) -> GroundedRepresentation | None:
    rep = model.entity_representations[0]
    return rep if isinstance(rep, GroundedRepresentation) else None


def is_grounded(model) -> bool:
    return representation(model) is not None


@contextlib.contextmanager
def extended(model, features: torch.Tensor | None, *, audio: torch.Tensor | None = None):
    """The model with extra candidate entities given by their features alone (ids after the training
    ones): text features, or (audio grounding) audio features, or both."""
    rep = representation(model)
    if rep is None:
        raise InputError("only a grounded model can represent entities it was not trained on")
    saved = model.num_entities
    with rep.extended(features, audio) as first:
        model.num_entities = rep.max_id
        try:
            yield first
        finally:
            model.num_entities = saved


def ground(model, features: torch.Tensor | Features | None, grounding: Grounding):
    """Replace the model's entity representation by a grounded one over `features` (one row per entity
    id: a text tensor, or `Features` with audio). None (a stored model about to receive its weights):
    buffers of the recorded dimensions, filled by the state dict.

    The structural part is the backbone's own entity embedding (its initialiser, constrainer and
    regularizer), at the full dimension, or for `concat` a new one like it at the structural half.
    """
    base = model.entity_representations[0]
    if features is None:
        if not grounding.feature_dim or (grounding.audio and not grounding.audio_dim):
            raise InputError("a grounded model needs its features (or their dimensions, feature_dim and audio_dim)")
        n = base.max_id
        features = Features(torch.zeros(n, grounding.feature_dim),
                            torch.zeros(n, grounding.audio_dim) if grounding.audio else None,
                            torch.zeros(n, dtype=torch.bool) if grounding.audio else None)
    if not isinstance(features, Features):
        features = Features(features)
    if grounding.audio and features.audio is None:
        raise InputError("a model grounded in audio needs the audio features of its entities")
    features, audio, has_audio = features.text, features.audio, features.has_audio
    if not isinstance(base, Embedding):
        raise InputError(f"{type(model).__name__} has no plain entity embedding to ground")
    if len(model.entity_representations) != 1:
        raise InputError(f"{type(model).__name__} has several entity representations; grounding needs one")
    if features.shape[0] != base.max_id:
        raise InputError(f"{features.shape[0]} feature rows for {base.max_id} entities")
    (dim,) = base.shape
    complex_ = base.is_complex
    structural = base
    structural_dim = dim
    if grounding.fusion == "concat":
        if dim < 2:
            raise InputError("concat fusion needs an embedding dimension of at least 2")
        structural_dim = dim - dim // 2
        structural = Embedding(max_id=base.max_id, shape=structural_dim, initializer=base.initializer,
                               constrainer=base.constrainer, dtype=torch.cfloat if complex_ else torch.float)
        structural.reset_parameters()
    rep = GroundedRepresentation(structural=structural, features=features, grounding=grounding, complex_=complex_,
                                 shape=dim, structural_dim=structural_dim, audio=audio, has_audio=has_audio)
    rep.to(next(base.parameters()).device)
    model.entity_representations = nn.ModuleList([rep])
    return model


class Grounder:
    """Features of names for a grounded model: from the feature cache when it has them (no encoder
    loaded), else from the model's encoder, loaded on first need and checked to be the very encoder
    the model was trained with (its id)."""

    def __init__(self, grounding: Grounding, cache_dir=None, *, device: str = "cpu", encoder=None):
        if not grounding.encoder_id:
            raise InputError("the grounded model does not record its encoder")
        self.grounding = grounding
        self.cache_dir = cache_dir
        self.device = device
        self._encoder = encoder
        self.last_hit: bool | None = None

    @classmethod
    def of(cls, model, cache_dir=None, *, device: str = "cpu", encoder=None) -> Grounder:
        rep = representation(model)
        if rep is None:
            raise InputError("only a grounded model can represent names it was not trained on")
        return cls(rep.grounding, cache_dir, device=device, encoder=encoder)

    # the encoder interface of kge.features, under the model's encoder id
    @property
    def id(self) -> str:
        return self.grounding.encoder_id

    @property
    def dim(self) -> int:
        return int(self.grounding.feature_dim)

    def encode(self, names):
        from akg.errors import ConfigError
        from kge.features import load_text_encoder

        if self._encoder is None:
            self._encoder = load_text_encoder(self.grounding.encoder, clap_spec=self.grounding.clap, device=self.device)
        if self._encoder.id != self.grounding.encoder_id:
            raise ConfigError(f"the model was grounded with the encoder {self.grounding.encoder_id}, but the one here is "
                              f"{self._encoder.id}: names it never saw cannot be grounded (install that encoder, "
                              "or retrain with `akg train --grounded text`)")
        return self._encoder.encode(names)

    def features(self, names) -> torch.Tensor:
        from kge.features import features_for

        feats, self.last_hit = features_for(list(names), self, self.cache_dir)
        return torch.from_numpy(feats)


@dataclass
class AudioExamples:
    """Example clips' CLAP audio embeddings pooled per AKG entity (reasoning/audio_grounding.py makes
    them from a labelled audio collection): what audio grounding trains on."""

    vectors: dict[str, "np.ndarray"]   # entity -> pooled, unit-length audio embedding
    clips: dict[str, int]              # entity -> how many clips were pooled
    encoder_id: str                    # the CLAP's identity (akg.encoders)
    dim: int
    spec: dict | None = None           # the CLAP's EncoderSpec settings, to embed a clip later
    clap: object = None                # the loaded CLAP, shared as the text encoder when text is CLAP's too


def _audio_matrix(names: list[str], audio: AudioExamples) -> Features:
    import numpy as np

    rows = {n: i for i, n in enumerate(names)}
    matrix = np.zeros((len(names), audio.dim), np.float32)
    has = np.zeros(len(names), bool)
    for entity, vector in audio.vectors.items():
        if entity in rows:
            matrix[rows[entity]], has[rows[entity]] = vector, True
    unused = sorted(set(audio.vectors) - set(rows))
    notes = []
    if unused:
        shown = ", ".join(map(repr, unused[:5])) + (f" (and {len(unused) - 5} more)" if len(unused) > 5 else "")
        notes.append(f"{len(unused)} entities with example clips are not among the training entities, their "
                     f"clips unused: {shown}")
    return Features(torch.empty(0), torch.from_numpy(matrix), torch.from_numpy(has), notes)


def prepare(config, entity_names: list[str], cache_dir=None, *, encoder=None, audio: AudioExamples | None = None):
    """Resolve a config's grounding (the encoder chosen by `auto`, its exact id, the feature size)
    and compute the training entities' features: (resolved config, features in id order; `Features`
    with audio grounding, which needs `audio`). With audio and a CLAP text encoder (`auto` or
    `clap`), the text features come from the very CLAP that embedded the clips."""
    from kge.features import ClapTextEncoder, features_for, load_text_encoder

    g = Grounding.from_dict(config.grounding)
    if g.audio and audio is None:
        raise InputError("grounding in audio needs example clips: give --audio-examples DIR and --meta CSV")
    if audio is not None and not g.audio:
        raise InputError("example clips only apply to a model grounded in audio (--grounded text,audio)")
    if encoder is None and audio is not None and audio.clap is not None and g.encoder in ("auto", "clap"):
        from akg.encoders import EncoderSpec

        encoder = ClapTextEncoder(audio.clap, spec=EncoderSpec(**audio.spec) if audio.spec else None)
    encoder = encoder or load_text_encoder(g.encoder, device=config.device)
    clap = encoder.spec_dict() if hasattr(encoder, "spec_dict") else None
    g = dataclasses.replace(g, encoder=encoder.kind, encoder_id=encoder.id, feature_dim=encoder.dim, clap=clap)
    feats, _ = features_for(entity_names, encoder, cache_dir)
    text = torch.from_numpy(feats)
    if audio is None:
        return dataclasses.replace(config, grounding=g.as_dict()), text
    g = dataclasses.replace(g, audio_encoder_id=audio.encoder_id, audio_dim=audio.dim, audio_clap=audio.spec,
                            shared_projection=encoder.id == f"clap:{audio.encoder_id}")
    bundle = _audio_matrix(entity_names, audio)
    bundle.text = text
    return dataclasses.replace(config, grounding=g.as_dict()), bundle
