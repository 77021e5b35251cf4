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
leaves a half-written model behind. Loading checks the format and the tensors' names and shapes
against the architecture the config describes, and says plainly what is wrong.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from akg.errors import InputError
from kge.presets import TrainConfig

FORMAT = "akg-kge/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class StoredModel:
    path: Path
    config: dict
    entity_to_id: dict[str, int]
    relation_to_id: dict[str, int]
    metrics: dict | None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def train_config(self) -> TrainConfig:
        return TrainConfig(**self.config["training"])

    @property
    def trained_on(self) -> dict:
        return self.config.get("trained_on", {})

    def load_model(self, device: str = "cpu"):
        """The PyKEEN model with its weights, built from the config (never unpickled)."""
        from pykeen.triples import KGInfo

        from kge.train import build_model

        info = KGInfo(num_entities=len(self.entity_to_id), num_relations=len(self.relation_to_id),
                      create_inverse_triples=self.train_config.inverse_triples)
        model = build_model(self.train_config, info, seed=self.train_config.seed)
        try:
            state = load_file(self.path / "weights.safetensors", device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise InputError(f"not a readable safetensors file ({e})", file=str(self.path / "weights.safetensors")) from None
        expected = model.state_dict()
        problems = sorted(set(expected) ^ set(state)) or [
            k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape)]
        if problems:
            raise InputError(f"the weights do not fit a {self.config['training']['model']} with "
                             f"{len(self.entity_to_id)} entities and {len(self.relation_to_id)} relations "
                             f"(mismatched tensors: {', '.join(problems[:5])})", file=str(self.path / "weights.safetensors"))
        model.load_state_dict(state)
        model.eval()
        return model.to(device)


def save(model, config: TrainConfig, entity_to_id: dict, relation_to_id: dict, *, root: Path,
         name: str | None = None, metrics: dict | None = None, losses: list[float] | None = None,
         trained_on: dict | None = None, train_seconds: float | None = None) -> Path:
    created = datetime.now(timezone.utc)
    name = name or f"{config.model.lower()}-{config.preset}-{created.strftime('%Y%m%d-%H%M%S')}"
    root = Path(root)
    target = check_new_name(name, root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
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
        _write_json(tmp / "config.json", meta)
        _write_json(tmp / "entities.json", entity_to_id)
        _write_json(tmp / "relations.json", relation_to_id)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp / "weights.safetensors", metadata={"format": FORMAT, "model": config.model})
        if metrics is not None:
            _write_json(tmp / "metrics.json", metrics)
        if losses:
            _write_loss_curve(tmp, losses, title=f"{name}: training loss")
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def check_new_name(name: str, root: Path) -> Path:
    """The directory a new model of this name would get; an error if the name is bad or taken."""
    if not _NAME.match(name):
        raise InputError(f"model name {name!r}: use letters, digits, '.', '_' and '-'")
    target = Path(root) / name
    if target.exists():
        raise InputError(f"a model named {name!r} exists already ({target}); choose another --name")
    return target


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


def load(path: Path) -> StoredModel:
    path = Path(path)
    if not path.is_dir():
        raise InputError("no such model directory", file=str(path))
    config = _read_json(path / "config.json")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise InputError(f"not an akg model (format {found!r}, expected {FORMAT!r})", file=str(path / "config.json"))
    metrics = _read_json(path / "metrics.json") if (path / "metrics.json").exists() else None
    return StoredModel(path, config, _read_json(path / "entities.json"), _read_json(path / "relations.json"), metrics)


def models_root(home: Path) -> Path:
    return Path(home) / "models"


def list_models(root: Path) -> list[StoredModel]:
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if child.is_dir() and not child.name.startswith("."):
            try:
                found.append(load(child))
            except InputError:
                continue  # a foreign folder: `akg models` lists models only
    return sorted(found, key=lambda m: m.config.get("created_at", ""))


def resolve(name_or_path: str | None, root: Path) -> StoredModel:
    """A model by name (under root) or path; None: the most recently trained one."""
    if name_or_path is None:
        models = list_models(root)
        if not models:
            raise InputError(f"no trained model under {root}: run `akg train` first")
        return models[-1]
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return load(candidate)
    if (Path(root) / name_or_path).is_dir():
        return load(Path(root) / name_or_path)
    from akg.relations import suggest

    names = [m.name for m in list_models(root)]
    raise InputError(f"no model named {name_or_path!r}{suggest(name_or_path, names)}; `akg models` lists them")
