"""A collection's vector index under AKG_HOME/indexes/NAME: build it incrementally, load it, search it.

Layout: `NAME/CURRENT` names the generation in use (`gen-000003/`), which holds `manifest.json`
(encoder identity, dimension, index kind, and per clip: path relative to the collection, size,
modification time, sha256), `vectors.npy` (row i is the manifest's clip i) and `index.faiss`. A run
writes a new generation beside the old one and switches `CURRENT` with an atomic rename, so a
reader sees the old index or the new one, never a mix; older generations are removed afterwards.

Incremental: a clip whose size and modification time are unchanged keeps its row without being
read; a changed one is hashed, and a content hash the index (or the audio embedding cache,
AKG_HOME/cache/audio, shared with `akg classify`) already knows is not embedded again. Each
finished batch goes to that cache at once, so a run that dies loses at most its batches in flight,
and the next run starts where it stopped. Clips that cannot be read are reported and left out.

FAISS, inner product on L2-normalised vectors (= cosine): exact (`IndexFlatIP`) up to
EXACT_LIMIT vectors, and above it IVF-Flat (`IndexIVFFlat`, sqrt(n) lists, NPROBE probed), which
trains in seconds even at a million vectors where HNSW's build takes many minutes on two cores
(docs/decisions.md).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from akg.errors import AkgError, ConfigError, ConflictError, InputError

EXACT_LIMIT = 100_000   # vectors: up to here exact search; one query scans 100k x 512 floats in ~10 ms
NPROBE = 32             # IVF lists probed per query above the limit
FORMAT = 1


def indexes_root(home: Path) -> Path:
    return Path(home) / "indexes"


def check_name(name: str) -> str:
    from akg.names import folder_name

    return folder_name(name, what="index name")


def make_faiss_index(vectors: np.ndarray, *, exact_limit: int = EXACT_LIMIT, nprobe: int = NPROBE):
    """(faiss index, kind) over the rows of `vectors` (float32, unit length)."""
    import faiss

    n, dim = vectors.shape
    if n <= exact_limit:
        index = faiss.IndexFlatIP(dim)
        kind = "flat"
    else:
        nlist = max(1, int(math.sqrt(n)))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)  # a fixed training sample: the same vectors give the same index
        sample = vectors[np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))]
        index.train(np.ascontiguousarray(sample))
        index.nprobe = nprobe
        kind = "ivf"
    index.add(np.ascontiguousarray(vectors))
    return index, kind


@dataclass
class CollectionIndex:
    name: str
    folder: Path
    manifest: dict
    vectors: np.ndarray
    index: object                # faiss

    @property
    def encoder(self) -> str:
        return self.manifest["encoder"]

    @property
    def paths(self) -> list[str]:
        return [f["path"] for f in self.manifest["files"]]

    def path_of(self, row: int) -> str:
        return str(Path(self.manifest["audio_dir"]) / self.manifest["files"][row]["path"])

    def __len__(self) -> int:
        return len(self.manifest["files"])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the k nearest clips of each query row; rows are -1 where fewer exist."""
        import faiss

        q = np.ascontiguousarray(np.atleast_2d(queries).astype(np.float32))
        # One query's few rows: FAISS's BLAS path (its default needs 20 rows) and one thread. Measured on
        # 2 cores: 12 rows over 100k vectors 76 ms so, 360 ms on its heap path, 1.5 s on 2 busy OpenMP
        # threads (bench/RESULTS.md). Parallelism across queries comes from the service's processes.
        threads, faiss.cvar.distance_compute_blas_threshold = faiss.omp_get_max_threads(), 1
        faiss.omp_set_num_threads(1)
        try:
            return self.index.search(q, min(k, len(self)))
        finally:
            faiss.omp_set_num_threads(threads)

    def check_encoder(self, identity: str) -> None:
        if identity != self.encoder:
            raise InputError(f"index {self.name!r} was built with the encoder {self.encoder}, not {identity}: "
                             f"search it with the same --model/--checkpoint, or index again under another --name")


def require_index(home: Path, name: str) -> Path:
    """The file naming an index's current version; a clear error for a bad name or a missing index
    (cheap: the CLI asks before it loads a CLAP model)."""
    current = indexes_root(home) / check_name(name) / "CURRENT"
    if not current.is_file():
        known = sorted(p.name for p in indexes_root(home).glob("*") if (p / "CURRENT").is_file())
        raise InputError(f"no index named {name!r} under {indexes_root(home)}"
                         + (f" (there are: {', '.join(known)})" if known else "; make one with `akg index AUDIO_DIR --name NAME`"))
    return current


