"""Model directories: everything needed to use a trained model again, and nothing that unpickles.

    <AKG_HOME>/models/<name>/
        config.json          format, training settings, what the model was trained on (hashes);
                             a grounded model's grounding (kge/grounded.py: encoder id, fusion, dims)
        entities.json        entity name -> id        relations.json   relation -> id
        weights.safetensors  the state dict (safetensors: tensors only, no code); a grounded
                             model's also holds its projection and its entities' frozen features
        metrics.json         evaluation at the end of training (known / all)
        loss.csv, loss.png   the loss curve

A directory is written under a temporary name and renamed when complete, so a crash never
leaves a half-written model behind. Loading checks the format, the training settings, the id maps
and the tensors' names and shapes (from the weights' header) against the architecture the config
describes, built on the meta device, before anything is allocated, and says plainly which file is
wrong and how. `scan` does the same for every model folder, so `akg models` lists a damaged model
as broken and the default model (`latest`) skips it.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from akg.errors import InputError
from akg.names import folder_name
from kge.presets import TrainConfig

FORMAT = "akg-kge/1"
MAX_NAME = 100   # characters of a model's name (its folder under the models root)


def _is_name(text: str) -> bool:
    try:
        folder_name(text, what="model name", max_length=MAX_NAME)
    except InputError:
        return False
    return True


@dataclass
class StoredModel:
    path: Path
    config: dict
    entity_to_id: dict[str, int]
    relation_to_id: dict[str, int]
    metrics: dict | None
    notes: list[str] = field(default_factory=list)   # for the user: e.g. newer models skipped as broken

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def created_at(self) -> str:
        return self.config.get("created_at") or ""

    @property
    def train_config(self) -> TrainConfig:
        return TrainConfig(**self.config["training"])  # checked by load()

    @property
    def trained_on(self) -> dict:
        return self.config.get("trained_on", {})

    def kg_info(self):
        from pykeen.triples import KGInfo

        return KGInfo(num_entities=len(self.entity_to_id), num_relations=len(self.relation_to_id),
                      create_inverse_triples=self.train_config.inverse_triples)

    def load_model(self, device: str = "cpu"):
        """The PyKEEN model with its weights, built from the config (never unpickled). `load` has
        checked the weights' header against the config; the tensors are checked again here, as the
        file may have changed since."""
        from kge.train import build_model

        weights = self.path / "weights.safetensors"
        model = build_model(self.train_config, self.kg_info(), seed=self.train_config.seed)
        try:
            state = load_file(weights, device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise InputError(f"not a readable safetensors file ({e})", file=str(weights)) from None
        _check_shapes({k: tuple(v.shape) for k, v in state.items()}, model, self)
        model.load_state_dict(state)
        model.eval()
        return model.to(device)


@dataclass
class BrokenModel:
    """A model folder that cannot be used, and why (`akg models` lists it; the latest skips it)."""
    path: Path
    problem: str
    created_at: str

    @property
    def name(self) -> str:
        return self.path.name


def save(model, config: TrainConfig, entity_to_id: dict, relation_to_id: dict, *, root: Path,
         name: str | None = None, metrics: dict | None = None, losses: list[float] | None = None,
         trained_on: dict | None = None, train_seconds: float | None = None) -> Path:
    created = datetime.now(timezone.utc)
    name = name or f"{config.model.lower()}-{config.preset}-{created.strftime('%Y%m%d-%H%M%S')}"
    root = Path(root)
    target = check_new_name(name, root)
    root.mkdir(parents=True, exist_ok=True)
    # A fresh hidden name per call (not per process): two saves of one name from two threads must not
    # write into, or remove, each other's folder.
    tmp = root / f".{name}.{secrets.token_hex(6)}.partial"
    tmp.mkdir()
    try:
        meta = {"format": FORMAT, "name": name, "created_at": created.isoformat(timespec="seconds"),
                "training": config.as_dict(), "trained_on": trained_on or {},
                "train_seconds": train_seconds, "num_entities": len(entity_to_id), "num_relations": len(relation_to_id)}
        from kge.grounded import representation

        rep = representation(model)
        if rep is not None:  # a readable summary; `training.grounding` is what rebuilds the model
            meta["grounding"] = {**rep.grounding.as_dict(), "structural_dim": rep.structural_dim,
                                 "projected_dim": rep.projected_dim, "complex": rep.is_complex,
                                 "entities_with_features": rep.num_known}
            if rep.audio:
                meta["grounding"]["entities_with_audio"] = int(rep.has_audio.sum())
        _write_json(tmp / "config.json", meta)
        _write_json(tmp / "entities.json", entity_to_id)
        _write_json(tmp / "relations.json", relation_to_id)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp / "weights.safetensors", metadata={"format": FORMAT, "model": config.model})
        if metrics is not None:
            _write_json(tmp / "metrics.json", metrics)
        if losses:
            _write_loss_curve(tmp, losses, title=f"{name}: training loss")
        try:
            tmp.rename(target)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY):  # another run saved this name since the check
                raise _taken(name, target) from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def check_new_name(name: str, root: Path) -> Path:
    """The directory a new model of this name would get; an error if the name is bad or taken."""
    folder_name(name, what="model name", max_length=MAX_NAME)
    target = Path(root) / name
    if target.exists():
        raise _taken(name, target)
    return target


def _taken(name: str, target: Path) -> InputError:
    return InputError(f"a model named {name!r} exists already ({target}); choose another name")


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_loss_curve(folder: Path, losses: list[float], *, title: str) -> None:
    with open(folder / "loss.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "loss"])
        w.writerows((i + 1, f"{loss:.6g}") for i, loss in enumerate(losses))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "loss.png")
    plt.close(fig)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("missing: not a complete model directory", file=str(path)) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"not valid JSON ({e})", file=str(path)) from None
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror or e})", file=str(path)) from None


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a text", type(None): "null"}.get(type(value), type(value).__name__)


# config.json's fields that commands read, and what they must be
_FIELDS = {"created_at": (str,), "trained_on": (dict,), "train_seconds": (int, float, type(None)),
           "num_entities": (int,), "num_relations": (int,)}


def _check_config(config, file: Path) -> TrainConfig:
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else _kind(config)
        raise InputError(f"not an akg model (format {found!r}, expected {FORMAT!r})", file=str(file))
    for key, kinds in _FIELDS.items():
        if key in config and (isinstance(config[key], bool) or not isinstance(config[key], kinds)):
            raise InputError(f"{key!r} has the wrong type: {config[key]!r}", file=str(file))
    training = config.get("training")
    if not isinstance(training, dict):
        raise InputError(f"'training' must be an object of settings, not {_kind(training)}", file=str(file))
    unknown = sorted(set(training) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise InputError(f"unknown training setting {', '.join(map(repr, unknown))} in 'training'", file=str(file))
    try:
        return TrainConfig(**training)
    except InputError as e:
        raise InputError(f"'training': {e}", file=str(file)) from None


def _read_ids(path: Path, what: str, recorded) -> dict[str, int]:
    """A name -> id map whose ids are 0..n-1, each once (what the weights' rows are indexed by)."""
    ids = _read_json(path)
    if not isinstance(ids, dict) or not ids or not all(type(v) is int for v in ids.values()):
        raise InputError(f"not a map of {what} names to whole-number ids", file=str(path))
    if sorted(ids.values()) != list(range(len(ids))):
        raise InputError(f"the {what} ids are not 0 to {len(ids) - 1}, each once", file=str(path))
    if recorded is not None and recorded != len(ids):
        raise InputError(f"{len(ids)} names, but config.json records {recorded} {what} names", file=str(path))
    return ids


def _check_shapes(found: dict[str, tuple], model, stored: StoredModel) -> None:
    """The tensors of a weights file (name -> shape) against the model the config describes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = ([f"{k} missing" for k in expected if k not in found]
                + [f"unexpected {k}" for k in found if k not in expected]
                + [f"{k} is {list(found[k])}, expected {list(v)}"
                   for k, v in expected.items() if k in found and found[k] != v])
    if problems:
        t = stored.train_config
        raise InputError(f"the weights do not fit the {t.model} of dimension {t.embedding_dim} (config.json) "
                         f"with {len(stored.entity_to_id)} entities (entities.json) and {len(stored.relation_to_id)} "
                         f"relations (relations.json): {'; '.join(problems[:3])}",
                         file=str(stored.path / "weights.safetensors"))


def _check_weights(stored: StoredModel) -> None:
    """The weights' header (names and shapes; no tensor is read) against the config and id maps,
    before any model is built for real: a damaged file or config never allocates anything."""
    from kge.train import blueprint

    file = stored.path / "weights.safetensors"
    if not file.is_file():
        raise InputError("missing: not a complete model directory", file=str(file))
    if file.stat().st_size == 0:
        raise InputError("empty file: not a safetensors file", file=str(file))
    try:
        with safe_open(file, framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"not a readable safetensors file: truncated or damaged ({e})", file=str(file)) from None
    try:
        skeleton = blueprint(stored.train_config, stored.kg_info())
    except InputError as e:
        raise InputError(f"'training': {e}", file=str(stored.path / "config.json")) from None
    except (TypeError, ValueError, KeyError, RuntimeError) as e:  # settings PyKEEN refuses
        raise InputError(f"'training' describes no model PyKEEN can build ({type(e).__name__}: {e})",
                         file=str(stored.path / "config.json")) from None
    _check_shapes(found, skeleton, stored)


def _read_metrics(path: Path) -> dict | None:
    if not path.exists():
        return None
    metrics = _read_json(path)
    # what `akg models` and `akg evaluate` read: known / new / all, each a set of numbers
    parts = [metrics.get(p, {}) for p in ("known", "new", "all")] if isinstance(metrics, dict) else [None]
    if not all(isinstance(p, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p.values())
               for p in parts):
        raise InputError("not the metrics of an evaluation (parts of numbers, as `akg evaluate --json` shows)",
                         file=str(path))
    return metrics


def load(path: Path) -> StoredModel:
    """A model directory, checked: config, id maps, metrics, and the weights' header against them
    (cheap: no tensor is read). Anything wrong is an InputError naming the file and the problem."""
    path = Path(path)
    if not path.is_dir():
        raise InputError("no such model directory", file=str(path))
    config = _read_json(path / "config.json")
    _check_config(config, path / "config.json")
    stored = StoredModel(path, config, _read_ids(path / "entities.json", "entity", config.get("num_entities")),
                         _read_ids(path / "relations.json", "relation", config.get("num_relations")),
                         _read_metrics(path / "metrics.json"))
    _check_weights(stored)
    return stored


def models_root(home: Path) -> Path:
    return Path(home) / "models"


def _created_at(folder: Path) -> str:
    """When a broken model was saved: its config's record if it can still say, else its folder's time."""
    try:
        recorded = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("created_at")
        if isinstance(recorded, str):
            return recorded
    except (OSError, ValueError, AttributeError):
        pass
    return datetime.fromtimestamp(folder.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")


def scan(root: Path) -> list[StoredModel | BrokenModel]:
    """Every model folder under root, oldest first, checked as `load` checks it (headers only): a
    StoredModel, or a BrokenModel saying which file is wrong and how. A folder with neither
    config.json nor weights.safetensors is not a model and is left out."""
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[StoredModel | BrokenModel] = []
    for child in root.iterdir():
        if not child.is_dir() or child.name.startswith(".") or not (
                (child / "config.json").exists() or (child / "weights.safetensors").exists()):
            continue
        try:
            found.append(load(child))
        except InputError as e:
            where = Path(e.file).name if e.file and Path(e.file).parent == child else None
            found.append(BrokenModel(child, f"{where}: {e.problem}" if where else str(e), _created_at(child)))
    return sorted(found, key=lambda m: m.created_at)


def list_models(root: Path) -> list[StoredModel]:
    """The usable models under root, oldest first."""
    return [m for m in scan(root) if isinstance(m, StoredModel)]


def latest(root: Path) -> StoredModel:
    """The most recently trained usable model; newer broken ones are skipped, and its `notes` say so."""
    skipped = []
    for m in reversed(scan(root)):
        if isinstance(m, StoredModel):
            m.notes = [f"skipped model {b.name}, newer than {m.name} but broken ({b.problem})"
                       for b in reversed(skipped)]
            return m
        skipped.append(m)
    if skipped:
        raise InputError(f"no usable model under {root}: {skipped[0].name} is broken ({skipped[0].problem}); "
                         "run `akg train`")
    raise InputError(f"no trained model under {root}: run `akg train` first")


def is_path(argument: str) -> bool:
    return os.sep in argument or (os.altsep or os.sep) in argument or argument in (".", "..")


def resolve(name_or_path: str | None, root: Path) -> StoredModel:
    """A model argument: a path when it looks like one (it has a path separator, or is . or ..),
    else the name of a stored model under root, so a folder of that name in the current directory
    does not shadow it; None: the latest usable model (`latest`)."""
    if name_or_path is None:
        return latest(root)
    if is_path(name_or_path):
        return load(Path(name_or_path))
    if _is_name(name_or_path) and (Path(root) / name_or_path).is_dir():
        return load(Path(root) / name_or_path)
    from akg.relations import suggest

    names = [m.name for m in scan(root)]
    raise InputError(f"no model named {name_or_path!r}{suggest(name_or_path, names)}; `akg models` lists them")
