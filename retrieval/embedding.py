"""Embedding a collection's clips: in this process, in local worker processes, or on a Ray cluster.

Every path cuts the clips to embed into the same fixed batches (in file order) and embeds each
batch with the same function, `embed_batch`; a batch is never split or merged between workers. So
the three paths give the same vectors (the tests compare them), whatever the number of workers: a
model's output can depend on what else is in its batch (padding, BLAS blocking), and here it never
differs. Finished batches come back to the caller one at a time (`on_batch`), which writes them to
the audio embedding cache at once: a crash loses at most the batches in flight.

- `workers=1`: the caller's encoder, in this process.
- `workers=N`: N local processes (spawned: torch and fork do not mix), each loading the encoder once.
- `ray="auto"|ADDRESS`: Ray Data `map_batches` over the batches with N actors (`concurrency`), each
  holding the encoder; one GPU per actor when the cluster has GPUs (the encoder then runs on cuda, and
  its vectors match a CUDA single-process run rather than a CPU one). `auto` joins the running
  cluster (RAY_ADDRESS, or one `ray start` made on this machine) and otherwise starts a local runtime.
  The clips are read by the actors from their paths, so on a multi-node cluster the collection must be
  at the same path on every node (a shared file system).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from akg.errors import AkgError, ConfigError, InputError

DEFAULT_BATCH = 8


@dataclass
class BatchResult:
    index: int                                   # which batch (their order is the files' order)
    paths: list[str]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)   # path -> embedding, for the clips read
    errors: dict[str, str] = field(default_factory=dict)           # path -> one-line problem
    encoder: str = ""                                              # the identity of the encoder that embedded them


def check_workers(requested) -> int:
    """--workers as a caller gave it (also with --ray, which ignores it): a whole number of at least 1."""
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise InputError(f"--workers must be a whole number of at least 1, not {requested!r}")
    return requested


def local_workers(requested: int) -> tuple[int, str | None]:
    """How many local processes to start for `--workers requested`: at most one per core this process
    may use (more only queue on the same cores, each holding a model in memory), with a note saying
    so. A cap, never an error: `--workers 2` in a script must also run on a one-core machine."""
    check_workers(requested)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    if requested <= cores:
        return requested, None
    return cores, f"--workers {requested}: this machine has {cores} core(s) for it; using {cores}"


def batches_of(paths: Sequence[str], size: int) -> list[list[str]]:
    if size < 1:
        raise InputError("the batch size must be at least 1")
    return [list(paths[i:i + size]) for i in range(0, len(paths), size)]


def embed_batch(encoder, index: int, paths: Sequence[str], max_seconds: float) -> BatchResult:
    """One batch: decode each clip (a bad one gets its error), embed the good ones together."""
    from akg.audio import load_audio

    out, waves = BatchResult(index, list(paths), encoder=encoder.identity), []
    for p in paths:
        try:
            waves.append((p, load_audio(p, encoder.sample_rate, max_seconds=max_seconds)))
        except AkgError as e:
            out.errors[p] = str(e)
        except OSError as e:
            out.errors[p] = f"{p}: {e.strerror or e}"
    if waves:
        emb = encoder.embed_audio([w for _, w in waves])
        out.vectors = {p: np.asarray(v, np.float32) for (p, _), v in zip(waves, emb)}
    return out


def embed_files(encoder, spec, paths: Sequence[str], *, workers: int = 1, ray: str | None = None,
                batch: int = DEFAULT_BATCH, max_seconds: float, on_batch: Callable[[BatchResult], object]) -> None:
    """Embed `paths` in batches of `batch`; `on_batch` gets each finished batch (in any order).
    `encoder` is the loaded encoder (used in-process, and whose identity every worker must match)."""
    from akg.audio import check_max_seconds

    check_workers(workers)
    check_max_seconds(max_seconds)
    groups = batches_of(list(paths), batch)
    if not groups:
        return
    if ray is not None:
        run = _run_ray
    elif workers > 1:
        run = _run_processes
    else:
        for i, g in enumerate(groups):
            on_batch(embed_batch(encoder, i, g, max_seconds))
        return
    # closing(): the workers are stopped as soon as this loop ends, also when on_batch raises or
    # Ctrl-C arrives, not whenever the generator happens to be collected.
    with contextlib.closing(run(spec, groups, workers, max_seconds, ray)) as results:
        for result in results:
            if result.encoder != encoder.identity:
                raise ConfigError(f"a worker loaded another encoder ({result.encoder}) than this process "
                                  f"({encoder.identity}): the model must be the same files everywhere")
            on_batch(result)


# --- local processes ------------------------------------------------------------------------------

_WORKER: dict = {}


@contextlib.contextmanager
def _ctrl_c_ignored():
    """SIGINT ignored in this process for the block (main thread only: signals are set there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:  # None: a handler set outside Python, which cannot be put back; the default is the nearest
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


def _worker_init(spec) -> None:
    import torch

    from akg.encoders import load_encoder

    # Ctrl-C in a terminal reaches every process of the group; the parent alone answers it (it stops
    # the workers and says how to resume), so a worker ignores it instead of printing its traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)  # N workers share the machine's cores; no oversubscription
    _WORKER["encoder"] = load_encoder(spec)


def _worker_batch(index: int, paths: list[str], max_seconds: float) -> BatchResult:
    return embed_batch(_WORKER["encoder"], index, paths, max_seconds)


def _stop_workers(pool) -> None:
    """End the workers now (their batches in flight are lost; finished ones are in the cache). Python
    3.11 has no public way (3.14's terminate_workers); futures are not cancelled first, because the
    pool's manager thread then fails on them (InvalidStateError) and prints that from its thread."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(wait=True)


def _run_processes(spec, groups, workers, max_seconds, _ray):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(groups)), mp_context=ctx, initializer=_worker_init,
                               initargs=(spec,))
    try:
        # The workers are spawned by these submits; started with SIGINT ignored, they inherit that
        # through exec, so a Ctrl-C while they import torch (before _worker_init runs) is ignored too.
        with _ctrl_c_ignored():
            futures = [pool.submit(_worker_batch, i, g, max_seconds) for i, g in enumerate(groups)]
        for f in as_completed(futures):
            yield f.result()
    except BaseException:  # Ctrl-C, an error in a batch or in the caller's on_batch (GeneratorExit)
        with _ctrl_c_ignored():  # a second Ctrl-C must not interrupt the clean-up half-way
            _stop_workers(pool)
        raise
    pool.shutdown(wait=True)


# --- Ray ------------------------------------------------------------------------------------------


class _RayEmbedder:
    """A Ray Data actor: loads the encoder once, embeds whole batches (one row = one batch of paths)."""

    def __init__(self, spec, max_seconds: float, threads: int):
        import torch

        from akg.encoders import load_encoder

        torch.set_num_threads(threads)
        self.encoder, self.max_seconds = load_encoder(spec), max_seconds

    def __call__(self, rows: dict) -> dict:
        import json

        out = {"index": [], "paths": [], "vectors": [], "errors": [], "encoder": []}
        for index, paths in zip(rows["index"], rows["paths"]):
            r = embed_batch(self.encoder, int(index), [str(p) for p in paths], self.max_seconds)
            ok = [p for p in r.paths if p in r.vectors]
            out["index"].append(r.index)
            out["paths"].append(json.dumps(ok))
            out["vectors"].append(np.stack([r.vectors[p] for p in ok]).tobytes() if ok else b"")
            out["errors"].append(json.dumps(r.errors))
            out["encoder"].append(r.encoder)
        return {k: np.asarray(v, dtype=object) for k, v in out.items()}


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def _ray_init(address: str, workers: int):
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'ray[data]' (the project's 'ray' extra)") from None
    if ray.is_initialized():
        return ray, False
    import logging

    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    if address == "auto":
        try:
            ray.init(address="auto", **quiet)
        except (ConnectionError, RuntimeError, ValueError):
            ray.init(num_cpus=max(workers, 1), **quiet)  # no cluster running: a local runtime for this run
    else:
        try:
            ray.init(address=address, **quiet)
        except Exception as e:  # noqa: BLE001 - ConnectionError, RuntimeError, gRPC errors
            raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return ray, True


def _run_ray(spec, groups, workers, max_seconds, address):
    import json

    ray, started = _ray_init(address, workers)
    try:
        import ray.data

        import logging

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the command's own bar counts the batches
        for noisy in ("ray", "ray.data"):  # Ray Data logs each execution at INFO on stderr
            logging.getLogger(noisy).setLevel(logging.WARNING)
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if gpus >= 1 and spec.device == "cpu":
            spec = replace(spec, device="cuda")
        ds = ray.data.from_items([{"index": i, "paths": g} for i, g in enumerate(groups)],
                                 override_num_blocks=len(groups))
        out = ds.map_batches(_RayEmbedder, fn_constructor_kwargs={"spec": spec, "max_seconds": max_seconds,
                                                                   "threads": 1},
                             batch_size=1, concurrency=min(workers, len(groups)), num_cpus=1,
                             num_gpus=1 if gpus >= 1 else 0, batch_format="numpy")
        for row in out.iter_rows():
            ok = json.loads(row["paths"])
            vecs = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(ok), -1) if ok else np.zeros((0, 0))
            index = int(row["index"])
            yield BatchResult(index, groups[index], {p: v.copy() for p, v in zip(ok, vecs)},
                              json.loads(row["errors"]), str(row["encoder"]))
    finally:
        if started:
            ray.shutdown()