def _current_generation(current: Path, name: str, home: Path) -> Path:
    try:
        gen = current.read_text(encoding="utf-8").strip()
        if not (gen.startswith("gen-") and gen[4:].isdigit() and gen[4:].isascii()):  # never a path elsewhere
            raise ValueError(f"CURRENT names {gen[:40]!r}, not a generation")
        return current.parent / gen
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        if isinstance(e, FileNotFoundError):  # removed since require_index looked: say so as it would
            require_index(home, name)
        raise InputError(f"the index {name!r} is damaged ({e}): build it again with "
                         "`akg index AUDIO_DIR --name NAME --rebuild`", file=str(current)) from None


def _open_generation(gen: Path):
    import faiss

    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    vectors = np.load(gen / "vectors.npy", mmap_mode="r", allow_pickle=False)
    return manifest, vectors, faiss.read_index(str(gen / "index.faiss"))


def load_index(home: Path, name: str) -> CollectionIndex:
    """The index as CURRENT names it. A run of `akg index` that finishes while this reads switches
    CURRENT and removes the generation being read: then CURRENT is read again and the new generation
    opened (once: generations are minutes apart, and a second miss is damage, not a race)."""
    current = require_index(home, name)
    gen = _current_generation(current, name, home)
    try:
        manifest, vectors, index = _open_generation(gen)
    except (OSError, ValueError, RuntimeError) as e:
        newer = _current_generation(current, name, home)
        try:
            if newer == gen:
                raise
            gen = newer
            manifest, vectors, index = _open_generation(gen)
        except (OSError, ValueError, RuntimeError):
            raise InputError(f"the index {name!r} is damaged ({str(e).splitlines()[0]}): build it again with "
                             "`akg index AUDIO_DIR --name NAME --rebuild`", file=str(gen)) from None
    if manifest.get("format") != FORMAT or len(manifest["files"]) != vectors.shape[0] or index.ntotal != vectors.shape[0]:
        raise InputError(f"the parts of index {name!r} do not fit together: build it again with --rebuild", file=str(gen))
    if manifest["kind"] == "ivf":
        index.nprobe = NPROBE
    return CollectionIndex(name, current.parent, manifest, vectors, index)


