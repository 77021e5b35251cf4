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

`import_set` reads exactly the files an export of meta.json's format has, each listed there with
its sha256, and nothing else in the folder: each is read once, as a regular file inside the folder
(a link out of it, a pipe or a device is refused), and checked against its checksum (a changed
file is refused) before it is parsed from the bytes that were checked. It stores the set as a model: a plain one of the same PyKEEN class whose embeddings are the exported
vectors, so `akg predict` and `akg evaluate` use it. That works for models whose whole state is
their embeddings (RotatE, ComplEx, DistMult, TransE, ...): an interaction with parameters of its
own (TuckER's core tensor) is not in the export, and such a set is refused. An imported grounded
model scores its training entities as the original does, but cannot ground new names or clips: its
projection is not part of the export.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import stat
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


def _file_names(kind: str, fmt: str) -> list[str]:
    """The files an export of this format holds for one kind: what `_write` writes and an import reads."""
    stem = f"{kind}_embeddings"
    return [f"{stem}.npy", f"{kind}_ids.tsv"] if fmt == "npy" else [f"{stem}.{fmt}"]


def _write(emb: Embeddings, folder: Path, fmt: str) -> list[str]:
    names = _file_names(emb.kind, fmt)
    if fmt == "npy":
        np.save(folder / names[0], emb.array(), allow_pickle=False)
        with open(folder / names[1], "w", encoding="utf-8", newline="\n") as f:
            f.write("id\tname\n" + "".join(f"{i}\t{n}\n" for i, n in enumerate(emb.names)))
    elif fmt == "parquet":
        emb.to_df().to_parquet(folder / names[0], index=False)
    else:
        emb.to_df().to_csv(folder / names[0], sep="\t", index=False, float_format="%.9g", lineterminator="\n")
    return names


@dataclass
class Exported:
    path: Path
    meta: dict


def _check_target(out: Path) -> None:
    """Refuse, before any work, a --out that cannot become the export: something other than a new or
    empty real folder, or an empty folder this process may not write into."""
    try:
        if out.is_symlink():
            raise InputError("is a symbolic link: choose a real folder for --out", file=str(out))
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InputError("exists and is not an empty folder: choose another --out", file=str(out))
        if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
            raise InputError("cannot write into this folder (permission denied): choose another --out", file=str(out))
    except OSError as e:  # a parent that cannot be searched, a file where a folder is expected
        raise InputError(f"cannot be used as the export's folder ({e.strerror or e})", file=str(out)) from None


def _start(out: Path) -> tuple[Path, list[Path]]:
    """The hidden folder the export is written into beside `out`, and the parents of `out` created for
    it (removed again if the export fails: nothing is left half-written)."""
    created: list[Path] = []
    try:
        for parent in reversed([out.parent, *out.parent.parents]):
            if not parent.exists():
                try:
                    parent.mkdir()
                except FileExistsError:  # made by someone else meanwhile: not ours to remove
                    continue
                created.append(parent)
        # A fresh name, never an existing file or folder: a leftover or a planted one is not reused.
        tmp = out.parent / f".{out.name[:64]}.{secrets.token_hex(6)}.partial"
        tmp.mkdir()
    except OSError as e:
        _remove(None, created)
        raise InputError(f"cannot write the export here ({e.strerror or e})", file=str(out)) from None
    return tmp, created


def _remove(tmp: Path | None, created: list[Path]) -> None:
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            pass  # someone else put something there meanwhile: theirs to keep


def export(stored: store.StoredModel, out: Path | None = None, fmt: str = "npy", *, model=None) -> Exported:
    """Write a stored model's embeddings to `out` (default: ./<model>-embeddings), all or nothing: the
    files are written into a hidden folder beside it, renamed into place when complete; on any failure
    that folder and any parents made for it are removed, and the error is one line naming `out`."""
    if fmt not in FILE_FORMATS:
        raise InputError(f"unknown format {fmt!r}: use {', '.join(FILE_FORMATS)}")
    out = Path(out) if out is not None else Path(f"{stored.name}-embeddings")
    _check_target(out)
    tmp, created = _start(out)  # before the model loads: a --out that cannot be written fails at once
    try:
        model = model if model is not None else stored.load_model()
        sets = [entity_embeddings(model, stored.entity_to_id), relation_embeddings(model, stored.relation_to_id)]
        try:
            names = [n for emb in sets for n in _write(emb, tmp, fmt)]
            files = {n: sha256_of(tmp / n) for n in names}
            meta = _meta(stored, sets, fmt, files)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            tmp.rename(out)  # replaces an empty folder in one step; refused if it was filled meanwhile
        except OSError as e:  # a full disk, a folder made read-only meanwhile, --out filled by someone else
            raise InputError(f"cannot write the export ({e.strerror or e}); nothing was written",
                             file=str(out)) from None
    except BaseException:
        _remove(tmp, created)
        raise
    return Exported(out, meta)


def _meta(stored: store.StoredModel, sets: list[Embeddings], fmt: str, files: dict[str, str]) -> dict:
    t, grounding = stored.config["training"], stored.config["training"].get("grounding")
    return {"format": FORMAT, "file_format": fmt, "model": stored.name, "model_class": t["model"],
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


# --- import --------------------------------------------------------------------------------------

def _read_inside(folder: Path, name: str, missing: str) -> bytes:
    """The bytes of one file of an export, read once (what is checked is what is used): a regular file
    in the folder, or a link to one that stays inside it. A link out of the folder, a pipe or a device
    is refused before anything is read from it."""
    path = folder / name
    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(folder.resolve(strict=True)):
            raise InputError("is a link pointing out of the export's folder: refusing to read it", file=str(path))
        # O_NOFOLLOW: a link swapped in after the check is refused; O_NONBLOCK: a pipe does not hang the open.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise InputError("is not a regular file (a pipe or a device?): refusing to read it", file=str(path))
            return f.read()
    except FileNotFoundError:
        raise InputError(missing, file=str(path)) from None
    except OSError as e:
        raise InputError(f"cannot be read ({e.strerror or e})", file=str(path)) from None


def _read_meta(folder: Path) -> dict:
    path = folder / "meta.json"
    if not folder.is_dir():
        raise InputError("no such folder of exported embeddings", file=str(folder))
    data = _read_inside(folder, "meta.json", "missing: not a folder written by `akg export-embeddings`")
    try:
        meta = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"not readable JSON ({e})", file=str(path)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("file_format") not in FILE_FORMATS:
        raise InputError(f"not an embedding export (format {FORMAT!r} with npy, parquet or tsv files)", file=str(path))
    files = meta.get("files")
    if not isinstance(files, dict) or not files or meta.get("checksum") != _checksum(files):
        raise InputError("the list of files does not match its checksum: meta.json was changed", file=str(path))
    expected = sorted(n for kind in KINDS for n in _file_names(kind, meta["file_format"]))
    if sorted(files) != expected:
        # Exactly the files an export of this format writes: nothing else in the folder is ever read.
        raise InputError(f"lists {', '.join(map(repr, sorted(files)))}; a {meta['file_format']} export has exactly "
                         f"{', '.join(expected)}", file=str(path))
    for key in ("dim", "entities", "relation_rows"):
        if type(meta.get(key)) is not int or meta[key] < 1:
            raise InputError(f"{key!r} is not a positive whole number: {meta.get(key)!r}", file=str(path))
    return meta


def _verified(folder: Path) -> tuple[dict, dict[str, bytes]]:
    """meta.json and the bytes of every file it lists (only those), each checked against its sha256."""
    meta = _read_meta(folder)
    contents = {}
    for name, digest in sorted(meta["files"].items()):
        data = _read_inside(folder, name, "missing: listed in meta.json but not in the folder")
        if hashlib.sha256(data).hexdigest() != digest:
            raise InputError("does not match its checksum in meta.json: changed since the export; refusing to import",
                             file=str(folder / name))
        contents[name] = data
    return meta, contents


def verify(folder: Path) -> dict:
    """meta.json, after every file it lists was checked against its sha256."""
    return _verified(Path(folder))[0]


def _read_set(folder: Path, contents: dict[str, bytes], kind: str, meta: dict) -> tuple[list[str], np.ndarray]:
    """(names by id, vectors: complex when the export is) of one kind, from the checked bytes."""
    fmt = meta["file_format"]
    first = _file_names(kind, fmt)[0]
    try:
        if fmt == "npy":
            array = np.load(io.BytesIO(contents[first]), allow_pickle=False)
            ids = contents[f"{kind}_ids.tsv"].decode("utf-8").splitlines()[1:]
            names = [line.split("\t", 1)[1] for line in ids]
            vectors = array[..., 0] + 1j * array[..., 1] if meta["complex"] else array
        else:
            import pandas as pd

            data = io.BytesIO(contents[first])
            df = pd.read_parquet(data) if fmt == "parquet" else pd.read_csv(
                data, sep="\t", keep_default_na=False, dtype={"name": str})
            names = df["name"].tolist()
            d = meta["dim"]
            if meta["complex"]:
                vectors = df[[f"re{i}" for i in range(d)]].to_numpy() + 1j * df[[f"im{i}" for i in range(d)]].to_numpy()
            else:
                vectors = df[[f"e{i}" for i in range(d)]].to_numpy()
        vectors = vectors.astype(np.complex64 if meta["complex"] else np.float32)
    except (ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError, OSError) as e:
        # the checksums say the files are as exported, not that whoever exported them wrote them well
        raise InputError(f"not readable as {kind} embeddings ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]})",
                         file=str(folder / first)) from None
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
    meta, contents = _verified(folder)
    name = name or f"{meta.get('model', 'imported')}-imported"
    store.check_new_name(name, models_root)
    try:
        config = TrainConfig(**{**meta["training"], "grounding": None})
    except (TypeError, KeyError) as e:
        raise InputError(f"'training' holds no training settings this version reads ({e})",
                         file=str(folder / "meta.json")) from None
    if config.embedding_dim != meta["dim"]:  # checked before a model of that size is built
        raise InputError(f"'training' says dimension {config.embedding_dim}, the embeddings have {meta['dim']}",
                         file=str(folder / "meta.json"))
    entities, ev = _read_set(folder, contents, "entity", meta)
    relation_rows, rv = _read_set(folder, contents, "relation", meta)
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
    if not isinstance(meta.get("trained_on") or {}, dict):
        raise InputError("'trained_on' is not an object", file=str(folder / "meta.json"))
    trained_on = {**(meta.get("trained_on") or {}), "imported_from": str(folder.resolve()),
                  "export_checksum": meta["checksum"], "exported_model": meta.get("model")}
    return store.save(model, config, entity_to_id, relation_to_id, root=models_root, name=name, trained_on=trained_on)
