"""Embeddings people can take away: a stored model's entity and relation embeddings, with their id
maps, in numpy, Parquet or TSV files, and back (docs/embeddings.md shows the files and how to use them).

    DIR/meta.json                       model, graph version, settings, layout, each file's sha256
    npy:      entity_embeddings.npy     (entities, dim) float32, or (entities, dim, 2) for a complex
              relation_embeddings.npy   model: [..., 0] real parts, [..., 1] imaginary parts
              entity_ids.tsv            id<TAB>name (row i of the array is id i)
              relation_ids.tsv
    parquet:  entity_embeddings.parquet     columns id, name, then e0..e{dim-1} (real), or
              relation_embeddings.parquet   re0..re{dim-1}, im0..im{dim-1} (complex)
    tsv:      entity_embeddings.tsv         the same columns, with a header; floats written with 9
              relation_embeddings.tsv       significant digits, so float32 values read back exactly

The vectors are what the model scores with: a representation's output (for a grounded model the
fused entity representation of its training entities, kge/grounded.py), not raw parameters. A model
trained with inverse triples has two relation rows per relation, PyKEEN's layout: row 2r the
relation, row 2r + 1 its inverse, named `<relation>_inverse`.

`import_set` checks every file against the checksums of meta.json (a changed file is refused), and
stores the set as a model: a plain one of the same PyKEEN class whose embeddings are the exported
vectors, so `akg predict` and `akg evaluate` use it. That works for models whose whole state is
their embeddings (RotatE, ComplEx, DistMult, TransE, ...): an interaction with parameters of its
own (TuckER's core tensor) is not in the export, and such a set is refused. An imported grounded
model scores its training entities as the original does, but cannot ground new names or clips: its
projection is not part of the export.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from akg.errors import InputError
from akg_loader.dataset import sha256_of
from kge import store

FORMAT = "akg-embeddings/1"
FILE_FORMATS = ("npy", "parquet", "tsv")
KINDS = ("entity", "relation")
_INVERSE = "_inverse"   # PyKEEN's suffix for an inverse relation


@dataclass
class Embeddings:
    """One kind of embedding: row i is id i, named names[i]; vectors (rows, dim), complex or real."""

    kind: str
    names: list[str]
    vectors: np.ndarray

    @property
    def is_complex(self) -> bool:
        return np.iscomplexobj(self.vectors)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def array(self) -> np.ndarray:
        """float32, with a trailing (real, imaginary) axis for a complex model."""
        v = self.vectors
        return np.stack([v.real, v.imag], axis=-1).astype(np.float32) if self.is_complex else v.astype(np.float32)

    def columns(self) -> list[str]:
        d = range(self.dim)
        return [f"re{i}" for i in d] + [f"im{i}" for i in d] if self.is_complex else [f"e{i}" for i in d]

    def to_df(self):
        import pandas as pd

        v = self.vectors
        flat = np.concatenate([v.real, v.imag], axis=1) if self.is_complex else v
        df = pd.DataFrame(flat.astype(np.float32), columns=self.columns())
        df.insert(0, "name", self.names)
        df.insert(0, "id", np.arange(len(self.names), dtype=np.int64))
        return df


def _one_representation(model, kind: str):
    reps = getattr(model, f"{kind}_representations")
    if len(reps) != 1:
        raise InputError(f"{type(model).__name__} has {len(reps)} {kind} representations; exports cover models "
                         "with one of each (RotatE, ComplEx, DistMult, TransE, TuckER, ...)")
    rep = reps[0]
    if len(rep.shape) != 1:
        raise InputError(f"the {kind} representations of {type(model).__name__} are not vectors (shape {rep.shape})")
    return rep


def entity_embeddings(model, entity_to_id: dict[str, int]) -> Embeddings:
    """The vectors the model scores its entities with (a grounded model's fused ones), by id."""
    names = [None] * len(entity_to_id)
    for name, i in entity_to_id.items():
        names[i] = name
    rep = _one_representation(model, "entity")
    was = rep.training
    rep.eval()
    with torch.no_grad():
        vectors = rep(indices=None)[: len(names)].detach().cpu().numpy()
    rep.train(was)
    return Embeddings("entity", names, vectors)


def relation_embeddings(model, relation_to_id: dict[str, int]) -> Embeddings:
    """The relation vectors by row; with inverse triples, row 2r is relation r and 2r + 1 its inverse."""
    rep = _one_representation(model, "relation")
    with torch.no_grad():
        vectors = rep(indices=None).detach().cpu().numpy()
    base = [None] * len(relation_to_id)
    for name, i in relation_to_id.items():
        base[i] = name
    if len(vectors) == 2 * len(base):
        names = [n for name in base for n in (name, name + _INVERSE)]
    elif len(vectors) == len(base):
        names = base
    else:
        raise InputError(f"{len(vectors)} relation vectors for {len(base)} relations")
    return Embeddings("relation", names, vectors)


def _checksum(files: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{n} {files[n]}\n" for n in sorted(files)).encode()).hexdigest()


def _write(emb: Embeddings, folder: Path, fmt: str) -> list[str]:
    stem = f"{emb.kind}_embeddings"
    if fmt == "npy":
        np.save(folder / f"{stem}.npy", emb.array(), allow_pickle=False)
        with open(folder / f"{emb.kind}_ids.tsv", "w", encoding="utf-8", newline="\n") as f:
            f.write("id\tname\n" + "".join(f"{i}\t{n}\n" for i, n in enumerate(emb.names)))
        return [f"{stem}.npy", f"{emb.kind}_ids.tsv"]
    if fmt == "parquet":
        emb.to_df().to_parquet(folder / f"{stem}.parquet", index=False)
        return [f"{stem}.parquet"]
    emb.to_df().to_csv(folder / f"{stem}.tsv", sep="\t", index=False, float_format="%.9g", lineterminator="\n")
    return [f"{stem}.tsv"]


@dataclass
class Exported:
    path: Path
    meta: dict


def export(stored: store.StoredModel, out: Path | None = None, fmt: str = "npy", *, model=None) -> Exported:
    """Write a stored model's embeddings to `out` (default: ./<model>-embeddings), all or nothing."""
    if fmt not in FILE_FORMATS:
        raise InputError(f"unknown format {fmt!r}: use {', '.join(FILE_FORMATS)}")
    out = Path(out) if out is not None else Path(f"{stored.name}-embeddings")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("exists and is not an empty folder: choose another --out", file=str(out))
    model = model if model is not None else stored.load_model()
    sets = [entity_embeddings(model, stored.entity_to_id), relation_embeddings(model, stored.relation_to_id)]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        names = [n for emb in sets for n in _write(emb, tmp, fmt)]
        files = {n: sha256_of(tmp / n) for n in names}
        t, grounding = stored.config["training"], stored.config["training"].get("grounding")
        meta = {"format": FORMAT, "file_format": fmt, "model": stored.name, "model_class": t["model"],
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "created_at": stored.created_at, "graph_version": stored.trained_on.get("graph_version"),
                "trained_on": stored.trained_on, "training": t,
                "grounded": ({"modality": grounding.get("modality"), "fusion": grounding.get("fusion"),
                              "entity_vectors": "fused (structure and features), as the model scores them"}
                             if grounding else None),
                "complex": sets[0].is_complex, "dim": sets[0].dim,
                "layout": ("(rows, dim, 2): [..., 0] real, [..., 1] imaginary" if sets[0].is_complex and fmt == "npy"
                           else "columns re0..re{d-1}, im0..im{d-1}" if sets[0].is_complex else
                           "(rows, dim)" if fmt == "npy" else "columns e0..e{d-1}"),
                "entities": len(sets[0].names), "relation_rows": len(sets[1].names),
                "inverse_relations": len(sets[1].names) == 2 * len(stored.relation_to_id),
                "files": files, "checksum": _checksum(files)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Exported(out, meta)


# --- import --------------------------------------------------------------------------------------

def _read_meta(folder: Path) -> dict:
    path = folder / "meta.json"
    if not folder.is_dir():
        raise InputError("no such folder of exported embeddings", file=str(folder))
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("missing: not a folder written by `akg export-embeddings`", file=str(path)) from None
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise InputError(f"not readable JSON ({e})", file=str(path)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("file_format") not in FILE_FORMATS:
        raise InputError(f"not an embedding export (format {FORMAT!r} with npy, parquet or tsv files)", file=str(path))
    files = meta.get("files")
    if not isinstance(files, dict) or not files or meta.get("checksum") != _checksum(files):
        raise InputError("the list of files does not match its checksum: meta.json was changed", file=str(path))
    return meta


def verify(folder: Path) -> dict:
    """meta.json, after every file it lists was checked against its sha256."""
    folder = Path(folder)
    meta = _read_meta(folder)
    for name, digest in meta["files"].items():
        path = folder / name
        if os.sep in name or name.startswith(".") or not path.is_file():
            raise InputError("missing: listed in meta.json but not in the folder", file=str(path))
        if sha256_of(path) != digest:
            raise InputError("does not match its checksum in meta.json: changed since the export; refusing to import",
                             file=str(path))
    return meta


def _read_set(folder: Path, kind: str, fmt: str, meta: dict) -> tuple[list[str], np.ndarray]:
    """(names by id, vectors: complex when the export is) of one kind."""
    stem = folder / f"{kind}_embeddings"
    if fmt == "npy":
        array = np.load(f"{stem}.npy", allow_pickle=False)
        ids = (folder / f"{kind}_ids.tsv").read_text(encoding="utf-8").splitlines()[1:]
        names = [line.split("\t", 1)[1] for line in ids]
        vectors = array[..., 0] + 1j * array[..., 1] if meta["complex"] else array
    else:
        import pandas as pd

        df = pd.read_parquet(f"{stem}.parquet") if fmt == "parquet" else pd.read_csv(
            f"{stem}.tsv", sep="\t", keep_default_na=False, dtype={"name": str})
        names = df["name"].tolist()
        d = meta["dim"]
        if meta["complex"]:
            vectors = df[[f"re{i}" for i in range(d)]].to_numpy() + 1j * df[[f"im{i}" for i in range(d)]].to_numpy()
        else:
            vectors = df[[f"e{i}" for i in range(d)]].to_numpy()
    vectors = vectors.astype(np.complex64 if meta["complex"] else np.float32)
    rows = meta["entities"] if kind == "entity" else meta["relation_rows"]
    if vectors.shape != (rows, meta["dim"]) or len(names) != rows:
        raise InputError(f"{kind} embeddings of shape {vectors.shape}, meta.json says ({rows}, {meta['dim']})",
                         file=str(folder / "meta.json"))
    return names, vectors


def import_set(folder: Path, models_root: Path, *, name: str | None = None) -> Path:
    """Check an exported set and store it as a plain model of the same class (see the module's docstring)."""
    from kge.presets import TrainConfig
    from kge.train import build_model

    folder = Path(folder)
    meta = verify(folder)
    name = name or f"{meta.get('model', 'imported')}-imported"
    store.check_new_name(name, models_root)
    try:
        config = TrainConfig(**{**meta["training"], "grounding": None})
    except (TypeError, KeyError) as e:
        raise InputError(f"'training' holds no training settings this version reads ({e})",
                         file=str(folder / "meta.json")) from None
    entities, ev = _read_set(folder, "entity", meta["file_format"], meta)
    relation_rows, rv = _read_set(folder, "relation", meta["file_format"], meta)
    relations = relation_rows[::2] if meta.get("inverse_relations") else relation_rows
    entity_to_id = {n: i for i, n in enumerate(entities)}
    relation_to_id = {n: i for i, n in enumerate(relations)}
    from pykeen.triples import KGInfo

    info = KGInfo(num_entities=len(entities), num_relations=len(relations), create_inverse_triples=config.inverse_triples)
    model = build_model(config, info, seed=config.seed)
    state = model.state_dict()
    given = {"entity_representations.0._embeddings.weight": ev, "relation_representations.0._embeddings.weight": rv}
    other = [k for k in state if k not in given and ".regularizer." not in k]
    if other or any(k not in state for k in given):
        raise InputError(f"a {config.model} cannot be rebuilt from its embeddings alone (it also has "
                         f"{', '.join(other[:3]) or 'other representations'}): use the model folder itself",
                         file=str(folder / "meta.json"))
    for key, vectors in given.items():
        t = torch.from_numpy(vectors)
        t = torch.view_as_real(t).reshape(len(vectors), -1) if t.is_complex() else t
        if tuple(t.shape) != tuple(state[key].shape):
            raise InputError(f"{key.split('.')[0]} of shape {list(t.shape)} do not fit a {config.model} of dimension "
                             f"{config.embedding_dim} ({list(state[key].shape)})", file=str(folder / "meta.json"))
        state[key] = t
    model.load_state_dict(state)
    trained_on = {**(meta.get("trained_on") or {}), "imported_from": str(folder.resolve()),
                  "export_checksum": meta["checksum"], "exported_model": meta.get("model")}
    return store.save(model, config, entity_to_id, relation_to_id, root=models_root, name=name, trained_on=trained_on)