@contextlib.contextmanager
def index_lock(home: Path, name: str) -> Iterator[None]:
    """Held while a run builds the index `name`: indexes/.locks/NAME.lock, an flock (released by the
    kernel when the process ends, however it ends). Two runs on one name would pick the same new
    generation folder and remove each other's files; the second is refused at once, naming the
    first's process, rather than left waiting behind a run that may take hours. ('.locks' cannot be
    an index's name: names start with a letter or digit.)"""
    import fcntl

    locks = indexes_root(home) / ".locks"
    path = locks / f"{check_name(name)}.lock"
    try:
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ConfigError(f"cannot write under {indexes_root(home)}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise ConflictError(f"index {name!r} is being built by another run" + (f" (process {holder})" if holder else "")
                                + ": wait for it to finish, then run again (only what changed is embedded)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race a third run's open)


@dataclass
class IndexReport:
    name: str
    folder: str
    clips: int = 0            # in the index now
    reused: int = 0           # rows kept from the previous index
    cached: int = 0           # from the audio embedding cache
    embedded: int = 0         # embedded in this run
    removed: int = 0          # files gone since the previous index
    kind: str = ""
    encoder: str = ""
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def check_collection(audio_dir: Path) -> Path:
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise InputError("no such folder (a collection of audio files was expected)" if not audio_dir.exists()
                         else "is a file, not a folder of audio files", file=str(audio_dir))
    return audio_dir


def scan(audio_dir: Path) -> list[Path]:
    """The collection's audio files (supported extensions, any depth), in a stable order."""
    from akg.audio import SUPPORTED

    audio_dir = check_collection(audio_dir)
    return sorted(p for p in audio_dir.rglob("*") if p.suffix.lower() in SUPPORTED and p.is_file())


def build_index(home: Path, name: str, audio_dir: Path, encoder, spec, *, workers: int = 1, ray: str | None = None,
                batch: int = 8, max_seconds: float = 600.0, rebuild: bool = False, exact_limit: int = EXACT_LIMIT,
                on_total: Callable[[int], object] | None = None,
                progress: Callable[[int], object] | None = None) -> IndexReport:
    """Index (or update the index of) every clip under `audio_dir`; see the module's docstring. One run
    per name at a time (`index_lock`)."""
    started = time.perf_counter()
    check_name(name)
    audio_dir = Path(audio_dir).expanduser().resolve()
    files = scan(audio_dir)
    if not files:
        raise InputError("no audio files here (looked for " + ", ".join(_supported()) + " at any depth)", file=str(audio_dir))
    with index_lock(home, name):
        return _build(home, name, audio_dir, files, encoder, spec, workers=workers, ray=ray, batch=batch,
                      max_seconds=max_seconds, rebuild=rebuild, exact_limit=exact_limit, on_total=on_total,
                      progress=progress, started=started)


def _build(home, name, audio_dir, files, encoder, spec, *, workers, ray, batch, max_seconds, rebuild, exact_limit,
           on_total, progress, started) -> IndexReport:
    from akg.audio import file_sha256
    from reasoning.refine import AudioEmbeddingCache
    from retrieval.embedding import check_workers, embed_files, local_workers

    folder = indexes_root(home) / name
    previous = None
    if (folder / "CURRENT").is_file() and not rebuild:
        previous = load_index(home, name)
        if previous.encoder != encoder.identity:
            raise InputError(f"index {name!r} was built with the encoder {previous.encoder}, not {encoder.identity}: "
                             "use --rebuild to replace it, or another --name")
    report = IndexReport(name, str(folder), encoder=encoder.identity)
    if ray is None:  # a Ray cluster has its own resources: `workers` actors there are not capped by this machine
        workers, note = local_workers(workers)
        report.warnings += [note] if note else []
    else:
        check_workers(workers)
    old = {}  # relative path -> (file entry, vector); and content hash -> vector
    by_hash = {}
    if previous is not None:
        for i, f in enumerate(previous.manifest["files"]):
            old[f["path"]] = (f, previous.vectors[i])
            by_hash[f["sha256"]] = previous.vectors[i]
        report.removed = len(set(old) - {str(p.relative_to(audio_dir)) for p in files})
    cache = AudioEmbeddingCache(Path(home) / "cache" / "audio", encoder.identity)
    entries, vectors, todo = [], {}, []
    for p in files:
        rel = str(p.relative_to(audio_dir))
        try:
            st = p.stat()
            if rel in old and old[rel][0]["size"] == st.st_size and old[rel][0]["mtime_ns"] == st.st_mtime_ns:
                entries.append(old[rel][0])
                vectors[rel] = old[rel][1]
                report.reused += 1
                continue
            digest = file_sha256(p)
        except OSError as e:
            report.errors.append(f"{p}: cannot be read ({e.strerror or e})")
            continue
        except AkgError as e:  # gone, or swapped for a pipe, since the scan: that file, not the run
            report.errors.append(str(e))
            continue
        entry = {"path": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
        entries.append(entry)
        hit = by_hash.get(digest)
        if hit is not None:
            vectors[rel] = hit
            report.reused += 1
            continue
        hit = cache.get(digest)
        if hit is not None:
            vectors[rel] = hit
            report.cached += 1
            continue
        todo.append(str(p))
    if on_total is not None:
        on_total(len(todo))
    digest_of = {str(audio_dir / e["path"]): e["sha256"] for e in entries}

    def done(result) -> None:
        for path, vec in result.vectors.items():
            cache.put(digest_of[path], vec)   # at once: a crash after this batch does not lose it
            vectors[str(Path(path).relative_to(audio_dir))] = vec
        report.errors.extend(result.errors[p] for p in result.paths if p in result.errors)
        report.embedded += len(result.vectors)
        if progress is not None:
            progress(len(result.paths))

    embed_files(encoder, spec, todo, workers=workers, ray=ray, batch=batch, max_seconds=max_seconds, on_batch=done)
    entries = [e for e in entries if e["path"] in vectors]
    if not entries:
        raise InputError(f"none of the {len(files)} audio files could be read"
                         + (f" (first: {report.errors[0]})" if report.errors else ""), file=str(audio_dir))
    matrix = np.stack([np.asarray(vectors[e["path"]], np.float32) for e in entries])
    index, kind = make_faiss_index(matrix, exact_limit=exact_limit)
    manifest = {"format": FORMAT, "name": name, "audio_dir": str(audio_dir), "encoder": encoder.identity,
                "dim": int(matrix.shape[1]), "kind": kind, "exact_limit": exact_limit,
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": entries, "errors": report.errors}
    _write_generation(folder, manifest, matrix, index)
    report.clips, report.kind, report.seconds = len(entries), kind, round(time.perf_counter() - started, 3)
    return report


def _supported() -> list[str]:
    from akg.audio import SUPPORTED

    return list(SUPPORTED)


def _write_generation(folder: Path, manifest: dict, matrix: np.ndarray, index) -> None:
    """A new generation folder, complete before CURRENT points to it; then the old ones go."""
    import faiss

    from akg.files import write_atomic

    try:
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.name[4:]) for p in folder.glob("gen-*") if p.name[4:].isdigit()]
        gen = folder / f"gen-{max(numbers, default=0) + 1:06d}"
        tmp = folder / f".{gen.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        np.save(tmp / "vectors.npy", matrix, allow_pickle=False)
        faiss.write_index(index, str(tmp / "index.faiss"))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        tmp.rename(gen)
    except OSError as e:
        raise ConfigError(f"cannot write the index under {folder}: {e.strerror or e}") from None
    write_atomic(folder / "CURRENT", gen.name + "\n")
    for p in folder.glob("gen-*"):
        if p != gen:
            shutil.rmtree(p, ignore_errors=True)
